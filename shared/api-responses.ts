import * as z from 'zod';
import { JOB_FUNCTIONS, type JobFunction } from '#shared/jobs';

/**
 * The bodies the HTTP API answers, as zod schemas: the responses of openapi.json (infra/openapi.ts). The handlers
 * build their answers without them, so test/unit/openapi.test.ts checks real answers against them instead.
 */

/** The one error shape of every route (ErrorBody in shared/errors.ts). */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.string().describe('What went wrong, e.g. `VALIDATION_FAILED`; each response names the codes it carries'),
    message: z.string(),
    details: z.array(z.object({ field: z.string(), message: z.string() })).optional().describe('400: every bad field'),
    upstream: z
      .object({ provider: z.enum(['fw199', 'wdt', 'jumdata']), code: z.union([z.string(), z.number()]), message: z.string() })
      .optional()
      .describe("The provider's own code and message, when it refused"),
  }),
});

/** POST /retry, 200: the order was already issued. */
export const retryIssuedSchema = z.object({
  orderNo: z.string(),
  status: z.literal('issued'),
  message: z.string().describe("The gateway's message"),
  invoiceNo: z.string(),
  pdfUrl: z.string().describe("The invoice's pdf as the gateway links it"),
});

/** POST /retry, 202: Nuonuo issues again (retrying) or is still issuing (in_progress); the result is pushed later. */
export const retryAcceptedSchema = z.object({
  orderNo: z.string(),
  status: z.enum(['retrying', 'in_progress']),
  message: z.string().describe("The gateway's message"),
});

/** POST /erp-update, 200: WDT took the update. */
export const erpUpdateResultSchema = z.object({
  invoiceNo: z.string(),
  status: z.literal([65, 75, 80]),
  message: z.string().describe("WDT's message"),
});

const mirroredFileSchema = z.object({
  url: z.url().describe('A presigned S3 URL, short-lived: hand out `link` instead'),
  expiresAt: z.iso.datetime(),
  link: z.url().describe('The durable link (GET /files/...), valid as long as the file exists'),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  contentType: z.enum(['application/pdf', 'application/zip']).describe("What the file's bytes are"),
});

const money = () => z.string().regex(/^(-?\d+\.\d{2})?$/).describe('A decimal string with two decimals, negative on a red-letter invoice; "" when unknown');
const party = z.object({ taxNum: z.string(), name: z.string() });

/** The invoice's metadata: the tax bureau's XML, and Jumdata's verdicts (the XML's fields are absent on invoices mirrored before it was read). */
export const invoiceMetadataSchema = z.object({
  number: z.string().optional(),
  issuedAt: z.string().optional().describe('`YYYY-MM-DD HH:MM:SS` (China time) as the XML says'),
  type: z.string().optional().describe('e.g. 普通发票, 增值税专用发票'),
  seller: party.optional(),
  buyer: party.optional(),
  amount: money().optional(),
  tax: money().optional(),
  total: money().optional(),
  items: z
    .array(
      z.object({
        name: z.string(),
        spec: z.string(),
        unit: z.string(),
        quantity: z.string(),
        unitPrice: z.string(),
        amount: money(),
        taxRate: z.string().describe('A percentage (`6%`), or text such as 免税'),
        tax: money(),
      }),
    )
    .optional()
    .describe("In the XML's order, discount lines (negative, no quantity) included"),
  redLetterOf: z.string().nullable().optional().describe('The blue invoice a red-letter invoice reverses'),
  remark: z.string().optional(),
  voided: z.boolean(),
  redFlushed: z.boolean(),
  buyerTaxNum: z.string().optional(),
  verification: z.string().optional().describe("Jumdata's 查验结果"),
});

export const invoiceChecksSchema = z.object({
  xmlRead: z.boolean(),
  numberMatches: z.boolean(),
  partyMatches: z.boolean(),
  itemsAddUp: z.boolean(),
  problem: z.string().optional().describe('Why the XML could not be read'),
});

/** POST /download, 200: the invoice is mirrored (now, or earlier: fromCache). */
/** The ERP told by itself (`erp` on POST /download): where the chained update to 旺店通 stands. */
const erpAnswerSchema = z
  .object({
    invoiceNo: z.string().describe("The ERP's invoice number (`erp.invoiceNo`)"),
    status: z
      .enum(['sent', 'pending', 'failed', 'skipped'])
      .describe('`sent`: WDT answered code 0 (it is told once); `pending`: the erp-update function (or its sweep) sends it; `failed`: WDT refused (GET /jobs?state=failed); `skipped`: voided, red-flushed, red-letter or unreadable, not told'),
    message: z.string(),
  })
  .describe('Present when the request carried `erp`');

export const downloadResultSchema = z.object({
  taxNum: z.string(),
  invoiceNo: z.string(),
  issueDate: z.iso.date(),
  direction: z.enum(['sales', 'purchase']),
  fromCache: z.boolean().describe('Answered from S3, with no (billed) Jumdata call'),
  mirroredAt: z.iso.datetime(),
  invoice: invoiceMetadataSchema,
  checks: invoiceChecksSchema
    .optional()
    .describe('What reading the XML found (absent on an invoice mirrored before the XML was read)'),
  files: z.object({ pdf: mirroredFileSchema, ofd: mirroredFileSchema, xml: mirroredFileSchema }),
  notice: z
    .string()
    .optional()
    .describe('Present when the invoice was stored earlier under another `issueDate` or `direction` than asked: names the stored values, which this answer carries'),
  erp: erpAnswerSchema.optional(),
});

