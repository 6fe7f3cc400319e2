import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { UPLOAD_SETTINGS } from '../functions/download/mirror.ts';
import { DOWNLOAD_NODE_OPTIONS } from '../functions/download/runtime-options.ts';
import { startLocalDynamo } from '../local/dynamodb.ts';
import { LOCAL_S3_CREDENTIALS, startLocalS3 } from '../local/s3.ts';
import { JUMDATA_SANDBOX_CREDENTIALS, startJumdataSandbox } from '../local/sandboxes/jumdata.ts';

/**
 * `npm run bench`: mirrors invoices through the real download handler, against the Jumdata sandbox and the
 * embedded S3 and DynamoDB, with three 1 MB files and then three 100 MB files, and measures in the same run a
 * baseline that moves the same bytes with a bare fetch → Upload and nothing else. Each scenario runs in a child process of its
 * own (the servers stay in this one), so its peak RSS is its own.
 */

const MB = 1024 * 1024;
const SIZES = [1 * MB, 100 * MB];
/** One warm-up invoice, then the timed ones: small invoices vary more from one to the next, so more of them. */
const TIMED_INVOICES = (size: number) => (size <= MB ? 15 : 3);
const BUCKET = 'bench';
const TAX_NUM = '91310117568051222X';

const workDir = await mkdtemp(join(tmpdir(), 'einvoice-bench-'));
const s3 = await startLocalS3({ directory: join(workDir, 's3'), buckets: [BUCKET] });
const dynamo = await startLocalDynamo({ directory: join(workDir, 'dynamodb'), tables: ['jobs'] });
const secretsFile = join(workDir, 'secrets.json');
await writeFile(secretsFile, JSON.stringify({ jumdata: JUMDATA_SANDBOX_CREDENTIALS, linkKey: { key: 'b'.repeat(64) } }));

interface Measure {
  medianWallMs: number;
  bytesPerInvoice: number;
  peakRssBytes: number;
}
const results: Array<{ size: number; mode: 'handler' | 'baseline' | 'floor' } & Measure> = [];

let series = 0;
for (const size of SIZES) {
  const jumdata = await startJumdataSandbox({ fileBytes: size });
  // The floor does not depend on the files' size: it is measured once, beside the small files.
  for (const mode of size === SIZES[0] ? (['baseline', 'handler', 'floor'] as const) : (['baseline', 'handler'] as const)) {
    series += 1;
    const invoiceNos = Array.from({ length: 1 + TIMED_INVOICES(size) }, (_, i) => `2431200000${String(series).padStart(5, '0')}${String(i).padStart(5, '0')}`);
    const input = { mode, invoiceNos, taxNum: TAX_NUM, fileHostUrl: jumdata.url, s3Endpoint: s3.endpoint, bucket: BUCKET };
    const env = {
      PATH: process.env.PATH,
      AWS_REGION: 'cn-north-1',
      AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      LOCAL_SECRETS_FILE: secretsFile,
      BUCKET_NAME: BUCKET,
      S3_ENDPOINT: s3.endpoint,
      JOBS_TABLE: 'jobs',
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      JUMDATA_BASE_URL: jumdata.url,
      MIRROR_ALLOWED_HOSTS: jumdata.fileHost,
      MIRROR_MAX_FILE_BYTES: String(200 * MB),
      MIRROR_FILE_TIMEOUT_MS: '300000',
      PUBLIC_BASE_URL: 'http://127.0.0.1:3000',
      // The deployed function's options, for the handler and the baseline alike.
      NODE_OPTIONS: DOWNLOAD_NODE_OPTIONS,
    };
    process.stderr.write(`${mode}, 3 × ${size / MB} MB ...\n`);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'scenario.ts'), JSON.stringify(input)],
      { env, maxBuffer: 16 * MB, timeout: 600_000 },
    );
    results.push({ size, mode, ...(JSON.parse(stdout.trim().split('\n').at(-1)!) as Measure) });
  }
  await jumdata.close();
}
await s3.close();
await dynamo.close();
await rm(workDir, { recursive: true, force: true });

const find = (size: number, mode: string) => results.find((r) => r.size === size && r.mode === mode)!;
const row = (r: (typeof results)[number]) =>
  `| 3 × ${r.size / MB} MB | ${r.mode} | ${r.medianWallMs.toFixed(0)} | ${(r.bytesPerInvoice / MB / (r.medianWallMs / 1000)).toFixed(1)} | ${(r.peakRssBytes / MB).toFixed(0)} |`;

const small = SIZES[0]!;
const large = SIZES[1]!;
const rssRatio = find(large, 'handler').peakRssBytes / find(small, 'handler').peakRssBytes;
const floorMs = find(small, 'floor').medianWallMs;
const allowanceMs = 0.25 * find(small, 'baseline').medianWallMs;
const wallRatios = SIZES.map((size) => find(size, 'handler').medianWallMs / find(size, 'baseline').medianWallMs);

console.log(`Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}
Each row: median of ${SIZES.map((size) => `${TIMED_INVOICES(size)} invoices of 3 × ${size / MB} MB`).join(', ')}, after one warm-up; multipart ${UPLOAD_SETTINGS.partSize / MB} MB parts, ${UPLOAD_SETTINGS.queueSize} in flight per file; NODE_OPTIONS=${DOWNLOAD_NODE_OPTIONS}.

| files | mode | wall ms | MB/s | peak RSS MB |
|---|---|---|---|---|
${results.filter((r) => r.mode !== 'floor').map(row).join('\n')}

| ratio | measured | target |
|---|---|---|
| handler peak RSS, 3 × 100 MB / 3 × 1 MB | ${rssRatio.toFixed(2)} | ≤ 1.30 |
${SIZES.map((size, i) => `| handler / baseline wall time, 3 × ${size / MB} MB | ${wallRatios[i]!.toFixed(2)} | ≤ 1.25 |`).join('\n')}

The floor, 3 × ${small / MB} MB: the claim, the billed Jumdata call and invoice.json, one after another, take ${floorMs.toFixed(1)} ms
(median of ${TIMED_INVOICES(small)}); 1.25 × the baseline leaves ${allowanceMs.toFixed(1)} ms for everything the handler adds, so the least
ratio any handler that bills once and keeps its record can reach here is ${((find(small, 'baseline').medianWallMs + floorMs) / find(small, 'baseline').medianWallMs).toFixed(2)}.`);
