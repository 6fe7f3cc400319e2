import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DOWNLOAD_NODE_OPTIONS } from '../functions/download/runtime-options.ts';
import { startLocalDynamo } from '../local/dynamodb.ts';
import { startLocalS3 } from '../local/s3.ts';
import { localDownloadEnv } from './local-download-env.ts';
import type { EntrySet } from './archive-entries.ts';
import type { AuditMeasure, FillMeasure } from './audit-scenario.ts';
import type { ServiceName } from './spans.ts';

/**
 * The fourth part of `npm run bench`: the integrity audit (POST /audits) of 10,000 mirrored invoices and of 1,000, in
 * local mode's storage (s3rver, dynalite). Each invoice's three small files and invoice.json are written into the
 * local S3 and its index entry into the index, as mirroring writes them (bench/audit-objects.ts); then each set is
 * audited by taxpayer through the real download handler, each audit in a process of its own, every call answered
 * 202 followed by the next until the report is finished. Measured: wall time, calls, peak RSS, and every request
 * the handler sent, by service and command. Local mode keeps no S3 checksums: the audit HEADs each object and also
 * reads (GETs) each file; the report prints what an audit sends on AWS with checksums beside what was measured.
 * About 5 minutes on 2 cores, 2 of them writing the 44,000 objects; alone: `npm run bench:audit`.
 * BENCH_AUDIT_INVOICES=large,small changes the sets' sizes (default 10000,1000), BENCH_AUDIT_RUNS the audits of each.
 */

const BUCKET = 'bench';
const TARGETS = { rssRatio: 1.3, headsPerObject: 1 };
/**
 * Audits of each set (BENCH_AUDIT_RUNS, default 1: the bench then takes about 5 minutes on 2 cores), interleaved, the
 * median reported: a peak RSS depends on when V8 happens to collect.
 */
const AUDIT_RUNS = Number(process.env.BENCH_AUDIT_RUNS ?? 1);
if (!Number.isInteger(AUDIT_RUNS) || AUDIT_RUNS < 1) throw new Error(`BENCH_AUDIT_RUNS: "${process.env.BENCH_AUDIT_RUNS}" is not a number of runs`);
/**
 * Each run's jobs go in a table of their own, so that every audit is a first one and sends the same requests (a
 * later audit of the same scope takes the done record over: a read and a conditional write more).
 */
const jobsTableOf = (run: number) => `jobs-${run}`;
const [LARGE_COUNT, SMALL_COUNT] = (process.env.BENCH_AUDIT_INVOICES ?? '10000,1000').split(',').map((count) => {
  const invoices = Number(count.trim());
  if (!Number.isInteger(invoices) || invoices < 1) throw new Error(`BENCH_AUDIT_INVOICES: "${count}" is not a number of invoices`);
  return invoices;
}) as [number, number];

const LARGE: EntrySet = { taxNum: '91310117568051222X', direction: 'sales', from: '2024-01-01', to: '2024-12-31', count: LARGE_COUNT, numberPrefix: '24312000' };
const SMALL: EntrySet = { taxNum: '91330106MA2CFY4R1X', direction: 'sales', from: '2024-01-01', to: '2024-12-31', count: SMALL_COUNT, numberPrefix: '24332000' };
const SETS = [LARGE, SMALL];

const workDir = await mkdtemp(join(tmpdir(), 'einvoice-bench-audit-'));
const s3 = await startLocalS3({ directory: join(workDir, 's3'), buckets: [BUCKET] });
// In memory: the index and the jobs are written anew each run.
const dynamo = await startLocalDynamo({ tables: Array.from({ length: AUDIT_RUNS }, (_, run) => jobsTableOf(run)), invoiceTables: ['invoices'] });
const secretsFile = join(workDir, 'secrets.json');
await writeFile(secretsFile, JSON.stringify({ linkKey: { key: 'b'.repeat(64) } }));
const services: ServiceName[] = [
  { host: new URL(s3.endpoint).host, name: 'S3' },
  { host: new URL(dynamo.endpoint).host, name: 'DynamoDB' },
];

/**
 * The download function's environment in local mode, as bench/archive.ts sets it, with local mode's S3_CHECKSUMS=off
 * and no Object Lock (no retention to check). Nothing here calls Jumdata.
 */
const env = localDownloadEnv({ s3Endpoint: s3.endpoint, dynamoEndpoint: dynamo.endpoint, secretsFile, bucket: BUCKET, jobsTable: jobsTableOf(0) });

async function runScenario<T>(input: object, changes: Record<string, string> = {}): Promise<T> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'audit-scenario.ts'), JSON.stringify(input)],
    { env: { ...env, ...changes }, maxBuffer: 64 * 1024 * 1024, timeout: 30 * 60_000 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}

