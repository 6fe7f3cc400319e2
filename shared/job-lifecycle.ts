import { GaveUpError, lastErrorOf, recordedError, TimeBudgetExhausted, ValidationError } from '#shared/errors';
import { isLeaseLive, JobConflictError, type Held, type JobFunction, type JobRecord, type JobStore } from '#shared/jobs';
import { logger } from '#shared/logger';
import { countJobOutcome, countProviderFailure } from '#shared/metrics';
import { backoffSeconds, retryVerdict, type RetryPolicy } from '#shared/retry-policy';
import type { SweptState } from '#shared/sweep';

/**
 * The one lifecycle of every job (re-push, ERP update, download), and the only writer of job records:
 *  1. Claim the job's record with a lease (created if absent, taken over at the version read when nobody holds it),
 *     looking beside the claim for a result kept elsewhere (the download's archive).
 *  2. Run one attempt; it may keep state in the record between attempts (the download's paid-for Jumdata answer).
 *  3. Settle: done, pending (next attempt after the backoff) or failed, with the error's answer as `lastError`.
 * A request that finds the job held waits a little for the holder and answers the holder's outcome; a scheduled run
 * that AWS delivers twice answers from the record; a batch without time left defers its jobs to the sweep.
 * Outcomes are domain results: the edge (shared/outcomes.ts) turns them into HTTP.
 */

export type Outcome<R> =
  | { kind: 'done'; result: R; /** Answered from an earlier attempt (a record or the archive), not this one. */ replayed: boolean }
  | { kind: 'pending'; reason: unknown; notBefore?: Date }
  | { kind: 'failed'; reason: unknown }
  /** Another invocation still works on the job; it may need this long at most. */
  | { kind: 'busy'; retryAfterSeconds: number };

/** What an attempt knows of its job, and the one way it writes to the record. */
export interface Attempt<S> {
  attempts: number;
  /** The job was taken over from an invocation that died holding it (its lease lapsed): it may have left work behind. */
  afterDeadAttempt: boolean;
  /** What the record keeps now: earlier attempts' state, and what this one kept. */
  readonly kept: Partial<S>;
  keep(change: Partial<S>): Promise<void>;
  /** When the attempt must have ended (epoch ms). */
  deadline: number;
  mode: RunMode;
}

/** `request`: the API or a scheduled batch (it waits briefly for a holder); `sweep`: a sweep (it never waits). */
export type RunMode = 'request' | 'sweep';

export interface JobSpec<Q, R, S> {
  fn: JobFunction;
  keyOf(request: Q): string;
  attempt(request: Q, job: Attempt<S>): Promise<R>;
  /** A finished result kept outside the record, looked for beside the claim; such a result is not recorded. */
  find?(request: Q): Promise<R | undefined>;
  /**
   * The result's own last write (the download's invoice.json), made beside the record's done: the job is done once
   * both are; if it fails, the job is settled as that failure after all.
   */
  commit?(result: R): Promise<void>;
  /**
   * How long a done job's result is answered again to the same request, rather than the job started over (a ledger
   * written a minute ago); by default a job that ended and is asked for again starts over.
   */
  reuseDoneMs?: number;
  /** The latest a next attempt may be due, given what was kept (the download's paid links age out). */
  dueBy?(kept: Partial<S>): number | undefined;
  /**
   * The job keeps its progress as it goes (the audit): an attempt that only ran out of time is not counted against
   * maxAttempts, since the next one goes on from where it stopped, however many runs the whole takes.
   */
  resumable?: boolean;
}

export interface LifecycleSettings {
  store: JobStore;
  leaseSeconds: number;
  policy: RetryPolicy;
  /** How long a request waits for another invocation that holds its job (JOB_WAIT_MS). */
  waitMs: number;
}

export interface RunOptions {
  deadline: number;
  mode: RunMode;
  /** A scheduled batch's run and place in it: the same run delivered twice answers from the record. */
  runId?: string;
  /** The record a sweep read: claimed at exactly this version, so two sweeps never take the same job. */
  held?: Held<JobRecord>;
}

/** How many times a request reads a held record while it waits, at most. */
const WAIT_READS = 6;

