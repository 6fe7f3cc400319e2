import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { loadDownloadConfig, sweepSettingsOf } from '#shared/config';
import { ForbiddenError, NotFoundError } from '#shared/errors';
import { parseAllowedHosts } from '#shared/fetch-policy';
import { listJobs } from '#shared/jobs-api';
import { actionHandler, API_BUDGET_MS, batchHandler, httpHandler, lambdaEntry, sweepHandler, type HttpReply, type ParsedHttpEvent } from '#shared/middleware';
import { isOutOfTime, pendingReply, replyOf } from '#shared/outcomes';
import { erpTold } from '#shared/invoice-erp';
import { jumdataSecretSchema, linkKeySecretSchema, loadProviderSecret } from '#shared/secrets';
import { createJobStore, type Held, type JobRecord } from '#shared/jobs';
import { sweep } from '#shared/sweep';
import { createS3Client } from '#shared/storage';
import { parseRequest } from '#shared/validation';
import { downloadInvoice, type DownloadRequest } from './download-invoice.ts';
import { erpUpdateInvoker } from './erp-invoke.ts';
import { invoiceIndex } from './invoice-index.ts';
import { fileLinkSchema, isValidLinkSignature, presignGet } from './links.ts';
import { loadMirroring } from './load-mirroring.ts';
import { presentInvoice } from './present.ts';
import { tellErp } from './tell-erp.ts';

const config = loadDownloadConfig();
const secretSource = (secretId: string | undefined) => ({
  secretId,
  localFile: config.LOCAL_SECRETS_FILE,
  cacheSeconds: config.SECRETS_CACHE_SECONDS,
});
const linkKey = async () => (await loadProviderSecret('linkKey', linkKeySecretSchema, secretSource(config.LINK_KEY_SECRET_ID))).key;

const s3 = createS3Client(config.S3_ENDPOINT);
// One DynamoDB client for the jobs table and the index, which marshal alike: a document client sets its options on
// the client it wraps, so the ERP chain, which marshals otherwise, has its own. A second client cost 1.7 ms of cold start.
const dynamodb = new DynamoDBClient({});
const jobs = createJobStore(config.JOBS_TABLE, dynamodb);
const index = invoiceIndex(dynamodb, config.INVOICES_TABLE);
const settings = sweepSettingsOf(config);
const retentionRule =
  config.OBJECT_LOCK_YEARS === undefined
    ? undefined
    : { years: config.OBJECT_LOCK_YEARS, from: config.OBJECT_LOCK_FROM, graceYears: config.OBJECT_LOCK_GRACE_YEARS };

/** Built once, at first use: a module only some requests need is loaded then, not at every cold start. */
const once = <T>(build: () => Promise<T>): (() => Promise<T>) => {
  let built: Promise<T> | undefined;
  return () => (built ??= build());
};

/** Jumdata's client: loaded with the first invoice this instance buys, like the rest of mirroring, not at cold start. */
const jumdataClient = once(async () =>
  (await loadMirroring()).createJumdataClient({
    baseUrl: config.JUMDATA_BASE_URL,
    downloadPath: config.JUMDATA_DOWNLOAD_PATH,
    timeoutMs: config.UPSTREAM_TIMEOUT_MS,
    credentials: () => loadProviderSecret('jumdata', jumdataSecretSchema, secretSource(config.JUMDATA_SECRET_ID)),
  }),
);

const download = downloadInvoice({
  jumdata: { fetchInvoice: async (query) => (await jumdataClient()).fetchInvoice(query) },
  jobs,
  index,
  s3,
  bucket: config.BUCKET_NAME,
  policy: { allowedHosts: parseAllowedHosts(config.MIRROR_ALLOWED_HOSTS), maxBytes: config.MIRROR_MAX_FILE_BYTES, maxRedirects: 3 },
  fileTimeoutMs: config.MIRROR_FILE_TIMEOUT_MS,
  jumdataTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
  leaseSeconds: config.LEASE_SECONDS,
  retryPolicy: settings,
  waitMs: config.JOB_WAIT_MS,
  retention: retentionRule,
  checksums: config.S3_CHECKSUMS === 'on',
  checkCreditCode: config.TAX_NUM_CHECK === 'strict',
});

/** Time kept back from the invocation's remaining time to write records and answer. */
const ANSWER_MARGIN_MS = 3_000;

/** How the ledger, audit and ERP-update jobs this function records are leased and retried, as its downloads. */
const lifecycle = { store: jobs, leaseSeconds: config.LEASE_SECONDS, policy: settings, waitMs: config.JOB_WAIT_MS };

/** The 台账: loaded by its route and by a sweep writing one. */
const ledgers = once(async () =>
  (await import('./archive-routes.ts')).ledgerJobs({
    s3,
    bucket: config.BUCKET_NAME,
    index,
    jobs: lifecycle,
    // A ledger may be written by the sweep, with no request to take a host from.
    links: async () => ({ linkKey: await linkKey(), baseUrl: config.PUBLIC_BASE_URL ?? '' }),
  }),
);

