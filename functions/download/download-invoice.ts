import type { S3Client } from '@aws-sdk/client-s3';
import type { FileFetchPolicy } from '#shared/fetch-policy';
import { jobLifecycle } from '#shared/job-lifecycle';
import type { JobStore } from '#shared/jobs';
import type { DownloadQuery, JumdataClient } from '#shared/providers/jumdata';
import type { RetryPolicy } from '#shared/retry-policy';
import { issueDateSchema, parseRequest, taxNumSchema } from '#shared/validation';
import * as z from '#shared/zod';
import { invoiceArchive, type ArchivedInvoice } from './archive.ts';
import type { InvoiceIndex } from './invoice-index.ts';
import { loadMirroring } from './load-mirroring.ts';
import { downloadJobKey, linksUsableUntil, type KeptAnswer } from './work.ts';
import type { RetentionRule } from './retention.ts';
import { erpBlockSchema, type ErpBlock } from './erp-block.ts';

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
      // The ERP told by itself once the invoice is mirrored (tell-erp.ts); validated before anything is billed.
      erp: z.optional(erpBlockSchema()),
    }),
  );
}

/** A download as asked: the invoice, and the ERP update to chain to it. */
export type DownloadRequest = DownloadQuery & { erp?: ErpBlock };

/** The invoice alone: what Jumdata is asked and the archive keeps (never the ERP block). */
const queryOf = ({ erp: _erp, ...query }: DownloadRequest): DownloadQuery => query;

export interface DownloadDeps {
  jumdata: JumdataClient;
  jobs: JobStore;
  /** The archive's index of mirrored invoices. */
  index: InvoiceIndex;
  s3: S3Client;
  bucket: string;
  policy: FileFetchPolicy;
  fileTimeoutMs: number;
  /** The longest a Jumdata call may take: no call is started with less time than this left. */
  jumdataTimeoutMs: number;
  leaseSeconds: number;
  /** Backoff and attempt limit of unfinished downloads. */
  retryPolicy: RetryPolicy;
  /** How long a request waits for another invocation downloading the same invoice (default 3 s). */
  waitMs?: number;
  /** Object Lock (compliance mode) on each mirrored invoice's objects, for this long; none when absent. */
  retention?: RetentionRule;
  /** Upload each file with a checksum S3 keeps (S3_CHECKSUMS). */
  checksums?: boolean;
  checkCreditCode: boolean;
}

/**
 * Mirror an invoice's files from Jumdata into S3, once.
 * Input: `{taxNum, invoiceNo, issueDate, direction}` · Output: the job's outcome, done with the archived invoice
 *  1. Claim the invoice's job, reading the archive beside the claim: a mirrored invoice is answered from there
 *  2. Take Jumdata's answer kept by an earlier attempt, or buy it (once) and keep it (buy-answer.ts); an attempt that
 *     takes over from one that died holding the job first removes what that one may have left
 *  3. Stream the three files into S3 and lock them; invoice.json last, beside the record's done (archive.ts)
 * Another request at work on the same invoice is waited for briefly, and its outcome answered.
 */
export function downloadInvoice(deps: DownloadDeps) {
  const schema = downloadRequestSchema(deps.checkCreditCode);
  const archive = invoiceArchive(deps);
  const lifecycle = { store: deps.jobs, leaseSeconds: deps.leaseSeconds, policy: deps.retryPolicy, waitMs: deps.waitMs ?? 3_000 };

  const jobs = jobLifecycle<DownloadRequest, ArchivedInvoice, KeptAnswer>(lifecycle, {
    fn: 'download',
    keyOf: downloadJobKey,
    find: (query) => archive.read(query.taxNum, query.invoiceNo),
    // The attempt (Jumdata's call, the fetcher, the upload) is loaded at the first invoice this instance mirrors.
    attempt: async (request, job) => (await loadMirroring()).mirrorOnce(deps, archive, queryOf(request), job),
    commit: (archived) => archive.commit(archived),
    dueBy: (kept) => (kept.jumdata ? linksUsableUntil(kept.jumdata) : undefined),
  });
  return { ...jobs, parse: (input: unknown): DownloadRequest => parseRequest(schema, input), archive };
}
