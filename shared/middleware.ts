import middy, { type MiddlewareObj } from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { failingProviderOf, PROVIDER_FAILED, toErrorResponse } from '#shared/errors';
import { DEFER_CONCURRENCY, type DeferReport } from '#shared/job-lifecycle';
import { logger } from '#shared/logger';
import { publishMetricsMiddleware } from '#shared/metrics';
import { readJsonBody } from '#shared/request-body';
import { callLimiter } from '#shared/sweep';
import * as z from '#shared/zod';

/**
 * The middy stacks every function uses: one for API Gateway (HTTP API, payload v2) requests and one for scheduled
 * batches, and the entry point that tells the two apart.
 */

export interface HttpReply {
  statusCode: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** An API Gateway event once the body parser has turned the body into a value. */
export type ParsedHttpEvent = Omit<APIGatewayProxyEventV2, 'body'> & { body: unknown };

type HttpRequest = middy.Request<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, Context>;

/**
 * The time an API request may take, whatever the function's timeout: API Gateway gives up on an integration after
 * 29 s, and the function must answer first, with the error shape, rather than leave API Gateway's bare 503.
 */
export const API_BUDGET_MS = 25_000;

export function httpHandler(handle: (event: ParsedHttpEvent, context: Context) => Promise<HttpReply>) {
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(publishMetricsMiddleware())
    .use(httpContract())
    .use(jsonRequestBody())
    .handler(async (event, context) => {
      const reply = await handle(event as unknown as ParsedHttpEvent, context);
      return reply as unknown as APIGatewayProxyStructuredResultV2;
    });
}

/**
 * Serialises replies as JSON, tags every answer with x-request-id, and turns any error into the one error shape
 * (docs/api.md, openapi.json's `Error`).
 */
function httpContract(): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> {
  const requestIdOf = (request: HttpRequest) => request.event.requestContext?.requestId ?? request.context.awsRequestId;
  const routeOf = (request: HttpRequest) => request.event.routeKey ?? request.event.rawPath;

  return {
    before: (request) => {
      logger.setCorrelationId(requestIdOf(request));
    },
    after: (request) => {
      const reply = request.response as unknown as HttpReply;
      request.response = toApiResult(reply, requestIdOf(request));
      logger.info('request answered', { route: routeOf(request), statusCode: reply.statusCode });
    },
    onError: (request) => {
      const { statusCode, body, headers } = toErrorResponse(request.error);
      const failure = { route: routeOf(request), statusCode, code: body.error.code, reason: body.error.message };
      const provider = failingProviderOf(request.error);
      // A 4xx is the caller's mistake and fully described by the answer; only a 5xx needs the error and its stack.
      // ERROR is for what a person must look at: a provider's outage is a WARN, counted apart.
      if (provider) logger.warn(PROVIDER_FAILED, { ...failure, provider });
      else if (statusCode >= 500) logger.error('request failed', { ...failure, error: request.error });
      else logger.info('request refused', failure);
      request.response = toApiResult({ statusCode, body, headers }, requestIdOf(request));
    },
  };
}

/** Turns the body of a request that carries one (GET and HEAD do not) into its JSON value: shared/request-body.ts. */
function jsonRequestBody(): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> {
  return {
    before: (request) => {
      const method = request.event.requestContext?.http?.method;
      if (method === 'GET' || method === 'HEAD') return;
      (request.event as unknown as ParsedHttpEvent).body = readJsonBody(request.event);
    },
  };
}

function toApiResult(reply: HttpReply, requestId: string): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: reply.statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8', 'x-request-id': requestId, ...reply.headers },
    body: JSON.stringify(reply.body),
  };
}

/** What a batch job produced: its HTTP-equivalent status and body, so a report reads like the API's answers. */
export interface JobReport {
  index: number;
  statusCode: number;
  body: unknown;
}

export interface BatchReport {
  received: number;
  succeeded: number;
  failed: number;
  /** Jobs not started because the invocation was about to run out of time. */
  skipped: number;
  results: JobReport[];
}

/** Time kept in hand after the last job a batch starts, so the report is still returned. */
const BATCH_SAFETY_MARGIN_MS = 2_000;

/**
 * `scheduledTime` is EventBridge Scheduler's <aws.scheduler.scheduled-time>: the same for every retry of a run.
 * Built at the first batch (z.lazy), not at import: an instance that answers only API requests never needs it.
 */
const batchEventSchema = z.lazy(() =>
  z.object({
    jobs: z.array(z.unknown()).check(z.maxLength(1_000)),
    scheduledTime: z.optional(z.string().check(z.minLength(1))),
  }),
);

export interface BatchOptions {
  /** The longest one job may take: no job is started with less time left than this and a margin. */
  jobTimeoutMs: number;
  /** Provider calls started per minute at most, as in the function's sweep. */
  callsPerMinute: number;
  /** Keeps the jobs the batch has no time to start pending for the sweep, by `deadline`; one report per job. */
  defer: (jobs: readonly unknown[], deadline: number) => Promise<DeferReport[]>;
}

/**
 * Time kept for deferring the jobs not started: conditional writes, DEFER_PARALLEL at a time, each round allowed
 * DEFER_ROUND_MS (a DynamoDB read and write take about 10 ms each; the rest is slack for a slow table).
 */
