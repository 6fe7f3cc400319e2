import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  UpstreamRateLimitedError,
  UpstreamRejectedError,
  UpstreamTemporaryError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
  ValidationError,
} from '#shared/errors';
import { jobLifecycle } from '#shared/job-lifecycle';
import { JobStore, type JobFunction, type JobRecord } from '#shared/jobs';
import { countErpUpdateSent, countMirroredInvoice, publishMetrics, recordArchiveProblems } from '#shared/metrics';
import { actionHandler, batchHandler, httpHandler } from '#shared/middleware';
import { sweep, type SweepReport } from '#shared/sweep';
import { lambdaContext } from '../../local/api-gateway.ts';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb.ts';
import { publishedMetrics, type PublishedMetric } from '../helpers/emf.ts';

/**
 * The metrics as CloudWatch would read them: the EMF documents Powertools Metrics writes to stdout, captured here,
 * with their names, units, values and dimensions. The job lifecycle and the sweep run against the real JobStore on
 * dynalite.
 */

// The tests' default is off (vitest.config.ts); this file reads them. No stack here: local mode's namespace.
vi.hoisted(() => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
  delete process.env.POWERTOOLS_METRICS_NAMESPACE;
});
const NAMESPACE = 'EinvoiceBridge/local';

let written: string[];
beforeEach(() => {
  written = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const published = (): PublishedMetric[] => publishedMetrics(written);
const metric = (name: string, unit: string, dimensions: Record<string, string>, value: number | number[]): PublishedMetric => ({
  namespace: NAMESPACE,
  name,
  unit,
  dimensions,
  value,
});

/** A request to the API (a new one each time: the middleware reads its body in place). */
const event = () =>
  ({
  version: '2.0',
  routeKey: 'POST /erp-update',
  rawPath: '/erp-update',
  rawQueryString: '',
  headers: { 'content-type': 'application/json' },
  body: '{}',
  isBase64Encoded: false,
  requestContext: { requestId: 'request-1', http: { method: 'POST', path: '/erp-update' } },
  }) as unknown as APIGatewayProxyEventV2;

describe('an invocation', () => {
  it("publishes its metrics once, when it ends: one EMF document per dimension set, each metric's values together", async () => {
    // Prepare
    let writtenDuring: PublishedMetric[] = [];
    const handler = httpHandler(async () => {
      countErpUpdateSent();
      countErpUpdateSent();
      countMirroredInvoice(2_048);
      writtenDuring = published();
      return { statusCode: 200, body: {} };
    });
    // Act
    await handler(event(), lambdaContext('erp-update'));
    const first = published();
    written.length = 0;
    await handler(event(), lambdaContext('erp-update'));
    // Assess
    expect(writtenDuring).toEqual([]);
    expect(first).toEqual([
      metric('ErpUpdatesSent', 'Count', { function: 'erp-update' }, [1, 1]),
      metric('InvoicesMirrored', 'Count', { function: 'download' }, 1),
      metric('BytesMirrored', 'Bytes', { function: 'download' }, 2_048),
    ]);
    // The next invocation publishes its own, nothing carried over
    expect(published()).toEqual(first);
  });

  it('publishes what it recorded when it fails, and answers as it would without metrics', async () => {
    // Act
    const result = await httpHandler(async () => {
      countErpUpdateSent();
      throw new UpstreamUnavailableError('wdt', 'wdt answered HTTP 502');
    })(event(), lambdaContext('erp-update'));
    // Assess
    expect(result).toMatchObject({ statusCode: 502 });
    expect(published()).toEqual([metric('ErpUpdatesSent', 'Count', { function: 'erp-update' }, 1)]);
  });

  it('drops a value CloudWatch cannot take (NaN), never the request nor the other metrics of its document', async () => {
    // Act
    const result = await httpHandler(async () => {
      countMirroredInvoice(Number.NaN);
      return { statusCode: 200, body: { ok: true } };
    })(event(), lambdaContext('download'));
    // Assess
    expect(result).toMatchObject({ statusCode: 200, body: '{"ok":true}' });
    expect(published()).toEqual([metric('InvoicesMirrored', 'Count', { function: 'download' }, 1)]);
  });

  it('is not failed by publishing that throws, and what could not be published is not carried into the next one', async () => {
    // Prepare
    const batch = (record: boolean) =>
      batchHandler(
        async () => {
          if (record) countErpUpdateSent();
          return { statusCode: 200, body: {} };
        },
        { jobTimeoutMs: 1_000, callsPerMinute: 6_000, defer: async () => [] },
      )({ jobs: [{}] }, lambdaContext('erp-update', 30_000));
    const publishing = vi.spyOn(Metrics.prototype, 'publishStoredMetrics').mockImplementation(() => {
      throw new Error('stdout is gone');
    });
    // Act
    const failedToPublish = await batch(true);
    const publishAttempts = publishing.mock.calls.length;
    publishing.mockRestore();
    await batch(false);
    // Assess
    expect(failedToPublish).toMatchObject({ received: 1, succeeded: 1 });
    expect(publishAttempts).toBe(1);
    expect(published()).toEqual([]);
  });

  it('publishes the archive problems an audit found, for the stack to graph and alarm on', async () => {
    // Act
    await actionHandler(async () => recordArchiveProblems(3))({ action: 'audit' }, lambdaContext('download'));
    // Assess
    expect(published()).toEqual([metric('ArchiveProblems', 'Count', { function: 'download' }, 3)]);
  });
});

describe('with the jobs table', () => {
  let dynamo: LocalDynamo;
  let client: DynamoDBClient;
  let store: JobStore;

  beforeEach(async () => {
    dynamo = await startLocalDynamo({ tables: ['jobs'] });
    client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'cn-north-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    store = new JobStore(client, 'jobs');
  });
  afterEach(async () => {
    client.destroy();
    await dynamo.close();
  });

  describe("a job's attempt", () => {
    const policy = { maxAttempts: 3, backoffBaseSeconds: 10, backoffMaxSeconds: 300 };
    const attempt = (fn: JobFunction, key: string, call: () => Promise<unknown>) =>
      jobLifecycle({ store, leaseSeconds: 60, policy, waitMs: 0 }, { fn, keyOf: () => key, attempt: call }).run(
        { key },
        { deadline: Date.now() + 10_000, mode: 'request' },
      );

    it('is counted by how it ended, per function', async () => {
      // Act
      await attempt('retry', 'done-1', async () => ({ ok: true }));
      await attempt('retry', 'done-2', async () => ({ ok: true }));
      await attempt('erp-update', 'pending', () => Promise.reject(new UpstreamUnavailableError('wdt', 'wdt answered HTTP 502')));
      await attempt('download', 'failed', () => Promise.reject(new UpstreamRejectedError('jumdata', 603, '余额不足请充值')));
      // A second request for a done job is answered from its record: no attempt, nothing counted
      await attempt('retry', 'done-1', async () => ({ ok: true }));
      publishMetrics();
      // Assess
      const jobs = published().filter((m) => m.name.startsWith('Jobs'));
      expect(jobs).toEqual(
        expect.arrayContaining([
          metric('JobsDone', 'Count', { function: 'retry' }, [1, 1, 1]),
          metric('JobsPending', 'Count', { function: 'erp-update' }, 1),
          metric('JobsFailed', 'Count', { function: 'download' }, 1),
        ]),
      );
      expect(jobs).toHaveLength(3);
    });

    it.each([
      ['unreachable', new UpstreamUnavailableError('fw199', 'fw199 answered HTTP 500'), 'fw199', 'UPSTREAM_UNAVAILABLE'],
      ['asking to be tried later', new UpstreamTemporaryError('jumdata', 399, '税局异常', 60), 'jumdata', 'UPSTREAM_TEMPORARILY_UNAVAILABLE'],
      ['too slow', new UpstreamTimeoutError('wdt', 10_000), 'wdt', 'UPSTREAM_TIMEOUT'],
    ])('that met its provider %s counts a provider failure by provider and code', async (_case, error, provider, code) => {
      // Act
      await attempt('retry', 'job', () => Promise.reject(error));
      publishMetrics();
      // Assess
      expect(published().filter((m) => m.name === 'ProviderFailures')).toEqual([metric('ProviderFailures', 'Count', { provider, code }, 1)]);
    });

    it.each([
      ['refused by the provider', new UpstreamRejectedError('fw199', 9001, '需登录')],
      ['rate-limited by the provider', new UpstreamRateLimitedError('wdt', 10, 'too often', 60)],
      ['a bad request', new ValidationError([{ field: 'invoiceNo', message: 'is required' }])],
    ])('%s is no provider failure', async (_case, error) => {
      // Act
      await attempt('retry', 'job', () => Promise.reject(error));
      publishMetrics();
      // Assess
      expect(published().map((m) => m.name)).not.toContain('ProviderFailures');
    });
  });

  describe('a sweep', () => {
    const settings = { batchSize: 2, concurrency: 1, callsPerMinute: 6_000 };
    const sweepOf = (fn: JobFunction) =>
      actionHandler((_event, context) => sweep({ store, fn, settings, jobTimeoutMs: 1_000, processJob: async () => 'done' }, context));
    const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();
    const seed = (fn: JobFunction, key: string, change: Partial<JobRecord>) =>
      store.create({ fn, key, request: {}, state: 'pending', attempts: 1, createdAt: minutesAgo(180), updatedAt: minutesAgo(180), ...change });
    const oldestDueAges = () => published().filter((m) => m.name === 'OldestDueJobAge');

    it('publishes 0 as the oldest due age when nothing is due, jobs due later not counting', async () => {
      // Prepare
      await seed('erp-update', 'later', { nextAttemptAt: new Date(Date.now() + 3_600_000).toISOString() });
      // Act
      const report = (await sweepOf('erp-update')({ action: 'sweep' }, lambdaContext('erp-update', 30_000))) as SweepReport;
      // Assess
      expect(report).toMatchObject({ processed: 0, oldestDueSeconds: 0 });
      expect(oldestDueAges()).toEqual([metric('OldestDueJobAge', 'Seconds', { function: 'erp-update' }, 0)]);
    });

    it('publishes how long the oldest due job has waited past its due time, beyond the first page, a lapsed lease counting from its end', async () => {
      // Prepare: more due jobs than a page; the oldest is a running job whose invocation died 2 hours ago
      await seed('download', 'due-10-min', { nextAttemptAt: minutesAgo(10) });
      await seed('download', 'due-30-min', { nextAttemptAt: minutesAgo(30) });
      await seed('download', 'lease-lapsed-2-h', { state: 'running', leaseUntil: minutesAgo(120) });
      await seed('retry', 'other-function', { nextAttemptAt: minutesAgo(600) });
      // Act
      const before = Date.now();
      const report = (await sweepOf('download')({ action: 'sweep' }, lambdaContext('download', 30_000))) as SweepReport;
      // Assess
      expect(report).toMatchObject({ processed: 3, done: 3 });
      const [age] = oldestDueAges();
      expect(oldestDueAges()).toHaveLength(1);
      expect(age).toMatchObject({ namespace: NAMESPACE, unit: 'Seconds', dimensions: { function: 'download' } });
      expect(age!.value).toBe(report.oldestDueSeconds);
      expect(age!.value).toBeGreaterThanOrEqual(7_200);
      expect(age!.value).toBeLessThanOrEqual(7_200 + Math.ceil((Date.now() - before) / 1000));
    });

    it('publishes nothing when another sweep of the function holds the lock: that one publishes', async () => {
      // Prepare
      await store.lock('retry', 'sweep', 'another-sweep', 60);
      // Act
      const report = (await sweepOf('retry')({ action: 'sweep' }, lambdaContext('retry', 30_000))) as SweepReport;
      // Assess
      expect(report.alreadyRunning).toBe(true);
      expect(oldestDueAges()).toEqual([]);
    });
  });
});
