import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LedgerFormat } from '../functions/download/ledger.ts';
import { DOWNLOAD_NODE_OPTIONS } from '../functions/download/runtime-options.ts';
import { startLocalDynamo } from '../local/dynamodb.ts';
import { startLocalS3 } from '../local/s3.ts';
import { localDownloadEnv } from './local-download-env.ts';
import type { EntrySet } from './archive-entries.ts';
import type { FillMeasure, LedgerMeasure, ListingMeasure } from './archive-scenario.ts';
import type { ServiceName } from './spans.ts';

/**
 * The third part of `npm run bench`: the archive at 10,000 invoices, in local mode's storage (s3rver, dynalite).
 * - Ledgers: a year of 10,000 invoices and a year of 1,000 (two taxpayers), as CSV and as XLSX, each written by a
 *   GET /invoices/ledger job in a process of its own: wall time and peak RSS, and how much more memory ten times
 *   the rows take (the writer streams, so it should take hardly any).
 * - GET /invoices: a month of 10,000 invoices (a third taxpayer), every page of 500 through the real download
 *   handler: how many requests each page sends to DynamoDB (one query) and to S3 (none).
 * The entries are written first through the index's own `add`, as mirroring writes them. About a minute; alone:
 * `npm run bench:archive`.
 */

const BUCKET = 'bench';
/** The most GET /invoices allows: the fewest pages. */
const PAGE_LIMIT = 500;
const TARGETS = { ledgerRssRatio: 1.3, dynamoRequestsPerPage: 1, s3Requests: 0 };
/** Runs of each ledger, the median reported: a peak RSS depends on when V8 happens to collect. */
const LEDGER_RUNS = 3;
/**
 * Each run's jobs go in a table of their own: the same question asked again within LEDGER_REUSE_MS would be answered
 * with the file already written, not written anew.
 */
const jobsTableOf = (run: number) => `jobs-${run}`;

const LEDGER_LARGE: EntrySet = { taxNum: '91310117568051222X', direction: 'sales', from: '2024-01-01', to: '2024-12-31', count: 10_000, numberPrefix: '24312000' };
const LEDGER_SMALL: EntrySet = { taxNum: '91330106MA2CFY4R1X', direction: 'sales', from: '2024-01-01', to: '2024-12-31', count: 1_000, numberPrefix: '24332000' };
const LISTED_MONTH: EntrySet = { taxNum: '91110108MA01G7XQ6L', direction: 'sales', from: '2024-04-01', to: '2024-04-30', count: 10_000, numberPrefix: '24112000' };

const workDir = await mkdtemp(join(tmpdir(), 'einvoice-bench-archive-'));
const s3 = await startLocalS3({ directory: join(workDir, 's3'), buckets: [BUCKET] });
// In memory: the index is written anew each run.
const dynamo = await startLocalDynamo({ tables: Array.from({ length: LEDGER_RUNS }, (_, run) => jobsTableOf(run)), invoiceTables: ['invoices'] });
const secretsFile = join(workDir, 'secrets.json');
await writeFile(secretsFile, JSON.stringify({ linkKey: { key: 'b'.repeat(64) } }));

/** The download function's environment in local mode, as bench/download.ts sets it; nothing here calls Jumdata. */
const env = localDownloadEnv({ s3Endpoint: s3.endpoint, dynamoEndpoint: dynamo.endpoint, secretsFile, bucket: BUCKET, jobsTable: jobsTableOf(0) });

/** The entries of every set, written in a process of its own (bench/archive-scenario.ts says why). */
function fill(sets: EntrySet[]): Promise<FillMeasure> {
  process.stderr.write(`filling the index: ${sets.map((set) => set.count).join(' + ')} entries ...\n`);
  return runScenario<FillMeasure>({ mode: 'fill', sets });
}

async function runScenario<T>(input: object, changes: Record<string, string> = {}): Promise<T> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'archive-scenario.ts'), JSON.stringify(input)],
    { env: { ...env, ...changes }, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}

type LedgerRun = LedgerMeasure & { set: EntrySet; format: LedgerFormat; run: number };

/** Every ledger LEDGER_RUNS times, the runs interleaved so that the machine's drift touches each alike. */
async function writeLedgers(): Promise<LedgerRun[]> {
  const runs: LedgerRun[] = [];
  for (let run = 0; run < LEDGER_RUNS; run++) {
    for (const format of ['csv', 'xlsx'] as const) {
      for (const set of [LEDGER_LARGE, LEDGER_SMALL]) runs.push(await writeLedger(set, format, run));
    }
  }
  return runs;
}

