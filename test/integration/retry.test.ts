import { describe, expect, it } from 'vitest';
import { lambdaContext } from '../../local/api-gateway.ts';
import {
  FW199_SANDBOX_CREDENTIALS,
  FW199_SANDBOX_INVOICE_NO,
  FW199_SANDBOX_ORDERS,
} from '../../local/sandboxes/fw199.ts';
import { JobStore } from '#shared/jobs';
import type { BatchReport } from '#shared/middleware';
import { signFw199 } from '#shared/providers/fw199';
import { localDynamoClient, useLocalMode } from '../helpers/local-mode.ts';

/**
 * The retry function end to end: real HTTP requests to local mode, through the real handler, to the fw199 sandbox,
 * which checks every signature as the gateway does.
 */

const taxNum = '91310117568051222X';
const { state, post } = useLocalMode();
const sandbox = () => state.local.sandboxes.fw199!;

async function postRetry(body: unknown, contentType?: string) {
  const answer = await post('/retry', body, contentType);
  return { ...answer, requestId: answer.headers.get('x-request-id') };
}

describe('POST /retry through local mode', () => {
  it('sends the gateway exactly the signed form fields, and answers 202 retrying for code 0', async () => {
    // Act
    const before = Math.floor(Date.now() / 1000);
    const answer = await postRetry({ taxNum, orderNo: '20240122150518179381' });
    // Assess
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({ orderNo: '20240122150518179381', status: 'retrying', message: '重试成功' });
    expect(answer.requestId).toMatch(/^[0-9a-f-]{36}$/);

    const received = sandbox().received.at(-1)!;
    expect(received.method).toBe('POST');
    expect(received.path).toBe('/gateway/nuonuo/invoice/rebillingnew');
    expect(received.contentType).toBe('application/x-www-form-urlencoded;charset=UTF-8');
    const timestamp = Number(received.fields.timestamp);
    expect(timestamp).toBeGreaterThanOrEqual(before);
    expect(timestamp).toBeLessThanOrEqual(before + 5);
    const expectedFields = {
      appid: FW199_SANDBOX_CREDENTIALS.appId,
      timestamp: String(timestamp),
      tax_num: taxNum,
      request_data: '{"orderno":"20240122150518179381"}',
    };
    const sign = signFw199(expectedFields, FW199_SANDBOX_CREDENTIALS.appSecret);
    expect(received.rawBody).toBe(new URLSearchParams({ ...expectedFields, sign }).toString());
  });

  it('answers 200 issued with the invoice number and pdf link for code 100', async () => {
    const answer = await postRetry({ taxNum, orderNo: FW199_SANDBOX_ORDERS.issued });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      orderNo: FW199_SANDBOX_ORDERS.issued,
      status: 'issued',
      message: '发票已经生成,不需要重复提交',
      invoiceNo: FW199_SANDBOX_INVOICE_NO,
      pdfUrl: `${sandbox().url}/sandbox/invoices/${FW199_SANDBOX_INVOICE_NO}.pdf`,
    });
  });

  it('answers 202 in_progress when the gateway says 开票中', async () => {
    const answer = await postRetry({ taxNum, orderNo: FW199_SANDBOX_ORDERS.inProgress });
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({
      orderNo: FW199_SANDBOX_ORDERS.inProgress,
      status: 'in_progress',
      message: '开票中(重试中),请耐心等待开票结果',
    });
  });

  it("answers 422 with the gateway's code and message for a business failure", async () => {
    const answer = await postRetry({ taxNum, orderNo: FW199_SANDBOX_ORDERS.loginRequired });
    expect(answer.status).toBe(422);
    expect(answer.body).toEqual({
      error: {
        code: 'UPSTREAM_REJECTED',
        message: 'fw199 rejected the request: 本次操作需登录电子发票服务平台,请先使用短信验证码登录',
        upstream: { provider: 'fw199', code: 9001, message: '本次操作需登录电子发票服务平台,请先使用短信验证码登录' },
      },
    });
  });

  it('answers 504 when the gateway is slower than the upstream timeout', async () => {
    const answer = await postRetry({ taxNum, orderNo: FW199_SANDBOX_ORDERS.slow });
    expect(answer.status).toBe(504);
    expect(answer.body).toEqual({ error: { code: 'UPSTREAM_TIMEOUT', message: 'fw199 did not answer within 1000 ms' } });
  });

  it('answers 502 when the gateway answers an HTML page or HTTP 500', async () => {
    const html = await postRetry({ taxNum, orderNo: FW199_SANDBOX_ORDERS.notJson });
    const http500 = await postRetry({ taxNum, orderNo: FW199_SANDBOX_ORDERS.serverError });
    expect(html.status).toBe(502);
    expect(html.body.error).toEqual({ code: 'UPSTREAM_UNAVAILABLE', message: 'fw199 answered something that is not JSON' });
    expect(http500.status).toBe(502);
    expect(http500.body.error).toEqual({ code: 'UPSTREAM_UNAVAILABLE', message: 'fw199 answered HTTP 500' });
  });

  it('answers 400 naming each bad field, and makes no gateway call', async () => {
    // Prepare
    const callsBefore = sandbox().received.length;
    // Act
    const answer = await postRetry({ taxNum: '91310117568051223X', orderNo: 'A B' });
    // Assess
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('VALIDATION_FAILED');
    expect(answer.body.error.details.map((d: { field: string }) => d.field)).toEqual(['taxNum', 'orderNo']);
    expect(sandbox().received.length).toBe(callsBefore);
  });

  it('answers 400 for malformed JSON and 415 for a body that is not JSON, with no gateway call', async () => {
    const callsBefore = sandbox().received.length;
    const malformed = await postRetry('{"taxNum": ');
    const notJson = await postRetry('taxNum=1', 'application/x-www-form-urlencoded');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.details).toEqual([{ field: 'body', message: 'must be a valid JSON document' }]);
    expect(notJson.status).toBe(415);
    expect(notJson.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(sandbox().received.length).toBe(callsBefore);
  });

  it('answers 400 for a body that is not valid UTF-8, and the gateway receives no call', async () => {
    // Prepare: RAW-1 followed by the bytes FF FE, which no UTF-8 text holds
    const callsBefore = sandbox().received.length;
    const bytes = Buffer.concat([Buffer.from(`{"taxNum":"${taxNum}","orderNo":"RAW-1`), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    // Act
    const answer = await postRetry(bytes);
    // What a gateway that decodes with replacement leaves of them: U+FFFD, sent as UTF-8
    const replaced = await postRetry(`{"taxNum":"${taxNum}","orderNo":"RAW-1\uFFFD\uFFFD"}`);
    // Assess
    for (const refused of [answer, replaced]) {
      expect(refused.status).toBe(400);
      expect(refused.body.error).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'body', message: 'is not valid UTF-8' }] });
    }
    expect(sandbox().received.length).toBe(callsBefore);
  });

  it('reads application/json with whitespace around ; and any case, and refuses a charset other than UTF-8 with 415', async () => {
    // Prepare
    const callsBefore = sandbox().received.length;
    const body = { taxNum, orderNo: '20240122150518179382' };
    // Act
    const spaced = await postRetry(body, 'application/json ; charset=utf-8');
    const shouted = await postRetry(body, 'Application/JSON;Charset="UTF-8"');
    const latin1 = await postRetry(body, 'application/json; charset=latin1');
    // Assess
    expect([spaced.status, shouted.status]).toEqual([202, 202]);
    expect(latin1.status).toBe(415);
    expect(latin1.body.error).toEqual({
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: "Content-Type charset must be UTF-8 (or left out), got 'application/json; charset=latin1'",
    });
    expect(sandbox().received.length).toBe(callsBefore + 2);
  });

  it('answers 404 in the error shape for a route that does not exist', async () => {
    const response = await fetch(`${state.local.url}/nothing`, { method: 'POST' });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'No route POST /nothing' } });
  });
});

