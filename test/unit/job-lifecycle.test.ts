import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  GaveUpError,
  JobInProgressError,
  RecordedError,
  TimeBudgetExhausted,
  toErrorResponse,
  UpstreamRateLimitedError,
  UpstreamRejectedError,
  UpstreamUnavailableError,
  ValidationError,
} from '#shared/errors';
import { logger } from '#shared/logger';
import { jobLifecycle } from '#shared/job-lifecycle';
import { JobStore, type Held, type JobRecord } from '#shared/jobs';
import { replyOf } from '#shared/outcomes';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb.ts';

/**
 * The job lifecycle against the real JobStore on an in-memory dynalite, a fresh one for each test: the conditional
 * writes, the byQueue index and the lease are DynamoDB's, not a mock's.
 */

const policy = { maxAttempts: 3, backoffBaseSeconds: 10, backoffMaxSeconds: 300 };
const leaseSeconds = 60;

let dynamo: LocalDynamo;
let client: DynamoDBClient;
let store: JobStore;

beforeEach(async () => {
  dynamo = await startLocalDynamo({ tables: ['jobs'] });
  client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'cn-north-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  store = new JobStore(client, 'jobs');
});
afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  client.destroy();
  await dynamo.close();
});

/** The lifecycle of retry jobs, run the way a request (or, given `held`, a sweep) runs a job with `call` as its attempt. */
const run =
  (waitMs = 0) =>
  (job: { key: string; request: unknown; held?: Held<JobRecord>; runId?: string }, call: () => Promise<unknown>) =>
    jobLifecycle({ store, leaseSeconds, policy, waitMs }, { fn: 'retry', keyOf: () => job.key, attempt: call }).run(job.request, {
      deadline: Date.now() + 10_000,
      mode: job.held ? 'sweep' : 'request',
      held: job.held,
      runId: job.runId,
    });
const request = { taxNum: '91310117568051222X', orderNo: '20240122150518179381' };
const succeeds = () => Promise.resolve({ orderNo: request.orderNo, status: 'retrying' });
const unreachable = () => Promise.reject(new UpstreamUnavailableError('fw199', 'fw199 answered HTTP 500'));
const rejected = () => Promise.reject(new UpstreamRejectedError('fw199', 9001, '需登录'));

/** A record as another invocation left it. */
function recordOf(key: string, change: Partial<JobRecord>): JobRecord {
  const now = new Date().toISOString();
  return { fn: 'retry', key, request, state: 'pending', attempts: 1, createdAt: now, updatedAt: now, ...change };
}

