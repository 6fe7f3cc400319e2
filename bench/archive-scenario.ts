import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { loadDownloadConfig, sweepSettingsOf } from '#shared/config';
import { createJobStore } from '#shared/jobs';
import { API_BUDGET_MS } from '#shared/middleware';
import { createS3Client } from '#shared/storage';
import { invoiceIndex } from '../functions/download/invoice-index.ts';
import { ledgerJobs, type LedgerRequest } from '../functions/download/ledger-job.ts';
import { lambdaContext } from '../local/api-gateway.ts';
import { entriesOf, type EntrySet } from './archive-entries.ts';
import type { Span } from './critical-path.ts';
import { recordSpans, type ServiceName } from './spans.ts';

/**
 * One archive scenario in a process of its own (so that its peak RSS is its own), configured by the download
 * function's environment as bench/archive.ts sets it. Prints one JSON line.
 * - `ledger`: one GET /invoices/ledger job, `ledgerJobs(...).run(...)` wired as functions/download/handler.ts wires
 *   it, with the time a request has; left out are the handler's presigning of the answer and the link key's secret
 *   (a constant here), so that the process holds no more than the ledger needs. Wall time of the run, peak RSS,
 *   rows and bytes.
 * - `listing`: every page of one GET /invoices question through the real download handler, as API Gateway calls
 *   it, with a span recorded around each request the handler sends (bench/spans.ts). Per page: entries, ms, spans.
 * - `fill`: writes the entries of each set through the index's own `add`, as mirroring does. Not a measure: it runs
 *   here because the client's work then has a core of its own, beside dynalite's in the parent (twice as fast).
 */

type ScenarioInput =
  | { mode: 'ledger'; request: LedgerRequest }
  | { mode: 'listing'; query: Record<string, string>; services: ServiceName[] }
  | { mode: 'fill'; sets: EntrySet[] };

export interface LedgerMeasure {
  wallMs: number;
  peakRssBytes: number;
  rows: number;
  bytes: number;
}

export interface FillMeasure {
  entries: number;
  ms: number;
  concurrency: number;
}

export interface ListingMeasure {
  pages: Array<{ entries: number; wallMs: number; spans: Span[] }>;
}

/** Time the handler keeps back from a request's budget to answer (ANSWER_MARGIN_MS in handler.ts). */
const ANSWER_MARGIN_MS = 3_000;

async function writeOneLedger(request: LedgerRequest): Promise<LedgerMeasure> {
  const config = loadDownloadConfig();
  const jobs = createJobStore(config.JOBS_TABLE);
  const ledgers = ledgerJobs({
    s3: createS3Client(config.S3_ENDPOINT),
    bucket: config.BUCKET_NAME,
    index: invoiceIndex(new DynamoDBClient({}), config.INVOICES_TABLE),
    jobs: { store: jobs, leaseSeconds: config.LEASE_SECONDS, policy: sweepSettingsOf(config), waitMs: config.JOB_WAIT_MS },
    links: async () => ({ linkKey: 'b'.repeat(64), baseUrl: config.PUBLIC_BASE_URL ?? '' }),
  });
  const started = performance.now();
  const outcome = await ledgers.run(request, { deadline: Date.now() + API_BUDGET_MS - ANSWER_MARGIN_MS, mode: 'request' });
  const wallMs = performance.now() - started;
  // A ledger that did not fit in the request's time is pending: a result too, but not the one measured here.
  if (outcome.kind !== 'done' || outcome.replayed) throw new Error(`the ledger was not written by this run: ${JSON.stringify(outcome)}`);
  return { wallMs, peakRssBytes: await peakRss(), rows: outcome.result.rows, bytes: outcome.result.bytes };
}

async function listEveryPage(query: Record<string, string>, services: ServiceName[]): Promise<ListingMeasure> {
  const { handler } = await import('../functions/download/handler.ts');
  const recorder = recordSpans(services);
  const pages: ListingMeasure['pages'] = [];
  let cursor: string | undefined;
  do {
    const parameters = { ...query, ...(cursor ? { cursor } : {}) };
    recorder.begin();
    const started = performance.now();
    const result = (await handler(listingEvent(parameters) as never, lambdaContext('download'))) as { statusCode: number; body: string };
    const wallMs = performance.now() - started;
    const spans = recorder.end();
    if (result.statusCode !== 200) throw new Error(`GET /invoices answered ${result.statusCode}: ${result.body}`);
    const answer = JSON.parse(result.body) as { invoices: unknown[]; cursor?: string };
    pages.push({ entries: answer.invoices.length, wallMs, spans });
    cursor = answer.cursor;
  } while (cursor);
  recorder.close();
  return { pages };
}

/** Entries written at once: enough to keep dynalite busy while the client prepares the next ones. */
const FILL_CONCURRENCY = 16;

async function fill(sets: EntrySet[]): Promise<FillMeasure> {
  const index = invoiceIndex(new DynamoDBClient({}), loadDownloadConfig().INVOICES_TABLE);
  const started = performance.now();
  let entries = 0;
  for (const set of sets) {
    const pending = entriesOf(set);
    // The writers share one generator: each takes the next entry once its last one is written.
    const writer = async () => {
      for (let next = pending.next(); !next.done; next = pending.next()) {
        if (!(await index.add(next.value))) throw new Error(`entry ${next.value.invoiceNo} was there already`);
        entries += 1;
      }
    };
    await Promise.all(Array.from({ length: FILL_CONCURRENCY }, writer));
  }
  return { entries, ms: performance.now() - started, concurrency: FILL_CONCURRENCY };
}

/** GET /invoices as API Gateway (HTTP API, payload 2.0) hands it to the function. */
function listingEvent(parameters: Record<string, string>) {
  const rawQueryString = new URLSearchParams(parameters).toString();
  return {
    version: '2.0',
    routeKey: 'GET /invoices',
    rawPath: '/invoices',
    rawQueryString,
    headers: { host: 'bench' },
    queryStringParameters: parameters,
    requestContext: { requestId: randomUUID(), http: { method: 'GET', path: '/invoices' } },
    isBase64Encoded: false,
  };
}

/** This process's own peak RSS: /proc's VmHWM, as bench/scenario.ts explains. */
async function peakRss(): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
  const kib = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  return kib ? Number(kib) * 1024 : process.resourceUsage().maxRSS * 1024;
}

function run(input: ScenarioInput): Promise<LedgerMeasure | ListingMeasure | FillMeasure> {
  switch (input.mode) {
    case 'ledger':
      return writeOneLedger(input.request);
    case 'listing':
      return listEveryPage(input.query, input.services);
    case 'fill':
      return fill(input.sets);
  }
}

console.log(JSON.stringify(await run(JSON.parse(process.argv[2]!) as ScenarioInput)));
