import type { Context } from 'aws-lambda';
import { loadDownloadConfig, sweepSettingsOf } from '#shared/config';
import { ForbiddenError, NotFoundError, toErrorResponse, ValidationError } from '#shared/errors';
import { parseAllowedHosts } from '#shared/file-fetch';
import { listJobs } from '#shared/jobs-api';
import { API_BUDGET_MS, batchHandler, httpHandler, lambdaEntry, sweepHandler, type HttpReply, type ParsedHttpEvent } from '#shared/middleware';
import { createJumdataClient } from '#shared/providers/jumdata';
import { jumdataSecretSchema, linkKeySecretSchema, loadProviderSecret } from '#shared/secrets';
import { createJobStore, type Held, type JobRecord } from '#shared/jobs';
import { sweep, type SweptState } from '#shared/sweep';
import { createS3Client, JsonStore } from '#shared/storage';
import { parseRequest } from '#shared/validation';
import { readMirroredInvoice } from './archive.ts';
import { deferDownload, downloadInvoice } from './download-invoice.ts';
import { fileLinkSchema, isValidLinkSignature, presignGet } from './links.ts';
import { presentInvoice } from './present.ts';

const config = loadDownloadConfig();
const secretSource = (secretId: string | undefined) => ({
  secretId,
  localFile: config.LOCAL_SECRETS_FILE,
  cacheSeconds: config.SECRETS_CACHE_SECONDS,
});
const linkKey = async () => (await loadProviderSecret('linkKey', linkKeySecretSchema, secretSource(config.LINK_KEY_SECRET_ID))).key;

const s3 = createS3Client(config.S3_ENDPOINT);
const store = new JsonStore(s3, config.BUCKET_NAME);
const jobs = createJobStore(config.JOBS_TABLE);
const settings = sweepSettingsOf(config);
const download = downloadInvoice({
  jumdata: createJumdataClient({
    baseUrl: config.JUMDATA_BASE_URL,
    downloadPath: config.JUMDATA_DOWNLOAD_PATH,
    timeoutMs: config.UPSTREAM_TIMEOUT_MS,
    credentials: () => loadProviderSecret('jumdata', jumdataSecretSchema, secretSource(config.JUMDATA_SECRET_ID)),
  }),
  store,
  jobs,
  s3,
  bucket: config.BUCKET_NAME,
  policy: { allowedHosts: parseAllowedHosts(config.MIRROR_ALLOWED_HOSTS), maxBytes: config.MIRROR_MAX_FILE_BYTES, maxRedirects: 3 },
  fileTimeoutMs: config.MIRROR_FILE_TIMEOUT_MS,
  jumdataTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
  leaseSeconds: config.LEASE_SECONDS,
  retryPolicy: settings,
  lockYears: config.OBJECT_LOCK_YEARS,
  checkCreditCode: config.TAX_NUM_CHECK === 'strict',
});

/** Time kept back from the invocation's remaining time to write records and answer. */
const ANSWER_MARGIN_MS = 3_000;

async function answerDownload(input: unknown, context: Context, baseUrl: string, budgetMs: number): Promise<HttpReply> {
  // The link key first: a missing key must stop the request before Jumdata bills it.
  const key = await linkKey();
  const outcome = await download(input, Date.now() + Math.min(context.getRemainingTimeInMillis(), budgetMs) - ANSWER_MARGIN_MS);
  if (outcome.kind === 'pending') {
    const { taxNum, invoiceNo, issueDate } = outcome.query;
    return { statusCode: 202, body: { taxNum, invoiceNo, issueDate, status: 'pending', message: outcome.message } };
  }
  const links = { s3, bucket: config.BUCKET_NAME, linkKey: key, baseUrl, presignSeconds: config.PRESIGNED_URL_SECONDS };
  return { statusCode: 200, body: await presentInvoice(outcome.invoice, outcome.fromCache, links) };
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
  const invoice = await readMirroredInvoice(store, taxNum, invoiceNo);
  if (!invoice) throw new NotFoundError(`Invoice ${invoiceNo} of ${taxNum} is not mirrored`);
  const { url, expiresAt } = await presignGet(s3, config.BUCKET_NAME, invoice.files[kind].key, config.PRESIGNED_URL_SECONDS);
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

/** A recorded download, taken up by the sweep; how it ended is read back from its record. */
async function resumeDownload(job: Held<JobRecord>, deadline: number): Promise<SweptState> {
  let failure: unknown;
  try {
    const outcome = await download(job.value.request, deadline, { sweep: true });
    if (outcome.kind === 'mirrored') return 'done';
  } catch (error) {
    failure = error; // recorded on the job, unless it came before the claim
  }
  const after = await jobs.get('download', job.value.key);
  if (!after || after.value.state === 'done') return 'done';
  if (failure instanceof ValidationError && after.version === job.version) {
    // It failed before claiming the job (its stored request no longer passes validation): due forever otherwise.
    const { statusCode, body } = toErrorResponse(failure);
    await jobs.replace(after, { ...after.value, state: 'failed', lastError: { ...body.error, statusCode }, updatedAt: new Date().toISOString() });
    return 'failed';
  }
  return after.value.state === 'running' ? 'skipped' : after.value.state;
}

function answerHttp(event: ParsedHttpEvent, context: Context): Promise<HttpReply> {
  if (event.routeKey === 'GET /jobs') return listJobs(jobs, event.queryStringParameters);
  if (event.requestContext.http.method === 'GET') return answerFileLink(event);
  return answerDownload(event.body, context, baseUrlOf(event), API_BUDGET_MS);
}

export const handler = lambdaEntry(
  httpHandler(answerHttp),
  // A download is its own idempotency: a job run twice finds its files stored, and Jumdata is not asked again.
  batchHandler((job, context) => answerDownload(job, context, config.PUBLIC_BASE_URL ?? '', sweepJobTimeoutMs), {
    jobTimeoutMs: sweepJobTimeoutMs,
    callsPerMinute: settings.callsPerMinute,
    defer: (job) => deferDownload(jobs, config.TAX_NUM_CHECK === 'strict', job),
  }),
  sweepHandler((context) =>
    sweep({ store: jobs, fn: 'download', settings, jobTimeoutMs: sweepJobTimeoutMs, processJob: resumeDownload }, context),
  ),
);
