import type { Context } from 'aws-lambda';
import { NotFoundError } from '#shared/errors';
import type { HttpReply } from '#shared/middleware';
import { isOutOfTime, pendingReply, replyOf } from '#shared/outcomes';
import type { AuditReport, auditJobs } from './audit-job.ts';

/**
 * The audit's edge: POST /audits (200 with the report, or 202 while it goes on), GET /audits/latest, and the
 * schedule's run `{"action": "audit"}`, which resumes an unfinished run of the whole archive before starting anew.
 */

type Audits = ReturnType<typeof auditJobs>;

export function auditAnswers(audits: Audits, budget: { answerMarginMs: number; apiBudgetMs: number }) {
  /** POST /audits: body `{}` or `{"taxNum"}`. */
  async function answerAudit(body: unknown, context: Context): Promise<HttpReply> {
    const request = audits.parse(body ?? {});
    const deadline = Date.now() + Math.min(context.getRemainingTimeInMillis(), budget.apiBudgetMs) - budget.answerMarginMs;
    const outcome = await audits.run(request, { deadline, mode: 'request' });
    return replyOf(outcome, {
      done: async (summary) => ({ statusCode: 200, body: publicReport((await audits.report(summary.key))!) }),
      pending: (reason) => (isOutOfTime(reason) ? pendingReply('the audit goes on in the background; GET /audits/latest shows where it is') : undefined),
      busy: (retryAfterSeconds) => pendingReply('an audit of this scope is running', retryAfterSeconds),
    });
  }

  /** GET /audits/latest: the last report started, finished or not. */
  async function answerLatest(): Promise<HttpReply> {
    const report = await audits.report();
    if (!report) throw new NotFoundError('No audit has run yet: POST /audits starts one');
    return { statusCode: 200, body: publicReport(report) };
  }

  /** The schedule's audit of the whole archive, with the invocation's time. */
  async function runScheduled(context: Context) {
    const deadline = Date.now() + context.getRemainingTimeInMillis() - budget.answerMarginMs;
    const outcome = await audits.run({}, { deadline, mode: 'request' });
    return { audit: outcome.kind, ...(outcome.kind === 'done' ? { key: outcome.result.key, problems: outcome.result.problemCount } : {}) };
  }

  return { answerAudit, answerLatest, runScheduled, jobs: audits };
}

/** The report as answered: its progress is the audit's own bookkeeping. */
function publicReport(report: AuditReport): Omit<AuditReport, 'progress'> {
  const { progress: _progress, ...rest } = report;
  return rest;
}
