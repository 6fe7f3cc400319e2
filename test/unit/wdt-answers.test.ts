import { describe, expect, it } from 'vitest';
import { toErrorResponse, UpstreamRateLimitedError, UpstreamRejectedError, UpstreamUnavailableError } from '#shared/errors';
import { interpretWdtAnswer } from '#shared/providers/wdt';

describe('WDT answers', () => {
  it('reads code 0 as success, as a number or as the string the document shows', () => {
    expect(interpretWdtAnswer({ code: 0, message: 'OK' })).toBe('OK');
    expect(interpretWdtAnswer({ code: '0', message: 'OK' })).toBe('OK');
  });

  it("reads any other code as a business error with WDT's code and message", () => {
    const act = () => interpretWdtAnswer({ code: 30000, message: '发票编号在系统中不存在' });
    expect(act).toThrow(UpstreamRejectedError);
    expect(act).toThrow(expect.objectContaining({ provider: 'wdt', upstreamCode: 30000 }));
    expect(toErrorResponse((() => { try { act(); } catch (e) { return e; } })()).statusCode).toBe(422);
  });

  it('tells a rate-limit answer apart: 422 with its own code and Retry-After', () => {
    let error: unknown;
    try {
      interpretWdtAnswer({ code: 1012, message: '调用太频繁' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UpstreamRateLimitedError);
    expect(toErrorResponse(error)).toEqual({
      statusCode: 422,
      headers: { 'retry-after': '30' },
      body: {
        error: {
          code: 'UPSTREAM_RATE_LIMITED',
          message: 'wdt is being called too often: 调用太频繁',
          upstream: { provider: 'wdt', code: 1012, message: '调用太频繁' },
        },
      },
    });
  });

  it.each([
    ['no code', { message: 'OK' }],
    ['a non-numeric code', { code: 'ok' }],
    ['a fractional code', { code: 0.5 }],
    ['a list', []],
  ])('treats an answer with %s as unreadable', (_case, body) => {
    expect(() => interpretWdtAnswer(body)).toThrow(UpstreamUnavailableError);
  });
});
