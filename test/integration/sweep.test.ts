import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BatchWriteCommand, DynamoDBDocumentClient, paginateScan } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { FW199_SANDBOX_ORDERS } from '../../local/sandboxes/fw199.ts';
import { JUMDATA_SANDBOX_INVOICES } from '../../local/sandboxes/jumdata.ts';
import { WDT_SANDBOX_INVOICES } from '../../local/sandboxes/wdt.ts';
import { itemOf, JOB_FUNCTIONS, jobPk, JobStore, type JobFunction, type JobRecord } from '#shared/jobs';
import type { SweepReport } from '#shared/sweep';
import { localDynamoClient, useLocalMode } from '../helpers/local-mode.ts';

/**
 * The sweeps at scale: 10,000 recorded jobs of the three functions worked through by repeated sweep invocations
 * cut short by their time limit, against the sandboxes and the embedded storage; and a sweep that dies half way,
 * followed by another.
 */

/** The test's provider limits, and the sweeps' own rate, below them. */
const PROVIDER_CALLS_PER_MINUTE = 15_000;
const SWEEP_CALLS_PER_MINUTE = 12_000;
const SWEEP_CONCURRENCY = 8;
const LEASE_SECONDS = 3;

// The sandboxes enforce their rate over every sliding second (250 calls), so a sweep that bunched its calls, even
// at the right average, would be refused.
const { state } = useLocalMode(
  {
    wdt: { callsPerMinute: PROVIDER_CALLS_PER_MINUTE, rateWindowMs: 1_000 },
    jumdata: { callsPerMinute: PROVIDER_CALLS_PER_MINUTE, rateWindowMs: 1_000, fileBytes: 0 },
  },
  {
    TAX_NUM_CHECK: 'relaxed',
    SWEEP_CALLS_PER_MINUTE: String(SWEEP_CALLS_PER_MINUTE),
    SWEEP_CONCURRENCY: String(SWEEP_CONCURRENCY),
    SWEEP_BATCH_SIZE: '100',
    BACKOFF_BASE_SECONDS: '0.2',
    BACKOFF_MAX_SECONDS: '0.5',
    JOB_MAX_ATTEMPTS: '5',
    LEASE_SECONDS: String(LEASE_SECONDS),
  },
);

const documents = () =>
  DynamoDBDocumentClient.from(
    localDynamoClient(state.local),
    { marshallOptions: { removeUndefinedValues: true } },
  );

type Expected = 'done' | 'done-after-one-failure' | 'failed';
interface SeededJob {
  record: JobRecord;
  expected: Expected;
  /** How the sandbox names the job in what it received. */
  callsSeen: () => number;
}

/** Recorded jobs as a failed API call leaves them: pending, one attempt made, due now. */
function pendingRecord(fn: JobFunction, key: string, request: unknown): JobRecord {
  const past = new Date(Date.now() - 60_000).toISOString();
  return {
    fn,
    key,
    request,
    state: 'pending',
    attempts: 1,
    lastError: { code: 'UPSTREAM_UNAVAILABLE', message: 'seeded', statusCode: 502 },
    nextAttemptAt: past,
    createdAt: past,
    updatedAt: past,
  };
}

async function seed(jobs: SeededJob[]) {
  const client = documents();
  for (let i = 0; i < jobs.length; i += 25 * 8) {
    const chunks = Array.from({ length: 8 }, (_, c) => jobs.slice(i + c * 25, i + (c + 1) * 25)).filter((chunk) => chunk.length > 0);
    await Promise.all(
      chunks.map((chunk) =>
        client.send(
          new BatchWriteCommand({
            RequestItems: { [state.local.jobsTable]: chunk.map((job) => ({ PutRequest: { Item: itemOf(job.record, 1) } })) },
          }),
        ),
      ),
    );
  }
}

async function allJobItems(): Promise<Map<string, Record<string, any>>> {
  const items = new Map<string, Record<string, any>>();
  for await (const page of paginateScan({ client: documents() }, { TableName: state.local.jobsTable, ConsistentRead: true })) {
    for (const item of page.Items ?? []) items.set(item.pk as string, item);
  }
  return items;
}

/** Runs every function's sweep, invocation after invocation, until nothing is left open. */
/**
 * Each invocation's time: a job starts only with its own time and 2 s left, so re-pushes and ERP updates (1 s
 * upstream timeout + 1 s) start for 4 s of 8, downloads (the 25 s of an API request) for 2 s of 29.
 */
const INVOCATION_MS: Record<JobFunction, number> = { retry: 8_000, 'erp-update': 8_000, download: 29_000 };