describe('running a provider call as a recorded job', () => {
  it('records a successful call as done with its answer, and no lease', async () => {
    // Act
    const outcome = await run()({ key: 'T/1', request }, succeeds);
    // Assess
    expect(outcome).toEqual({ kind: 'done', result: { orderNo: request.orderNo, status: 'retrying' }, replayed: false });
    const held = await store.get('retry', 'T/1');
    expect(held?.version).toBe(2);
    expect(held?.value).toMatchObject({ state: 'done', attempts: 1, request, result: { orderNo: request.orderNo, status: 'retrying' } });
    expect(held?.value.leaseUntil).toBeUndefined();
    expect(held?.value.lastError).toBeUndefined();
  });

  it('records an unreachable provider as pending, with the error and the next attempt after the backoff', async () => {
    // Act
    const before = Date.now();
    const outcome = await run()({ key: 'T/1', request }, unreachable);
    const after = Date.now();
    // Assess
    expect(outcome.kind).toBe('pending');
    expect(outcome.kind === 'pending' && outcome.reason).toBeInstanceOf(UpstreamUnavailableError);
    const record = (await store.get('retry', 'T/1'))!.value;
    expect(record).toMatchObject({ state: 'pending', attempts: 1 });
    expect(record.lastError).toEqual({ code: 'UPSTREAM_UNAVAILABLE', message: 'fw199 answered HTTP 500', statusCode: 502 });
    expect(record.leaseUntil).toBeUndefined();
    // The first attempt's backoff is between half the base and the base.
    const nextAttemptAt = Date.parse(record.nextAttemptAt!);
    expect(nextAttemptAt).toBeGreaterThanOrEqual(before + 5_000);
    expect(nextAttemptAt).toBeLessThanOrEqual(after + 10_000);
  });

  it('records a rejection as failed, with no next attempt', async () => {
    // Act
    const outcome = await run()({ key: 'T/1', request }, rejected);
    // Assess
    expect(outcome.kind).toBe('failed');
    const record = (await store.get('retry', 'T/1'))!.value;
    expect(record).toMatchObject({ state: 'failed', attempts: 1 });
    expect(record.nextAttemptAt).toBeUndefined();
    expect(record.lastError).toEqual({
      code: 'UPSTREAM_REJECTED',
      message: 'fw199 rejected the request: 需登录',
      upstream: { provider: 'fw199', code: 9001, message: '需登录' },
      statusCode: 422,
    });
  });

  it('gives up a retryable job as failed once its attempts reach maxAttempts', async () => {
    // Prepare
    const runner = run();
    await runner({ key: 'T/1', request }, unreachable);
    await runner({ key: 'T/1', request }, unreachable);
    // Act
    const outcome = await runner({ key: 'T/1', request }, unreachable);
    // Assess
    expect(outcome.kind).toBe('failed');
    const record = (await store.get('retry', 'T/1'))!.value;
    expect(record).toMatchObject({ state: 'failed', attempts: 3 });
    expect(record.nextAttemptAt).toBeUndefined();
  });

  it('answers busy without calling when another invocation holds a live lease', async () => {
    // Prepare
    const running = recordOf('T/1', { state: 'running', leaseUntil: new Date(Date.now() + 30_000).toISOString() });
    await store.create(running);
    const call = vi.fn(succeeds);
    // Act
    const outcome = await run()({ key: 'T/1', request }, call);
    // Assess
    expect(call).not.toHaveBeenCalled();
    expect(outcome.kind).toBe('busy');
    const retryAfter = outcome.kind === 'busy' ? outcome.retryAfterSeconds : undefined;
    expect(retryAfter).toBeGreaterThanOrEqual(29);
    expect(retryAfter).toBeLessThanOrEqual(30);
    await expect(replyOf(outcome, { done: () => ({ statusCode: 200, body: {} }) })).rejects.toBeInstanceOf(JobInProgressError);
    expect(await store.get('retry', 'T/1')).toEqual({ value: running, version: 1 });
  });

  it('takes over a job whose lease lapsed', async () => {
    // Prepare
    await store.create(recordOf('T/1', { state: 'running', leaseUntil: new Date(Date.now() - 1_000).toISOString() }));
    const call = vi.fn(succeeds);
    // Act
    const outcome = await run()({ key: 'T/1', request }, call);
    // Assess
    expect(call).toHaveBeenCalledOnce();
    expect(outcome.kind).toBe('done');
    expect((await store.get('retry', 'T/1'))!.value).toMatchObject({ state: 'done', attempts: 2 });
  });

  it('answers busy without calling when the record a sweep read was replaced since', async () => {
    // Prepare
    await store.create(recordOf('T/1', { state: 'pending' }));
    const read = (await store.get('retry', 'T/1'))!;
    await store.replace(read, { ...read.value, request: { replacedBy: 'another sweep' } });
    const call = vi.fn(succeeds);
    // Act
    const outcome = await run()({ key: 'T/1', request, held: read }, call);
    // Assess
    expect(call).not.toHaveBeenCalled();
    expect(outcome.kind).toBe('busy');
    const held = (await store.get('retry', 'T/1'))!;
    expect(held.version).toBe(2);
    expect(held.value).toMatchObject({ state: 'pending', attempts: 1, request: { replacedBy: 'another sweep' } });
  });
});

