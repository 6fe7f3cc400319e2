import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { UPLOAD_SETTINGS } from '../functions/download/mirror.ts';
import { DOWNLOAD_NODE_OPTIONS } from '../functions/download/runtime-options.ts';
import { startLocalDynamo } from '../local/dynamodb.ts';
import { startLocalS3 } from '../local/s3.ts';
import { JUMDATA_SANDBOX_CREDENTIALS, startJumdataSandbox } from '../local/sandboxes/jumdata.ts';
import { criticalPath, describeChain, type Span } from './critical-path.ts';
import type { ServiceName } from './spans.ts';
import { localDownloadEnv } from './local-download-env.ts';

/**
 * `npm run bench`: mirrors invoices through the real download handler, against the Jumdata sandbox and the
 * embedded S3 and DynamoDB, with three 1 MB files and then three 100 MB files, and measures in the same run a
 * baseline that moves the same bytes with a bare fetch → Upload and nothing else. Each scenario runs in a child process of its
 * own (the servers stay in this one), so its peak RSS is its own.
 *
 * Beside the small files it counts the handler's round trips on the critical path (bench/critical-path.ts): the
 * longest chain of requests each sent after the previous one was answered, from spans recorded around the real
 * clients (bench/spans.ts), for a first download and for the same request answered from the archive. Unlike wall
 * time against a baseline that neither claims nor records, that count is what the handler controls.
 *
 * BENCH_SIZES picks the file sizes in MB (default `1,100`); `BENCH_SIZES=1` skips the slow 100 MB series.
 */

const MB = 1024 * 1024;
const SIZES = (process.env.BENCH_SIZES ?? '1,100').split(',').map((size) => {
  const mb = Number(size.trim());
  if (!(mb > 0)) throw new Error(`BENCH_SIZES: "${size}" is not a size in MB`);
  return mb * MB;
});
/** Invoices whose round trips are counted, after one warm-up; the most any of them needs is reported. */
const ROUND_TRIP_INVOICES = 5;
/** The targets: a first download claims, makes the billed call, moves the files and records; a cached answer reads. */
const ROUND_TRIP_TARGETS = { firstDownload: 4, cachedAnswer: 2 };
/** One warm-up invoice, then the timed ones: small invoices vary more from one to the next, so more of them. */
const TIMED_INVOICES = (size: number) => (size <= MB ? 15 : 3);
const BUCKET = 'bench';
const TAX_NUM = '91310117568051222X';

const workDir = await mkdtemp(join(tmpdir(), 'einvoice-bench-'));
const s3 = await startLocalS3({ directory: join(workDir, 's3'), buckets: [BUCKET] });
const dynamo = await startLocalDynamo({ directory: join(workDir, 'dynamodb'), tables: ['jobs'], invoiceTables: ['invoices'] });
const secretsFile = join(workDir, 'secrets.json');
await writeFile(secretsFile, JSON.stringify({ jumdata: JUMDATA_SANDBOX_CREDENTIALS, linkKey: { key: 'b'.repeat(64) } }));

interface Measure {
  medianWallMs: number;
  bytesPerInvoice: number;
  peakRssBytes: number;
}
const results: Array<{ size: number; mode: 'handler' | 'baseline' } & Measure> = [];
type RoundTrips = { firstDownload: Span[][]; cachedAnswer: Span[][] };
let roundTrips: RoundTrips | undefined;

let series = 0;
for (const size of SIZES) {
  const jumdata = await startJumdataSandbox({ fileBytes: size });
  // How many requests follow one another does not depend on the files' size: counted once, beside the first.
  for (const mode of size === SIZES[0] ? (['baseline', 'handler', 'round-trips'] as const) : (['baseline', 'handler'] as const)) {
    series += 1;
    const count = 1 + (mode === 'round-trips' ? ROUND_TRIP_INVOICES : TIMED_INVOICES(size));
    const invoiceNos = Array.from({ length: count }, (_, i) => `2431200000${String(series).padStart(5, '0')}${String(i).padStart(5, '0')}`);
    const services: ServiceName[] = [
      { host: new URL(s3.endpoint).host, name: 'S3' },
      { host: new URL(dynamo.endpoint).host, name: 'DynamoDB' },
      { host: jumdata.fileHost, name: 'jumdata' },
      // The sandbox serves the file links too.
      { host: jumdata.fileHost, pathPrefix: '/files/', name: 'file' },
    ];
    const input = { mode, invoiceNos, taxNum: TAX_NUM, fileHostUrl: jumdata.url, s3Endpoint: s3.endpoint, bucket: BUCKET, services };
    // Only these variables: no OBJECT_LOCK_YEARS, so Object Lock is off (the default).
    const env = {
      ...localDownloadEnv({ s3Endpoint: s3.endpoint, dynamoEndpoint: dynamo.endpoint, secretsFile, bucket: BUCKET, jobsTable: 'jobs' }),
      JUMDATA_BASE_URL: jumdata.url,
      MIRROR_ALLOWED_HOSTS: jumdata.fileHost,
      MIRROR_MAX_FILE_BYTES: String(200 * MB),
      MIRROR_FILE_TIMEOUT_MS: '300000',
    };
    process.stderr.write(`${mode}, 3 × ${size / MB} MB, ${count} invoices ...\n`);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'scenario.ts'), JSON.stringify(input)],
      { env, maxBuffer: 16 * MB, timeout: 600_000 },
    );
    const measured = JSON.parse(stdout.trim().split('\n').at(-1)!) as Measure | RoundTrips;
    if (mode === 'round-trips') roundTrips = measured as RoundTrips;
    else results.push({ size, mode, ...(measured as Measure) });
  }
  await jumdata.close();
}
await s3.close();
await dynamo.close();
await rm(workDir, { recursive: true, force: true });