const DEFER_PARALLEL = DEFER_CONCURRENCY;
const DEFER_ROUND_MS = 100;
/** Kept after the last deferral, to return the report: deferring is what the time kept for it is for. */
const DEFER_MARGIN_MS = 500;
const deferReserveMs = (jobs: number) => Math.ceil(jobs / DEFER_PARALLEL) * DEFER_ROUND_MS;

/**
 * A scheduled batch `{"jobs": [...]}` whose jobs have the same bodies as the HTTP API. Jobs run one after another,
 * spaced as the sweep spaces its calls (providers limit call rates), and each gets its own report; a bad job never
 * stops the others. The invocation itself does not fail for a failed job: AWS would retry the whole batch. Jobs
 * the invocation has no time left for are kept pending, within the time kept for that, and the next sweep does them.
 */
export function batchHandler(
  handleJob: (job: unknown, context: Context, runId?: string) => Promise<HttpReply>,
  options: BatchOptions,
) {
  return middy<unknown, BatchReport>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(publishMetricsMiddleware())
    .handler(async (event, context) => {
      const parsed = batchEventSchema.safeParse(event);
      if (!parsed.success) {
        logger.error('scheduled event is not {"jobs": [...]}; nothing was done');
        return { received: 0, succeeded: 0, failed: 0, skipped: 0, results: [] };
      }
      const { jobs, scheduledTime } = parsed.data;
      const limiter = callLimiter({ concurrency: 1, callsPerMinute: options.callsPerMinute });
      const results: JobReport[] = [];
      const mayStart = (delayMs: number) =>
        context.getRemainingTimeInMillis() - delayMs >= options.jobTimeoutMs + BATCH_SAFETY_MARGIN_MS + deferReserveMs(jobs.length - results.length - 1);
      for (const [index, job] of jobs.entries()) {
        const slot = await limiter.slot(mayStart);
        if (!slot) break;
        // A job is identified within its run by its place in the batch.
        const runId = scheduledTime === undefined ? undefined : `${scheduledTime}#${index}`;
        results.push({ index, ...(await runJob(() => handleJob(job, context, runId)).finally(slot.release)) });
      }
      const succeeded = results.filter((r) => r.statusCode < 400).length;
      const failed = results.length - succeeded;
      results.push(...(await deferRest(jobs, results.length, options, Date.now() + context.getRemainingTimeInMillis() - DEFER_MARGIN_MS)));
      const report = { received: jobs.length, succeeded, failed, skipped: jobs.length - succeeded - failed, results };
      logger.info('batch finished', { ...report, results: undefined });
      return report;
    });
}

/** The jobs from `from` on, kept for the sweep; a job that could not be recorded is lost work, logged as an error. */
async function deferRest(jobs: readonly unknown[], from: number, options: BatchOptions, deadline: number): Promise<JobReport[]> {
  if (from >= jobs.length) return [];
  const reports = await options.defer(jobs.slice(from), deadline);
  return reports.map((report, i) => {
    if (report.deferred) {
      return { index: from + i, statusCode: 202, body: { status: 'deferred', message: 'kept pending: the next sweep does it' } };
    }
    const { statusCode, body } = toErrorResponse(report.error);
    if (statusCode >= 500) logger.error('job not kept for the sweep', { index: from + i, code: body.error.code, error: report.error });
    return { index: from + i, statusCode, body };
  });
}

async function runJob(handleJob: () => Promise<HttpReply>) {
  try {
    const { statusCode, body } = await handleJob();
    return { statusCode, body };
  } catch (error) {
    const { statusCode, body } = toErrorResponse(error);
    const failure = { statusCode, code: body.error.code, reason: body.error.message };
    const provider = failingProviderOf(error);
    if (provider) logger.warn(PROVIDER_FAILED, { ...failure, provider });
    else if (statusCode >= 500) logger.error('job failed', { ...failure, error });
    else logger.warn('job refused', failure);
    return { statusCode, body };
  }
}

/** A scheduled sweep of the function's unfinished jobs: `{"action": "sweep"}`. */
export function sweepHandler<R>(runSweep: (context: Context) => Promise<R>) {
  return actionHandler((_event, context) => runSweep(context));
}

/** An invocation `{"action": NAME, …}` (a sweep, a one-off run), with the function's logger context. */
export function actionHandler<R>(run: (event: Record<string, unknown>, context: Context) => Promise<R>) {
  return middy<unknown, R>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(publishMetricsMiddleware())
    .handler(async (event, context) => run(event as Record<string, unknown>, context));
}

type HttpEntry = ReturnType<typeof httpHandler>;
type BatchEntry = ReturnType<typeof batchHandler>;
type SweepEntry = (event: unknown, context: Context) => Promise<unknown>;

/**
 * The Lambda entry point: API Gateway requests go to the HTTP stack, `{"action": "sweep"}` to the sweep, another
 * action the function knows to its handler, anything else is a scheduled batch.
 */
export function lambdaEntry(http: HttpEntry, batch: BatchEntry, sweep: SweepEntry, actions: Record<string, SweepEntry> = {}) {
  return async (event: unknown, context: Context) => {
    if (isHttpEvent(event)) return http(event, context);
    const action = (event as { action?: unknown } | null)?.action;
    if (action === 'sweep') return sweep(event, context);
    if (typeof action === 'string' && Object.hasOwn(actions, action)) return actions[action]!(event, context);
    return batch(event, context);
  };
}

function isHttpEvent(event: unknown): event is APIGatewayProxyEventV2 {
  return typeof (event as APIGatewayProxyEventV2 | null)?.requestContext?.http?.method === 'string';
}