/**
 * The ERP told by itself: built at the first download that carries `erp`, with its own DynamoDB client (its
 * document client must not share translation settings with the others) and, at its first send, the Lambda client.
 */
const erpChain = once(async () =>
  tellErp({
    told: erpTold(new DynamoDBClient({}), config.INVOICES_TABLE),
    jobs: lifecycle,
    sendNow: erpUpdateInvoker(config.ERP_UPDATE_FUNCTION),
    // The ERP's links are on the configured base, never a request's host (a sweep has none).
    links: async () => ({ linkKey: await linkKey(), baseUrl: config.PUBLIC_BASE_URL ?? '' }),
  }),
);

/** The integrity audit: loaded by its routes, its schedule and a sweep resuming it. */
const audits = once(async () => {
  const { auditAnswers, auditJobs } = await import('./archive-routes.ts');
  const jobsOfAudit = auditJobs({
    s3,
    bucket: config.BUCKET_NAME,
    index,
    jobs: lifecycle,
    retention: retentionRule,
  });
  return auditAnswers(jobsOfAudit, { answerMarginMs: ANSWER_MARGIN_MS, apiBudgetMs: API_BUDGET_MS });
});

async function answerDownload(input: unknown, context: Context, baseUrl: string, budgetMs: number, runId?: string): Promise<HttpReply> {
  const query = download.parse(input);
  // The link key before anything is billed: a deployment without it must not pay Jumdata for an answer it cannot give.
  const links = { s3, bucket: config.BUCKET_NAME, linkKey: await linkKey(), baseUrl, presignSeconds: config.PRESIGNED_URL_SECONDS };
  const deadline = Date.now() + Math.min(context.getRemainingTimeInMillis(), budgetMs) - ANSWER_MARGIN_MS;
  const outcome = await download.run(query, { deadline, mode: 'request', runId });
  return replyOf(outcome, {
    done: async ({ invoice }, fromCache) => {
      const told = query.erp ? { erp: await (await erpChain()).tell(invoice, query.erp, deadline) } : {};
      return { statusCode: 200, body: { ...(await presentInvoice(invoice, fromCache, links, query)), ...told } };
    },
    // The contract's 202: the work is kept and a sweep finishes it. Other reasons answer as the errors they are.
    pending: (reason) => (isOutOfTime(reason) ? downloadPending(query, 'the files are still being mirrored; the work is kept and will be finished later') : undefined),
    busy: (retryAfterSeconds) => downloadPending(query, 'another request is downloading this invoice', retryAfterSeconds),
  });
}

function downloadPending(query: DownloadRequest, message: string, retryAfterSeconds?: number): HttpReply {
  const { taxNum, invoiceNo, issueDate } = query;
  // The ERP is told once the files are safe: by the sweep that finishes them, if not by a request.
  const told = query.erp ? { erp: { invoiceNo: query.erp.invoiceNo, status: 'pending', message: 'WDT is told once the invoice is mirrored' } } : {};
  return pendingReply(message, retryAfterSeconds, { taxNum, invoiceNo, issueDate, ...told });
}

/** GET /files/{taxNum}/{invoiceNo}/{kind}?sig=...: a durable link, answered with a fresh presigned URL. */
async function answerFileLink(event: ParsedHttpEvent): Promise<HttpReply> {
  const { taxNum, invoiceNo, kind, sig } = parseRequest(fileLinkSchema, {
    ...event.pathParameters,
    sig: event.queryStringParameters?.sig,
  });
  if (!isValidLinkSignature(await linkKey(), taxNum, invoiceNo, kind, sig)) {
    throw new ForbiddenError('This link is not valid: its signature does not match');
  }
  const archived = await download.archive.read(taxNum, invoiceNo);
  if (!archived) throw new NotFoundError(`Invoice ${invoiceNo} of ${taxNum} is not mirrored`);
  const { url, expiresAt } = await presignGet(s3, config.BUCKET_NAME, archived.invoice.files[kind].key, config.PRESIGNED_URL_SECONDS);
  return { statusCode: 302, headers: { location: url, 'cache-control': 'no-store' }, body: { url, expiresAt } };
}

/** Durable links point back at the API the request came to, unless PUBLIC_BASE_URL says otherwise. */
function baseUrlOf(event: ParsedHttpEvent): string {
  if (config.PUBLIC_BASE_URL) return config.PUBLIC_BASE_URL;
  const host = event.headers?.host ?? event.requestContext.domainName;
  const scheme = event.headers?.['x-forwarded-proto'] ?? 'https';
  return `${scheme}://${host}`;
}

/**
 * A sweep's (or batch's) download: the time an API request has. One that needs longer is left pending with its paid
 * answer kept, and the next sweep goes on from there without paying again.
 */
