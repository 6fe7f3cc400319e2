import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as z from '#shared/zod';
import {
  LinksExpiredError,
  RecordedError,
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
  UnusableAnswerError,
  type DownloadQuery,
  type JumdataClient,
} from '#shared/providers/jumdata';
import { deferJob } from '#shared/job-runner';
import { isLeaseLive, type Held, type JobStore } from '#shared/jobs';
import { backoffSeconds, type RetryPolicy } from '#shared/retry-policy';
import type { JsonStore } from '#shared/storage';
import { issueDateSchema, parseRequest, taxNumSchema } from '#shared/validation';
import { invoicePrefix, invoiceRecordKey, readMirroredInvoice, type MirroredInvoice } from './archive.ts';
import { mirrorInvoiceFiles, type MirroredFile } from './mirror.ts';
import { lockObjects, ObjectLockError, type LockableObject } from './retention.ts';
import { downloadJobKey, WorkStore, type DownloadWork } from './work.ts';

/** Built at its first parse (z.lazy), not when the function is set up: see shared/zod.ts. */
export function downloadRequestSchema(checkCreditCode: boolean) {
  return z.lazy(() =>
    z.object({
      taxNum: taxNumSchema(checkCreditCode),
      invoiceNo: z
        .string({ error: 'is required and must be a string' })
        .check(z.regex(/^(\d{20}|\d{8})$/, { error: 'must be 20 digits (数电) or 8 digits' })),
      issueDate: issueDateSchema(),
      direction: z.enum(['sales', 'purchase'], { error: "must be 'sales' (销项) or 'purchase' (进项)" }),
    }),
  );
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
  jobs: JobStore;
  s3: S3Client;
  bucket: string;
  policy: FileFetchPolicy;
  fileTimeoutMs: number;
  /** The longest a Jumdata call may take: no call is started with less time than this left. */
  jumdataTimeoutMs: number;
  leaseSeconds: number;
  /** Backoff and attempt limit of unfinished downloads. */
  retryPolicy: RetryPolicy;
  /** Object Lock (compliance mode) for this many years on each mirrored invoice's objects; none when absent. */
  lockYears?: number;
  checkCreditCode: boolean;
}

export interface DownloadOptions {
  /**
   * A scheduled sweep's run: it does not wait for another invocation at work on the invoice, and it never pays
   * Jumdata again for links that expired before the files were stored: that job is recorded as failed
   * (LINKS_EXPIRED) for a person to decide. An API request, asked for explicitly, does ask Jumdata again.
   */
  sweep?: boolean;
}

