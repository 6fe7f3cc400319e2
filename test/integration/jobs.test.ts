import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { FW199_SANDBOX_ORDERS as ORDERS } from '../../local/sandboxes/fw199.ts';
import { JUMDATA_SANDBOX_INVOICES } from '../../local/sandboxes/jumdata.ts';
import { WDT_SANDBOX_INVOICES } from '../../local/sandboxes/wdt.ts';
import { itemOf, jobPk, type JobFunction, type JobRecord } from '#shared/jobs';
import type { BatchReport } from '#shared/middleware';
import { useLocalMode } from '../helpers/local-mode.ts';

/**
 * Unfinished and failed jobs end to end: requests through local mode that meet a network failure, a rate limit or a
 * business refusal leave a record in the embedded DynamoDB; GET /jobs shows them; the sweeps finish what can be
 * finished and leave the rest; retry's daily limit holds whoever asks.
 */

const { state, post, get } = useLocalMode(
  { requestBudgetMs: 6_000 },
  // A request waits half a second for another holding its job, so that the 409 of a holder outlasting it shows.
  { BACKOFF_BASE_SECONDS: '0.4', BACKOFF_MAX_SECONDS: '1', JOB_MAX_ATTEMPTS: '3', RETRY_DAILY_LIMIT: '5', JOB_WAIT_MS: '500' },
);
const taxNum = '91310117568051222X';

