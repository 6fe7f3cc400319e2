import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  toErrorResponse,
  UnsupportedMediaTypeError,
  UpstreamRejectedError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
  ValidationError,
} from '#shared/errors';

describe('the mapping from errors to HTTP answers', () => {
  it('answers 400 VALIDATION_FAILED with every bad field', () => {
    const details = [{ field: 'orderNo', message: 'must not be empty' }];
    expect(toErrorResponse(new ValidationError(details))).toEqual({
      statusCode: 400,
      body: { error: { code: 'VALIDATION_FAILED', message: 'The request is not valid', details } },
    });
  });

  it('answers 415 when the body is not declared as JSON', () => {
    expect(toErrorResponse(new UnsupportedMediaTypeError('text/plain'))).toEqual({
      statusCode: 415,
      body: { error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: "Content-Type must be application/json, got 'text/plain'" } },
    });
  });

  it("answers 422 UPSTREAM_REJECTED with the provider's code and message", () => {
    expect(toErrorResponse(new UpstreamRejectedError('fw199', 9001, '需登录'))).toEqual({
      statusCode: 422,
      body: {
        error: {
          code: 'UPSTREAM_REJECTED',
          message: 'fw199 rejected the request: 需登录',
          upstream: { provider: 'fw199', code: 9001, message: '需登录' },
        },
      },
    });
  });

  it('answers 502 and 504 for an unreachable or slow provider', () => {
    expect(toErrorResponse(new UpstreamUnavailableError('fw199', 'fw199 answered HTTP 500')).statusCode).toBe(502);
    expect(toErrorResponse(new UpstreamTimeoutError('fw199', 1000)).body.error).toEqual({
      code: 'UPSTREAM_TIMEOUT',
      message: 'fw199 did not answer within 1000 ms',
    });
  });

  it('answers 500 INTERNAL naming the configuration problem', () => {
    expect(toErrorResponse(new ConfigurationError('The fw199 secret is not set'))).toEqual({
      statusCode: 500,
      body: { error: { code: 'INTERNAL', message: 'The fw199 secret is not set' } },
    });
  });

  it('answers 500 INTERNAL for anything else, revealing nothing of the error', () => {
    const response = toErrorResponse(new Error('connect to db with password hunter2 failed'));
    expect(response.statusCode).toBe(500);
    expect(response.body).toEqual({
      error: { code: 'INTERNAL', message: 'Internal error; the request id identifies it in the logs' },
    });
  });
});