/** GET /invoices, 200: a page of a taxpayer's mirrored invoices, by issue date then invoice number. */
export const invoiceListSchema = z.object({
  invoices: z.array(
    z.object({
      taxNum: z.string(),
      invoiceNo: z.string(),
      issueDate: z.iso.date().describe("The XML's issue date where it was read, else the download request's"),
      direction: z.enum(['sales', 'purchase']),
      mirroredAt: z.iso.datetime(),
      invoice: invoiceMetadataSchema.omit({ items: true }),
      checks: invoiceChecksSchema.optional(),
      files: z.object(
        Object.fromEntries(
          (['pdf', 'ofd', 'xml'] as const).map((kind) => [kind, mirroredFileSchema.omit({ url: true, expiresAt: true })]),
        ) as Record<'pdf' | 'ofd' | 'xml', z.ZodObject<Omit<typeof mirroredFileSchema.shape, 'url' | 'expiresAt'>>>,
      ),
    }),
  ),
  cursor: z.string().optional().describe('Pass as `cursor` for the next page; absent on the last one. A page may hold fewer than `limit` invoices'),
});

const totalsSchema = z.object({ amount: money(), tax: money(), total: money() });

/** GET /invoices/ledger, 303: the 台账 written to S3; `Location` is its presigned URL. */
export const ledgerWrittenSchema = z.object({
  rows: z.number().int().nonnegative(),
  totals: totalsSchema.describe('Exact sums over the rows that are not voided, as the 合计 row says'),
  url: z.url().describe('A presigned S3 URL of the file, short-lived (the Location header)'),
  expiresAt: z.iso.datetime(),
  key: z.string().describe('`ledgers/{taxNum}/{direction}/{from}_{to}-{written at}.csv|xlsx` in the bucket'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

/** GET /invoices/ledger, 202: the ledger is being written (here, by another request, or by the sweep). */
export const ledgerPendingSchema = z.object({ status: z.literal('pending'), message: z.string() });

const objectKind = z.enum(['pdf', 'ofd', 'xml', 'invoice.json']);

/** POST /audits and GET /audits/latest, 200: an integrity audit's report, as written under `audits/`. */
export const auditReportSchema = z.object({
  scope: z.string().describe('`all`, or the taxpayer audited'),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime().optional().describe('Absent while the run goes on'),
  finished: z.boolean(),
  invoices: z.number().int().nonnegative().describe('Invoices checked so far'),
  files: z.number().int().nonnegative().describe('Files (pdf, ofd, xml) checked so far'),
  problems: z.array(
    z.object({
      taxNum: z.string(),
      invoiceNo: z.string(),
      kind: objectKind,
      problem: z.enum(['missing', 'overwritten', 'size', 'checksum', 'unlocked', 'retention']),
      message: z.string(),
    }),
  ),
  extended: z
    .array(z.object({ taxNum: z.string(), invoiceNo: z.string(), kind: objectKind, from: z.iso.datetime().optional(), to: z.iso.datetime() }))
    .describe('Locks the audit lengthened to the retention rule (`from` absent: the object was not locked)'),
  orphans: z
    .array(z.object({ key: z.string(), versionId: z.string().optional(), removed: z.boolean(), retainUntil: z.iso.datetime().optional(), error: z.string().optional() }))
    .describe('Objects of no complete invoice, older than a day: removed by version, or kept by their Object Lock until `retainUntil`'),
  unindexed: z.number().int().nonnegative().describe('Invoices mirrored before the index, not audited: `npm run reindex` indexes them'),
  key: z.string().describe('`audits/{started at}-{scope}.json` in the bucket'),
});

/** POST /audits, 202: the audit goes on in the background (a sweep, or the next run of the schedule). */
export const auditPendingSchema = z.object({ status: z.literal('pending'), message: z.string() });

/** POST /download, 202: the files could not be stored within the request's time; a sweep finishes the work. */
export const downloadPendingSchema = z.object({
  taxNum: z.string(),
  invoiceNo: z.string(),
  issueDate: z.iso.date(),
  status: z.literal('pending'),
  message: z.string(),
  erp: erpAnswerSchema.optional(),
});

/** GET /files/..., 302: the presigned URL of the Location header, and when it expires. */
export const fileLinkRedirectSchema = z.object({
  url: z.url(),
  expiresAt: z.iso.datetime(),
});

/** GET /jobs, 200. */
export const jobListSchema = z.object({
  state: z.enum(['pending', 'failed']),
  cursor: z.string().optional().describe('Pass as `cursor` for the next page; absent on the last one'),
  jobs: z.array(
    z.object({
      function: z.enum(JOB_FUNCTIONS as [JobFunction, ...JobFunction[]]),
      key: z.string(),
      // Done jobs leave the index that GET /jobs reads.
      state: z.enum(['running', 'pending', 'failed']),
      request: z.unknown().describe('The request as its route took it'),
      attempts: z.number().int().nonnegative(),
      lastError: errorBodySchema.shape.error
        .extend({ statusCode: z.number().int().min(100).max(599), retryAfter: z.string().optional() })
        .optional()
        .describe('The answer the last attempt gave'),
      nextAttemptAt: z.iso.datetime().optional(),
      leaseUntil: z.iso.datetime().optional().describe('While running: when another invocation may take the job over'),
      createdAt: z.iso.datetime(),
      updatedAt: z.iso.datetime(),
    }),
  ),
});