const documents = () =>
  DynamoDBDocumentClient.from(
    new DynamoDBClient({
      endpoint: state.local.dynamo!.endpoint,
      region: 'cn-north-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    }),
    { marshallOptions: { removeUndefinedValues: true } },
  );

async function record(fn: JobFunction, key: string): Promise<Record<string, any> | undefined> {
  const { Item } = await documents().send(
    new GetCommand({ TableName: state.local.jobsTable, Key: { pk: jobPk(fn, key) }, ConsistentRead: true }),
  );
  return Item;
}

const pushesOf = (orderNo: string) =>
  state.local.sandboxes.fw199!.received.filter((r) => r.fields.request_data === JSON.stringify({ orderno: orderNo })).length;
const updatesOf = (invoiceNo: string) => state.local.sandboxes.wdt!.received.filter((r) => r.fields.invoice_no === invoiceNo).length;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the job's next attempt is due (the test's backoff is under a second). */
async function untilDue(fn: JobFunction, key: string) {
  const due = Date.parse((await record(fn, key))!.nextAttemptAt);
  await sleep(Math.max(0, due - Date.now()) + 20);
}

describe('a retry that meets a network failure', () => {
  it('is kept pending, shown by GET /jobs, and finished by the sweep without being pushed again after', async () => {
    // Prepare: the gateway answers HTTP 500 to this order's first push, code 0 after
    const orderNo = `${ORDERS.flakyPrefix}1`;
    // Act
    const first = await post('/retry', { taxNum, orderNo });
    // Assess: the caller hears the failure, and the job is kept with it
    expect(first.status).toBe(502);
    const kept = await record('retry', `${taxNum}/${orderNo}`);
    expect(kept).toMatchObject({
      state: 'pending',
      attempts: 1,
      request: { taxNum, orderNo },
      lastError: { statusCode: 502, code: 'UPSTREAM_UNAVAILABLE' },
      queue: 'retry#open',
    });
    const waitedMs = Date.parse(kept!.nextAttemptAt) - Date.parse(kept!.updatedAt);
    expect(waitedMs).toBeGreaterThanOrEqual(200); // backoff base 0.4 s, with at most half of it as jitter off
    expect(waitedMs).toBeLessThanOrEqual(400);
    const listed = await get('/jobs?state=pending&function=retry');
    expect(listed.status).toBe(200);
    expect(listed.body.jobs).toContainEqual(
      expect.objectContaining({ function: 'retry', key: `${taxNum}/${orderNo}`, state: 'pending', attempts: 1, lastError: expect.objectContaining({ statusCode: 502 }) }),
    );

    // Act: the sweep, once the job is due
    await untilDue('retry', `${taxNum}/${orderNo}`);
    const report = await state.local.sweep('retry');
    // Assess
    expect(report).toMatchObject({ fn: 'retry', done: 1, pending: 0, failed: 0 });
    expect(pushesOf(orderNo)).toBe(2);
    expect(await record('retry', `${taxNum}/${orderNo}`)).toMatchObject({
      state: 'done',
      attempts: 2,
      result: { orderNo, status: 'retrying' },
    });
    expect((await get('/jobs?state=pending&function=retry')).body.jobs.map((job: any) => job.key)).not.toContain(`${taxNum}/${orderNo}`);
    // A second sweep finds nothing due: the done job is not pushed again.
    await state.local.sweep('retry');
    expect(pushesOf(orderNo)).toBe(2);
  });

  it('is recorded as failed once its attempts are used up, with backoff growing between them', async () => {
    // Prepare: HTTP 500 every time
    const orderNo = ORDERS.serverError;
    const key = `${taxNum}/${orderNo}`;
    // Act: the API's attempt, then two sweeps (JOB_MAX_ATTEMPTS is 3)
    expect((await post('/retry', { taxNum, orderNo })).status).toBe(502);
    await untilDue('retry', key);
    await state.local.sweep('retry');
    const second = await record('retry', key);
    await untilDue('retry', key);
    await state.local.sweep('retry');
    // Assess: the second wait doubles the first (0.8 s ceiling, jittered to 0.4-0.8 s)
    expect(second).toMatchObject({ state: 'pending', attempts: 2 });
    const secondWaitMs = Date.parse(second!.nextAttemptAt) - Date.parse(second!.updatedAt);
    expect(secondWaitMs).toBeGreaterThanOrEqual(400);
    expect(secondWaitMs).toBeLessThanOrEqual(800);
    expect(await record('retry', key)).toMatchObject({ state: 'failed', attempts: 3, queue: 'retry#failed' });
    expect(pushesOf(orderNo)).toBe(3);
    // Failed jobs are not retried
    await sleep(1_100);
    await state.local.sweep('retry');
    expect(pushesOf(orderNo)).toBe(3);
  });
});

describe('a retry the gateway refuses', () => {
  it('is recorded as failed at once, listed by GET /jobs?state=failed, and never swept', async () => {
    // Act
    const answer = await post('/retry', { taxNum, orderNo: ORDERS.loginRequired });
    await state.local.sweep('retry');
    // Assess
    expect(answer.status).toBe(422);
    expect(pushesOf(ORDERS.loginRequired)).toBe(1);
    const failed = await get('/jobs?state=failed');
    expect(failed.body.jobs).toContainEqual(
      expect.objectContaining({
        function: 'retry',
        key: `${taxNum}/${ORDERS.loginRequired}`,
        state: 'failed',
        lastError: expect.objectContaining({ code: 'UPSTREAM_REJECTED', upstream: expect.objectContaining({ provider: 'fw199', code: 9001 }) }),
      }),
    );
  });
});

describe("retry's daily limit", () => {
  it('lets an order be pushed five times a day and answers 429 after, without a sixth push', async () => {
    // Prepare
    const orderNo = 'DAILY-LIMIT-ORDER';
    // Act
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await post('/retry', { taxNum, orderNo })).status);
    const refused = await post('/retry', { taxNum, orderNo });
    // Assess
    expect(statuses).toEqual([202, 202, 202, 202, 202, 429]);
    expect(pushesOf(orderNo)).toBe(5);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'DAILY_LIMIT_REACHED' });
    expect(refused.body.error.message).toContain('5 times today');
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(24 * 3600);
    // The refused job waits for tomorrow (China time), not for a backoff.
    const kept = await record('retry', `${taxNum}/${orderNo}`);
    expect(kept).toMatchObject({ state: 'pending', lastError: { code: 'DAILY_LIMIT_REACHED' } });
    expect(Math.abs(Date.parse(kept!.nextAttemptAt) - (Date.parse(kept!.updatedAt) + retryAfter * 1000))).toBeLessThan(2_000);
  });
});