describe('a scheduled batch to the retry function', () => {
  it('processes each job and reports each one, a bad job stopping none of the others', async () => {
    // Prepare
    const { handler } = await import('../../functions/retry/handler.ts');
    const callsBefore = sandbox().received.length;
    const jobs = [
      { taxNum, orderNo: 'BATCH-1' },
      { taxNum, orderNo: '' },
      { taxNum, orderNo: FW199_SANDBOX_ORDERS.issued },
      { taxNum, orderNo: FW199_SANDBOX_ORDERS.loginRequired },
    ];
    // Act
    const report = (await handler({ jobs }, lambdaContext('retry', 60_000))) as BatchReport;
    // Assess
    expect(report).toMatchObject({ received: 4, succeeded: 2, failed: 2, skipped: 0 });
    expect(report.results).toEqual([
      { index: 0, statusCode: 202, body: { orderNo: 'BATCH-1', status: 'retrying', message: '重试成功' } },
      {
        index: 1,
        statusCode: 400,
        body: { error: { code: 'VALIDATION_FAILED', message: 'The request is not valid', details: [{ field: 'orderNo', message: 'must not be empty' }] } },
      },
      { index: 2, statusCode: 200, body: expect.objectContaining({ status: 'issued', invoiceNo: FW199_SANDBOX_INVOICE_NO }) },
      { index: 3, statusCode: 422, body: { error: expect.objectContaining({ code: 'UPSTREAM_REJECTED' }) } },
    ]);
    expect(sandbox().received.length).toBe(callsBefore + 3);
  });

  it('starts no job when the invocation is about to run out of time, and keeps it pending for the sweep', async () => {
    const { handler } = await import('../../functions/retry/handler.ts');
    const callsBefore = sandbox().received.length;
    const report = await handler(
      { jobs: [{ taxNum, orderNo: 'LATE-1' }, { taxNum: 'bad', orderNo: 'LATE-2' }] },
      lambdaContext('retry', 1_000),
    );
    expect(report).toMatchObject({
      received: 2,
      succeeded: 0,
      failed: 0,
      skipped: 2,
      results: [
        { index: 0, statusCode: 202, body: { status: 'deferred' } },
        // A job that could never run is not kept: its report says why.
        { index: 1, statusCode: 400, body: { error: { code: 'VALIDATION_FAILED' } } },
      ],
    });
    expect(sandbox().received.length).toBe(callsBefore);
    const pending = (await handler({ action: 'sweep' }, lambdaContext('retry', 60_000))) as { done: number };
    expect(pending.done).toBe(1);
    expect(sandbox().received.map((r) => r.fields.request_data).filter((data) => data?.includes('LATE-1'))).toHaveLength(1);
  });
});

