import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { dueTimeOf, type Held, type JobFunction, type JobRecord, type JobState, type JobStore } from '#shared/jobs';
import { logger } from '#shared/logger';
import { recordOldestDueJobAge } from '#shared/metrics';

/**
 * A scheduled sweep: works through a function's due jobs (pending ones whose next attempt has come, and running
 * ones whose lease lapsed because their invocation died), a page at a time, with bounded concurrency and a bounded
 * call rate for the provider. It stops starting jobs when the invocation's remaining time could not finish one, and
 * the next run resumes where it stopped: what was not taken is still due. One sweep per function runs at a time.
 */

export interface SweepSettings {
  batchSize: number;
  concurrency: number;
  callsPerMinute: number;
}

export interface SweepReport {
  fn: JobFunction;
  /** Jobs taken up, and how they ended. */
  processed: number;
  done: number;
  pending: number;
  failed: number;
  /** Jobs another invocation held. */
  skipped: number;
  /** The sweep stopped for time with due jobs left: the next run goes on. */
  stoppedForTime: boolean;
  /** Another sweep of the function was running: this one did nothing. */
  alreadyRunning?: boolean;
  /**
   * How long the oldest job due when the sweep began had waited past its due time, in whole seconds; 0 when none
   * was due. Published as OldestDueJobAge on every run: the stuck-work alarm reads it, and a run without it is stuck.
   */
  oldestDueSeconds?: number;
}

/** How one job ended; `skipped` when another invocation held it. */
export type SweptState = Exclude<JobState, 'running'> | 'skipped';

export interface SweepOptions {
  store: JobStore;
  fn: JobFunction;
  settings: SweepSettings;
  /** The longest one job may take, start to end: no job is started with less time left than this. */
  jobTimeoutMs: number;
  processJob: (job: Held<JobRecord>, deadline: number) => Promise<SweptState>;
}

/** Kept in hand after the last job, to record it and return the report. */
const SWEEP_MARGIN_MS = 2_000;

export async function sweep(options: SweepOptions, context: Pick<Context, 'getRemainingTimeInMillis'>): Promise<SweepReport> {
  const { store, fn, settings } = options;
  const report: SweepReport = { fn, processed: 0, done: 0, pending: 0, failed: 0, skipped: 0, stoppedForTime: false };
  const endsAt = Date.now() + context.getRemainingTimeInMillis();
  const timeLeft = () => endsAt - Date.now();
  const owner = randomUUID();
  if (!(await store.lock(fn, 'sweep', owner, Math.ceil(timeLeft() / 1000)))) {
    logger.info('another sweep is running', { fn });
    return { ...report, alreadyRunning: true };
  }
  const limiter = callLimiter(settings);
  try {
    // Jobs that fall due while the sweep runs wait for the next one: the page cursor walks a fixed question.
    const dueBy = new Date();
    let cursor: string | undefined;
    do {
      const page = await store.list(fn, 'open', { dueBy, limit: settings.batchSize, cursor });
      if (cursor === undefined) report.oldestDueSeconds = measureOldestDue(fn, page.jobs, dueBy);
      cursor = page.cursor;
      const runs: Array<Promise<void>> = [];
      for (const job of page.jobs) {
        const started = await limiter.slot((delayMs) => timeLeft() - delayMs >= options.jobTimeoutMs + SWEEP_MARGIN_MS);
        if (!started) {
          report.stoppedForTime = true;
          break;
        }
        runs.push(
          options
            .processJob(job, Date.now() + options.jobTimeoutMs)
            .catch((error: unknown) => {
              logger.error('sweep job failed unexpectedly', { fn, key: job.value.key, error });
              return 'pending' as const;
            })
            .then((state) => {
              report[state] += 1;
              if (state !== 'skipped') report.processed += 1;
            })
            .finally(started.release),
        );
      }
      await Promise.all(runs);
    } while (cursor && !report.stoppedForTime);
  } finally {
    await store.unlock(fn, 'sweep', owner).catch((error: unknown) => logger.warn('sweep lock not released', { fn, error }));
  }
  logger.info('sweep finished', { ...report });
  return report;
}

/**
 * How long the oldest due job has waited past its due time at `now` (0 when none is due), recorded as the metric.
 * `jobs` is the sweep's first page: the index lists due jobs in due order, so the oldest comes first.
 */
function measureOldestDue(fn: JobFunction, jobs: ReadonlyArray<Held<JobRecord>>, now: Date): number {
  const oldest = jobs[0];
  const seconds = oldest ? Math.max(0, Math.floor((now.getTime() - Date.parse(dueTimeOf(oldest.value))) / 1000)) : 0;
  recordOldestDueJobAge(fn, seconds);
  return seconds;
}

/**
 * At most `concurrency` jobs at once, and starts at least 60 s / callsPerMinute apart, so the provider never sees
 * more than callsPerMinute calls in any minute from a sweep. `slot` waits for both, asking `mayStart` (time left
 * after the wait?) before and after its wait, and returns a release, or undefined to stop.
 */
export function callLimiter({ concurrency, callsPerMinute }: Pick<SweepSettings, 'concurrency' | 'callsPerMinute'>) {
  const spacingMs = 60_000 / callsPerMinute;
  let running = 0;
  let nextStartAt = 0;
  const waiting: Array<() => void> = [];
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  return {
    async slot(mayStart: (delayMs: number) => boolean): Promise<{ release: () => void } | undefined> {
      while (running >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
      running += 1;
      // The start is booked before sleeping, so that slots asked for together are spaced too.
      const startAt = Math.max(Date.now(), nextStartAt);
      nextStartAt = startAt + spacingMs;
      // Asked before sleeping too: a wait that would eat the time left is not waited.
      const delayMs = startAt - Date.now();
      const mayWait = delayMs <= 0 || mayStart(delayMs);
      if (mayWait && delayMs > 0) await sleep(delayMs);
      if (!mayWait || !mayStart(0)) {
        running -= 1;
        waiting.shift()?.();
        return undefined;
      }
      let released = false;
      return {
        release: () => {
          if (released) return;
          released = true;
          running -= 1;
          waiting.shift()?.();
        },
      };
    },
  };
}