async function sweepUntilSettled(budgetMs: Record<JobFunction, number> = INVOCATION_MS, withinMs = 300_000) {
  const reports: SweepReport[] = [];
  const giveUpAt = Date.now() + withinMs;
  while (Date.now() < giveUpAt) {
    const open = await Promise.all(JOB_FUNCTIONS.map(openCount));
    if (open.every((count) => count === 0)) return reports;
    const round = await Promise.all(JOB_FUNCTIONS.map((fn) => state.local.sweep(fn, budgetMs[fn])));
    reports.push(...round);
    // Nothing due yet: the open jobs wait for their backoff, a provider's Retry-After (Jumdata asks for 60 s after a
    // 399) or a lapsed lease, as they would for the next schedule.
    if (round.every((report) => report.processed === 0)) await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const stuck = await Promise.all(JOB_FUNCTIONS.map(async (fn) => (await jobStore().list(fn, 'open', { limit: 3 })).jobs));
  throw new Error(`jobs still open after ${withinMs} ms: ${JSON.stringify(stuck)}`);
}

const jobStore = () =>
  new JobStore(
    localDynamoClient(state.local),
    state.local.jobsTable,
  );

async function openCount(fn: JobFunction): Promise<number> {
  return (await jobStore().list(fn, 'open', { limit: 1 })).jobs.length;
}

/** Counts of what each sandbox received, by the job it belongs to. */
function receivedCounts() {
  const count = (entries: string[]) => entries.reduce((map, key) => map.set(key, (map.get(key) ?? 0) + 1), new Map<string, number>());
  const { fw199, wdt, jumdata } = state.local.sandboxes;
  return {
    pushes: count(fw199!.received.map((r) => `${r.fields.tax_num}/${(JSON.parse(r.fields.request_data ?? '{}') as { orderno?: string }).orderno}`)),
    updates: count(wdt!.received.map((r) => r.fields.invoice_no ?? '')),
    downloads: count(jumdata!.received.filter((r) => r.path.startsWith('/invoice/download')).map((r) => r.fields.fphm ?? '')),
  };
}

describe('a sweep over 10,000 recorded jobs', () => {
  it('ends every job done or failed, none twice, no billed call repeated, within the providers\' limits, over several invocations', { timeout: 600_000 }, async () => {
    // Prepare: 4,000 re-pushes, 4,000 ERP updates and 2,000 downloads; every 50th fails once and then works, every
    // 97th is refused for good.
    const kindOf = (i: number): Expected => (i % 50 === 0 ? 'done-after-one-failure' : i % 97 === 0 ? 'failed' : 'done');
    const counts = () => receivedCounts();
    let seen = counts();
    const jobs: SeededJob[] = [];
    for (let i = 1; i <= 4_000; i++) {
      const taxNum = `3301${String(i).padStart(11, '0')}`;
      const expected = kindOf(i);
      const orderNo =
        expected === 'done' ? `SWEEP-${i}` : expected === 'failed' ? FW199_SANDBOX_ORDERS.loginRequired : `${FW199_SANDBOX_ORDERS.flakyPrefix}S${i}`;
      jobs.push({ record: pendingRecord('retry', `${taxNum}/${orderNo}`, { taxNum, orderNo }), expected, callsSeen: () => seen.pushes.get(`${taxNum}/${orderNo}`) ?? 0 });
    }
    for (let i = 1; i <= 4_000; i++) {
      const expected = kindOf(i);
      const invoiceNo = expected === 'done' ? `FP${String(i).padStart(12, '0')}` : expected === 'failed' ? `DZ-NOTINERP-${i}` : `${WDT_SANDBOX_INVOICES.flakyPrefix}S${i}`;
      const request = { invoiceNo, status: 80, invoiceNoOut: '24312000000022669098', invoiceCode: '' };
      jobs.push({ record: pendingRecord('erp-update', invoiceNo, request), expected, callsSeen: () => seen.updates.get(invoiceNo) ?? 0 });
    }
    const taxNum = '330100000000001';
    const downloads: Array<{ invoiceNo: string; expected: Expected }> = [];
    for (let i = 1; i <= 2_000; i++) {
      const expected = kindOf(i);
      const invoiceNo = `${JUMDATA_SANDBOX_INVOICES.rangePrefix}${String(i).padStart(9, '0')}${expected === 'done' ? '000' : expected === 'failed' ? '603' : '399'}`;
      downloads.push({ invoiceNo, expected });
      const request = { taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales' };
      jobs.push({ record: pendingRecord('download', `${taxNum}/${invoiceNo}`, request), expected, callsSeen: () => seen.downloads.get(invoiceNo) ?? 0 });
    }
    expect(jobs).toHaveLength(10_000);
    await seed(jobs);

    // Act: sweep invocations cut short by their time (INVOCATION_MS), until no job is open
    const reports = await sweepUntilSettled();
    seen = counts();

    // Assess: every job ended as it should, in the table
    const items = await allJobItems();
    const wrong = jobs.filter((job) => {
      const item = items.get(jobPk(job.record.fn, job.record.key));
      const expectedState = job.expected === 'failed' ? 'failed' : 'done';
      return item?.state !== expectedState;
    });
    expect(wrong.map((job) => JSON.stringify(items.get(jobPk(job.record.fn, job.record.key)) ?? job.record.key))).toEqual([]);
    // none twice: one provider call per job, two where the first failed
    const callsOff = jobs.filter((job) => job.callsSeen() !== (job.expected === 'done-after-one-failure' ? 2 : 1));
    expect(callsOff.map((job) => `${job.record.fn}#${job.record.key}: ${job.callsSeen()}`)).toEqual([]);
    // no billed call repeated: one per mirrored invoice, none for the refused ones
    const jumdata = state.local.sandboxes.jumdata!;
    expect(downloads.filter((d) => jumdata.billedCallsFor(d.invoiceNo) !== (d.expected === 'failed' ? 0 : 1))).toEqual([]);
    // the providers' limits were never reached
    expect(state.local.sandboxes.wdt!.refusedForRate()).toBe(0);
    expect(jumdata.refusedForRate()).toBe(0);
    expect(state.local.sandboxes.fw199!.refusedForCap()).toBe(0);
    // the work was split across several invocations by their time limit
    for (const fn of JOB_FUNCTIONS) {
      const ofFn = reports.filter((report) => report.fn === fn && report.processed > 0);
      expect(ofFn.length, fn).toBeGreaterThan(1);
      expect(ofFn.some((report) => report.stoppedForTime), fn).toBe(true);
    }
    expect(reports.reduce((sum, report) => sum + report.processed, 0)).toBe(10_000 + jobs.filter((job) => job.expected === 'done-after-one-failure').length);
  });
});

describe('a sweep that dies half way', () => {
  it('is followed by one that finishes its jobs, redoing at most the ones it had in flight', { timeout: 120_000 }, async () => {
    // Prepare: 300 re-pushes due now
    const taxNum = '330199999999999';
    const orderNos = Array.from({ length: 300 }, (_, i) => `CRASH-${i}`);
    await seed(orderNos.map((orderNo) => ({ record: pendingRecord('retry', `${taxNum}/${orderNo}`, { taxNum, orderNo }), expected: 'done', callsSeen: () => 0 })));
    const pushes = () => receivedCounts().pushes;
    // Counted from what arrives after this point only: polling must not starve the sandboxes sharing this process.
    const fw199 = state.local.sandboxes.fw199!;
    const receivedBefore = fw199.received.length;
    const crashPushes = () => fw199.received.length - receivedBefore;

    // Act: a sweep in a process of its own, at 20 pushes a second, killed (SIGKILL) after about 60 pushes
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../helpers/sweep-once.ts', import.meta.url)), 'retry', '8000'], {
      env: { ...process.env, SWEEP_CALLS_PER_MINUTE: '1200' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let childErrors = '';
    child.stderr.on('data', (chunk: Buffer) => (childErrors += chunk.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const startedAt = Date.now();
    while (crashPushes() < 60) {
      if (Date.now() - startedAt > 60_000) throw new Error(`the child sweep did not get going: ${childErrors}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    child.kill('SIGKILL');
    await exited;
    const pushedBeforeCrash = crashPushes();
    const leftRunning = [...(await allJobItems()).values()].filter((item) => item.pk.startsWith(jobPk('retry', `${taxNum}/CRASH-`)) && item.state === 'running');

    // A second sweep: the dead one's lock (its invocation time) and leases lapse, then it takes over
    await new Promise((resolve) => setTimeout(resolve, 8_500));
    await sweepUntilSettled();

    // Assess
    expect(pushedBeforeCrash).toBeGreaterThanOrEqual(60);
    expect(pushedBeforeCrash).toBeLessThan(300);
    const items = await allJobItems();
    expect(orderNos.filter((orderNo) => items.get(jobPk('retry', `${taxNum}/${orderNo}`))?.state !== 'done')).toEqual([]);
    const counts = pushes();
    const twice = orderNos.filter((orderNo) => (counts.get(`${taxNum}/${orderNo}`) ?? 0) > 1);
    // Only a job whose push the dead sweep made but could not record is pushed again, and never more than twice.
    expect(twice.length).toBeLessThanOrEqual(SWEEP_CONCURRENCY);
    expect(twice.every((orderNo) => leftRunning.some((item) => item.pk === jobPk('retry', `${taxNum}/${orderNo}`)))).toBe(true);
    expect(orderNos.every((orderNo) => (counts.get(`${taxNum}/${orderNo}`) ?? 0) >= 1 && (counts.get(`${taxNum}/${orderNo}`) ?? 0) <= 2)).toBe(true);
  });
});
