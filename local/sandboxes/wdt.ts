import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { secondsNow, sendJson, startSandboxServer, type ReceivedRequest } from './sandbox-server.ts';

/**
 * A stand-in for 旺店通 openapi2's vip_invoice_info_update.php, on 127.0.0.1. Like WDT it recomputes the signature
 * (lengths in code points) and refuses a wrong one, a timestamp more than 5 minutes off, a missing invoice_code, and
 * a status-80 update without invoice_no_out; it knows a few ERP invoice numbers and answers 30000 for any other.
 * It also limits each appkey to 60 calls a minute, answering 1012 beyond that, as WDT is reported to.
 * Codes 1003-1006 are the sandbox's own: WDT publishes no error-code list.
 */

export const WDT_SANDBOX_CREDENTIALS = { sid: 'sandbox-sid', appKey: 'sandbox-appkey', appSecret: 'sandbox-wdt-secret' };

export const WDT_SANDBOX_MAX_SKEW_SECONDS = 300;

/** Served under the same path as WDT's openapi2, so WDT_BASE_URL is swapped for the real one as is. */
const BASE_PATH = '/openapi2';

export const WDT_SANDBOX_INVOICES = {
  /** ERP invoice numbers the sandbox knows: updates to them succeed (code 0). */
  known: ['DZ202202150004', 'FP202401220001', 'FP202401220002'],
  /** Always answers 1012 (too frequent), as if the minute's quota were spent. */
  rateLimited: 'DZ-RATE-LIMITED',
  /** The answer comes after 15 s: longer than the default upstream timeout. */
  slow: 'DZ-SLOW',
  /** Any `FP` + 12 digits is an ERP invoice the sandbox knows (many jobs in tests and the sweep's examples). */
  knownPattern: /^FP\d{12}$/,
  /** Any number starting so answers 1012 the first time it is sent, and succeeds after that. */
  flakyPrefix: 'DZ-FLAKY-',
} as const;

export interface WdtSandbox {
  url: string;
  received: ReceivedRequest[];
  /** Calls refused with 1012 because the minute's quota was spent. */
  refusedForRate(): number;
  close(): Promise<void>;
}

export interface WdtSandboxOptions {
  port?: number;
  credentials?: { sid: string; appKey: string; appSecret: string };
  callsPerMinute?: number;
  /**
   * The sliding window the rate is enforced over (default a minute); tests use a second, callsPerMinute / 60 calls,
   * so that a sweep that bunched its calls would be refused.
   */
  rateWindowMs?: number;
  slowAnswerMs?: number;
}

export async function startWdtSandbox(options: WdtSandboxOptions = {}): Promise<WdtSandbox> {
  const credentials = options.credentials ?? WDT_SANDBOX_CREDENTIALS;
  const callsPerMinute = options.callsPerMinute ?? 60;
  const windowMs = options.rateWindowMs ?? 60_000;
  const callsPerWindow = Math.max(1, Math.floor((callsPerMinute * windowMs) / 60_000));
  const recentCalls: number[] = [];
  const flakySeen = new Set<string>();
  let refusedForRate = 0;

  async function handle(request: ReceivedRequest, res: ServerResponse) {
    if (request.method !== 'POST' || request.path !== `${BASE_PATH}/vip_invoice_info_update.php`) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    sendJson(res, await decide(request.fields));
  }

  async function decide(fields: Record<string, string>): Promise<{ code: number | string; message: string }> {
    const missing = ['sid', 'appkey', 'timestamp', 'sign', 'invoice_no', 'invoice_code'].filter(
      (key) => fields[key] === undefined,
    );
    if (missing.length > 0) return { code: 1005, message: `缺少必要参数: ${missing.join(',')}` };
    if (fields.sid !== credentials.sid || fields.appkey !== credentials.appKey) {
      return { code: 1006, message: '卖家账号或接口账号不存在' };
    }
    const skew = Math.abs(secondsNow() - Number(fields.timestamp));
    if (!(skew <= WDT_SANDBOX_MAX_SKEW_SECONDS)) return { code: 1004, message: '时间戳超出允许误差(5分钟)' };
    if (fields.sign !== erpSign(fields, credentials.appSecret)) return { code: 1003, message: '签名错误' };

    const now = Date.now();
    while (recentCalls.length > 0 && recentCalls[0]! <= now - windowMs) recentCalls.shift();
    if (recentCalls.length >= callsPerWindow) refusedForRate += 1;
    if (recentCalls.length >= callsPerWindow || fields.invoice_no === WDT_SANDBOX_INVOICES.rateLimited) {
      return { code: 1012, message: '调用太频繁,请稍后再试' };
    }
    recentCalls.push(now);
    const invoiceNo = fields.invoice_no ?? '';
    if (invoiceNo.startsWith(WDT_SANDBOX_INVOICES.flakyPrefix) && !flakySeen.has(invoiceNo)) {
      flakySeen.add(invoiceNo);
      return { code: 1012, message: '调用太频繁,请稍后再试' };
    }

    const status = fields.status ?? '80';
    if (!['65', '75', '80'].includes(status)) return { code: 1005, message: 'status只能是65、75或80' };
    if (status === '80' && !fields.invoice_no_out) {
      return { code: 1005, message: '开票成功时发票号码invoice_no_out必传' };
    }
    if (fields.invoice_no === WDT_SANDBOX_INVOICES.slow) {
      await new Promise((resolve) => setTimeout(resolve, options.slowAnswerMs ?? 15_000));
      return { code: 0, message: 'OK' };
    }
    const known =
      (WDT_SANDBOX_INVOICES.known as readonly string[]).includes(invoiceNo) ||
      WDT_SANDBOX_INVOICES.knownPattern.test(invoiceNo) ||
      invoiceNo.startsWith(WDT_SANDBOX_INVOICES.flakyPrefix);
    if (!known) {
      return { code: 30000, message: '发票编号在系统中不存在,请检查invoice_no字段值 ' };
    }
    // The document's own success example sends the code as a string.
    return { code: '0', message: 'OK' };
  }

  const server = await startSandboxServer(handle, options.port);
  return {
    url: `${server.origin}${BASE_PATH}`,
    received: server.received,
    refusedForRate: () => refusedForRate,
    close: server.close,
  };
}

/**
 * WDT's check as its PHP SDK computes it (ksort, iconv_strlen, sprintf %02d/%04d), written apart from the product's
 * signer on purpose so that each is a second reading of the other.
 */
function erpSign(fields: Record<string, string>, appSecret: string): string {
  const parts: string[] = [];
  for (const key of Object.keys(fields).sort()) {
    if (key === 'sign') continue;
    const value = fields[key]!;
    parts.push(`${String(Array.from(key).length).padStart(2, '0')}-${key}:${String(Array.from(value).length).padStart(4, '0')}-${value}`);
  }
  return createHash('md5').update(parts.join(';') + appSecret).digest('hex');
}