describe('one job at a time', () => {
  it('answers 409 to a second request for an order whose push outlasts its wait, with the time the push may still need, and pushes once', async () => {
    // Prepare: the sandbox answers this order after 3 s (the upstream timeout is 1 s, so the push ends within 2 s)
    const orderNo = ORDERS.slow;
    // Act
    const first = post('/retry', { taxNum, orderNo });
    await sleep(300);
    const second = await post('/retry', { taxNum, orderNo });
    // Assess: Retry-After is what is left of the holder's 2 s, never the lease's 90 s
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('JOB_IN_PROGRESS');
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(second.headers.get('retry-after'))).toBeLessThanOrEqual(2);
    expect((await first).status).toBe(504);
    expect(pushesOf(orderNo)).toBe(1);
  });
});

describe('an ERP update that meets the rate limit', () => {
  it('is kept pending and sent again by the sweep; the latest request for an invoice replaces an older one', async () => {
    // Prepare: WDT answers 1012 to this invoice's first update, code 0 after
    const invoiceNo = `${WDT_SANDBOX_INVOICES.flakyPrefix}1`;
    // Act
    const first = await post('/erp-update', { invoiceNo, status: 75, errorInfo: '购方税号错误' });
    // Assess
    expect(first.status).toBe(422);
    expect(first.body.error.code).toBe('UPSTREAM_RATE_LIMITED');
    const kept = await record('erp-update', invoiceNo);
    expect(kept).toMatchObject({ state: 'pending', request: { invoiceNo, status: 75 }, lastError: { statusCode: 422, retryAfter: '30' } });
    // Retry-After is a floor under the backoff: WDT asks for 30 s.
    expect(Date.parse(kept!.nextAttemptAt) - Date.parse(kept!.updatedAt)).toBeGreaterThanOrEqual(30_000);

    // Act: a newer result for the same invoice, then the job made due and swept
    const newer = await post('/erp-update', { invoiceNo, status: 80, invoiceNoOut: '24312000000022669098' });
    expect(newer.status).toBe(200);
    expect(await record('erp-update', invoiceNo)).toMatchObject({ state: 'done', request: { status: 80 } });
    await state.local.sweep('erp-update');
    // Assess: the stale status-75 update is never sent again
    expect(updatesOf(invoiceNo)).toBe(2);
  });
});

describe('scheduled batches retried by AWS', () => {
  it('answer the same run from the records: nothing is pushed twice', async () => {
    // Prepare
    const event = { jobs: [{ taxNum, orderNo: 'BATCH-ORDER-1' }, { taxNum, orderNo: ORDERS.loginRequired }], scheduledTime: '2026-11-22T02:00:00Z' };
    const pushesBefore = pushesOf(ORDERS.loginRequired);
    // Act
    const first = (await state.local.invoke('retry', event)) as BatchReport;
    const again = (await state.local.invoke('retry', event)) as BatchReport;
    const nextRun = (await state.local.invoke('retry', { ...event, scheduledTime: '2026-11-23T02:00:00Z' })) as BatchReport;
    // Assess
    expect(first.results.map((r) => r.statusCode)).toEqual([202, 422]);
    expect(again).toEqual(first);
    expect(pushesOf('BATCH-ORDER-1')).toBe(2); // the first run and the next day's run
    expect(pushesOf(ORDERS.loginRequired)).toBe(pushesBefore + 2);
    expect(nextRun.results.map((r) => r.statusCode)).toEqual([202, 422]);
  });
});

