import type { S3Client } from '@aws-sdk/client-s3';
import { GaveUpError, TimeBudgetExhausted } from '#shared/errors';
import { jobLifecycle, type Attempt, type LifecycleSettings } from '#shared/job-lifecycle';
import { parseRequest, periodChecks, taxNumSchema } from '#shared/validation';
import * as z from '#shared/zod';
import type { InvoiceEntry } from './invoice-entry.ts';
import type { InvoiceIndex } from './invoice-index.ts';
import { writeLedger, type LedgerResult } from './ledger.ts';
import { durableLink } from './links.ts';
import type { FileKind } from './invoice-files.ts';

/**
 * GET /invoices/ledger as a job: the 台账 of one direction for a period, written to S3 under `ledgers/` from the
 * index. One that cannot be written within the request is kept pending, and the download function's sweep writes
 * it; asked again within LEDGER_REUSE_MS of being written, the same file is answered.
 */

/** How long a written ledger is answered again to the same question, rather than written anew. */
export const LEDGER_REUSE_MS = 15 * 60_000;

const TOO_MANY_ROWS =
  'the period holds more invoices than one ledger can be written for within a run; ask for shorter periods (a month, a quarter)';

export const ledgerRequestSchema = z.lazy(() =>
  z
    .object({
      taxNum: taxNumSchema(false),
      from: z.iso.date({ error: 'is required: a date as YYYY-MM-DD' }),
      to: z.iso.date({ error: 'is required: a date as YYYY-MM-DD' }),
      direction: z.enum(['sales', 'purchase'], { error: "is required: 'sales' (销项) or 'purchase' (进项), one ledger each" }),
      format: z._default(z.enum(['csv', 'xlsx'], { error: "must be 'csv' or 'xlsx'" }), 'csv'),
    })
    .check(...periodChecks()),
);

export type LedgerRequest = z.output<typeof ledgerRequestSchema>;

export const ledgerJobKey = (request: LedgerRequest) =>
  `ledger/${request.taxNum}/${request.direction}/${request.from}/${request.to}/${request.format}`;

export interface LedgerDeps {
  s3: S3Client;
  bucket: string;
  index: InvoiceIndex;
  jobs: LifecycleSettings;
  /** The key and base URL of the durable links written into the ledger. */
  links: () => Promise<{ linkKey: string; baseUrl: string }>;
}

export function ledgerJobs(deps: LedgerDeps) {
  async function write(request: LedgerRequest, job: Attempt<object>): Promise<LedgerResult> {
    const links = await deps.links();
    const signal = AbortSignal.timeout(Math.max(0, job.deadline - Date.now()));
    const linkOf = (entry: InvoiceEntry, kind: FileKind) => durableLink(links.baseUrl, links.linkKey, entry.taxNum, entry.invoiceNo, kind);
    try {
      return await writeLedger({ s3: deps.s3, bucket: deps.bucket, key: ledgerKey(request), format: request.format, entries: entries(deps.index, request), linkOf, signal });
    } catch (error) {
      if (!signal.aborted) throw error;
      // A sweep's run has no more time than the request had: trying again cannot help, so it is given up at once.
      if (job.mode === 'sweep') throw new GaveUpError(new TimeBudgetExhausted(TOO_MANY_ROWS), job.attempts);
      throw new TimeBudgetExhausted('the ledger could not be written within the time; it is kept pending and written later');
    }
  }

  const jobs = jobLifecycle<LedgerRequest, LedgerResult, object>(deps.jobs, { fn: 'download', keyOf: ledgerJobKey, attempt: write, reuseDoneMs: LEDGER_REUSE_MS });
  return { ...jobs, parse: (input: unknown) => parseRequest(ledgerRequestSchema, input) };
}

/** `ledgers/{taxNum}/{direction}/{from}_{to}-{written at}.{format}`: a new file each time, never one written over. */
function ledgerKey(request: LedgerRequest): string {
  const at = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `ledgers/${request.taxNum}/${request.direction}/${request.from}_${request.to}-${at}.${request.format}`;
}

/** A full collection, where the runtime allows it (`--expose-gc`, the download function's NODE_OPTIONS). */
const reclaimNow = () => (globalThis as { gc?: () => void }).gc?.();

/** Every entry of the period and direction, in GET /invoices order, a page of the index at a time. */
async function* entries(index: InvoiceIndex, request: LedgerRequest): AsyncIterable<InvoiceEntry> {
  let cursor: string | undefined;
  do {
    const page = await index.list({ taxNum: request.taxNum, from: request.from, to: request.to, direction: request.direction, limit: 500, cursor });
    yield* page.entries;
    cursor = page.cursor;
    // A page (about 1 MB parsed) is garbage once written, but outlives the function's small young generation: a
    // collection per page keeps memory flat whatever the rows (docs/measurements.md, "The archive: ledgers and listings").
    reclaimNow();
  } while (cursor);
}
