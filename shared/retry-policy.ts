import {
  ConfigurationError,
  DailyLimitReachedError,
  LinksExpiredError,
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

/**
 * Whether trying the same job again later can succeed, and how soon the provider allows it. Network failures,
 * timeouts, rate limits, temporary answers and a deployment still missing its secret can pass; bad parameters,
 * account problems and business rejections will not.
 */
export function retryVerdict(error: unknown): { retryable: boolean; retryAfterSeconds: number } {
  if (error instanceof UpstreamRateLimitedError || error instanceof UpstreamTemporaryError) {
    return { retryable: true, retryAfterSeconds: error.retryAfterSeconds };
  }
  if (error instanceof DailyLimitReachedError) return { retryable: true, retryAfterSeconds: error.retryAfterSeconds };
  if (error instanceof UpstreamRejectedError || error instanceof ValidationError || error instanceof LinksExpiredError) {
    return { retryable: false, retryAfterSeconds: 0 };
  }
  if (error instanceof ConfigurationError) return { retryable: true, retryAfterSeconds: 0 };
  // UpstreamUnavailableError, UpstreamTimeoutError, and anything unexpected (a throttled table, a reset).
  return { retryable: true, retryAfterSeconds: 0 };
}