const find = (size: number, mode: string) => results.find((r) => r.size === size && r.mode === mode)!;
const row = (r: (typeof results)[number]) =>
  `| 3 × ${r.size / MB} MB | ${r.mode} | ${r.medianWallMs.toFixed(0)} | ${(r.bytesPerInvoice / MB / (r.medianWallMs / 1000)).toFixed(1)} | ${(r.peakRssBytes / MB).toFixed(0)} |`;

const ratios: string[] = [];
if (SIZES.includes(MB) && SIZES.includes(100 * MB)) {
  const rssRatio = find(100 * MB, 'handler').peakRssBytes / find(MB, 'handler').peakRssBytes;
  ratios.push(`| handler peak RSS, 3 × 100 MB / 3 × 1 MB | ${rssRatio.toFixed(2)} | ≤ 1.30 |`);
}
for (const size of SIZES) {
  const wallRatio = find(size, 'handler').medianWallMs / find(size, 'baseline').medianWallMs;
  // Small files: mostly the handler's round trips, which the baseline does not make (claim, billed call, record);
  // those are counted below instead.
  const target = size >= 100 * MB ? '≤ 1.25' : 'none (informational)';
  ratios.push(`| handler / baseline wall time, 3 × ${size / MB} MB | ${wallRatio.toFixed(2)} | ${target} |`);
}

/** The most round trips any invoice needed, and each distinct chain that needed that many. */
function summarize(calls: Span[][]) {
  const paths = calls.map((spans) => criticalPath(spans));
  const most = Math.max(...paths.map((path) => path.length));
  const chains = new Map<string, number>();
  for (const path of paths.filter((p) => p.length === most)) {
    const chain = describeChain(path);
    chains.set(chain, (chains.get(chain) ?? 0) + 1);
  }
  return { most, lengths: paths.map((path) => path.length), chains };
}
const first = summarize(roundTrips!.firstDownload);
const cached = summarize(roundTrips!.cachedAnswer);
const chainLines = (name: string, summary: ReturnType<typeof summarize>) =>
  [...summary.chains].map(([chain, times]) => `${name} (${summary.most} round trip${summary.most === 1 ? '' : 's'}; ${times} of ${summary.lengths.length} invoices): ${chain}`);
const verdict = (measured: number, target: number) => `≤ ${target}, ${measured <= target ? 'met' : 'not met'}`;

console.log(`Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}
Each row: median of ${SIZES.map((size) => `${TIMED_INVOICES(size)} invoices of 3 × ${size / MB} MB`).join(', ')}, after one warm-up; multipart ${UPLOAD_SETTINGS.partSize / MB} MB parts, ${UPLOAD_SETTINGS.queueSize} in flight per file; NODE_OPTIONS=${DOWNLOAD_NODE_OPTIONS}.

| files | mode | wall ms | MB/s | peak RSS MB |
|---|---|---|---|---|
${results.map(row).join('\n')}

| ratio | measured | target |
|---|---|---|
${ratios.join('\n')}

critical path round trips: first download ${first.most}, cached answer ${cached.most}
Round trips: the longest chain of requests (AWS SDK calls, the Jumdata call, file transfers) each sent after the previous one
was answered, from spans recorded around the real clients during each handler call (3 × ${SIZES[0]! / MB} MB, Object Lock off); the most
over ${ROUND_TRIP_INVOICES} invoices after one warm-up, each downloaded first and then asked again (answered from the archive).
Per invoice: first download ${first.lengths.join(', ')}; cached answer ${cached.lengths.join(', ')}. Targets: first download ${verdict(first.most, ROUND_TRIP_TARGETS.firstDownload)}; cached answer ${verdict(cached.most, ROUND_TRIP_TARGETS.cachedAnswer)}.
A chain's steps are joined by →; requests that overlap, any of which can be that step, by +; a request and the one its answer
streams into (a file GET ⇒ its PutObject), one transfer, by ⇒.
${[...chainLines('first download', first), ...chainLines('cached answer', cached)].join('\n')}`);