const sweepJobTimeoutMs = API_BUDGET_MS;

/** A download job, or a ledger or an audit left to the sweep (its key says which). */
async function resumeJob(job: Held<JobRecord>, deadline: number) {
  if (job.value.key.startsWith('ledger/')) {
    const ledgerJobsOf = await ledgers();
    return ledgerJobsOf.resume(job, deadline, ledgerJobsOf.parse);
  }
  if (job.value.key.startsWith('audit/')) {
    const { jobs: auditJobsOf } = await audits();
    return auditJobsOf.resume(job, deadline, auditJobsOf.parse);
  }
  return resumeDownload(job, deadline);
}

/** A download the sweep finishes; one that carries `erp` then has the ERP told, as its request would have. */
async function resumeDownload(job: Held<JobRecord>, deadline: number) {
  const state = await download.resume(job, deadline, download.parse);
  const request = job.value.request as DownloadRequest;
  if (state !== 'done' || !request.erp) return state;
  const archived = await download.archive.read(request.taxNum, request.invoiceNo);
  if (archived) await (await erpChain()).tell(archived.invoice, request.erp, deadline);
  return state;
}

/**
 * GET /invoices/ledger: 303 to the 台账 written to S3, with its rows, totals and sha256; 202 while it is being
 * written (here or by the sweep).
 */
async function answerLedger(event: ParsedHttpEvent, context: Context): Promise<HttpReply> {
  const ledgerJobsOf = await ledgers();
  const request = ledgerJobsOf.parse(event.queryStringParameters ?? {});
  const deadline = Date.now() + Math.min(context.getRemainingTimeInMillis(), API_BUDGET_MS) - ANSWER_MARGIN_MS;
  const outcome = await ledgerJobsOf.run(request, { deadline, mode: 'request' });
  return replyOf(outcome, {
    done: async ({ key, rows, totals, sha256 }) => {
      const { url, expiresAt } = await presignGet(s3, config.BUCKET_NAME, key, config.PRESIGNED_URL_SECONDS);
      return { statusCode: 303, headers: { location: url, 'cache-control': 'no-store' }, body: { rows, totals, url, expiresAt, key, sha256 } };
    },
    pending: (reason) => (isOutOfTime(reason) ? pendingReply('the ledger is being written; ask again in a minute') : undefined),
    busy: (retryAfterSeconds) => pendingReply('the ledger is being written by another request', retryAfterSeconds),
  });
}

/** GET /invoices: a page of the archive's index. */
async function answerInvoiceList(event: ParsedHttpEvent): Promise<HttpReply> {
  const links = async () => ({ linkKey: await linkKey(), baseUrl: baseUrlOf(event) });
  const { listInvoices } = await import('./archive-routes.ts');
  return { statusCode: 200, body: await listInvoices(index, event.queryStringParameters ?? {}, links) };
}

function answerHttp(event: ParsedHttpEvent, context: Context): Promise<HttpReply> {
  if (event.routeKey === 'GET /jobs') return listJobs(jobs, event.queryStringParameters);
  if (event.routeKey === 'GET /invoices') return answerInvoiceList(event);
  if (event.routeKey === 'GET /invoices/ledger') return answerLedger(event, context);
  if (event.routeKey === 'POST /audits') return audits().then((audit) => audit.answerAudit(event.body, context));
  if (event.routeKey === 'GET /audits/latest') return audits().then((audit) => audit.answerLatest());
  if (event.requestContext.http.method === 'GET') return answerFileLink(event);
  return answerDownload(event.body, context, baseUrlOf(event), API_BUDGET_MS);
}

export const handler = lambdaEntry(
  httpHandler(answerHttp),
  batchHandler((job, context, runId) => answerDownload(job, context, config.PUBLIC_BASE_URL ?? '', sweepJobTimeoutMs, runId), {
    jobTimeoutMs: sweepJobTimeoutMs,
    callsPerMinute: settings.callsPerMinute,
    defer: (batch, deadline) => download.defer(batch, deadline, download.parse),
  }),
  sweepHandler((context) =>
    sweep(
      { store: jobs, fn: 'download', settings, jobTimeoutMs: sweepJobTimeoutMs, processJob: resumeJob },
      context,
    ),
  ),
  {
    // `{"action": "audit"}`: the schedule's integrity audit of the whole archive (docs/api.md, "Integrity audit").
    audit: actionHandler(async (_event, context) => (await audits()).runScheduled(context)),
    // `{"action": "reindex", "cursor"?}`: index the invoices mirrored before the index (docs/api.md, "The archive").
    reindex: actionHandler(async (event, context) =>
      (await import('./archive-routes.ts')).reindex(download.archive, index, {
        cursor: typeof event.cursor === 'string' ? event.cursor : undefined,
        deadline: Date.now() + context.getRemainingTimeInMillis(),
      }),
    ),
  },
);
