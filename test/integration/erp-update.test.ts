import { describe, expect, it } from 'vitest';
import { lambdaContext } from '../../local/api-gateway.ts';
import { startWdtSandbox, WDT_SANDBOX_CREDENTIALS, WDT_SANDBOX_INVOICES } from '../../local/sandboxes/wdt.ts';
import type { BatchReport } from '#shared/middleware';
import { signWdt } from '#shared/providers/wdt';
import { useLocalMode } from '../helpers/local-mode.ts';

/**
 * The erp-update function end to end: real HTTP requests to local mode, through the real handler, to the WDT
 * sandbox, which checks every signature as WDT does.
 */

const { state, post } = useLocalMode();
const sandbox = () => state.local.sandboxes.wdt!;
const [known, knownFailure] = WDT_SANDBOX_INVOICES.known;

describe('POST /erp-update through local mode', () => {
  it('sends WDT exactly the signed form, and answers 200 for an invoicing success', async () => {
    // Prepare
    const filePath = 'https://files.example.com/fp?id=24312000000022669098&sig=a+b==';
    const before = Math.floor(Date.now() / 1000);
    // Act
    const answer = await post('/erp-update', {
      invoiceNo: known,
      status: 80,
      invoiceNoOut: '24312000000022669098',
      invoiceCode: '',
      filePath,
    });
    // Assess
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ invoiceNo: known, status: 80, message: 'OK' });
    const received = sandbox().received.at(-1)!;
    expect(received.path).toBe('/openapi2/vip_invoice_info_update.php');
    expect(received.contentType).toBe('application/x-www-form-urlencoded;charset=UTF-8');
    const timestamp = Number(received.fields.timestamp);
    expect(timestamp).toBeGreaterThanOrEqual(before);
    expect(timestamp).toBeLessThanOrEqual(before + 5);
    const expected = {
      sid: WDT_SANDBOX_CREDENTIALS.sid,
      appkey: WDT_SANDBOX_CREDENTIALS.appKey,
      timestamp: String(timestamp),
      invoice_no: known!,
      status: '80',
      invoice_code: '',
      invoice_no_out: '24312000000022669098',
      file_path: filePath,
    };
    const sign = signWdt(expected, WDT_SANDBOX_CREDENTIALS.appSecret);
    expect(received.rawBody).toBe(new URLSearchParams({ ...expected, sign }).toString());
    expect(received.rawBody).toContain('file_path=https%3A%2F%2Ffiles.example.com%2Ffp%3Fid%3D24312000000022669098%26sig%3Da%2Bb%3D%3D');
  });

  it('sends a failure with its Chinese error text, leaving out the fields it does not have', async () => {
    const answer = await post('/erp-update', { invoiceNo: knownFailure, status: 75, errorInfo: '购方税号错误' });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ invoiceNo: knownFailure, status: 75, message: 'OK' });
    const { fields } = sandbox().received.at(-1)!;
    expect(Object.keys(fields).sort()).toEqual(['appkey', 'error_info', 'invoice_code', 'invoice_no', 'sid', 'sign', 'status', 'timestamp']);
    expect(fields.error_info).toBe('购方税号错误');
  });

  it('sends emoji in errorInfo as U+FFFD, so WDT accepts the signature', async () => {
    const answer = await post('/erp-update', { invoiceNo: knownFailure, status: 65, errorInfo: '申请失败😀请重试' });
    expect(answer.status).toBe(200);
    expect(sandbox().received.at(-1)!.fields.error_info).toBe('申请失败\uFFFD请重试');
  });

  it("answers 422 with WDT's code and message for an invoice number WDT does not know", async () => {
    const answer = await post('/erp-update', { invoiceNo: 'DZ-NOT-IN-ERP', status: 75, errorInfo: 'x' });
    expect(answer.status).toBe(422);
    expect(answer.body.error).toEqual({
      code: 'UPSTREAM_REJECTED',
      message: 'wdt rejected the request: 发票编号在系统中不存在,请检查invoice_no字段值 ',
      upstream: { provider: 'wdt', code: 30000, message: '发票编号在系统中不存在,请检查invoice_no字段值 ' },
    });
  });

  it('answers 422 UPSTREAM_RATE_LIMITED with Retry-After when WDT says it is called too often', async () => {
    const answer = await post('/erp-update', { invoiceNo: WDT_SANDBOX_INVOICES.rateLimited, status: 75 });
    expect(answer.status).toBe(422);
    expect(answer.headers.get('retry-after')).toBe('30');
    expect(answer.body.error).toMatchObject({ code: 'UPSTREAM_RATE_LIMITED', upstream: { provider: 'wdt', code: 1012 } });
  });

  it('answers 504 when WDT is slower than the upstream timeout', async () => {
    const answer = await post('/erp-update', { invoiceNo: WDT_SANDBOX_INVOICES.slow, status: 75 });
    expect(answer.status).toBe(504);
    expect(answer.body.error.code).toBe('UPSTREAM_TIMEOUT');
  });

  it('answers 400 naming each bad field, and makes no WDT call', async () => {
    const callsBefore = sandbox().received.length;
    const answer = await post('/erp-update', { invoiceNo: 'DZ 1', status: 80, filePath: 'file:///etc/passwd' });
    expect(answer.status).toBe(400);
    expect(answer.body.error.details).toEqual([
      { field: 'invoiceNo', message: 'must not contain whitespace, control characters or emoji' },
      { field: 'filePath', message: 'must be an absolute http(s) URL' },
      { field: 'invoiceNoOut', message: 'is required when status is 80' },
    ]);
    expect(sandbox().received.length).toBe(callsBefore);
  });

  it('refuses full-width digits in invoiceNoOut and invoiceCode, and makes no WDT call', async () => {
    // Prepare
    const callsBefore = sandbox().received.length;
    // Act
    const answer = await post('/erp-update', { invoiceNo: 'DZ-WIDE-1', status: 80, invoiceNoOut: '２４３１２０００００００２２６６９０９８', invoiceCode: '０３３００２３００１１１' });
    // Assess
    expect(answer.status).toBe(400);
    expect(answer.body.error.details).toEqual([
      { field: 'invoiceNoOut', message: 'must be ASCII digits and letters only' },
      { field: 'invoiceCode', message: 'must be ASCII digits and letters only' },
    ]);
    expect(sandbox().received.length).toBe(callsBefore);
  });

  it('takes a scheduled batch of updates and reports each one', async () => {
    const { handler } = await import('../../functions/erp-update/handler.ts');
    const jobs = [
      { invoiceNo: known, invoiceNoOut: '24312000000022669098' },
      { invoiceNo: 'DZ-NOT-IN-ERP', status: 75 },
      { invoiceNo: known, status: 99 },
    ];
    const report = (await handler({ jobs }, lambdaContext('erp-update', 60_000))) as BatchReport;
    expect(report).toMatchObject({ received: 3, succeeded: 1, failed: 2, skipped: 0 });
    expect(report.results.map((r) => r.statusCode)).toEqual([200, 422, 400]);
  });
});