describe('replaying a scheduled run that AWS delivered twice', () => {
  it('answers a finished run again from the record, without calling', async () => {
    // Prepare
    const runner = run();
    await runner({ key: 'T/1', request, runId: 'run-1' }, succeeds);
    const call = vi.fn(succeeds);
    // Act
    const outcome = await runner({ key: 'T/1', request, runId: 'run-1' }, call);
    // Assess
    expect(call).not.toHaveBeenCalled();
    expect(outcome).toEqual({ kind: 'done', result: { orderNo: request.orderNo, status: 'retrying' }, replayed: true });
    expect((await store.get('retry', 'T/1'))!.version).toBe(2);
  });

  it('gives a failed run its recorded error again, without calling', async () => {
    // Prepare
    const runner = run();
    await runner({ key: 'T/1', request, runId: 'run-1' }, rejected);
    const call = vi.fn(succeeds);
    // Act
    const outcome = await runner({ key: 'T/1', request, runId: 'run-1' }, call);
    // Assess
    expect(call).not.toHaveBeenCalled();
    expect(outcome.kind).toBe('failed');
    await expect(replyOf(outcome, { done: () => ({ statusCode: 200, body: {} }) })).rejects.toThrow(RecordedError);
    const error = outcome.kind === 'failed' ? outcome.reason : undefined;
    expect(error).toBeInstanceOf(RecordedError);
    expect(toErrorResponse(error)).toEqual(toErrorResponse(new UpstreamRejectedError('fw199', 9001, '需登录')));
  });

  it("gives a rate-limited run its recorded error again with the provider's Retry-After", async () => {
    // Prepare
    const runner = run();
    await runner({ key: 'T/1', request, runId: 'run-1' }, () => Promise.reject(new UpstreamRateLimitedError('fw199', 429, '调用过于频繁', 30)));
    const call = vi.fn(succeeds);
    // Act
    const outcome = await runner({ key: 'T/1', request, runId: 'run-1' }, call);
    // Assess
    expect(call).not.toHaveBeenCalled();
    expect(outcome.kind).toBe('pending');
    const response = toErrorResponse(outcome.kind === 'pending' ? outcome.reason : undefined);
    expect(response.statusCode).toBe(422);
    expect(response.body.error.code).toBe('UPSTREAM_RATE_LIMITED');
    expect(response.headers).toEqual({ 'retry-after': '30' });
  });

  it('calls again for a run other than the one that finished the job, counting its attempts anew', async () => {
    // Prepare
    const runner = run();
    await runner({ key: 'T/1', request, runId: 'run-1' }, rejected);
    const call = vi.fn(succeeds);
    // Act
    const outcome = await runner({ key: 'T/1', request, runId: 'run-2' }, call);
    // Assess
    expect(call).toHaveBeenCalledOnce();
    expect(outcome.kind).toBe('done');
    const record = (await store.get('retry', 'T/1'))!.value;
    expect(record).toMatchObject({ state: 'done', attempts: 1, lastRunId: 'run-2' });
    expect(record.lastError).toBeUndefined();
  });
});

describe('the queues the sweeps read', () => {
  it('lists a pending job as open and a failed one as failed, and a done one in neither', async () => {
    // Prepare
    const runner = run();
    await runner({ key: 'T/pending', request }, unreachable);
    await runner({ key: 'T/failed', request }, rejected);
    await runner({ key: 'T/done', request }, succeeds);
    // Act
    const open = await store.list('retry', 'open', { limit: 10 });
    const failed = await store.list('retry', 'failed', { limit: 10 });
    // Assess
    expect(open.jobs.map((job) => job.value.key)).toEqual(['T/pending']);
    expect(failed.jobs.map((job) => job.value.key)).toEqual(['T/failed']);
    expect(open.cursor).toBeUndefined();
  });
});

describe('the counter with a ceiling', () => {
  it('allows exactly `ceiling` increments among 20 concurrent callers', async () => {
    // Prepare
    const expiresAt = new Date(Date.now() + 86_400_000);
    // Act
    const counted = await Promise.all(Array.from({ length: 20 }, () => store.countUpTo('retry', 'T/1#2026-11-22', 5, expiresAt)));
    // Assess
    expect(counted.filter(Boolean)).toHaveLength(5);
    expect(await store.countUpTo('retry', 'T/1#2026-11-22', 5, expiresAt)).toBe(false);
    expect(await store.countUpTo('retry', 'T/1#2026-11-23', 5, expiresAt)).toBe(true);
  });
});

