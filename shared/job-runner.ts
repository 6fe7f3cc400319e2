import { JobInProgressError, RecordedError, toErrorResponse } from '#shared/errors';
import { isLeaseLive, JobConflictError, type Held, type JobFunction, type JobRecord, type JobState, type JobStore } from '#shared/jobs';
import { logger } from '#shared/logger';
import type { HttpReply } from '#shared/middleware';
import { backoffSeconds, retryVerdict, type RetryPolicy } from '#shared/retry-policy';
import type { SweptState } from '#shared/sweep';
import { parseRequest } from '#shared/validation';
import type * as z from '#shared/zod';

/**
 * Runs one provider call as a recorded job (retry and erp-update; the download keeps its own record, work.ts):
 *  1. Claim the job's record: created if absent, or replaced at the version read, with a lease. A job that another
 *     invocation holds is not run twice at once.
 *  2. Make the call.
 *  3. Record how it ended: done (kept a day), pending with the next attempt after an exponential backoff, or
 *     failed when trying again cannot help or the attempts are used up.
 * The same path serves the API, scheduled batches and sweeps, so every unfinished job is kept the same way.
 */

export interface JobRunnerSettings {
  store: JobStore;
  fn: JobFunction;
  leaseSeconds: number;
  policy: RetryPolicy;
}

export interface JobRun {
  key: string;
  /** The validated request, as the API takes it; it replaces the one recorded (the latest request wins). */
  request: unknown;
  /** The record a sweep read: claimed at exactly this version, so two sweeps never take the same job. */
  held?: Held<JobRecord>;
  /** The scheduled run this attempt belongs to: a run retried by AWS answers from the record instead of calling. */
  runId?: string;
}

export type JobRunOutcome =
  | { state: 'done'; reply: HttpReply }
  | { state: 'pending' | 'failed'; error: unknown }
  /** Someone else holds the job. */
  | { state: 'busy'; error: JobInProgressError };

export function jobRunner(settings: JobRunnerSettings) {
  const { store, fn, leaseSeconds, policy } = settings;

  return async function run(job: JobRun, call: () => Promise<HttpReply>): Promise<JobRunOutcome> {
    const current = job.held ?? (await store.get(fn, job.key));
    if (current && job.runId !== undefined && current.value.lastRunId === job.runId && current.value.state !== 'running') {
      return replay(current.value);
    }
    if (current && isLeaseLive(current.value)) return busy(current.value);

    const now = new Date();
    // A job that ended (done or failed) and is asked for again starts over; an unfinished one goes on counting.
    const unfinished = current !== undefined && (current.value.state === 'pending' || current.value.state === 'running');
    const claimedValue: JobRecord = {
      ...current?.value,
      fn,
      key: job.key,
      request: job.request,
      state: 'running',
      attempts: unfinished ? current.value.attempts + 1 : 1,
      leaseUntil: new Date(now.getTime() + leaseSeconds * 1000).toISOString(),
      nextAttemptAt: undefined,
      lastError: unfinished ? current.value.lastError : undefined,
      createdAt: unfinished ? current.value.createdAt : now.toISOString(),
      updatedAt: now.toISOString(),
    };
    let claimed: Held<JobRecord> | undefined;
    try {
      claimed = current ? await store.replace(current, claimedValue) : await store.create(claimedValue);
    } catch (error) {
      if (!(error instanceof JobConflictError)) throw error;
    }
    if (!claimed) return busy(claimedValue);

    try {
      const reply = await call();
      await settle(claimed, { state: 'done', result: { statusCode: reply.statusCode, body: reply.body }, lastError: undefined });
      return { state: 'done', reply };
    } catch (error) {
      const { retryable, retryAfterSeconds } = retryVerdict(error);
      const { statusCode, body, headers } = toErrorResponse(error);
      const gaveUp = retryable && claimed.value.attempts >= policy.maxAttempts;
      const state: JobState = retryable && !gaveUp ? 'pending' : 'failed';
      const delay = backoffSeconds(claimed.value.attempts, policy, retryAfterSeconds);
      // One clock reading: the next attempt is exactly `delay` after the record's update, never a millisecond less.
      const settledAt = new Date();
      await settle(
        claimed,
        {
          state,
          result: undefined,
          lastError: { ...body.error, statusCode, retryAfter: headers?.['retry-after'] },
          nextAttemptAt: state === 'pending' ? new Date(settledAt.getTime() + delay * 1000).toISOString() : undefined,
        },
        settledAt,
      );
      if (gaveUp) logger.warn('job given up', { fn, key: job.key, attempts: claimed.value.attempts });
      return { state: state as 'pending' | 'failed', error };
    }

    /** Writes the outcome over the claimed record. If that fails, the lease lapses and a sweep takes the job again. */
    async function settle(held: Held<JobRecord>, change: Partial<JobRecord>, at = new Date()) {
      try {
        await store.replace(held, {
          ...held.value,
          ...change,
          leaseUntil: undefined,
          lastRunId: job.runId ?? held.value.lastRunId,
          updatedAt: at.toISOString(),
        });
      } catch (error) {
        logger.warn('job outcome not recorded; a sweep will take the job again', { fn, key: job.key, error });
      }
    }
  };

  function busy(record: JobRecord): JobRunOutcome {
    const seconds = record.leaseUntil ? Math.max(1, Math.ceil((Date.parse(record.leaseUntil) - Date.now()) / 1000)) : leaseSeconds;
    return { state: 'busy', error: new JobInProgressError(`Another request is working on ${fn} job ${record.key}; ask again later`, seconds) };
  }
}

