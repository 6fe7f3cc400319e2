import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { loadDownloadConfig } from '#shared/config';
import { createS3Client } from '#shared/storage';
import { invoiceIndex } from '../functions/download/invoice-index.ts';
import { lambdaContext } from '../local/api-gateway.ts';
import type { EntrySet } from './archive-entries.ts';
import { mirroredInvoicesOf } from './audit-objects.ts';
import { countRequests } from './request-counts.ts';
import type { ServiceName } from './spans.ts';

/**
 * One step of the audit bench in a process of its own (so that its peak RSS is its own), configured by the download
 * function's environment as bench/audit.ts sets it. Prints one JSON line.
 * - `fill`: writes each invoice's four objects into the local S3 (its three files, then invoice.json) and then its
 *   index entry through the index's own `add`, as mirroring does, a bounded number of invoices at a time. Not a
 *   measure of the product: the bench reports how long it takes.
 * - `audit`: POST /audits {"taxNum"} through the real download handler, as API Gateway calls it, each call with the
 *   time an API request has; a call answered 202 (the audit goes on from where it stopped) is followed by the next
 *   at once, until one answers 200 with the finished report. Wall time, calls, peak RSS, and the requests the
 *   handler sent, by service and command (bench/request-counts.ts).
 */

type ScenarioInput = { mode: 'fill'; sets: EntrySet[] } | { mode: 'audit'; taxNum: string; services: ServiceName[] };

export interface FillMeasure {
  invoices: number;
  objects: number;
  bytes: number;
  ms: number;
  concurrency: number;
}

export interface AuditRun {
  statusCode: number;
  ms: number;
}

export interface AuditMeasure {
  wallMs: number;
  peakRssBytes: number;
  runs: AuditRun[];
  requests: Record<string, number>;
  /** The finished report, as POST /audits answered it (its lists only counted). */
  report: { scope: string; finished: boolean; invoices: number; files: number; problems: number; extended: number; orphans: number; unindexed: number };
}

/** Invoices written at once, four objects each: enough to keep s3rver busy while the client prepares the next. */
const FILL_CONCURRENCY = 16;
/** A guard: an audit that never finishes stops the bench rather than running forever. */
const MOST_RUNS = 200;

async function fill(sets: EntrySet[]): Promise<FillMeasure> {
  const config = loadDownloadConfig();
  const s3 = createS3Client(config.S3_ENDPOINT);
  const index = invoiceIndex(new DynamoDBClient({}), config.INVOICES_TABLE);
  const measure: FillMeasure = { invoices: 0, objects: 0, bytes: 0, ms: 0, concurrency: FILL_CONCURRENCY };
  const started = performance.now();
  for (const set of sets) {
    const pending = mirroredInvoicesOf(set);
    // The writers share one generator: each takes the next invoice once its last one is written.
    const writer = async () => {
      for (let next = pending.next(); !next.done; next = pending.next()) {
        const { entry, objects } = next.value;
        // The files, then invoice.json, then the entry: the order mirroring writes them in.
        const put = (object: (typeof objects)[number]) =>
          s3.send(new PutObjectCommand({ Bucket: config.BUCKET_NAME, Key: object.key, Body: object.body, ContentType: object.contentType }));
        await Promise.all(objects.slice(0, -1).map(put));
        await put(objects.at(-1)!);
        if (!(await index.add(entry))) throw new Error(`entry ${entry.invoiceNo} was there already`);
        measure.invoices += 1;
        measure.objects += objects.length;
        measure.bytes += objects.reduce((sum, object) => sum + object.body.length, 0);
      }
    };
    await Promise.all(Array.from({ length: FILL_CONCURRENCY }, writer));
  }
  return { ...measure, ms: performance.now() - started };
}

async function audit(taxNum: string, services: ServiceName[]): Promise<AuditMeasure> {
  const { handler } = await import('../functions/download/handler.ts');
  const counter = countRequests(services);
  const runs: AuditRun[] = [];
  const started = performance.now();
  let answer: { statusCode: number; body: string };
  do {
    if (runs.length >= MOST_RUNS) throw new Error(`the audit of ${taxNum} did not finish in ${MOST_RUNS} calls`);
    const runStarted = performance.now();
    answer = (await handler(auditEvent({ taxNum }) as never, lambdaContext('download'))) as typeof answer;
    runs.push({ statusCode: answer.statusCode, ms: performance.now() - runStarted });
    if (answer.statusCode !== 200 && answer.statusCode !== 202) throw new Error(`POST /audits answered ${answer.statusCode}: ${answer.body}`);
  } while (answer.statusCode === 202);
  const wallMs = performance.now() - started;
  counter.close();
  const report = JSON.parse(answer.body) as { scope: string; finished: boolean; invoices: number; files: number; problems: unknown[]; extended: unknown[]; orphans: unknown[]; unindexed: number };
  if (report.problems.length > 0) throw new Error(`the audit found problems in a clean archive: ${JSON.stringify(report.problems.slice(0, 3))}`);
  const { scope, finished, invoices, files, unindexed } = report;
  return {
    wallMs,
    peakRssBytes: await peakRss(),
    runs,
    requests: counter.counts(),
    report: { scope, finished, invoices, files, problems: report.problems.length, extended: report.extended.length, orphans: report.orphans.length, unindexed },
  };
}

/** POST /audits as API Gateway (HTTP API, payload 2.0) hands it to the function. */
function auditEvent(body: object) {
  return {
    version: '2.0',
    routeKey: 'POST /audits',
    rawPath: '/audits',
    rawQueryString: '',
    headers: { host: 'bench', 'content-type': 'application/json' },
    requestContext: { requestId: randomUUID(), http: { method: 'POST', path: '/audits' } },
    body: JSON.stringify(body),
    isBase64Encoded: false,
  };
}

/** This process's own peak RSS: /proc's VmHWM, as bench/scenario.ts explains. */
async function peakRss(): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
  const kib = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  return kib ? Number(kib) * 1024 : process.resourceUsage().maxRSS * 1024;
}

function run(input: ScenarioInput): Promise<FillMeasure | AuditMeasure> {
  return input.mode === 'fill' ? fill(input.sets) : audit(input.taxNum, input.services);
}

console.log(JSON.stringify(await run(JSON.parse(process.argv[2]!) as ScenarioInput)));