describe('the short lock of a sweep', () => {
  it('lets one owner hold it, and the same owner take it again', async () => {
    expect(await store.lock('retry', 'sweep', 'owner-a', 60)).toBe(true);
    expect(await store.lock('retry', 'sweep', 'owner-b', 60)).toBe(false);
    expect(await store.lock('retry', 'sweep', 'owner-a', 60)).toBe(true);
  });

  it('refuses a second owner until the first unlocks it', async () => {
    // Prepare
    await store.lock('retry', 'sweep', 'owner-a', 60);
    // Act
    await store.unlock('retry', 'sweep', 'owner-b'); // not its lock: no effect
    const beforeUnlock = await store.lock('retry', 'sweep', 'owner-b', 60);
    await store.unlock('retry', 'sweep', 'owner-a');
    const afterUnlock = await store.lock('retry', 'sweep', 'owner-b', 60);
    // Assess
    expect(beforeUnlock).toBe(false);
    expect(afterUnlock).toBe(true);
    expect(await store.lock('retry', 'sweep', 'owner-a', 60)).toBe(false);
  });

  it('lets a second owner take it once it expired', async () => {
    // Prepare
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-11-22T08:00:00Z') });
    await store.lock('retry', 'sweep', 'owner-a', 60);
    vi.setSystemTime(new Date('2026-11-22T08:00:59Z'));
    expect(await store.lock('retry', 'sweep', 'owner-b', 60)).toBe(false);
    // Act
    vi.setSystemTime(new Date('2026-11-22T08:01:01Z'));
    const taken = await store.lock('retry', 'sweep', 'owner-b', 60);
    // Assess
    expect(taken).toBe(true);
  });

  it('keeps locks of different functions apart', async () => {
    expect(await store.lock('retry', 'sweep', 'owner-a', 60)).toBe(true);
    expect(await store.lock('download', 'sweep', 'owner-b', 60)).toBe(true);
  });
});

