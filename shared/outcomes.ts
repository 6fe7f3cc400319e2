import { JobInProgressError, RecordedError, TimeBudgetExhausted, UpstreamTimeoutError } from '#shared/errors';
import type { Outcome } from '#shared/job-lifecycle';
import type { HttpReply } from '#shared/middleware';

/**
 * The edge: a job's outcome as the HTTP answer. A result is presented by its route; a failure (and a pending job,
 * unless its route answers it) is thrown as its error, which the middleware turns into the error shape with the
 * same mapping that filled the job's `lastError` (shared/errors.ts).
 */

export interface Presenter<R> {
  done(result: R, replayed: boolean): HttpReply | Promise<HttpReply>;
  /** The answer of a pending job, where its route has one of its own (the download's 202); else its error. */
  pending?(reason: unknown): HttpReply | undefined;
  /** The answer while another invocation holds the job, where its route has one; else 409 JOB_IN_PROGRESS. */
  busy?(retryAfterSeconds: number): HttpReply | undefined;
}

export async function replyOf<R>(outcome: Outcome<R>, presenter: Presenter<R>): Promise<HttpReply> {
  switch (outcome.kind) {
    case 'done':
      return presenter.done(outcome.result, outcome.replayed);
    case 'pending': {
      const reply = presenter.pending?.(outcome.reason);
      if (reply) return reply;
      throw outcome.reason;
    }
    case 'failed':
      throw outcome.reason;
    case 'busy': {
      const reply = presenter.busy?.(outcome.retryAfterSeconds);
      if (reply) return reply;
      throw new JobInProgressError('Another request is working on this job; ask again later', outcome.retryAfterSeconds);
    }
  }
}

/** Whether a job is pending only because time ran out (the request's budget, or a provider too slow for it). */
export function isOutOfTime(reason: unknown): boolean {
  if (reason instanceof TimeBudgetExhausted || reason instanceof UpstreamTimeoutError) return true;
  return reason instanceof RecordedError && ['TIME_BUDGET_EXHAUSTED', 'UPSTREAM_TIMEOUT'].includes(reason.response.body.error.code);
}

/** The 202 of a job that goes on in the background (a ledger, an audit): `Retry-After` while another holds it. */
export function pendingReply(message: string, retryAfterSeconds?: number, extra: Record<string, unknown> = {}): HttpReply {
  const headers = retryAfterSeconds === undefined ? undefined : { 'retry-after': String(retryAfterSeconds) };
  return { statusCode: 202, headers, body: { ...extra, status: 'pending', message } };
}
