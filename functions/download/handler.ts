import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { loadDownloadConfig, sweepSettingsOf } from '#shared/config';
import { ForbiddenError, NotFoundError } from '#shared/errors';
import { parseAllowedHosts } from '#shared/file-fetch';
import { listJobs } from '#shared/jobs-api';
import { batchHandler, httpHandler, lambdaEntry, sweepHandler, type HttpReply, type ParsedHttpEvent } from '#shared/middleware';
import { createJumdataClient } from '#shared/providers/jumdata';
import { jumdataSecretSchema, linkKeySecretSchema, loadProviderSecret } from '#shared/secrets';
import { createJobStore, type Held, type JobRecord } from '#shared/jobs';
import { sweep, type SweptState } from '#shared/sweep';
import { createS3Client, JsonStore } from '#shared/storage';
import { parseRequest, taxNumSchema } from '#shared/validation';
import { readMirroredInvoice } from './archive.ts';
import { downloadInvoice } from './download-invoice.ts';
import { isValidLinkSignature, presignGet } from './links.ts';
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
  checkCreditCode: config.TAX_NUM_CHECK === 'strict',
});

/** Time kept back from the invocation's remaining time to write records and answer. */
const ANSWER_MARGIN_MS = 3_000;

async function answerDownload(input: unknown, context: Context, baseUrl: string): Promise<HttpReply> {
  // The link key first: a missing key must stop the request before Jumdata bills it.
  const key = await linkKey();
  const outcome = await download(input, Date.now() + context.getRemainingTimeInMillis() - ANSWER_MARGIN_MS);
  if (outcome.kind === 'pending') {
    const { taxNum, invoiceNo, issueDate } = outcome.query;
    return { statusCode: 202, body: { taxNum, invoiceNo, issueDate, status: 'pending', message: outcome.message } };
  }
  const links = { s3, bucket: config.BUCKET_NAME, linkKey: key, baseUrl, presignSeconds: config.PRESIGNED_URL_SECONDS };
  return { statusCode: 200, body: await presentInvoice(outcome.invoice, outcome.fromCache, links) };
}

const fileLinkSchema = z.object({
  taxNum: taxNumSchema(false),
  invoiceNo: z.string().regex(/^(\d{20}|\d{8})$/, { error: 'must be 20 digits (数电) or 8 digits' }),
  kind: z.enum(['pdf', 'ofd', 'xml'], { error: "must be 'pdf', 'ofd' or 'xml'" }),
  sig: z.string({ error: 'is required: use the link from a download response' }).min(1),
});

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
 * A sweep's download: Jumdata's answer and a few seconds for the files. One that needs longer is left pending with
 * its paid answer kept, and the next sweep goes on from there without paying again.
 */
const sweepJobTimeoutMs = config.UPSTREAM_TIMEOUT_MS + 5_000;

/** A recorded download, taken up by the sweep; how it ended is read back from its record. */
async function resumeDownload(job: Held<JobRecord>, deadline: number): Promise<SweptState> {
  try {
    const outcome = await download(job.value.request, deadline, { sweep: true });
    if (outcome.kind === 'mirrored') return 'done';
  } catch {
    // Recorded on the job; the sweep reports the state it left.
  }
  const after = await jobs.get('download', job.value.key);
  if (!after || after.value.state === 'done') return 'done';
  return after.value.state === 'running' ? 'skipped' : after.value.state;
}

function answerHttp(event: ParsedHttpEvent, context: Context): Promise<HttpReply> {
  if (event.routeKey === 'GET /jobs') return listJobs(jobs, event.queryStringParameters);
  if (event.requestContext.http.method === 'GET') return answerFileLink(event);
  return answerDownload(event.body, context, baseUrlOf(event));
}

export const handler = lambdaEntry(
  httpHandler(answerHttp),
  // A download is its own idempotency: a job run twice finds its files stored, and Jumdata is not asked again.
  batchHandler((job, context) => answerDownload(job, context, config.PUBLIC_BASE_URL ?? '')),
  sweepHandler((context) =>
    sweep({ store: jobs, fn: 'download', settings, jobTimeoutMs: sweepJobTimeoutMs, processJob: resumeDownload }, context),
  ),
);
