/**
 * The product's error types and the one mapping from an error to the HTTP answer that docs/api.md (and the
 * `Error` schema of openapi.json) promises.
 * Every handler throws these; nothing else builds an error response.
 */

export type ProviderName = 'fw199' | 'wdt' | 'jumdata';

export interface FieldProblem {
  field: string;
  message: string;
}

export interface ErrorBody {
  error: {
    code: string;
    message: string;
    details?: FieldProblem[];
    upstream?: { provider: ProviderName; code: string | number; message: string };
  };
}

/** The request is malformed: bad JSON or bad fields. No upstream call is made. */
export class ValidationError extends Error {
  constructor(readonly details: FieldProblem[]) {
    super(`Invalid request: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`);
    this.name = 'ValidationError';
  }
}

/** The body is not declared as JSON in UTF-8; `problem` says what is wrong with its Content-Type. */
export class UnsupportedMediaTypeError extends Error {
  constructor(contentType: string | undefined, problem = 'must be application/json') {
    super(`Content-Type ${problem}, got ${contentType ? `'${contentType}'` : 'none'}`);
    this.name = 'UnsupportedMediaTypeError';
  }
}

/** The provider answered with a business error; its own code and message travel with it. */
export class UpstreamRejectedError extends Error {
  constructor(
    readonly provider: ProviderName,
    readonly upstreamCode: string | number,
    readonly upstreamMessage: string,
    message = `${provider} rejected the request: ${upstreamMessage}`,
  ) {
    super(message);
    this.name = 'UpstreamRejectedError';
  }
}

/** The provider refused because it was called too often; the caller should wait before trying again. */
export class UpstreamRateLimitedError extends UpstreamRejectedError {
  constructor(
    provider: ProviderName,
    upstreamCode: string | number,
    upstreamMessage: string,
    readonly retryAfterSeconds: number,
  ) {
    super(provider, upstreamCode, upstreamMessage, `${provider} is being called too often: ${upstreamMessage}`);
    this.name = 'UpstreamRateLimitedError';
  }
}

/** The provider says it cannot serve the request right now (maintenance, its own upstream failing); try later. */
export class UpstreamTemporaryError extends UpstreamRejectedError {
  constructor(
    provider: ProviderName,
    upstreamCode: string | number,
    upstreamMessage: string,
    readonly retryAfterSeconds: number,
  ) {
    super(provider, upstreamCode, upstreamMessage, `${provider} cannot answer right now: ${upstreamMessage}`);
    this.name = 'UpstreamTemporaryError';
  }
}

/** The provider could not be reached, or answered something unreadable. */
export class UpstreamUnavailableError extends Error {
  constructor(
    readonly provider: ProviderName,
    message: string,
  ) {
    super(message);
    this.name = 'UpstreamUnavailableError';
  }
}

/** The provider did not answer within the configured timeout. */
export class UpstreamTimeoutError extends Error {
  constructor(
    readonly provider: ProviderName,
    readonly timeoutMs: number,
    message = `${provider} did not answer within ${timeoutMs} ms`,
  ) {
    super(message);
    this.name = 'UpstreamTimeoutError';
  }
}

/**
 * The message of the WARN line that logs a provider failure (the request or batch job it failed). The metric
 * ProviderFailures counts every attempt that met one, sweeps' too (shared/metrics.ts).
 */
export const PROVIDER_FAILED = 'provider failed';

/**
 * The provider an error says is failing: unreachable or unreadable (502), too slow (504), or asking to be tried
 * later (503). Trouble a person cannot fix and the sweeps retry: counted, not alarmed on as an error.
 */
export function failingProviderOf(error: unknown): ProviderName | undefined {
  const failed =
    error instanceof UpstreamUnavailableError ||
    error instanceof UpstreamTimeoutError ||
    error instanceof UpstreamTemporaryError;
  return failed ? error.provider : undefined;
}

/** The thing asked for does not exist (yet). */
export class NotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

/** The request carries a signature or credential that does not hold. */
export class ForbiddenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForbiddenError';
  }
}

/** Our own cap on re-pushes of one order per day was reached; Nuonuo's is close behind. */
export class DailyLimitReachedError extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
    this.name = 'DailyLimitReachedError';
  }
}

/** Another request or sweep is working on the same job right now. */
export class JobInProgressError extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
    this.name = 'JobInProgressError';
  }
}

/**
 * The file links Jumdata was paid for died before the files were stored. A sweep does not pay again by itself;
 * a person asks POST /download again.
 */
export class LinksExpiredError extends Error {
  constructor(message: string) {
    super(`${message}; ask POST /download again to buy new links`);
    this.name = 'LinksExpiredError';
  }
}

/** The request's (or the sweep job's) time ran out before the work was finished; the work is kept for later. */
export class TimeBudgetExhausted extends Error {
  constructor(message = 'the request ran out of time before the work was finished') {
    super(message);
    this.name = 'TimeBudgetExhausted';
  }
}

