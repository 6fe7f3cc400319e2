import type { JobFunction } from '#shared/jobs';

/**
 * How the scheduled sweeps work through unfinished jobs, per function: one typed configuration that the stack
 * turns into EventBridge Scheduler schedules and environment variables, and that the functions use as defaults.
 */

export interface SweepSettings {
  /** How often the sweep runs (minutes). */
  everyMinutes: number;
  /** Due jobs read from the jobs table per page. */
  batchSize: number;
  /** Provider calls in flight at once. */
  concurrency: number;
  /** Provider calls started per minute at most, well under the provider's own limit. */
  callsPerMinute: number;
  /** Attempts after which a job that keeps failing is recorded as failed. */
  maxAttempts: number;
  /** Exponential backoff: the delay after the first failed attempt, doubled each time, at most backoffMaxSeconds. */
  backoffBaseSeconds: number;
  backoffMaxSeconds: number;
}

export const SWEEP_SETTINGS: Record<JobFunction, SweepSettings> = {
  // fw199/Nuonuo: re-pushes are few and capped per order per day (RETRY_DAILY_LIMIT).
  retry: { everyMinutes: 5, batchSize: 50, concurrency: 2, callsPerMinute: 30, maxAttempts: 10, backoffBaseSeconds: 60, backoffMaxSeconds: 3_600 },
  // WDT allows about 60 calls a minute across everything that calls it: the sweep leaves room for the API.
  'erp-update': { everyMinutes: 1, batchSize: 40, concurrency: 2, callsPerMinute: 40, maxAttempts: 10, backoffBaseSeconds: 60, backoffMaxSeconds: 3_600 },
  // Jumdata answers 609 when called too often; a 301 (login needed) may take a day to be fixed, hence more attempts.
  download: { everyMinutes: 1, batchSize: 20, concurrency: 2, callsPerMinute: 20, maxAttempts: 48, backoffBaseSeconds: 60, backoffMaxSeconds: 3_600 },
};

/**
 * The functions' timeout. API requests are answered within API_BUDGET_MS whatever it is (API Gateway gives up at
 * 29 s); the longer timeout is for the sweeps and batches, which start no job that could not finish in the time left.
 */
export const FUNCTION_TIMEOUT_SECONDS = 60;

/** A claim on a job outlasts any invocation that could hold it, so no two invocations work on one job at once. */
export const LEASE_SECONDS = 90;

/** Re-pushes of one order per day (China time), whoever asks: well under Nuonuo's own cap of about 20 (E9613). */
export const RETRY_DAILY_LIMIT = 5;

/** The environment variables that carry a function's sweep settings (set by the stack, read by shared/config.ts). */
export function sweepEnvironment(settings: SweepSettings): Record<string, string> {
  return {
    SWEEP_BATCH_SIZE: String(settings.batchSize),
    SWEEP_CONCURRENCY: String(settings.concurrency),
    SWEEP_CALLS_PER_MINUTE: String(settings.callsPerMinute),
    JOB_MAX_ATTEMPTS: String(settings.maxAttempts),
    BACKOFF_BASE_SECONDS: String(settings.backoffBaseSeconds),
    BACKOFF_MAX_SECONDS: String(settings.backoffMaxSeconds),
  };
}