describe('a download the sweep cannot finish', () => {
  it('is recorded as LINKS_EXPIRED when the paid-for links are over a month old, without paying Jumdata again', async () => {
    // Prepare: a pending download whose Jumdata answer was bought 30 days ago, due now
    const invoiceNo = '24312990000000000777';
    const thirtyDaysAgo = new Date(Date.now() - 30 * 24 * 3600 * 1000).toISOString();
    const pending: JobRecord & Record<string, unknown> = {
      fn: 'download',
      key: `${taxNum}/${invoiceNo}`,
      request: { taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales' },
      state: 'pending',
      attempts: 1,
      nextAttemptAt: new Date(Date.now() - 1_000).toISOString(),
      createdAt: thirtyDaysAgo,
      updatedAt: thirtyDaysAgo,
      jumdata: { taskNo: 't', charged: true, fetchedAt: thirtyDaysAgo, files: { pdf: 'https://x/p', ofd: 'https://x/o', xml: 'https://x/x' }, fields: {} },
    };
    await documents().send(new PutCommand({ TableName: state.local.jobsTable, Item: itemOf(pending, 1) }));
    // Act
    const report = await state.local.sweep('download');
    // Assess
    expect(report).toMatchObject({ failed: 1 });
    expect(state.local.sandboxes.jumdata!.billedCallsFor(invoiceNo)).toBe(0);
    const failed = await get('/jobs?state=failed&function=download');
    const job = failed.body.jobs.find((j: any) => j.key === `${taxNum}/${invoiceNo}`);
    expect(job).toMatchObject({ state: 'failed', lastError: { code: 'LINKS_EXPIRED', statusCode: 410 } });
    // The listing never shows the paid-for links
    expect(JSON.stringify(failed.body)).not.toContain('https://x/p');
  });

  it('is recorded as LINKS_EXPIRED when an API request found the paid-for links dead: the sweep does not pay again', async () => {
    // Prepare: the links of Jumdata's first answer for this invoice answer 404
    const invoiceNo = JUMDATA_SANDBOX_INVOICES.expiredLinks;
    const first = await post('/download', { taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales' });
    expect(first.status).toBe(502);
    expect(state.local.sandboxes.jumdata!.billedCallsFor(invoiceNo)).toBe(1);
    // Act
    await untilDue('download', `${taxNum}/${invoiceNo}`);
    const report = await state.local.sweep('download');
    // Assess
    expect(report).toMatchObject({ failed: 1 });
    expect(state.local.sandboxes.jumdata!.billedCallsFor(invoiceNo)).toBe(1);
    expect(await record('download', `${taxNum}/${invoiceNo}`)).toMatchObject({ state: 'failed', lastError: { code: 'LINKS_EXPIRED' } });
    // A person asking again buys new links, and the download completes
    const again = await post('/download', { taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales' });
    expect(again.status).toBe(200);
    expect(state.local.sandboxes.jumdata!.billedCallsFor(invoiceNo)).toBe(2);
  });

  it('keeps a tax-bureau login failure pending for at least an hour', async () => {
    // Act
    const answer = await post('/download', { taxNum, invoiceNo: JUMDATA_SANDBOX_INVOICES.loginRequired, issueDate: '2024-04-25', direction: 'sales' });
    // Assess
    expect(answer.status).toBe(422);
    const kept = await record('download', `${taxNum}/${JUMDATA_SANDBOX_INVOICES.loginRequired}`);
    expect(kept).toMatchObject({ state: 'pending' });
    expect(Date.parse(kept!.nextAttemptAt) - Date.parse(kept!.updatedAt)).toBeGreaterThanOrEqual(3_600_000);
  });
});

describe('the sweeps themselves', () => {
  it('run one at a time per function: a second sweep started meanwhile does nothing', async () => {
    // Act
    const [first, second] = await Promise.all([state.local.sweep('erp-update'), state.local.sweep('erp-update')]);
    // Assess
    expect([first.alreadyRunning, second.alreadyRunning].filter(Boolean)).toHaveLength(1);
    // Once both have ended, the next sweep runs.
    expect((await state.local.sweep('erp-update')).alreadyRunning).toBeUndefined();
  });

  it('are not stopped by a job whose key looks like their lock', async () => {
    // Prepare: an ERP invoice number may be any text, this one too
    const answer = await post('/erp-update', { invoiceNo: 'lock#sweep', status: 75 });
    expect(answer.status).toBe(422);
    // Act
    const report = await state.local.sweep('erp-update');
    // Assess
    expect(report.alreadyRunning).toBeUndefined();
    expect(await record('erp-update', 'lock#sweep')).toMatchObject({ state: 'failed' });
  });
});

describe('GET /jobs', () => {
  it('refuses a missing or unknown state, a bad limit or function, and a cursor it did not make, naming the field', async () => {
    for (const [query, field] of [
      ['', 'state'],
      ['?state=running', 'state'],
      ['?state=failed&limit=0', 'limit'],
      ['?state=failed&limit=x', 'limit'],
      ['?state=failed&function=invoice', 'function'],
      ['?state=failed&cursor=not-a-cursor', 'cursor'],
      [`?state=failed&cursor=${Buffer.from(JSON.stringify({ retry: 'e30' })).toString('base64url')}`, 'cursor'],
    ] as const) {
      const answer = await get(`/jobs${query}`);
      expect(answer.status, query).toBe(400);
      expect(answer.body.error.details.map((d: any) => d.field), query).toContain(field);
    }
  });

  it('refuses every malformed or foreign cursor with a 400 naming cursor, and logs no error', async () => {
    // Prepare: a real cursor, of the failed ERP updates
    for (const n of [1, 2]) await post('/erp-update', { invoiceNo: `DZ-CURSOR-${n}`, status: 75 });
    const real = (await get('/jobs?state=failed&function=erp-update&limit=1')).body.cursor as string;
    expect(real).toEqual(expect.any(String));
    const outer = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const inner = JSON.parse(Buffer.from(real, 'base64url').toString())['erp-update'] as string;
    const key = JSON.parse(Buffer.from(inner, 'base64url').toString()) as Record<string, string>;
    const cases = [
      ['a JSON null per function', 'state=pending&cursor=eyJyZXRyeSI6ICJiblZzYkEifQ'],
      ['an empty cursor', 'state=pending&cursor='],
      ['bad base64', 'state=pending&cursor=%2B%2F%3D%3D'],
      ['base64 that is not JSON', `state=pending&cursor=${Buffer.from('{"retry":').toString('base64url')}`],
      ['JSON null', `state=pending&cursor=${outer(null)}`],
      ['a JSON array', `state=pending&cursor=${outer(['x'])}`],
      ['an empty JSON object', `state=pending&cursor=${outer({})}`],
      ['an unknown function', `state=pending&cursor=${outer({ invoice: inner })}`],
      ['a number for a function', `state=pending&cursor=${outer({ retry: 1 })}`],
      ['an inner cursor that is not base64 JSON', `state=pending&cursor=${outer({ retry: '!!' })}`],
      ['an inner key of the wrong shape', `state=failed&cursor=${outer({ 'erp-update': outer({ pk: 1 }) })}`],
      ['an inner key with an extra attribute', `state=failed&cursor=${outer({ 'erp-update': outer({ ...key, x: 'y' }) })}`],
      ['an inner key with a null attribute', `state=failed&cursor=${outer({ 'erp-update': outer({ ...key, dueAt: null }) })}`],
      ['a failed-jobs cursor asked of pending jobs', `state=pending&cursor=${real}`],
      ["another function's cursor", `state=failed&function=retry&cursor=${real}`],
      ["a cursor moved to another function's place", `state=failed&cursor=${outer({ download: inner })}`],
    ] as const;
    const errorsBefore = state.logged.filter((line) => line.includes('"level":"ERROR"')).length;
    for (const [label, query] of cases) {
      // Act
      const answer = await get(`/jobs?${query}`);
      // Assess
      expect(answer.status, label).toBe(400);
      expect(answer.body.error.code, label).toBe('VALIDATION_FAILED');
      expect(answer.body.error.details, label).toEqual([{ field: 'cursor', message: expect.stringMatching(/^(?!Invalid input)/) }]);
    }
    expect(state.logged.filter((line) => line.includes('"level":"ERROR"')).length).toBe(errorsBefore);
    // The real cursor still works where it belongs
    expect((await get(`/jobs?state=failed&function=erp-update&limit=1&cursor=${real}`)).status).toBe(200);
  });

  it('pages through the jobs with its cursor', async () => {
    // Prepare: three failed ERP updates
    for (const n of [1, 2, 3]) await post('/erp-update', { invoiceNo: `DZ-PAGED-${n}`, status: 75 });
    // Act
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const answer = await get(`/jobs?state=failed&function=erp-update&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(answer.status).toBe(200);
      seen.push(...answer.body.jobs.map((job: any) => job.key));
      cursor = answer.body.cursor;
      pages += 1;
    } while (cursor && pages < 10);
    // Assess
    expect(seen).toEqual(expect.arrayContaining(['DZ-PAGED-1', 'DZ-PAGED-2', 'DZ-PAGED-3']));
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages).toBeGreaterThanOrEqual(3);
  });
});