/** A job that kept failing in ways that could pass, given up after its last attempt: a person decides now. */
export class GaveUpError extends Error {
  constructor(
    cause: unknown,
    readonly attempts: number,
  ) {
    super(`given up after ${attempts} attempts: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'GaveUpError';
  }
}

/** The deployment is missing something (a secret's value, a setting); the message says what, never a value. */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigurationError';
  }
}

export interface ErrorResponse {
  statusCode: number;
  body: ErrorBody;
  headers?: Record<string, string>;
}

/** An answer given once and recorded, given again as it was (to requests that waited for the first). */
export class RecordedError extends Error {
  constructor(readonly response: ErrorResponse) {
    super(response.body.error.message);
    this.name = 'RecordedError';
  }
}

/** The single place where an error becomes a status code and a body. Unknown errors reveal nothing. */
export function toErrorResponse(error: unknown): ErrorResponse {
  if (error instanceof RecordedError) return error.response;
  if (error instanceof GaveUpError) return gaveUp(error);
  if (error instanceof TimeBudgetExhausted) {
    // Only a job record says this: an answer turns a pending job into its own 202 (see shared/outcomes.ts).
    return reply(202, 'TIME_BUDGET_EXHAUSTED', error.message);
  }
  if (error instanceof ValidationError) {
    return reply(400, 'VALIDATION_FAILED', 'The request is not valid', { details: error.details });
  }
  if (error instanceof UnsupportedMediaTypeError) {
    return reply(415, 'UNSUPPORTED_MEDIA_TYPE', error.message);
  }
  if (error instanceof UpstreamRateLimitedError) {
    return {
      // docs/api.md: a provider's refusal is a 422; the code and Retry-After tell a rate limit apart.
      ...reply(422, 'UPSTREAM_RATE_LIMITED', error.message, { upstream: upstreamOf(error) }),
      headers: { 'retry-after': String(error.retryAfterSeconds) },
    };
  }
  if (error instanceof UpstreamTemporaryError) {
    return {
      ...reply(503, 'UPSTREAM_TEMPORARILY_UNAVAILABLE', error.message, { upstream: upstreamOf(error) }),
      headers: { 'retry-after': String(error.retryAfterSeconds) },
    };
  }
  if (error instanceof UpstreamRejectedError) {
    return reply(422, 'UPSTREAM_REJECTED', error.message, { upstream: upstreamOf(error) });
  }
  if (error instanceof UpstreamUnavailableError) {
    return reply(502, 'UPSTREAM_UNAVAILABLE', error.message);
  }
  if (error instanceof UpstreamTimeoutError) {
    return reply(504, 'UPSTREAM_TIMEOUT', error.message);
  }
  if (error instanceof DailyLimitReachedError) {
    return { ...reply(429, 'DAILY_LIMIT_REACHED', error.message), headers: { 'retry-after': String(error.retryAfterSeconds) } };
  }
  if (error instanceof JobInProgressError) {
    return { ...reply(409, 'JOB_IN_PROGRESS', error.message), headers: { 'retry-after': String(error.retryAfterSeconds) } };
  }
  if (error instanceof LinksExpiredError) {
    return reply(410, 'LINKS_EXPIRED', error.message);
  }
  if (error instanceof ForbiddenError) {
    return reply(403, 'FORBIDDEN', error.message);
  }
  if (error instanceof NotFoundError) {
    return reply(404, 'NOT_FOUND', error.message);
  }
  if (error instanceof ConfigurationError) {
    // The API has one 500, INTERNAL (docs/api.md, openapi.json); a configuration problem says what is missing, never a
    // value.
    return reply(500, 'INTERNAL', error.message);
  }
  return reply(500, 'INTERNAL', 'Internal error; the request id identifies it in the logs');
}

/** A job given up is a failure, never a 202: one that ran out of time is a timeout, any other keeps its cause's answer. */
function gaveUp(error: GaveUpError): ErrorResponse {
  if (error.cause instanceof TimeBudgetExhausted) {
    const why = error.cause.message === new TimeBudgetExhausted().message ? '' : `: ${error.cause.message}`;
    return reply(504, 'UPSTREAM_TIMEOUT', `the work could not be finished in time in ${error.attempts} attempts; given up${why}`);
  }
  const cause = toErrorResponse(error.cause);
  const message = `${cause.body.error.message} (given up after ${error.attempts} attempts)`;
  return { statusCode: cause.statusCode, body: { error: { ...cause.body.error, message } } };
}

/** What a job record keeps of the error that ended its last attempt: the very answer the API gives for it. */
export function lastErrorOf(error: unknown): LastError {
  const { statusCode, body, headers } = toErrorResponse(error);
  return { ...body.error, statusCode, retryAfter: headers?.['retry-after'] };
}

export type LastError = ErrorBody['error'] & { statusCode: number; retryAfter?: string };

/** The answer a job record kept, as an error that gives that answer again. */
export function recordedError(lastError: LastError | undefined): RecordedError {
  const { statusCode = 500, retryAfter, ...error } = lastError ?? { code: 'INTERNAL', message: 'the job did not finish' };
  return new RecordedError({ statusCode, body: { error }, headers: retryAfter ? { 'retry-after': retryAfter } : undefined });
}

function upstreamOf(error: UpstreamRejectedError): ErrorBody['error']['upstream'] {
  return { provider: error.provider, code: error.upstreamCode, message: error.upstreamMessage };
}

function reply(
  statusCode: number,
  code: string,
  message: string,
  extra: Omit<ErrorBody['error'], 'code' | 'message'> = {},
): ErrorResponse {
  return { statusCode, body: { error: { code, message, ...extra } } };
}