export function jobLifecycle<Q, R, S extends object>(settings: LifecycleSettings, spec: JobSpec<Q, R, S>) {
  const { store } = settings;
  const { fn } = spec;

  async function run(request: Q, options: RunOptions): Promise<Outcome<R>> {
    const key = spec.keyOf(request);
    const startedAt = Date.now();
    const first = options.held ? await takeOverHeld(request, options) : await claimNew(request, key, options);
    if ('outcome' in first) return first.outcome;
    if ('claimed' in first) return attempt(request, first.claimed, options);
    // A record settled since this request began was settled by a concurrent claimant (a request, a batch or a
    // sweep): its outcome is ours too. The clocks are the Lambdas', kept within milliseconds of each other by AWS.
    const concurrent = first.record !== undefined && Date.parse(first.record.value.updatedAt) >= startedAt;
    const waitUntil = startedAt + (options.mode === 'sweep' ? 0 : settings.waitMs);
    return decide(request, key, first.record, options, { waitUntil, waited: concurrent });
  }

  type Step = { outcome: Outcome<R> } | { claimed: Claimed } | { record: Held<JobRecord> | undefined };

  /** The first look: the claim is the create itself, and the archive is read beside it. */
  async function claimNew(request: Q, key: string, options: RunOptions): Promise<Step> {
    const claim = store.create(claimValue(request, key, undefined, options));
    const opened = await openBeside(claim, request);
    if (opened) return opened;
    const created = await claim;
    if (created) return { claimed: { held: created, afterDeadAttempt: false } };
    return { record: await store.get(fn, key) };
  }

  /** A sweep's job: taken at the version the sweep read, unless the archive already has its result. */
  async function takeOverHeld(request: Q, options: RunOptions): Promise<Step> {
    const held = options.held!;
    if (isLeaseLive(held.value)) return { outcome: busy(held.value) };
    const claim = tryReplace(held, claimValue(request, held.value.key, held.value, options));
    const opened = await openBeside(claim, request);
    if (opened) return opened;
    const claimed = await claim;
    return claimed ? { claimed: { held: claimed, afterDeadAttempt: held.value.state === 'running' } } : { outcome: busy(held.value) };
  }

  /**
   * The archive read beside a claim: a result found is the answer, whatever became of the claim (released if it was
   * taken). A read that failed gives a taken claim back, due at once, so that no lease is left without a worker.
   */
  async function openBeside(claim: Promise<Held<JobRecord> | undefined>, request: Q): Promise<Step | undefined> {
    const [claimed, found] = await Promise.allSettled([claim, spec.find?.(request)]);
    const held = claimed.status === 'fulfilled' ? claimed.value : undefined;
    if (found.status === 'fulfilled' && found.value !== undefined) {
      if (held) await release(held);
      return { outcome: { kind: 'done', result: found.value, replayed: true } };
    }
    if (found.status === 'rejected') {
      if (held) await giveBack(held, found.reason);
      throw found.reason;
    }
    return undefined;
  }

  /**
   * What to do with a record someone else wrote: replay it (a scheduled run delivered twice, or the outcome of the
   * holder we waited for), wait for its holder (a few bounded reads), or take it over (nobody holds it).
   */
  async function decide(request: Q, key: string, seen: Held<JobRecord> | undefined, options: RunOptions, wait: { waitUntil: number; waited: boolean }): Promise<Outcome<R>> {
    let { waited } = wait;
    let current = seen;
    for (let reads = 0; ; reads++) {
      const record = current?.value;
      const replayable = record !== undefined && isReplayable(record, request, options, waited);
      const replayed = replayable ? await replay(request, record) : undefined;
      if (replayed) return replayed;
      if (current && (isLeaseLive(current.value) || replayable)) {
        // Held, or just ended with its result not yet readable (the archive's write goes beside the record's).
        const pause = Math.min(100 * 2 ** reads, wait.waitUntil - Date.now());
        if (reads >= WAIT_READS || pause <= 0) return busy(current.value);
        await sleep(pause);
      } else {
        const claimed = current
          ? await tryReplace(current, claimValue(request, key, current.value, options))
          : await store.create(claimValue(request, key, undefined, options));
        if (claimed) return attemptTakenOver(request, claimed, current?.value, options);
      }
      waited = true; // from here on, whoever wrote the record did so while we looked: its outcome is ours
      current = await store.get(fn, key);
    }
  }

  /**
   * Whether a record's outcome is this request's answer: it ended, it was attempted (not only deferred by a batch),
   * it was this very request (an older, other request to the same job is not answered for a newer one: the newest
   * wins), and either this request waited for it or it is the same scheduled run delivered twice.
   */
  function isReplayable(record: JobRecord, request: Q, options: RunOptions, waited: boolean): boolean {
    if (record.state === 'running' || record.lastError?.code === NOT_STARTED) return false;
    const sameRun = options.runId !== undefined && record.lastRunId === options.runId;
    const recentlyDone = record.state === 'done' && Date.now() - Date.parse(record.updatedAt) < (spec.reuseDoneMs ?? 0);
    return (waited || sameRun || recentlyDone) && sameRequest(record.request, request);
  }

  /**
   * Runs a job taken over from a record that was there. A done one may have just been finished by a holder whose
   * result was not yet readable: the archive is read once more before anything is done again.
   */
  async function attemptTakenOver(request: Q, claimed: Held<JobRecord>, previous: JobRecord | undefined, options: RunOptions): Promise<Outcome<R>> {
    if (previous?.state === 'done' && spec.find) {
      const found = await spec.find(request);
      if (found !== undefined) {
        await release(claimed);
        return { kind: 'done', result: found, replayed: true };
      }
    }
    return attempt(request, { held: claimed, afterDeadAttempt: previous?.state === 'running' }, options);
  }

  /** The outcome a record holds, given again: its result, or the recorded answer of its failure; none if unreadable. */
  async function replay(request: Q, record: JobRecord): Promise<Outcome<R> | undefined> {
    if (record.state === 'done') {
      const result = spec.find ? await spec.find(request) : (record.result as R | undefined);
      return result === undefined ? undefined : { kind: 'done', result, replayed: true };
    }
    const reason = recordedError(record.lastError);
    if (record.state === 'pending') return { kind: 'pending', reason, notBefore: dateOf(record.nextAttemptAt) };
    return { kind: 'failed', reason };
  }

  function busy(record: JobRecord): Outcome<R> {
    // The holder needs at most what is left of its own deadline; past it (a dead holder), until its lease lapses.
    const now = Date.now();
    const workLeft = record.workUntil ? Date.parse(record.workUntil) - now : 0;
    const leaseLeft = record.leaseUntil ? Date.parse(record.leaseUntil) - now : 0;
    return { kind: 'busy', retryAfterSeconds: Math.max(1, Math.ceil((workLeft > 0 ? workLeft : leaseLeft) / 1000)) };
  }

  /** The record of a claim. A job that ended and is asked for again starts over; an unfinished one goes on counting. */
  function claimValue(request: Q, key: string, current: JobRecord | undefined, options: RunOptions): JobRecord {
    const now = new Date();
    const unfinished = current !== undefined && (current.state === 'pending' || current.state === 'running');
    return {
      ...current,
      fn,
      key,
      // The latest request wins: a corrected request is what this and every later attempt sends.
      request,
      state: 'running',
      attempts: unfinished ? current.attempts + 1 : 1,
      leaseUntil: new Date(now.getTime() + settings.leaseSeconds * 1000).toISOString(),
      workUntil: new Date(options.deadline).toISOString(),
      nextAttemptAt: undefined,
      lastError: unfinished ? current.lastError : undefined,
      result: undefined,
      createdAt: unfinished ? current.createdAt : now.toISOString(),
      updatedAt: now.toISOString(),
    };
  }

  async function tryReplace(held: Held<JobRecord>, value: JobRecord): Promise<Held<JobRecord> | undefined> {
    try {
      return await store.replace(held, value);
    } catch (error) {
      if (error instanceof JobConflictError) return undefined;
      throw error;
    }
  }

  interface Claimed {
    held: Held<JobRecord>;
    afterDeadAttempt: boolean;
  }

  /** Runs the attempt on the claimed record and settles it; the record's writes are chained, one at a time. */
  async function attempt(request: Q, claimed: Claimed, options: RunOptions): Promise<Outcome<R>> {
    let held = claimed.held;
    let writes: Promise<unknown> = Promise.resolve();
    const write = (change: Partial<JobRecord>, at = new Date()) => {
      const next = writes.then(async () => {
        held = await store.replace(held, { ...held.value, ...change, updatedAt: at.toISOString() });
      });
      writes = next.catch(() => undefined);
      return next;
    };
    const job: Attempt<S> = {
      attempts: held.value.attempts,
      afterDeadAttempt: claimed.afterDeadAttempt,
      get kept() {
        return held.value as unknown as Partial<S>;
      },
      keep: (change) => write(change as Partial<JobRecord>),
      deadline: options.deadline,
      mode: options.mode,
    };
    let ended: { result: R } | { error: unknown };
    try {
      ended = { result: await spec.attempt(request, job) };
    } catch (error) {
      countProviderFailure(error);
      ended = { error };
    }
    await writes; // what the attempt kept is read by the outcome (the download's links and their age)
    if ('result' in ended) {
      const done: Outcome<R> = { kind: 'done', result: ended.result, replayed: false };
      // The result's own last write goes beside the record's done, not after it: one round trip less.
      const [, committed] = await Promise.allSettled([
        settle(() => write(settledChange(done, held.value, options)), held.value.key),
        spec.commit?.(ended.result),
      ]);
      if (committed.status === 'fulfilled') return counted(done);
      ended = { error: committed.reason };
    }
    // One clock reading: the next attempt is exactly its delay after the record's update, never a millisecond less.
    const at = new Date();
    const outcome = failureOutcome(ended.error, held.value, at.getTime());
    await settle(() => write(settledChange(outcome, held.value, options), at), held.value.key);
    return counted(outcome);
  }

  /** An attempt's outcome, counted by kind (the JobsDone/JobsPending/JobsFailed metrics). */
  function counted(outcome: Outcome<R>): Outcome<R> {
    if (outcome.kind !== 'busy') countJobOutcome(fn, outcome.kind);
    return outcome;
  }

  /** Pending while trying again can help and attempts are left; otherwise failed (given up, if it could have passed). */
  function failureOutcome(error: unknown, record: JobRecord, now: number): Outcome<R> {
    const verdict = retryVerdict(error);
    if (!verdict.retryable) return { kind: 'failed', reason: error };
    if (spec.resumable && error instanceof TimeBudgetExhausted) return { kind: 'pending', reason: error, notBefore: new Date(now) };
    if (record.attempts >= settings.policy.maxAttempts) {
      logger.warn('job given up', { fn, key: record.key, attempts: record.attempts });
      return { kind: 'failed', reason: new GaveUpError(error, record.attempts) };
    }
    const delay = verdict.backoff ? backoffSeconds(record.attempts, settings.policy, verdict.retryAfterSeconds) : verdict.retryAfterSeconds;
    const dueBy = spec.dueBy?.(record as unknown as Partial<S>) ?? Infinity;
    return { kind: 'pending', reason: error, notBefore: new Date(Math.max(now, Math.min(now + delay * 1000, dueBy))) };
  }

  function settledChange(outcome: Outcome<R>, record: JobRecord, options: RunOptions): Partial<JobRecord> {
    const common = { leaseUntil: undefined, workUntil: undefined, lastRunId: options.runId ?? record.lastRunId };
    switch (outcome.kind) {
      case 'done':
        return { ...common, state: 'done', lastError: undefined, nextAttemptAt: undefined, result: spec.find ? undefined : outcome.result };
      case 'pending':
        return { ...common, state: 'pending', lastError: lastErrorOf(outcome.reason), nextAttemptAt: outcome.notBefore?.toISOString() };
      default:
        return { ...common, state: 'failed', lastError: lastErrorOf((outcome as { reason: unknown }).reason), nextAttemptAt: undefined };
    }
  }

  /** A claim that found its result in the archive: the record says done, so nobody runs the job again. */
  async function release(held: Held<JobRecord>) {
    await settle(() => store.replace(held, { ...held.value, state: 'done', leaseUntil: undefined, workUntil: undefined, updatedAt: new Date().toISOString() }), held.value.key);
  }

  /** A claim whose work could not begin (the archive could not be read): pending and due now, for the next try. */
  async function giveBack(held: Held<JobRecord>, reason: unknown) {
    const now = new Date().toISOString();
    const change = { state: 'pending' as const, leaseUntil: undefined, workUntil: undefined, nextAttemptAt: now, lastError: lastErrorOf(reason), updatedAt: now };
    await settle(() => store.replace(held, { ...held.value, ...change }), held.value.key);
  }

  /** A settling write that fails (the lease was taken over, the table throttled) leaves the job to the sweep. */
  async function settle(writeOutcome: () => Promise<unknown>, key: string) {
    try {
      await writeOutcome();
    } catch (error) {
      logger.warn('job outcome not recorded; a sweep will take the job again', { fn, key, error });
    }
  }

  return {
    run,
    /** A sweep's job, from the record it read; a stored request that no longer passes validation fails the job. */
    async resume(held: Held<JobRecord>, deadline: number, parse: (input: unknown) => Q): Promise<SweptState> {
      let request: Q;
      try {
        request = parse(held.value.request);
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        await settle(() => store.replace(held, { ...held.value, state: 'failed', leaseUntil: undefined, lastError: lastErrorOf(error), updatedAt: new Date().toISOString() }), held.value.key);
        countJobOutcome(fn, 'failed');
        return 'failed';
      }
      const outcome = await run(request, { deadline, mode: 'sweep', held });
      return outcome.kind === 'busy' ? 'skipped' : outcome.kind;
    },
    /** A batch's jobs it had no time to start, kept for the sweep; a job that is not valid is refused, not kept. */
    async defer(inputs: readonly unknown[], deadline: number, parse: (input: unknown) => Q, reason = 'the scheduled batch ran out of time before this job'): Promise<DeferReport[]> {
      const reports: DeferReport[] = [];
      const valid: DeferredJob[] = [];
      inputs.forEach((input, index) => {
        try {
          const request = parse(input);
          valid.push({ index, key: spec.keyOf(request), request });
        } catch (error) {
          reports[index] = { deferred: false, error };
        }
      });
      const errors = await deferJobs(store, fn, valid, deadline, reason);
      for (const job of valid) reports[job.index] = errors.has(job.index) ? { deferred: false, error: errors.get(job.index) } : { deferred: true };
      return reports;
    },
  };
}