async function writeLedger(set: EntrySet, format: LedgerFormat, run: number): Promise<LedgerRun> {
  process.stderr.write(`ledger ${run + 1} of ${LEDGER_RUNS}, ${format}, ${set.count} invoices ...\n`);
  const request = { taxNum: set.taxNum, from: set.from, to: set.to, direction: set.direction, format };
  const measured = await runScenario<LedgerMeasure>({ mode: 'ledger', request }, { JOBS_TABLE: jobsTableOf(run) });
  if (measured.rows !== set.count) throw new Error(`the ${format} ledger of ${set.count} invoices has ${measured.rows} rows`);
  return { ...measured, set, format, run };
}

async function listMonth(): Promise<ListingMeasure> {
  process.stderr.write(`GET /invoices, ${LISTED_MONTH.count} invoices in one month, limit ${PAGE_LIMIT} ...\n`);
  const services: ServiceName[] = [
    { host: new URL(s3.endpoint).host, name: 'S3' },
    { host: new URL(dynamo.endpoint).host, name: 'DynamoDB' },
  ];
  const { taxNum, from, to } = LISTED_MONTH;
  return runScenario<ListingMeasure>({ mode: 'listing', query: { taxNum, from, to, limit: String(PAGE_LIMIT) }, services });
}

// ---------------------------------------------------------------------------------------------------------------
// The report

const MB = 1024 * 1024;
const count = (n: number) => n.toLocaleString('en-US');

function report(filled: FillMeasure, runs: LedgerRun[], listing: ListingMeasure): string {
  const ledgers = ledgerMedians(runs);
  const ratios = rssRatios(ledgers);
  const pages = pageCounts(listing);
  const checks = [
    ...ratios.map((r) => ({ what: `ledger peak RSS, 10,000 / 1,000 rows, ${r.format.toUpperCase()}`, measured: r.ratio.toFixed(2), target: `≤ ${TARGETS.ledgerRssRatio.toFixed(2)}`, ok: r.ratio <= TARGETS.ledgerRssRatio })),
    { what: 'GET /invoices: DynamoDB requests per page (most)', measured: String(pages.mostDynamo), target: String(TARGETS.dynamoRequestsPerPage), ok: pages.mostDynamo <= TARGETS.dynamoRequestsPerPage },
    { what: 'GET /invoices: S3 requests (all pages)', measured: String(pages.s3), target: String(TARGETS.s3Requests), ok: pages.s3 <= TARGETS.s3Requests },
  ];
  const verdict = (ok: boolean) => (ok ? 'met' : 'not met');
  return `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}
Index filled through invoiceIndex(...).add: ${count(filled.entries)} entries in ${(filled.ms / 1000).toFixed(1)} s (${filled.concurrency} at a time; dynalite in memory).
Ledgers: ledgerJobs(...).run(...) wired as the handler wires it (no presigning of the answer), one process each, NODE_OPTIONS=${DOWNLOAD_NODE_OPTIONS};
one taxpayer, sales, ${LEDGER_LARGE.from} to ${LEDGER_LARGE.to}; median of ${LEDGER_RUNS} runs each, interleaved.
GET /invoices: through the download handler, one taxpayer, ${LISTED_MONTH.from} to ${LISTED_MONTH.to}, limit=${PAGE_LIMIT}, every page; requests counted from spans
around the real clients (bench/spans.ts).

| ledger | rows | file MB | wall ms | peak RSS MB | peak RSS MB, each run |
|---|---|---|---|---|---|
${ledgers.map(ledgerRow).join('\n')}

| GET /invoices, one month of ${count(LISTED_MONTH.count)} | measured |
|---|---|
| pages (limit ${PAGE_LIMIT}) | ${pages.pages} (entries per page: ${pages.sizes}) |
| entries | ${count(pages.entries)} |
| wall ms, all pages | ${pages.wallMs.toFixed(0)} (median page ${pages.medianMs.toFixed(0)}, of which DynamoDB ${pages.medianDynamoMs.toFixed(0)}) |
| DynamoDB requests per page | ${pages.dynamoPerPage} (${pages.dynamoLabels}) |
| S3 requests | ${pages.s3} |

| measure | measured | target | met |
|---|---|---|---|
${checks.map((check) => `| ${check.what} | ${check.measured} | ${check.target} | ${check.ok ? 'yes' : 'no'} |`).join('\n')}

ledger peak RSS 10,000 / 1,000 rows: ${ratios.map((r) => `${r.format.toUpperCase()} ${r.ratio.toFixed(2)}`).join(', ')} (target ≤ ${TARGETS.ledgerRssRatio.toFixed(2)}: ${verdict(checks.slice(0, ratios.length).every((check) => check.ok))})
GET /invoices: ${pages.pages} pages, ${count(pages.entries)} entries, ${pages.wallMs.toFixed(0)} ms; DynamoDB requests per page ${pages.mostDynamo} at most (target ${TARGETS.dynamoRequestsPerPage}: ${verdict(checks.at(-2)!.ok)}), S3 requests ${pages.s3} (target ${TARGETS.s3Requests}: ${verdict(checks.at(-1)!.ok)})`;
}

