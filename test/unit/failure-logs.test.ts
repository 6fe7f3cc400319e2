import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ConfigurationError,
  UpstreamRejectedError,
  UpstreamTemporaryError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from '#shared/errors';
import { batchHandler, httpHandler } from '#shared/middleware';
import { lambdaContext } from '../../local/api-gateway.ts';

/**
 * What a failure leaves in the log. ERROR is for what a person must look at (the logged-errors alarm counts it): a
 * 500, a batch job lost. A provider that is down, too slow or asks to be tried later is WARN 'provider failed',
 * which the stack counts as ProviderFailures by provider.
 */

// Before the logger is built at import: each invocation sets its level back to the one it was built with.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
});

let lines: Array<Record<string, unknown>>;

beforeEach(() => {
  lines = [];
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      return true;
    });
  }
});
afterEach(() => {
  vi.restoreAllMocks();
});

const event = {
  version: '2.0',
  routeKey: 'GET /jobs',
  rawPath: '/jobs',
  rawQueryString: '',
  headers: {},
  isBase64Encoded: false,
  requestContext: { requestId: 'request-1', http: { method: 'GET', path: '/jobs' } },
} as unknown as APIGatewayProxyEventV2;

/** The log lines of a request whose handler throws `error`, and its status. */
async function requestFailingWith(error: Error) {
  const handler = httpHandler(() => Promise.reject(error));
  const result = await handler(event, lambdaContext('retry'));
  return { statusCode: (result as { statusCode: number }).statusCode, lines };
}

const levelsOf = (logged: Array<Record<string, unknown>>) => logged.map((line) => `${String(line.level)} ${String(line.message)}`);

describe('a request that fails', () => {
  it.each([
    ['unreachable', new UpstreamUnavailableError('fw199', 'fw199 answered HTTP 500'), 502, 'UPSTREAM_UNAVAILABLE'],
    ['too slow', new UpstreamTimeoutError('wdt', 1000), 504, 'UPSTREAM_TIMEOUT'],
    ['asking to be tried later', new UpstreamTemporaryError('jumdata', 399, '维护中', 60), 503, 'UPSTREAM_TEMPORARILY_UNAVAILABLE'],
  ])('is logged at WARN, not ERROR, when the provider is %s', async (_case, error, statusCode, code) => {
    // Act
    const answer = await requestFailingWith(error);
    // Assess
    expect(answer.statusCode).toBe(statusCode);
    expect(levelsOf(answer.lines)).toEqual(['WARN provider failed']);
    expect(answer.lines[0]).toMatchObject({ provider: error.provider, code, statusCode, route: 'GET /jobs' });
  });

  it.each([
    ['an unexpected error', new Error('boom')],
    ['a missing secret value', new ConfigurationError('the fw199 secret has no value')],
  ])('is logged at ERROR when it answers 500: %s', async (_case, error) => {
    // Act
    const answer = await requestFailingWith(error);
    // Assess
    expect(answer.statusCode).toBe(500);
    expect(levelsOf(answer.lines)).toEqual(['ERROR request failed']);
  });

  it("is logged at INFO when the provider refused it: the answer says all (a provider's business error)", async () => {
    // Act
    const answer = await requestFailingWith(new UpstreamRejectedError('fw199', 9001, '需登录'));
    // Assess
    expect(answer.statusCode).toBe(422);
    expect(levelsOf(answer.lines)).toEqual(['INFO request refused']);
  });
});

describe('a batch job that fails', () => {
  const batch = (error: Error) =>
    batchHandler(() => Promise.reject(error), { jobTimeoutMs: 1_000, callsPerMinute: 6_000, defer: async () => [] });

  it('is logged at WARN when its provider failed, and at ERROR when it failed otherwise', async () => {
    // Act
    await batch(new UpstreamUnavailableError('wdt', 'wdt answered HTTP 502'))({ jobs: [{}] }, lambdaContext('erp-update', 60_000));
    const providerLines = levelsOf(lines);
    lines.length = 0;
    await batch(new Error('boom'))({ jobs: [{}] }, lambdaContext('erp-update', 60_000));
    // Assess
    expect(providerLines).toEqual(['WARN provider failed', 'INFO batch finished']);
    expect(levelsOf(lines)).toEqual(['ERROR job failed', 'INFO batch finished']);
  });
});