/** A batch's download it had no time for: kept pending for the sweep (a paid-for answer it holds is kept too). */
export async function deferDownload(jobs: JobStore, checkCreditCode: boolean, input: unknown): Promise<void> {
  const query = parseRequest(downloadRequestSchema(checkCreditCode), input);
  await deferJob(jobs, 'download', downloadJobKey(query), query);
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
 *  4. Stream the three files into S3, then write invoice.json last, and mark the work record done
 * A request that finds another one at work waits for it, and answers what it answered.
 */
export function downloadInvoice(deps: DownloadDeps) {
  const schema = downloadRequestSchema(deps.checkCreditCode);
  const work = new WorkStore(deps.jobs, deps.leaseSeconds);

  return async (input: unknown, deadline: number, options: DownloadOptions = {}): Promise<DownloadOutcome> => {
    const query = parseRequest(schema, input);
    let sawAnotherRunning = false;
    for (;;) {
      const [mirrored, current] = await Promise.all([
        readMirroredInvoice(deps.store, query.taxNum, query.invoiceNo),
        work.read(query),
      ]);
      if (mirrored) {
        // A job left pending whose files another request stored meanwhile: the sweep closes it.
        if (options.sweep && current && current.value.state !== 'done' && !isLeaseLive(current.value)) {
          await work.finish(current).catch((error: unknown) => logger.warn('mirrored job not marked done', { error }));
        }
        return { kind: 'mirrored', fromCache: true, invoice: mirrored };
      }

      if (current && isLeaseLive(current.value)) {
        if (options.sweep) return pendingOutcome(query, 'another invocation is downloading this invoice');
        sawAnotherRunning = true;
      } else if (current && sawAnotherRunning && current.value.state !== 'done') {
        // The invocation we waited for stopped without the files: its outcome is ours too.
        return outcomeOf(query, current.value);
      } else {
        const claimed = await work.claim(query, current);
        if (claimed) return runClaimed(query, claimed, deadline, { created: !current, sweep: options.sweep === true });
        // Another claimant won the race: wait for its outcome rather than claim after it.
        sawAnotherRunning = true;
        continue;
      }
      if (Date.now() + POLL_MS >= deadline) return pendingOutcome(query, 'another request is downloading this invoice');
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  };

  async function runClaimed(
    query: DownloadQuery,
    claimed: Held<DownloadWork>,
    deadline: number,
    { created, sweep }: { created: boolean; sweep: boolean },
  ): Promise<DownloadOutcome> {
    let held = claimed;
    const budget = new AbortController();
    const timer = setTimeout(() => budget.abort(new TimeBudgetExhausted()), Math.max(0, deadline - Date.now()));
    // Jumdata's answer is kept while the files stream; if keeping it fails, the files are still worth storing.
    let keepAnswer: Promise<unknown> = Promise.resolve();
    try {
      // A record that we took over may belong to a run that finished between our look and our claim. One that we
      // created cannot: a finished run leaves its record behind (marked done), so creating it would have failed.
      const mirrored = created ? undefined : await readMirroredInvoice(deps.store, query.taxNum, query.invoiceNo);
      if (mirrored) {
        await work.finish(held);
        return { kind: 'mirrored', fromCache: true, invoice: mirrored };
      }
      if (!hasUsableAnswer(held.value)) {
        if (sweep && held.value.jumdata) {
          throw new LinksExpiredError(
            held.value.jumdata.linksGone
              ? 'the file links Jumdata was paid for are gone (the file host refused them)'
              : 'the file links Jumdata was paid for are over a month old',
          );
        }
        // A billed call is made only with time to keep its answer: an invocation killed in between pays twice.
        if (deadline - Date.now() < deps.jumdataTimeoutMs) throw new TimeBudgetExhausted();
        const answer = await deps.jumdata.fetchInvoice(query);
        const change = { jumdata: { ...answer, fetchedAt: new Date().toISOString() } };
        held = { ...held, value: { ...held.value, ...change } };
        keepAnswer = work.update(claimed, change).then(
          (kept) => (held = kept),
          (error: unknown) => logger.warn('billed answer not kept', { error }),
        );
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
      // The file versions under Object Lock: from here on they cannot be removed, whatever becomes of the attempt.
      let locked: LockedFiles | undefined;
      if (deps.lockYears !== undefined) {
        // Locked before invoice.json exists: an invoice is only ever complete with its files locked. A refusal
        // leaves the job pending with the paid answer kept; whatever got locked before it stays (and is logged).
        try {
          const retainUntil = await lockObjects(deps.s3, deps.bucket, Object.values(files), deps.lockYears);
          locked = { locked: Object.values(files), retainUntil };
        } catch (error) {
          await removeFiles(deps, files, error instanceof ObjectLockError ? error : undefined);
          throw error;
        }
      }
      const invoice: MirroredInvoice = {
        ...query,
        mirroredAt: new Date().toISOString(),
        invoice: invoiceSummary(jumdata.fields),
        jumdata: { taskNo: jumdata.taskNo, charged: jumdata.charged, fields: jumdata.fields },
        files,
      };
      // invoice.json and the record's "done" are written together. Should invoice.json fail, the files go and the
      // record, done or not, still holds the paid-for answer for the next attempt.
      const [recorded, finished] = await Promise.allSettled([
        // Under Object Lock, invoice.json is stored locked, until the same date as its files.
        deps.store.put(invoiceRecordKey(query.taxNum, query.invoiceNo), invoice, { lockUntil: locked?.retainUntil }),
        work.finish(held),
      ]);
      if (finished.status === 'fulfilled') held = finished.value;
      else logger.warn('finished work record not marked done', { error: finished.reason });
      if (recorded.status === 'rejected') {
        // Without invoice.json the files are orphans: they go (unless locked), and the kept answer lets a later run
        // redo them.
        await removeFiles(deps, files, locked);
        throw recorded.reason;
      }
      logger.info('invoice mirrored', { taxNum: query.taxNum, invoiceNo: query.invoiceNo, taskNo: jumdata.taskNo });
      return { kind: 'mirrored', fromCache: false, invoice };
    } catch (error) {
      await keepAnswer; // the failure is recorded over the kept answer, not beside it
      let upstreamError = asUpstreamError(error);
      if (sweep && upstreamError instanceof FileFetchUnavailable && upstreamError.linkGone) {
        upstreamError = new LinksExpiredError(`the file links Jumdata was paid for are gone (${upstreamError.message})`);
      }
      const recorded = await recordFailure(held, upstreamError);
      if (upstreamError instanceof TimeBudgetExhausted) {
        if (recorded === 'failed') {
          throw new UpstreamTimeoutError('jumdata', 0, `the files could not be mirrored in time in ${held.value.attempts} attempts; given up`);
        }
        return pendingOutcome(query, 'the files are still being mirrored; the work is kept and will be finished later');
      }
      throw upstreamError;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * When to try again: at once after the time budget ran out (the next sweep goes on), otherwise after the backoff,
   * but always while the links Jumdata was paid for still work.
   */
  function nextAttemptAt(work: DownloadWork, error: unknown, retryAfterSeconds: number, now: number): string {
    const delaySeconds = error instanceof TimeBudgetExhausted ? 0 : backoffSeconds(work.attempts, deps.retryPolicy, retryAfterSeconds);
    let at = now + delaySeconds * 1000;
    if (work.jumdata) at = Math.min(at, Date.parse(work.jumdata.fetchedAt) + LINK_LIFETIME_MS - LINK_SAFETY_MS);
    return new Date(Math.max(at, now)).toISOString();
  }

  /** Keeps the unfinished work for a later run, or marks it failed when trying again cannot help; says which. */
  async function recordFailure(held: Held<DownloadWork>, error: unknown): Promise<'pending' | 'failed'> {
    const { retryable, retryAfterSeconds, linksGone } = classify(error);
    const attempts = held.value.attempts;
    const gaveUp = retryable && attempts >= deps.retryPolicy.maxAttempts;
    const state = retryable && !gaveUp ? 'pending' : 'failed';
    const { statusCode, body, headers } =
      error instanceof TimeBudgetExhausted
        ? { statusCode: 202, body: { error: { code: 'TIME_BUDGET_EXHAUSTED', message: error.message } }, headers: undefined }
        : toErrorResponse(error);
    // One clock reading: the next attempt is measured from the record's update, never a millisecond short.
    const recordedAt = new Date();
    try {
      await work.update(held, {
        state,
        leaseUntil: undefined,
        lastError: { ...body.error, statusCode, retryAfter: headers?.['retry-after'] },
        nextAttemptAt: state === 'pending' ? nextAttemptAt(held.value, error, retryAfterSeconds, recordedAt.getTime()) : undefined,
        // Links that are gone for good (expired) are kept, marked: an API request buys new ones, a sweep does not.
        jumdata: linksGone && held.value.jumdata ? { ...held.value.jumdata, linksGone: true } : held.value.jumdata,
      }, recordedAt);
    } catch (recordError) {
      // The lease lapsed and another invocation took over: its record wins.
      logger.warn('unfinished download not recorded', { error: recordError });
    }
    return state;
  }
}

/** Jumdata's links live about a month; an answer older than this is not used to fetch files. */
const LINK_LIFETIME_MS = 29 * 24 * 3600 * 1000;
/** The last attempt with kept links is due at least this long before they are no longer used. */
const LINK_SAFETY_MS = 6 * 3600 * 1000;

const hasUsableAnswer = (work: DownloadWork) =>
  work.jumdata !== undefined && !work.jumdata.linksGone && Date.now() - Date.parse(work.jumdata.fetchedAt) < LINK_LIFETIME_MS;

/** Versions of an attempt's files under Object Lock, and until when. */
interface LockedFiles {
  locked: readonly LockableObject[];
  retainUntil: Date;
}

/**
 * Removes the files of an attempt that did not finish. Versions under Object Lock cannot be removed (S3 refuses every
 * delete until the lock ends): they are left, and said so once, by key, version and date, so that someone can
 * account for them. The next attempt stores new versions over them; the locked ones stay as old versions.
 */
async function removeFiles(deps: DownloadDeps, files: MirroredInvoice['files'], lock?: LockedFiles) {
  const isLocked = (file: MirroredFile) =>
    lock?.locked.some((version) => version.key === file.key && version.versionId === file.versionId) ?? false;
  const stayLocked = Object.values(files).filter(isLocked);
  if (stayLocked.length > 0) {
    logger.error('files of an unfinished download stay locked (Object Lock, compliance mode) and cannot be removed', {
      lockedVersions: stayLocked.map((file) => ({ key: file.key, versionId: file.versionId })),
      retainUntil: lock!.retainUntil.toISOString(),
    });
  }
  await Promise.all(
    Object.values(files)
      .filter((file) => !isLocked(file))
      .map((file) =>
        deps.s3
          .send(new DeleteObjectCommand({ Bucket: deps.bucket, Key: file.key, VersionId: file.versionId }))
          .catch((error: unknown) => logger.error('orphaned file not removed', { key: file.key, error })),
      ),
  );
}

function pendingOutcome(query: DownloadQuery, message: string): DownloadOutcome {
  return { kind: 'pending', query, message };
}

/** What a waiter answers when the invocation it waited for stopped: the very answer that invocation gave. */
function outcomeOf(query: DownloadQuery, work: DownloadWork): DownloadOutcome {
  const lastError = work.lastError;
  if (!lastError || lastError.statusCode === 202) {
    return pendingOutcome(query, `the download is unfinished: ${lastError?.message ?? 'it will be retried'}`);
  }
  const { statusCode, retryAfter, ...error } = lastError;
  throw new RecordedError({
    statusCode,
    body: { error },
    headers: retryAfter ? { 'retry-after': retryAfter } : undefined,
  });
}

/** Whether trying the same work again later can succeed, how soon, and whether the kept links are still good. */
function classify(error: unknown): { retryable: boolean; retryAfterSeconds: number; linksGone: boolean } {
  const verdict = (retryable: boolean, retryAfterSeconds = 0, linksGone = false) => ({ retryable, retryAfterSeconds, linksGone });
  if (error instanceof TimeBudgetExhausted) return verdict(true, 0);
  // Someone has to log in through Jumdata first: no point asking again within the hour.
  if (error instanceof TaxBureauLoginRequiredError) return verdict(true, 3_600);
  if (error instanceof UpstreamRateLimitedError || error instanceof UpstreamTemporaryError) {
    return verdict(true, error.retryAfterSeconds);
  }
  if (error instanceof UpstreamRejectedError || error instanceof LinksExpiredError) return verdict(false);
  // The file host says the link is gone (expired): a new answer from Jumdata is needed, so try again without it.
  if (error instanceof FileFetchUnavailable && error.linkGone) return verdict(true, 0, true);
  if (error instanceof FileFetchUnavailable || error instanceof UnusableAnswerError) return verdict(error.retryable);
  return verdict(true);
}

/** A file link that could not be mirrored, as the API reports it (502), remembering whether to try again. */
class FileFetchUnavailable extends UpstreamUnavailableError {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly linkGone: boolean,
  ) {
    super('jumdata', message);
  }
}

function asUpstreamError(error: unknown): unknown {
  if (!(error instanceof FileFetchError)) return error;
  if (error.reason === 'timeout') return new UpstreamTimeoutError('jumdata', 0, `the invoice file host was too slow: ${error.message}`);
  const linkGone = error.reason === 'http_status' && /HTTP (403|404|410)$/.test(error.message);
  return new FileFetchUnavailable(`an invoice file could not be mirrored: ${error.message}`, error.retryable, linkGone);
}