describe('the WDT sandbox', () => {
  const base = () => ({
    sid: WDT_SANDBOX_CREDENTIALS.sid,
    appkey: WDT_SANDBOX_CREDENTIALS.appKey,
    timestamp: String(Math.floor(Date.now() / 1000)),
    invoice_no: known!,
    status: '75',
    invoice_code: '',
  });
  const send = async (fields: Record<string, string>, url = sandbox().url, secret = WDT_SANDBOX_CREDENTIALS.appSecret) => {
    const response = await fetch(`${url}/vip_invoice_info_update.php`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...fields, sign: signWdt(fields, secret) }),
    });
    return (await response.json()) as { code: number | string; message: string };
  };

  it('accepts a correctly signed update', async () => {
    expect(await send(base())).toEqual({ code: '0', message: 'OK' });
  });

  it('refuses a signature made with another secret', async () => {
    expect((await send(base(), undefined, 'wrong')).code).toBe(1003);
  });

  it('refuses a timestamp more than 5 minutes off', async () => {
    expect((await send({ ...base(), timestamp: String(Math.floor(Date.now() / 1000) - 301) })).code).toBe(1004);
  });

  it('refuses an update without invoice_code', async () => {
    const { invoice_code: _left, ...fields } = base();
    expect(await send(fields)).toEqual({ code: 1005, message: '缺少必要参数: invoice_code' });
  });

  it('refuses a status-80 update without invoice_no_out', async () => {
    expect((await send({ ...base(), status: '80' })).code).toBe(1005);
  });

  it('answers 1012 once the calls of the last minute reach its limit (60 unless told otherwise)', async () => {
    const limited = await startWdtSandbox({ callsPerMinute: 3 });
    try {
      const codes = [];
      for (let i = 0; i < 4; i++) codes.push((await send(base(), limited.url)).code);
      expect(codes).toEqual(['0', '0', '0', 1012]);
    } finally {
      await limited.close();
    }
  });
});