/** How a deferred job was kept: recorded for the sweep, or not (invalid, a failed write, no time left). */
export type DeferReport = { deferred: true } | { deferred: false; error: unknown };

interface DeferredJob {
  index: number;
  key: string;
  request: unknown;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The code of a job a batch deferred without attempting it. */
const NOT_STARTED = 'NOT_STARTED';

/** Two requests are the same when their JSON is, whatever the order of their keys (a stored map keeps none). */
export function sameRequest(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  return `{${entries.sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
const dateOf = (iso: string | undefined) => (iso ? new Date(iso) : undefined);

/** Deferred jobs written at once, at most: conditional writes, so none overwrites a job a sweep just claimed. */
export const DEFER_CONCURRENCY = 16;

/**
 * Keeps jobs that a scheduled batch had no time to start: recorded pending and due now, so the next sweep does
 * them. A job someone is working on is left to them; one that ended starts over with this request. Written in
 * parallel (bounded) and only while `deadline` allows; returns the error of each job that was not recorded.
 */
async function deferJobs(store: JobStore, fn: JobFunction, jobs: readonly DeferredJob[], deadline: number, reason: string): Promise<Map<number, unknown>> {
  const queue = [...jobs];
  const errors = new Map<number, unknown>();
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      if (Date.now() >= deadline) errors.set(job.index, new Error(`the batch ran out of time before ${fn} job ${job.key} was kept for the sweep`));
      else await deferJob(store, fn, job.key, job.request, reason).catch((error: unknown) => errors.set(job.index, error));
    }
  };
  await Promise.all(Array.from({ length: Math.min(DEFER_CONCURRENCY, jobs.length) }, worker));
  return errors;
}

/** One conditional write for a job never seen (the usual case); a read and a write for one that has a record. */
async function deferJob(store: JobStore, fn: JobFunction, key: string, request: unknown, reason: string): Promise<void> {
  const now = new Date().toISOString();
  const deferred = (current: JobRecord | undefined): JobRecord => {
    const unfinished = current?.state === 'pending';
    return {
      ...current,
      fn,
      key,
      request,
      state: 'pending',
      attempts: unfinished ? current.attempts : 0,
      nextAttemptAt: now,
      lastError: { code: NOT_STARTED, message: reason, statusCode: 202 },
      createdAt: unfinished ? current.createdAt : now,
      updatedAt: now,
    };
  };
  if (await store.create(deferred(undefined))) return;
  const current = await store.get(fn, key);
  if (!current || current.value.state === 'running') return; // someone is working on it: theirs
  try {
    await store.replace(current, deferred(current.value));
  } catch (error) {
    if (!(error instanceof JobConflictError)) throw error; // someone else took it meanwhile: theirs
  }
}
