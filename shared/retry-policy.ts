import {
  DailyLimitReachedError,
  GaveUpError,
  LinksExpiredError,
  TimeBudgetExhausted,
  UpstreamRateLimitedError,
  UpstreamRejectedError,
  UpstreamTemporaryError,
  ValidationError,
} from '#shared/errors';

/**
 * When a job that did not finish is tried again, and when it is given up: the one policy for every function.
 */

export interface RetryPolicy {
  maxAttempts: number;
  backoffBaseSeconds: number;
  backoffMaxSeconds: number;
}

/**
 * Exponential backoff with "equal jitter": a ceiling that doubles with each attempt (base, 2 × base, 4 × base...) up
 * to the maximum, and a delay of half the ceiling plus a random part of the other half: between half the ceiling and
 * the ceiling, never above the maximum. The random part keeps jobs that failed together (a provider outage) from all
 * coming back together. Never sooner than the provider asked (Retry-After), even past the maximum.
 */
export function backoffSeconds(attempts: number, policy: RetryPolicy, retryAfterSeconds = 0, random = Math.random): number {
  const ceiling = Math.min(policy.backoffMaxSeconds, policy.backoffBaseSeconds * 2 ** Math.max(0, attempts - 1));
  return Math.max(retryAfterSeconds, ceiling / 2 + (random() * ceiling) / 2);
}

export interface RetryVerdict {
  retryable: boolean;
  /** The provider's (or our own) earliest time to try again, in seconds. */
  retryAfterSeconds: number;
  /** Whether the next attempt waits the backoff; false when the attempt only ran out of time and goes on at once. */
  backoff: boolean;
}

/**
 * Whether trying the same job again later can succeed, and how soon: the one verdict for every function. An error
 * may say it itself (`retryable`, `retryAfterSeconds`: a file host's answer, Jumdata's 301 or an unusable billed
 * answer); otherwise network failures, timeouts, rate limits, temporary answers and a deployment still missing its
 * secret can pass, while bad parameters, business rejections, dead links and a job given up will not.
 */
export function retryVerdict(error: unknown): RetryVerdict {
  const verdict = (retryable: boolean, retryAfterSeconds = 0, backoff = true) => ({ retryable, retryAfterSeconds, backoff });
  if (error instanceof TimeBudgetExhausted) return verdict(true, 0, false);
  const declared = (error ?? {}) as { retryable?: unknown; retryAfterSeconds?: unknown };
  const retryAfter = typeof declared.retryAfterSeconds === 'number' ? declared.retryAfterSeconds : 0;
  if (typeof declared.retryable === 'boolean') return verdict(declared.retryable, retryAfter);
  if (error instanceof UpstreamRateLimitedError || error instanceof UpstreamTemporaryError) return verdict(true, retryAfter);
  if (error instanceof DailyLimitReachedError) return verdict(true, retryAfter);
  if (error instanceof UpstreamRejectedError || error instanceof ValidationError || error instanceof LinksExpiredError) return verdict(false);
  if (error instanceof GaveUpError) return verdict(false);
  // ConfigurationError, UpstreamUnavailableError, UpstreamTimeoutError, and anything unexpected (a throttled table).
  return verdict(true);
}
