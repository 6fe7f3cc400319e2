import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  DailyLimitReachedError,
  GaveUpError,
  LinksExpiredError,
  TimeBudgetExhausted,
  UpstreamRateLimitedError,
  UpstreamRejectedError,
  UpstreamTemporaryError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
  ValidationError,
} from '#shared/errors';
import { FileFetchError } from '#shared/file-fetch';
import { TaxBureauLoginRequiredError, UnusableAnswerError } from '#shared/providers/jumdata';
import { backoffSeconds, retryVerdict, type RetryPolicy } from '#shared/retry-policy';

const policy: RetryPolicy = { maxAttempts: 8, backoffBaseSeconds: 10, backoffMaxSeconds: 300 };
const lowest = () => 0;
const highest = () => 1;

describe('the backoff before a job is tried again', () => {
  it('waits between half the base and the base after the first attempt', () => {
    expect(backoffSeconds(1, policy, 0, lowest)).toBe(5);
    expect(backoffSeconds(1, policy, 0, highest)).toBe(10);
  });

  it('doubles its ceiling with each further attempt', () => {
    expect(backoffSeconds(2, policy, 0, highest)).toBe(20);
    expect(backoffSeconds(3, policy, 0, lowest)).toBe(20);
    expect(backoffSeconds(3, policy, 0, highest)).toBe(40);
    expect(backoffSeconds(5, policy, 0, highest)).toBe(160);
  });

  it('keeps the jitter inside the upper half of the ceiling', () => {
    expect(backoffSeconds(3, policy, 0, () => 0.5)).toBe(30);
  });

  it('never lets the ceiling grow past backoffMaxSeconds', () => {
    expect(backoffSeconds(6, policy, 0, highest)).toBe(300);
    expect(backoffSeconds(30, policy, 0, lowest)).toBe(150);
    expect(backoffSeconds(30, policy, 0, highest)).toBe(300);
  });

  it('treats attempt zero as the first attempt', () => {
    expect(backoffSeconds(0, policy, 0, highest)).toBe(10);
  });

  it('never waits less than the provider asked, even past the maximum', () => {
    expect(backoffSeconds(1, policy, 7, lowest)).toBe(7);
    expect(backoffSeconds(1, policy, 7, highest)).toBe(10);
    expect(backoffSeconds(30, policy, 3600, highest)).toBe(3600);
  });
});

describe('the verdict on whether a failed job may be tried again', () => {
  it('gives every function the same verdict on the download\'s own errors', () => {
    expect(retryVerdict(new TaxBureauLoginRequiredError('91310117568051222X', '需要登录'))).toEqual({ retryable: true, retryAfterSeconds: 3_600, backoff: true });
    expect(retryVerdict(new UnusableAnswerError('no links'))).toEqual({ retryable: false, retryAfterSeconds: 0, backoff: true });
    expect(retryVerdict(new FileFetchError('truncated', 'cut', true))).toEqual({ retryable: true, retryAfterSeconds: 0, backoff: true });
    expect(retryVerdict(new FileFetchError('refused_url', 'https only', false))).toEqual({ retryable: false, retryAfterSeconds: 0, backoff: true });
  });

  it('goes on at once, without backoff, after an attempt that only ran out of time', () => {
    expect(retryVerdict(new TimeBudgetExhausted())).toEqual({ retryable: true, retryAfterSeconds: 0, backoff: false });
  });

  it('does not retry a job given up', () => {
    expect(retryVerdict(new GaveUpError(new UpstreamUnavailableError('fw199', 'down'), 10)).retryable).toBe(false);
  });

  it('retries a rate limit after the seconds the provider asked', () => {
    expect(retryVerdict(new UpstreamRateLimitedError('fw199', 429, '调用过于频繁', 30))).toEqual({ retryable: true, retryAfterSeconds: 30, backoff: true });
  });

  it('retries a temporary refusal after the seconds the provider asked', () => {
    expect(retryVerdict(new UpstreamTemporaryError('wdt', 'maintenance', '系统维护', 120))).toEqual({ retryable: true, retryAfterSeconds: 120, backoff: true });
  });

  it('retries a reached daily limit after its seconds to midnight', () => {
    expect(retryVerdict(new DailyLimitReachedError('daily limit reached', 3600))).toEqual({ retryable: true, retryAfterSeconds: 3600, backoff: true });
  });

  it('does not retry a business rejection', () => {
    expect(retryVerdict(new UpstreamRejectedError('fw199', 9001, '需登录'))).toEqual({ retryable: false, retryAfterSeconds: 0, backoff: true });
  });

  it('does not retry an invalid request', () => {
    expect(retryVerdict(new ValidationError([{ field: 'orderNo', message: 'must not be empty' }]))).toEqual({
      retryable: false,
      retryAfterSeconds: 0,
      backoff: true,
    });
  });

  it('does not retry a download whose paid links expired', () => {
    expect(retryVerdict(new LinksExpiredError('the file links are gone'))).toEqual({ retryable: false, retryAfterSeconds: 0, backoff: true });
  });

  it('retries at once an unreachable or slow provider', () => {
    expect(retryVerdict(new UpstreamUnavailableError('jumdata', 'jumdata answered HTTP 500'))).toEqual({ retryable: true, retryAfterSeconds: 0, backoff: true });
    expect(retryVerdict(new UpstreamTimeoutError('jumdata', 1000))).toEqual({ retryable: true, retryAfterSeconds: 0, backoff: true });
  });

  it('retries at once a deployment that is missing its configuration', () => {
    expect(retryVerdict(new ConfigurationError('The fw199 secret is not set'))).toEqual({ retryable: true, retryAfterSeconds: 0, backoff: true });
  });

  it('retries at once an unexpected error', () => {
    expect(retryVerdict(new Error('socket hang up'))).toEqual({ retryable: true, retryAfterSeconds: 0, backoff: true });
  });
});