describe('a request that finds its job held by another invocation', () => {
  it('waits for the holder and answers its result as a replay, without calling', async () => {
    // Prepare: a holder that finishes 300 ms from now
    const holder = run(3_000)({ key: 'T/1', request }, () => new Promise((resolve) => setTimeout(() => resolve({ orderNo: request.orderNo, status: 'retrying' }), 300)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const call = vi.fn(succeeds);
    // Act
    const waiter = await run(3_000)({ key: 'T/1', request }, call);
    // Assess
    expect(call).not.toHaveBeenCalled();
    expect(waiter).toEqual({ kind: 'done', result: { orderNo: request.orderNo, status: 'retrying' }, replayed: true });
    expect(await holder).toMatchObject({ kind: 'done', replayed: false });
  });

  it('gives up waiting after a few reads, answering busy with the time the holder may still need, not the lease', async () => {
    // Prepare: a holder whose own deadline is 10 s away, under a 60 s lease
    const now = Date.now();
    await store.create(
      recordOf('T/1', { state: 'running', leaseUntil: new Date(now + 60_000).toISOString(), workUntil: new Date(now + 10_000).toISOString() }),
    );
    const reads = vi.spyOn(store, 'get');
    // Act
    const started = Date.now();
    const outcome = await run(3_000)({ key: 'T/1', request }, succeeds);
    const waited = Date.now() - started;
    // Assess: at most the wait, a bounded number of reads, and Retry-After what is left of the holder's 10 s
    expect(waited).toBeLessThan(3_500);
    expect(reads.mock.calls.length).toBeLessThanOrEqual(7);
    expect(outcome.kind).toBe('busy');
    const retryAfter = outcome.kind === 'busy' ? outcome.retryAfterSeconds : 0;
    expect(retryAfter).toBeGreaterThanOrEqual(6);
    expect(retryAfter).toBeLessThanOrEqual(10);
  });

  it("answers busy with the lease's remaining time when the holder is past its own deadline (it died)", async () => {
    // Prepare
    const now = Date.now();
    await store.create(
      recordOf('T/1', { state: 'running', leaseUntil: new Date(now + 20_000).toISOString(), workUntil: new Date(now - 1_000).toISOString() }),
    );
    // Act
    const outcome = await run(200)({ key: 'T/1', request }, succeeds);
    // Assess
    expect(outcome.kind === 'busy' && outcome.retryAfterSeconds).toBeGreaterThanOrEqual(19);
    expect(outcome.kind === 'busy' && outcome.retryAfterSeconds).toBeLessThanOrEqual(20);
  });
});

describe('a job that is given up', () => {
  it('is recorded failed with a failure status, never 202, when its last attempt ran out of time', async () => {
    // Prepare: the last attempt allowed (maxAttempts 3) runs out of time
    await store.create(recordOf('T/1', { state: 'pending', attempts: 2 }));
    // Act
    const outcome = await run()({ key: 'T/1', request }, () => Promise.reject(new TimeBudgetExhausted()));
    // Assess: the record and every answer about it say failed
    expect(outcome.kind).toBe('failed');
    const record = (await store.get('retry', 'T/1'))!.value;
    expect(record).toMatchObject({ state: 'failed', attempts: 3, lastError: { statusCode: 504, code: 'UPSTREAM_TIMEOUT' } });
    expect(record.nextAttemptAt).toBeUndefined();
    expect(toErrorResponse(outcome.kind === 'failed' ? outcome.reason : undefined).statusCode).toBe(504);
    expect(outcome.kind === 'failed' && outcome.reason).toBeInstanceOf(GaveUpError);
  });

  it('replays the failed record to a request that waited for it', async () => {
    // Prepare: a holder on its last attempt, running out of time 200 ms from now
    await store.create(recordOf('T/1', { state: 'pending', attempts: 2 }));
    const holder = run()({ key: 'T/1', request }, () => new Promise((_resolve, reject) => setTimeout(() => reject(new TimeBudgetExhausted()), 200)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Act
    const waiter = await run(3_000)({ key: 'T/1', request }, succeeds);
    // Assess
    await holder;
    expect(waiter.kind).toBe('failed');
    expect(toErrorResponse(waiter.kind === 'failed' ? waiter.reason : undefined)).toMatchObject({ statusCode: 504, body: { error: { code: 'UPSTREAM_TIMEOUT' } } });
  });
});

describe('a result found outside the record (the archive)', () => {
  it('is answered even when marking the claimed record done fails', async () => {
    // Prepare: the archive has the result; the write that releases the claim fails
    const lifecycle = jobLifecycle(
      { store, leaseSeconds, policy, waitMs: 0 },
      { fn: 'download', keyOf: () => 'T/1', attempt: vi.fn(async () => ({ stored: false })), find: async () => ({ stored: true }) },
    );
    vi.spyOn(store, 'replace').mockRejectedValueOnce(new Error('ProvisionedThroughputExceededException'));
    vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    // Act
    const outcome = await lifecycle.run(request, { deadline: Date.now() + 5_000, mode: 'request' });
    // Assess
    expect(outcome).toEqual({ kind: 'done', result: { stored: true }, replayed: true });
  });
});

describe('deferring the jobs of a batch', () => {
  it('records each job pending and due now, leaves a running one to its holder, and refuses an invalid one', async () => {
    // Prepare
    const lifecycle = jobLifecycle({ store, leaseSeconds, policy, waitMs: 0 }, { fn: 'retry', keyOf: (r: { key: string }) => r.key, attempt: succeeds });
    const parse = (input: unknown) => {
      if ((input as { key?: unknown }).key === undefined) throw new ValidationError([{ field: 'key', message: 'is required' }]);
      return input as { key: string };
    };
    const running = recordOf('T/running', { state: 'running', leaseUntil: new Date(Date.now() + 30_000).toISOString() });
    await store.create(running);
    const jobs = [...Array.from({ length: 40 }, (_, i) => ({ key: `T/${i}` })), { key: 'T/running' }, {}];
    // Act
    const reports = await lifecycle.defer(jobs, Date.now() + 10_000, parse);
    // Assess
    expect(reports.slice(0, 41).every((report) => report.deferred)).toBe(true);
    expect(reports[41]).toMatchObject({ deferred: false, error: expect.any(ValidationError) });
    const open = await store.list('retry', 'open', { limit: 100 });
    expect(open.jobs).toHaveLength(41);
    expect((await store.get('retry', 'T/running'))!.value).toEqual(running);
    expect((await store.get('retry', 'T/7'))!.value).toMatchObject({ state: 'pending', attempts: 0, lastError: { code: 'NOT_STARTED' } });
  });

  it('records none after its deadline, and says which', async () => {
    // Prepare
    const lifecycle = jobLifecycle({ store, leaseSeconds, policy, waitMs: 0 }, { fn: 'retry', keyOf: (r: { key: string }) => r.key, attempt: succeeds });
    // Act
    const reports = await lifecycle.defer([{ key: 'T/late' }], Date.now() - 1, (input) => input as { key: string });
    // Assess
    expect(reports).toEqual([{ deferred: false, error: expect.any(Error) }]);
    expect(await store.get('retry', 'T/late')).toBeUndefined();
  });
});

describe('what the review of the lifecycle found', () => {
  it('does not answer a newer request with an older one\'s result: it waits for the holder, then sends its own', async () => {
    // Prepare: an older request for the same job (another body) is under way
    const older = { ...request, note: 'older' };
    const holder = run(3_000)({ key: 'T/1', request: older }, () => new Promise((resolve) => setTimeout(() => resolve({ from: 'older' }), 200)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const call = vi.fn(async () => ({ from: 'newer' }));
    // Act
    const newer = await run(3_000)({ key: 'T/1', request }, call);
    // Assess
    await holder;
    expect(call).toHaveBeenCalledOnce();
    expect(newer).toEqual({ kind: 'done', result: { from: 'newer' }, replayed: false });
    expect((await store.get('retry', 'T/1'))!.value).toMatchObject({ state: 'done', request, result: { from: 'newer' } });
  });

  it('does not replay a job a batch only deferred, however recent: it attempts it', async () => {
    // Prepare: a deferral written (by the clock's reading) after this request begins
    const later = new Date(Date.now() + 1_000).toISOString();
    await store.create(recordOf('T/1', { state: 'pending', attempts: 0, updatedAt: later, lastError: { code: 'NOT_STARTED', message: 'deferred', statusCode: 202 } }));
    const call = vi.fn(succeeds);
    // Act
    const outcome = await run(500)({ key: 'T/1', request }, call);
    // Assess
    expect(call).toHaveBeenCalledOnce();
    expect(outcome.kind).toBe('done');
  });

  it('gives its claim back, due at once, when the archive cannot be read beside it, and leaves no lease', async () => {
    // Prepare
    const lifecycle = jobLifecycle(
      { store, leaseSeconds, policy, waitMs: 0 },
      {
        fn: 'download',
        keyOf: () => 'T/1',
        attempt: vi.fn(async () => ({ stored: false })),
        find: async () => {
          throw new Error('SlowDown');
        },
      },
    );
    // Act
    const outcome = lifecycle.run(request, { deadline: Date.now() + 5_000, mode: 'request' });
    // Assess
    await expect(outcome).rejects.toThrow('SlowDown');
    const record = (await store.get('download', 'T/1'))!.value;
    expect(record).toMatchObject({ state: 'pending', lastError: { statusCode: 500 } });
    expect(record.leaseUntil).toBeUndefined();
    expect(Date.parse(record.nextAttemptAt!)).toBeLessThanOrEqual(Date.now());
  });

  it('reads the archive again after taking over a done record, and answers from it without a new attempt', async () => {
    // Prepare: a done record, whose result the archive holds only from the second read on (its write was in flight)
    await store.create(recordOf('T/1', { state: 'done' }));
    const reads = [undefined, { stored: true }];
    const attempt = vi.fn(async () => ({ stored: false }));
    const lifecycle = jobLifecycle({ store, leaseSeconds, policy, waitMs: 0 }, { fn: 'retry', keyOf: () => 'T/1', attempt, find: async () => reads.shift() });
    // Act
    const outcome = await lifecycle.run(request, { deadline: Date.now() + 5_000, mode: 'request' });
    // Assess
    expect(attempt).not.toHaveBeenCalled();
    expect(outcome).toEqual({ kind: 'done', result: { stored: true }, replayed: true });
  });
});