describe('concurrent requests for one order', () => {
  it('get the one push\'s answer, all ten, when the push ends within their wait', async () => {
    // Prepare
    const orderNo = 'CONCURRENT-1';
    // Act
    const answers = await Promise.all(Array.from({ length: 10 }, () => post('/retry', { taxNum, orderNo })));
    // Assess: one push; every request answered its result (202 retrying), none a 409
    expect(answers.map((answer) => answer.status)).toEqual(Array(10).fill(202));
    expect(answers.map((answer) => answer.body.status)).toEqual(Array(10).fill('retrying'));
    expect(sandbox().received.filter((r) => r.fields.request_data?.includes(orderNo))).toHaveLength(1);
  });
});

describe('a scheduled batch of 1,000 jobs in a 60 s invocation', () => {
  it('returns in time with every job either run or recorded pending for the sweep', { timeout: 60_000 }, async () => {
    // Prepare: the invocation's clock runs four times faster than the wall clock (60 s of it take 15 s), and the
    // sweep's spacing (2 s of wall clock between pushes) leaves time for a few jobs only: the rest must be deferred
    const { handler } = await import('../../functions/retry/handler.ts');
    const startedAt = Date.now();
    const remaining = () => Math.max(0, 60_000 - (Date.now() - startedAt) * 4);
    const context = { ...lambdaContext('retry', 60_000), getRemainingTimeInMillis: remaining };
    const jobs = Array.from({ length: 1_000 }, (_, i) => ({ taxNum, orderNo: `BULK-${i}` }));
    // Act
    const report = (await handler({ jobs }, context)) as BatchReport;
    const left = remaining();
    // Assess: returned before the invocation's end, a report per job, every job run or kept
    expect(left).toBeGreaterThan(0);
    expect(report.results).toHaveLength(1_000);
    const ran = report.results.filter((result) => result.statusCode !== 202 || (result.body as { status?: string }).status !== 'deferred');
    expect(ran.length).toBeGreaterThan(0);
    expect(ran.every((result) => result.statusCode === 202)).toBe(true);
    const pending = await pendingKeys();
    for (const result of report.results.filter((r) => (r.body as { status?: string }).status === 'deferred')) {
      expect(pending.has(`${taxNum}/BULK-${result.index}`)).toBe(true);
    }
  });
});

/** The keys of every pending (open) retry job, read from the jobs table page by page. */
async function pendingKeys(): Promise<Set<string>> {
  const store = new JobStore(
    localDynamoClient(state.local),
    state.local.jobsTable,
  );
  const keys = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await store.list('retry', 'open', { limit: 100, cursor });
    for (const job of page.jobs) keys.add(job.value.key);
    cursor = page.cursor;
  } while (cursor);
  return keys;
}

describe('the fw199 sandbox', () => {
  const form = (fields: Record<string, string>) =>
    fetch(`${sandbox().url}/gateway/nuonuo/invoice/rebillingnew`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields),
    }).then((r) => r.json() as Promise<{ code: number; message: string }>);
  const signed = (timestamp: number, secret = FW199_SANDBOX_CREDENTIALS.appSecret) => {
    const fields = {
      appid: FW199_SANDBOX_CREDENTIALS.appId,
      timestamp: String(timestamp),
      tax_num: taxNum,
      request_data: '{"orderno":"X1"}',
    };
    return { ...fields, sign: signFw199(fields, secret) };
  };

  it('refuses a signature made with another secret', async () => {
    expect(await form(signed(Math.floor(Date.now() / 1000), 'wrong-secret'))).toEqual({ code: 1003, message: '签名错误' });
  });

  it('refuses a correctly signed request whose timestamp is stale', async () => {
    const answer = await form(signed(Math.floor(Date.now() / 1000) - 600));
    expect(answer.code).toBe(1002);
  });

  it('refuses a millisecond timestamp', async () => {
    expect((await form(signed(Date.now()))).code).toBe(1002);
  });
});

describe('secrets in local mode', () => {
  it('never writes the app secret to a log line or a response', async () => {
    const answers = await Promise.all(
      Object.values(FW199_SANDBOX_ORDERS)
        .filter((orderNo) => orderNo !== FW199_SANDBOX_ORDERS.slow)
        .map((orderNo) => postRetry({ taxNum, orderNo })),
    );
    const everything = state.logged.join('') + JSON.stringify(answers);
    expect(state.logged.some((line) => line.includes('"request answered"'))).toBe(true);
    expect(state.logged.some((line) => line.includes('"provider failed"'))).toBe(true);
    expect(everything).not.toContain(FW199_SANDBOX_CREDENTIALS.appSecret);
  });
});
