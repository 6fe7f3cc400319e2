import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';
import { failingProviderOf, toErrorResponse } from '#shared/errors';
import type { JobFunction } from '#shared/jobs';
import { logger } from '#shared/logger';

/**
 * The product's metrics, in one place: CloudWatch embedded metric format (EMF) lines that Powertools Metrics writes
 * to stdout and CloudWatch Logs turns into metrics (no PutMetricData call, no permission), in one namespace per
 * deployment. Each metric has its own small set of dimensions (docs/operations.md lists them); values recorded
 * during an invocation are published together at its end (`publishMetricsMiddleware`, in every middy stack of
 * shared/middleware.ts). A metric that cannot be recorded or published is logged and dropped: it never fails a
 * request. POWERTOOLS_METRICS_DISABLED=true turns the output off (the tests, and local mode unless asked).
 */

/** The namespace of a deployment's metrics: the stack sets it as POWERTOOLS_METRICS_NAMESPACE. */
export const metricsNamespaceOf = (stackName: string) => `EinvoiceBridge/${stackName}`;
/** Where no stack set one (local mode, tests). */
const LOCAL_NAMESPACE = metricsNamespaceOf('local');

export const METRIC_NAMES = {
  jumdataBilledCalls: 'JumdataBilledCalls',
  invoicesMirrored: 'InvoicesMirrored',
  bytesMirrored: 'BytesMirrored',
  providerFailures: 'ProviderFailures',
  erpUpdatesSent: 'ErpUpdatesSent',
  jobsDone: 'JobsDone',
  jobsPending: 'JobsPending',
  jobsFailed: 'JobsFailed',
  oldestDueJobAge: 'OldestDueJobAge',
  archiveProblems: 'ArchiveProblems',
} as const;

/** How a job's attempt ended, and the metric that counts it. */
export type JobOutcomeKind = 'done' | 'pending' | 'failed';
export const JOB_OUTCOME_METRICS: Record<JobOutcomeKind, string> = {
  done: METRIC_NAMES.jobsDone,
  pending: METRIC_NAMES.jobsPending,
  failed: METRIC_NAMES.jobsFailed,
};

/** The `code` of ProviderFailures: the API's answer to a provider down (502), asking to wait (503) or too slow (504). */
export const PROVIDER_FAILURE_CODES = ['UPSTREAM_UNAVAILABLE', 'UPSTREAM_TEMPORARILY_UNAVAILABLE', 'UPSTREAM_TIMEOUT'] as const;

/** The function whose audit publishes ArchiveProblems (the one with the archive's grants); the stack reads it too. */
export const ARCHIVE_AUDIT_FUNCTION: JobFunction = 'download';

type Dimensions = Readonly<Record<string, string>>;
type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];

/**
 * One Powertools buffer per dimension set: an EMF document applies its dimensions to every metric in it, so
 * metrics with different dimensions cannot share one. Made at first use, never at cold start.
 */
const buffers = new Map<string, Metrics>();

function bufferOf(dimensions: Dimensions): Metrics {
  const key = JSON.stringify(dimensions);
  let buffer = buffers.get(key);
  if (!buffer) {
    buffer = new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE || LOCAL_NAMESPACE, logger });
    // Powertools adds `service` to every metric; `function` (or `provider`) already says where it comes from.
    buffer.clearDefaultDimensions();
    buffer.setDefaultDimensions(dimensions);
    buffers.set(key, buffer);
  }
  return buffer;
}

function record(dimensions: Dimensions, name: string, unit: Unit, value: number): void {
  try {
    // Powertools takes NaN and writes it as null, which would make CloudWatch refuse the whole document.
    if (!Number.isFinite(value)) throw new RangeError(`${value} is not a finite number`);
    bufferOf(dimensions).addMetric(name, unit, value);
  } catch (error) {
    logger.warn('metric not recorded', { metric: name, error });
  }
}

/** Writes every metric recorded since the last call, one EMF line per dimension set; never throws. */
export function publishMetrics(): void {
  for (const buffer of buffers.values()) {
    if (!buffer.hasStoredMetrics()) continue;
    try {
      buffer.publishStoredMetrics();
    } catch (error) {
      logger.warn('metrics not published', { error });
      // Not carried into the next invocation's document, under its time.
      buffer.clearMetrics();
    }
  }
}

/** Publishes an invocation's metrics when it ends, answered or failed (Powertools' logMetrics, for many buffers). */
export function publishMetricsMiddleware<E, R>(): MiddlewareObj<E, R> {
  return { after: () => publishMetrics(), onError: () => publishMetrics() };
}

const onFunction = (fn: JobFunction): Dimensions => ({ function: fn });

/** A Jumdata answer that says it was billed (`charge: true`). */
export function countBilledJumdataCall(): void {
  record(onFunction('download'), METRIC_NAMES.jumdataBilledCalls, MetricUnit.Count, 1);
}

/** An invoice whose files and invoice.json are stored: one more invoice, and its files' bytes. */
export function countMirroredInvoice(bytes: number): void {
  record(onFunction('download'), METRIC_NAMES.invoicesMirrored, MetricUnit.Count, 1);
  record(onFunction('download'), METRIC_NAMES.bytesMirrored, MetricUnit.Bytes, bytes);
}

/** An ERP update WDT accepted. */
export function countErpUpdateSent(): void {
  record(onFunction('erp-update'), METRIC_NAMES.erpUpdatesSent, MetricUnit.Count, 1);
}

/**
 * An attempt's error, if it says its provider failed (down, asking to wait, too slow: the same test as the WARN
 * "provider failed" log line), by provider and the API's error code: a handful of values each.
 */
export function countProviderFailure(error: unknown): void {
  const provider = failingProviderOf(error);
  if (!provider) return;
  record({ provider, code: toErrorResponse(error).body.error.code }, METRIC_NAMES.providerFailures, MetricUnit.Count, 1);
}

/** How a job's attempt ended. */
export function countJobOutcome(fn: JobFunction, outcome: JobOutcomeKind): void {
  record(onFunction(fn), JOB_OUTCOME_METRICS[outcome], MetricUnit.Count, 1);
}

/** What a sweep found: how long the oldest due job has waited past its due time, 0 when none is due. */
export function recordOldestDueJobAge(fn: JobFunction, seconds: number): void {
  record(onFunction(fn), METRIC_NAMES.oldestDueJobAge, MetricUnit.Seconds, seconds);
}

/** The problems an integrity audit run found, once it finishes: 0 for a clean archive. */
export function recordArchiveProblems(problems: number): void {
  record(onFunction(ARCHIVE_AUDIT_FUNCTION), METRIC_NAMES.archiveProblems, MetricUnit.Count, problems);
}
