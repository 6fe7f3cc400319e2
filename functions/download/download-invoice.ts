import type { S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import {
  toErrorResponse,
  UpstreamRateLimitedError,
  UpstreamRejectedError,
  UpstreamTemporaryError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from '#shared/errors';
import { FileFetchError, type FileFetchPolicy } from '#shared/file-fetch';
import { logger } from '#shared/logger';
import {
  invoiceSummary,
  TaxBureauLoginRequiredError,
  type DownloadQuery,
  type JumdataClient,
} from '#shared/providers/jumdata';
import type { JsonStore, Stored } from '#shared/storage';
import { parseRequest, taxNumSchema } from '#shared/validation';
import { invoicePrefix, invoiceRecordKey, readMirroredInvoice, type MirroredInvoice } from './archive.ts';
import { mirrorInvoiceFiles } from './mirror.ts';
import { isLeaseLive, WorkStore, type DownloadWork } from './work.ts';

export function downloadRequestSchema(checkCreditCode: boolean) {
  return z.object({
    taxNum: taxNumSchema(checkCreditCode),
    invoiceNo: z
      .string({ error: 'is required and must be a string' })
      .regex(/^(\d{20}|\d{8})$/, { error: 'must be 20 digits (数电) or 8 digits' }),
    issueDate: z.iso.date({ error: 'must be a date as YYYY-MM-DD' }),
    direction: z.enum(['sales', 'purchase'], { error: "must be 'sales' (销项) or 'purchase' (进项)" }),
  });
}

export type DownloadOutcome =
  | { kind: 'mirrored'; fromCache: boolean; invoice: MirroredInvoice }
  | { kind: 'pending'; query: DownloadQuery; message: string };

/** The request's time budget ran out before the files were stored. */
export class TimeBudgetExhausted extends Error {
  constructor() {
    super('the request ran out of time before the files were stored');
    this.name = 'TimeBudgetExhausted';
  }
}

export interface DownloadDeps {
  jumdata: JumdataClient;
  store: JsonStore;
  s3: S3Client;
  bucket: string;
  policy: FileFetchPolicy;
  fileTimeoutMs: number;
  leaseSeconds: number;
  checkCreditCode: boolean;
}

/** How often a request that waits for another invocation's download looks again. */
const POLL_MS = 200;

/**
 * Mirror an invoice's files from Jumdata into S3, once.
 * Input: `{taxNum, invoiceNo, issueDate, direction}` as received, and the time left · Output: the mirrored invoice,
 * or "pending" when it cannot finish in time
 *  1. Answer from S3 when invoice.json exists: no billed call
 *  2. Claim the invoice's work record (exactly one invocation wins); others wait for the winner's result
 *  3. Ask Jumdata for the links, unless an earlier attempt already paid for them, and keep its answer at once
 *  4. Stream the three files into S3, then write invoice.json last, then drop the work record
 */
export function downloadInvoice(deps: DownloadDeps) {
  const schema = downloadRequestSchema(deps.checkCreditCode);
  const work = new WorkStore(deps.store, deps.leaseSeconds);

  return async (input: unknown, deadline: number): Promise<DownloadOutcome> => {
    const query = parseRequest(schema, input);
    let sawAnotherRunning = false;
    for (;;) {
      const [mirrored, current] = await Promise.all([
        readMirroredInvoice(deps.store, query.taxNum, query.invoiceNo),
        work.read(query),
      ]);
      if (mirrored) return { kind: 'mirrored', fromCache: true, invoice: mirrored };

      if (current && isLeaseLive(current.value)) {
        sawAnotherRunning = true;
      } else if (current && sawAnotherRunning) {
        // The invocation we waited for stopped without the files: its outcome is ours too.
        return outcomeOf(query, current.value);
      } else {
        const claimed = await work.claim(query, current);
        if (claimed) return runClaimed(query, claimed, deadline);
        continue; // another claimant won the race: look again at once
      }
      if (Date.now() + POLL_MS >= deadline) return pendingOutcome(query, 'another request is downloading this invoice');
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  };

  async function runClaimed(query: DownloadQuery, claimed: Stored<DownloadWork>, deadline: number): Promise<DownloadOutcome> {
    let held = claimed;
    const budget = new AbortController();
    const timer = setTimeout(() => budget.abort(new TimeBudgetExhausted()), Math.max(0, deadline - Date.now()));
    // Jumdata's billed answer is kept while the files stream, and must be kept before invoice.json is written.
    let keepAnswer: Promise<unknown> = Promise.resolve();
    try {
      // The invoice may have been finished between our look and our claim.
      const mirrored = await readMirroredInvoice(deps.store, query.taxNum, query.invoiceNo);
      if (mirrored) {
        await work.remove(query);
        return { kind: 'mirrored', fromCache: true, invoice: mirrored };
      }
      if (!held.value.jumdata) {
        const answer = await deps.jumdata.fetchInvoice(query);
        const change = { jumdata: { ...answer, fetchedAt: new Date().toISOString() } };
        held = { ...held, value: { ...held.value, ...change } };
        keepAnswer = work.update(claimed, change).then((kept) => (held = kept));
      }
      const jumdata = held.value.jumdata!;
      const [files] = await Promise.all([
        mirrorInvoiceFiles(jumdata.files, {
          s3: deps.s3,
          bucket: deps.bucket,
          prefix: invoicePrefix(query.taxNum, query.invoiceNo),
          invoiceNo: query.invoiceNo,
          policy: deps.policy,
          fileTimeoutMs: deps.fileTimeoutMs,
          signal: budget.signal,
        }),
        keepAnswer,
      ]);
      const invoice: MirroredInvoice = {
        ...query,
        mirroredAt: new Date().toISOString(),
        invoice: invoiceSummary(jumdata.fields),
        jumdata: { taskNo: jumdata.taskNo, charged: jumdata.charged, fields: jumdata.fields },
        files,
      };
      await deps.store.put(invoiceRecordKey(query.taxNum, query.invoiceNo), invoice);
      await work.remove(query);
      logger.info('invoice mirrored', { taxNum: query.taxNum, invoiceNo: query.invoiceNo, taskNo: jumdata.taskNo });
      return { kind: 'mirrored', fromCache: false, invoice };
    } catch (error) {
      await keepAnswer.catch(() => undefined); // the failure is recorded over the kept answer, not beside it
      const upstreamError = asUpstreamError(error);
      await recordFailure(held, upstreamError);
      if (upstreamError instanceof TimeBudgetExhausted) {
        return pendingOutcome(query, 'the files are still being mirrored; the work is kept and will be finished later');
      }
      throw upstreamError;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Keeps the unfinished work for a later run, or marks it failed when trying again cannot help. */
  async function recordFailure(held: Stored<DownloadWork>, error: unknown) {
    const { retryable, retryAfterSeconds } = classify(error);
    const lastError =
      error instanceof TimeBudgetExhausted
        ? { code: 'TIME_BUDGET_EXHAUSTED', message: error.message }
        : toErrorResponse(error).body.error;
    try {
      await work.update(held, {
        state: retryable ? 'pending' : 'failed',
        leaseUntil: undefined,
        lastError,
        nextAttemptAt: retryable ? new Date(Date.now() + retryAfterSeconds * 1000).toISOString() : undefined,
      });
    } catch (recordError) {
      // The lease lapsed and another invocation took over: its record wins.
      logger.warn('unfinished download not recorded', { error: recordError });
    }
  }
}

function pendingOutcome(query: DownloadQuery, message: string): DownloadOutcome {
  return { kind: 'pending', query, message };
}

/** What a waiter answers when the invocation it waited for stopped: pending, or the recorded failure. */
function outcomeOf(query: DownloadQuery, work: DownloadWork): DownloadOutcome {
  const lastError = work.lastError;
  if (work.state === 'failed' && lastError?.upstream) {
    throw new UpstreamRejectedError(lastError.upstream.provider, lastError.upstream.code, lastError.upstream.message, lastError.message);
  }
  if (work.state === 'failed') throw new UpstreamUnavailableError('jumdata', lastError?.message ?? 'the download failed');
  return pendingOutcome(query, `the download is unfinished: ${lastError?.message ?? 'it will be retried'}`);
}

/** Whether trying the same work again later can succeed, and how soon. */
function classify(error: unknown): { retryable: boolean; retryAfterSeconds: number } {
  if (error instanceof TimeBudgetExhausted) return { retryable: true, retryAfterSeconds: 0 };
  if (error instanceof TaxBureauLoginRequiredError) return { retryable: true, retryAfterSeconds: 3_600 };
  if (error instanceof UpstreamRateLimitedError || error instanceof UpstreamTemporaryError) {
    return { retryable: true, retryAfterSeconds: error.retryAfterSeconds };
  }
  if (error instanceof UpstreamRejectedError) return { retryable: false, retryAfterSeconds: 0 };
  if (error instanceof FileFetchUnavailable) return { retryable: error.retryable, retryAfterSeconds: 300 };
  return { retryable: true, retryAfterSeconds: 300 };
}

/** A file link that could not be mirrored, as the API reports it (502), remembering whether to try again. */
class FileFetchUnavailable extends UpstreamUnavailableError {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super('jumdata', message);
  }
}

function asUpstreamError(error: unknown): unknown {
  if (!(error instanceof FileFetchError)) return error;
  if (error.reason === 'timeout') return new UpstreamTimeoutError('jumdata', 0, `the invoice file host was too slow: ${error.message}`);
  return new FileFetchUnavailable(`an invoice file could not be mirrored: ${error.message}`, error.retryable);
}