/** Every invoice of both sets, written in a process of its own (its client then has a core beside the servers'). */
function fill(): Promise<FillMeasure> {
  process.stderr.write(`writing ${SETS.map((set) => count(set.count)).join(' + ')} mirrored invoices (4 objects and an index entry each) ...\n`);
  return runScenario<FillMeasure>({ mode: 'fill', sets: SETS });
}

type AuditRun = AuditMeasure & { set: EntrySet; run: number };

/** Each set's audit AUDIT_RUNS times, interleaved, so that the machine's drift touches each alike. */
async function audits(): Promise<AuditRun[]> {
  const runs: AuditRun[] = [];
  for (let run = 0; run < AUDIT_RUNS; run++) {
    for (const set of SETS) {
      process.stderr.write(`audit ${run + 1} of ${AUDIT_RUNS}, ${count(set.count)} invoices ...\n`);
      const measured = await runScenario<AuditMeasure>({ mode: 'audit', taxNum: set.taxNum, services }, { JOBS_TABLE: jobsTableOf(run) });
      checkReport(measured, set);
      runs.push({ ...measured, set, run });
    }
  }
  return runs;
}

/** A clean archive: every invoice audited once, nothing found. */
function checkReport({ report }: AuditMeasure, set: EntrySet) {
  const expected = { scope: set.taxNum, finished: true, invoices: set.count, files: 3 * set.count, problems: 0, extended: 0, orphans: 0, unindexed: 0 };
  if (JSON.stringify(report) !== JSON.stringify(expected)) throw new Error(`the audit of ${set.count} invoices reported ${JSON.stringify(report)}`);
}

// ---------------------------------------------------------------------------------------------------------------
// The report

const MB = 1024 * 1024;
const count = (n: number) => n.toLocaleString('en-US');
const median = (values: number[]) => values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** Each set's runs: medians, every run's peak and calls, and the requests (the same in every run, or it says so). */
function summaryOf(runs: AuditRun[], set: EntrySet) {
  const mine = runs.filter((run) => run.set === set);
  const requestCounts = mine.map((run) => JSON.stringify(run.requests));
  const files = 3 * set.count;
  const objects = 4 * set.count;
  const requests = mine[0]!.requests;
  const n = (label: string) => requests[label] ?? 0;
  const s3Total = sumOf(requests, 'S3 ');
  return {
    set,
    wallMs: median(mine.map((run) => run.wallMs)),
    peakRssBytes: median(mine.map((run) => run.peakRssBytes)),
    peaks: mine.map((run) => run.peakRssBytes),
    calls: mine.map((run) => `${run.runs.length} (${run.runs.filter((r) => r.statusCode === 202).length} × 202)`),
    sameRequests: requestCounts.every((counted) => counted === requestCounts[0]),
    requests,
    files,
    objects,
    s3Total,
    dynamoTotal: sumOf(requests, 'DynamoDB '),
    headsPerObject: (n('S3 HeadObject file') + n('S3 HeadObject invoice.json')) / objects,
    headsPerFile: n('S3 HeadObject file') / files,
    readsPerFile: n('S3 GetObject file') / files,
    s3PerFile: s3Total / files,
    /** What the audit sends besides one request per object: its report's writes and reads, the listing. */
    s3Bookkeeping: s3Total - n('S3 HeadObject file') - n('S3 HeadObject invoice.json') - n('S3 GetObject file'),
  };
}

const sumOf = (requests: Record<string, number>, prefix: string) =>
  Object.entries(requests).reduce((sum, [label, n]) => (label.startsWith(prefix) ? sum + n : sum), 0);

type Summary = ReturnType<typeof summaryOf>;

