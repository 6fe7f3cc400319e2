import { LinksExpiredError, TimeBudgetExhausted, UpstreamTimeoutError, UpstreamUnavailableError } from '#shared/errors';
import { FileFetchError, LinkGoneError } from '#shared/file-fetch';
import type { Attempt } from '#shared/job-lifecycle';
import type { DownloadQuery } from '#shared/providers/jumdata';
import type { ArchivedInvoice, InvoiceArchive } from './archive.ts';
import { answerOnce } from './buy-answer.ts';
import type { DownloadDeps } from './download-invoice.ts';
import type { KeptAnswer } from './work.ts';

/**
 * One attempt at mirroring an invoice: Jumdata's answer kept or bought once (buy-answer.ts), leftovers of an attempt
 * that died removed, the files staged (archive-stage.ts), and a failure put in the job's terms. Loaded by
 * download-invoice.ts at the first invoice an instance mirrors, with the fetcher and the upload, not at cold start.
 */
export async function mirrorOnce(deps: DownloadDeps, archive: InvoiceArchive, query: DownloadQuery, job: Attempt<KeptAnswer>): Promise<ArchivedInvoice> {
  const budget = new AbortController();
  const timer = setTimeout(() => budget.abort(new TimeBudgetExhausted()), Math.max(0, job.deadline - Date.now()));
  try {
    const [bought, cleaned] = await Promise.allSettled([answerOnce(query, job, deps), job.afterDeadAttempt ? archive.removeLeftovers(query) : undefined]);
    if (bought.status === 'rejected') throw bought.reason;
    if (cleaned.status === 'rejected') throw cleaned.reason;
    // The answer is kept while the files stream; a failure is judged on the record as kept (asJobError).
    const [archived] = await Promise.allSettled([archive.stage(query, bought.value.answer, budget.signal), bought.value.kept]);
    if (archived.status === 'rejected') throw archived.reason;
    return archived.value;
  } catch (error) {
    throw await asJobError(error, job);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A file that could not be mirrored, in the job's terms: a file host too slow is a timeout; links the host says are
 * gone are marked so in the record (the next API request buys new ones; a sweep records them expired); anything
 * else is the provider's file failing, retryable as the fetch said.
 */
async function asJobError(error: unknown, job: Attempt<KeptAnswer>): Promise<unknown> {
  if (!(error instanceof FileFetchError)) return error;
  if (error.reason === 'timeout') return new UpstreamTimeoutError('jumdata', 0, `the invoice file host was too slow: ${error.message}`);
  if (!(error instanceof LinkGoneError)) return new FileUnavailableError(error.message, error.retryable);
  const kept = job.kept.jumdata;
  if (kept) await job.keep({ jumdata: { ...kept, linksGone: true } }).catch(() => undefined); // the failure's own write follows
  if (job.mode === 'sweep') return new LinksExpiredError(`the file links Jumdata was paid for are gone (${error.message})`);
  return new FileUnavailableError(error.message, true);
}

/** A file link that could not be mirrored, as the API reports it (502), saying whether the job may try again. */
class FileUnavailableError extends UpstreamUnavailableError {
  constructor(
    reason: string,
    readonly retryable: boolean,
  ) {
    super('jumdata', `an invoice file could not be mirrored: ${reason}`);
    this.name = 'FileUnavailableError';
  }
}