/**
 * Keeps a job that a scheduled batch had no time to start: recorded pending and due now, so the next sweep does
 * it. A job someone is working on is left to them; one that ended is started over with this request.
 */
export async function deferJob(store: JobStore, fn: JobFunction, key: string, request: unknown): Promise<void> {
  const current = await store.get(fn, key);
  if (current && current.value.state === 'running') return;
  const now = new Date().toISOString();
  const unfinished = current?.value.state === 'pending';
  const value: JobRecord = {
    ...current?.value,
    fn,
    key,
    request,
    state: 'pending',
    attempts: unfinished ? current.value.attempts : 0,
    nextAttemptAt: now,
    lastError: { code: 'NOT_STARTED', message: 'the scheduled batch ran out of time before this job', statusCode: 202 },
    createdAt: unfinished ? current.value.createdAt : now,
    updatedAt: now,
  };
  try {
    await (current ? store.replace(current, value) : store.create(value));
  } catch (error) {
    if (!(error instanceof JobConflictError)) throw error; // someone else took it meanwhile: theirs
  }
}

/** The answer a finished job gave, given again (a scheduled run that AWS delivered twice). */
function replay(record: JobRecord): JobRunOutcome {
  if (record.state === 'done' && record.result) return { state: 'done', reply: record.result };
  const { statusCode = 500, retryAfter, ...error } = record.lastError ?? { code: 'INTERNAL', message: 'the job did not finish' };
  const recorded = new RecordedError({
    statusCode,
    body: { error },
    headers: retryAfter ? { 'retry-after': retryAfter } : undefined,
  });
  return { state: record.state === 'failed' ? 'failed' : 'pending', error: recorded };
}

/**
 * A function's one provider call as recorded jobs, by the three ways it is asked: the API and scheduled batches
 * (`answer`), the sweep (`resume`), and a batch without the time to start a job (`defer`). A request is validated
 * first: a bad one never reaches the provider and leaves no record.
 */
export function recordedJobs<S extends z.ZodMiniType>(
  settings: JobRunnerSettings,
  spec: { schema: S; keyOf: (request: z.output<S>) => string; call: (request: z.output<S>) => Promise<HttpReply> },
) {
  const run = jobRunner(settings);
  return {
    /** `runId` identifies a scheduled batch's run and the job's place in it. */
    async answer(input: unknown, runId?: string): Promise<HttpReply> {
      const request = parseRequest(spec.schema, input);
      return replyOf(await run({ key: spec.keyOf(request), request, runId }, () => spec.call(request)));
    },
    async resume(held: Held<JobRecord>): Promise<SweptState> {
      const outcome = await run({ key: held.value.key, request: held.value.request, held }, () =>
        spec.call(parseRequest(spec.schema, held.value.request)),
      );
      return outcome.state === 'busy' ? 'skipped' : outcome.state;
    },
    async defer(input: unknown): Promise<void> {
      const request = parseRequest(spec.schema, input);
      await deferJob(settings.store, settings.fn, spec.keyOf(request), request);
    },
  };
}

/** The API's view of an outcome: the reply when the job is done, its error otherwise. */
export function replyOf(outcome: JobRunOutcome): HttpReply {
  if (outcome.state === 'done') return outcome.reply;
  throw outcome.error;
}