function report(filled: FillMeasure, runs: AuditRun[]): string {
  const [large, small] = SETS.map((set) => summaryOf(runs, set)) as [Summary, Summary];
  const rssRatio = large.peakRssBytes / small.peakRssBytes;
  const labels = [...new Set([...Object.keys(large.requests), ...Object.keys(small.requests)])].sort();
  const perFile = (summary: Summary, label: string) => ((summary.requests[label] ?? 0) / summary.files).toFixed(3);
  const checks = [
    { what: 'HeadObject per object (3 files + invoice.json per invoice), both sets', measured: `${large.headsPerObject.toFixed(3)}, ${small.headsPerObject.toFixed(3)}`, target: String(TARGETS.headsPerObject), ok: large.headsPerObject === 1 && small.headsPerObject === 1 },
    { what: `peak RSS, ${count(large.set.count)} / ${count(small.set.count)} invoices`, measured: rssRatio.toFixed(2), target: `≤ ${TARGETS.rssRatio.toFixed(2)}`, ok: rssRatio <= TARGETS.rssRatio },
  ];
  const awsPerFile = (large.headsPerObject * 4) / 3 + large.s3Bookkeeping / large.files;
  return `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}
Filled: ${count(filled.invoices)} invoices, ${count(filled.objects)} objects (${(filled.bytes / MB).toFixed(1)} MB) into s3rver and ${count(filled.invoices)} index entries into dynalite in ${(filled.ms / 1000).toFixed(1)} s (${filled.concurrency} invoices at a time; ${(filled.objects / (filled.ms / 1000)).toFixed(0)} objects/s).
Audits: POST /audits {"taxNum"} through the download handler, each call with an API request's time (25 s, 3 s kept to answer), a 202 followed at once by the next call;
one process per audit, NODE_OPTIONS=${DOWNLOAD_NODE_OPTIONS}; S3_CHECKSUMS=off, no Object Lock (local mode); ${AUDIT_RUNS === 1 ? 'one audit of each set' : `median of ${AUDIT_RUNS} audits of each set, interleaved`}.
Requests counted as sent, from Node's diagnostics channels around the real clients (bench/request-counts.ts)${large.sameRequests && small.sameRequests ? '; every audit of a set sent the same requests' : '; the audits of a set sent different requests (the report\'s and the job\'s bookkeeping follow the calls): the first audit\'s are shown'}.

| audit of | invoices | files | calls (202s) | wall s | invoices/s | peak RSS MB | peak RSS MB, each audit |
|---|---|---|---|---|---|---|---|
${[large, small].map(auditRow).join('\n')}

| requests (measured, local mode) | ${count(large.set.count)} invoices | per file | ${count(small.set.count)} invoices | per file |
|---|---|---|---|---|
${labels.map((label) => `| ${label} | ${count(large.requests[label] ?? 0)} | ${perFile(large, label)} | ${count(small.requests[label] ?? 0)} | ${perFile(small, label)} |`).join('\n')}
| all S3 | ${count(large.s3Total)} | ${large.s3PerFile.toFixed(3)} | ${count(small.s3Total)} | ${small.s3PerFile.toFixed(3)} |
| all DynamoDB | ${count(large.dynamoTotal)} | ${(large.dynamoTotal / large.files).toFixed(3)} | ${count(small.dynamoTotal)} | ${(small.dynamoTotal / small.files).toFixed(3)} |

| measure | measured | target | met |
|---|---|---|---|
${checks.map((check) => `| ${check.what} | ${check.measured} | ${check.target} | ${check.ok ? 'yes' : 'no'} |`).join('\n')}

Measured, local mode (no S3 checksums, so each file is read as well as HEADed), ${count(large.set.count)} invoices: ${large.s3PerFile.toFixed(2)} S3 requests per file = ${large.headsPerFile.toFixed(2)} HeadObject + ${large.readsPerFile.toFixed(2)} GetObject per file, + ${((large.requests['S3 HeadObject invoice.json'] ?? 0) / large.files).toFixed(2)} HeadObject of invoice.json, + ${(large.s3Bookkeeping / large.files).toFixed(3)} of bookkeeping (the report's writes and reads, ListObjectsV2 for orphans).
HeadObject per object: ${large.headsPerObject.toFixed(3)} (${count((large.requests['S3 HeadObject file'] ?? 0) + (large.requests['S3 HeadObject invoice.json'] ?? 0))} HEADs / ${count(large.objects)} objects): one HEAD per object ${large.headsPerObject === 1 ? 'confirmed' : 'NOT confirmed'}.
Arithmetic, not measured (AWS with S3_CHECKSUMS on: S3's checksum answers the HEAD, no file is read): 4 HeadObject per invoice (3 files + invoice.json) = 1.33 per file, 0 GetObject; with this run's bookkeeping, ${awsPerFile.toFixed(3)} S3 requests per file.
Peak RSS ${count(large.set.count)} / ${count(small.set.count)} invoices: ${rssRatio.toFixed(2)} (target ≤ ${TARGETS.rssRatio.toFixed(2)}: ${checks[1]!.ok ? 'met' : 'not met'}).`;
}

const auditRow = (summary: Summary) =>
  `| ${count(summary.set.count)} invoices | ${count(summary.set.count)} | ${count(summary.files)} | ${summary.calls.join(', ')} | ${(summary.wallMs / 1000).toFixed(1)} | ${(summary.set.count / (summary.wallMs / 1000)).toFixed(0)} | ${(summary.peakRssBytes / MB).toFixed(0)} | ${summary.peaks.map((peak) => (peak / MB).toFixed(0)).join(', ')} |`;

// ---------------------------------------------------------------------------------------------------------------

const started = performance.now();
const filled = await fill();
const runs = await audits();
await s3.close();
await dynamo.close();
await rm(workDir, { recursive: true, force: true });

console.log(report(filled, runs));
console.log(`Whole bench: ${((performance.now() - started) / 1000).toFixed(0)} s.`);