type LedgerMedian = ReturnType<typeof ledgerMedians>[number];

/** Each ledger's runs: the medians of wall time and peak RSS, and every run's peak. */
function ledgerMedians(runs: LedgerRun[]) {
  return (['csv', 'xlsx'] as const).flatMap((format) =>
    [LEDGER_LARGE, LEDGER_SMALL].map((set) => {
      const mine = runs.filter((run) => run.format === format && run.set === set);
      const peaks = mine.map((run) => run.peakRssBytes);
      return { format, set, rows: mine[0]!.rows, bytes: mine[0]!.bytes, wallMs: median(mine.map((run) => run.wallMs)), peakRssBytes: median(peaks), peaks };
    }),
  );
}

const ledgerRow = (ledger: LedgerMedian) =>
  `| ${ledger.format.toUpperCase()}, ${count(ledger.set.count)} invoices | ${count(ledger.rows)} | ${(ledger.bytes / MB).toFixed(1)} | ${ledger.wallMs.toFixed(0)} | ${(ledger.peakRssBytes / MB).toFixed(0)} | ${ledger.peaks.map((peak) => (peak / MB).toFixed(0)).join(', ')} |`;

function rssRatios(ledgers: LedgerMedian[]) {
  return (['csv', 'xlsx'] as const).map((format) => {
    const peak = (set: EntrySet) => ledgers.find((ledger) => ledger.format === format && ledger.set === set)!.peakRssBytes;
    return { format, ratio: peak(LEDGER_LARGE) / peak(LEDGER_SMALL) };
  });
}

/** What the pages add up to; requests by service, from each page's spans. A request to anything else is an error. */
function pageCounts({ pages }: ListingMeasure) {
  const others = pages.flatMap((page) => page.spans.filter((span) => !/^(DynamoDB|S3) /.test(span.label)));
  if (others.length > 0) throw new Error(`GET /invoices sent other requests: ${others.map((span) => span.label).join(', ')}`);
  const spansOf = (page: ListingMeasure['pages'][number], service: string) => page.spans.filter((span) => span.label.startsWith(`${service} `));
  const dynamo = pages.map((page) => spansOf(page, 'DynamoDB'));
  return {
    pages: pages.length,
    sizes: tally(pages.map((page) => page.entries)),
    entries: pages.reduce((sum, page) => sum + page.entries, 0),
    wallMs: pages.reduce((sum, page) => sum + page.wallMs, 0),
    medianMs: median(pages.map((page) => page.wallMs)),
    medianDynamoMs: median(dynamo.map((spans) => spans.reduce((sum, span) => sum + span.end - span.start, 0))),
    mostDynamo: Math.max(...dynamo.map((spans) => spans.length)),
    dynamoPerPage: tally(dynamo.map((spans) => spans.length)),
    dynamoLabels: [...new Set(dynamo.flat().map((span) => span.label))].join(', '),
    s3: pages.reduce((sum, page) => sum + spansOf(page, 'S3').length, 0),
  };
}

/** `500 ×20, 0 ×1`: each value, in order of first appearance, and how often it came. */
function tally(values: number[]): string {
  const times = new Map<number, number>();
  for (const value of values) times.set(value, (times.get(value) ?? 0) + 1);
  return [...times].map(([value, n]) => (n === 1 ? String(value) : `${value} ×${n}`)).join(', ');
}

const median = (values: number[]) => values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

// ---------------------------------------------------------------------------------------------------------------

const filled = await fill([LEDGER_LARGE, LEDGER_SMALL, LISTED_MONTH]);
const ledgers = await writeLedgers();
const listing = await listMonth();
await s3.close();
await dynamo.close();
await rm(workDir, { recursive: true, force: true });

console.log(report(filled, ledgers, listing));
