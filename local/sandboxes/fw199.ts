import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { secondsNow, sendJson, startSandboxServer, type ReceivedRequest } from './sandbox-server.ts';

export type { ReceivedRequest } from './sandbox-server.ts';

/**
 * A stand-in for the 蜂巢 (fw199) gateway's rebillingnew endpoint, on 127.0.0.1. Like the gateway it recomputes the
 * signature and refuses a wrong one or a stale timestamp with a non-zero code. Order numbers below pick an outcome;
 * any other order number is accepted for retry (code 0). Its own error codes (1001-1004) are made up: the real
 * gateway's are not published.
 */

export const FW199_SANDBOX_CREDENTIALS = { appId: 'sandbox-fw199-app', appSecret: 'sandbox-fw199-secret' };

/** Seconds a timestamp may differ from the sandbox's clock (the real gateway's tolerance is not published). */
export const FW199_SANDBOX_MAX_SKEW_SECONDS = 300;

export const FW199_SANDBOX_ORDERS = {
  /** code 100: already issued; the answer carries the invoice number and pdf link. */
  issued: 'SANDBOX-ISSUED',
  /** A non-zero code whose message says 开票中: the invoice is still being issued. */
  inProgress: 'SANDBOX-IN-PROGRESS',
  /** A business failure (code 9001): the tax platform needs an SMS login. */
  loginRequired: 'SANDBOX-LOGIN-REQUIRED',
  /** The answer comes after 15 s: longer than the default upstream timeout. */
  slow: 'SANDBOX-SLOW',
  /** HTTP 200 with an HTML page instead of JSON. */
  notJson: 'SANDBOX-NOT-JSON',
  /** HTTP 500. */
  serverError: 'SANDBOX-HTTP-500',
  /** Any order starting so gets HTTP 500 the first time it is pushed, and code 0 after that. */
  flakyPrefix: 'SANDBOX-FLAKY-',
} as const;

/** Nuonuo's cap on re-pushes of one order per day; beyond it the sandbox answers 9613 (Nuonuo's E9613). */
export const FW199_SANDBOX_DAILY_PUSHES = 20;

export const FW199_SANDBOX_INVOICE_NO = '24312000000022669098';

export interface Fw199Sandbox {
  url: string;
  /** Every request the sandbox received, in order, as bytes and as parsed fields. */
  received: ReceivedRequest[];
  /** Pushes refused because the order's daily cap was spent. */
  refusedForCap(): number;
  close(): Promise<void>;
}

export interface Fw199SandboxOptions {
  port?: number;
  credentials?: { appId: string; appSecret: string };
  slowAnswerMs?: number;
}

export async function startFw199Sandbox(options: Fw199SandboxOptions = {}): Promise<Fw199Sandbox> {
  const credentials = options.credentials ?? FW199_SANDBOX_CREDENTIALS;
  const slowAnswerMs = options.slowAnswerMs ?? 15_000;
  let baseUrl = '';
  const pushesToday = new Map<string, number>();
  let refusedForCap = 0;

  async function handle(request: ReceivedRequest, res: ServerResponse) {
    if (request.method === 'GET' && request.path.startsWith('/sandbox/invoices/')) {
      res.writeHead(200, { 'content-type': 'application/pdf' }).end(SANDBOX_PDF);
      return;
    }
    if (request.method !== 'POST' || request.path !== '/gateway/nuonuo/invoice/rebillingnew') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const answer = await decide(request.fields);
    if (answer === 'html') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>502 Bad Gateway</body></html>');
    } else if (answer === 'http500') {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error');
    } else {
      sendJson(res, answer);
    }
  }

  async function decide(fields: Record<string, string>): Promise<object | 'html' | 'http500'> {
    const missing = ['appid', 'timestamp', 'tax_num', 'request_data', 'sign'].filter((k) => fields[k] === undefined);
    if (missing.length > 0) return { code: 1004, message: `缺少参数: ${missing.join(',')}` };
    if (fields.appid !== credentials.appId) return { code: 1001, message: 'appid不存在' };
    const skew = Math.abs(secondsNow() - Number(fields.timestamp));
    if (!(skew <= FW199_SANDBOX_MAX_SKEW_SECONDS)) return { code: 1002, message: 'timestamp已过期,请校准时间' };
    if (fields.sign !== gatewaySign(fields, credentials.appSecret)) return { code: 1003, message: '签名错误' };

    let orderNo: unknown;
    try {
      orderNo = (JSON.parse(fields.request_data ?? '') as { orderno?: unknown }).orderno;
    } catch {
      orderNo = undefined;
    }
    if (typeof orderNo !== 'string' || orderNo === '') return { code: 1004, message: 'request_data中缺少orderno' };

    const day = `${new Date().toISOString().slice(0, 10)}#${fields.tax_num}#${orderNo}`;
    const pushes = (pushesToday.get(day) ?? 0) + 1;
    pushesToday.set(day, pushes);
    if (pushes > FW199_SANDBOX_DAILY_PUSHES) {
      refusedForCap += 1;
      return { code: 9613, message: 'E9613 该订单今日重试次数已超过上限' };
    }
    if (orderNo.startsWith(FW199_SANDBOX_ORDERS.flakyPrefix) && pushes === 1) return 'http500';

    switch (orderNo) {
      case FW199_SANDBOX_ORDERS.issued:
        return {
          code: 100,
          invoice_down_url: `${baseUrl}/sandbox/invoices/${FW199_SANDBOX_INVOICE_NO}.pdf`,
          invoice_no: FW199_SANDBOX_INVOICE_NO,
          message: '发票已经生成,不需要重复提交',
        };
      case FW199_SANDBOX_ORDERS.inProgress:
        return { code: 9002, message: '开票中(重试中),请耐心等待开票结果' };
      case FW199_SANDBOX_ORDERS.loginRequired:
        return { code: 9001, message: '本次操作需登录电子发票服务平台,请先使用短信验证码登录' };
      case FW199_SANDBOX_ORDERS.slow:
        await new Promise((resolve) => setTimeout(resolve, slowAnswerMs));
        return { code: 0, message: '重试成功' };
      case FW199_SANDBOX_ORDERS.notJson:
        return 'html';
      case FW199_SANDBOX_ORDERS.serverError:
        return 'http500';
      default:
        return { code: 0, message: '重试成功' };
    }
  }

  const server = await startSandboxServer(handle, options.port);
  baseUrl = server.origin;
  return { url: server.origin, received: server.received, refusedForCap: () => refusedForCap, close: server.close };
}

/**
 * The gateway's own check, written apart from the product's signer on purpose: the sandbox is an independent
 * second reading of the vendor's signing rule (checked against its SDK's vectors, test/unit/fw199-signing.test.ts),
 * so a mistake in one shows up against the other.
 */
function gatewaySign(fields: Record<string, string>, appSecret: string): string {
  let text = appSecret;
  for (const key of Object.keys(fields).sort()) {
    if (key !== 'sign') text += `${key}${fields[key]}`;
  }
  return createHash('md5').update(`${text}${appSecret}`, 'utf8').digest('hex');
}

/** A one-page PDF, enough for a browser to open the sandbox's "issued" link. */
const SANDBOX_PDF = Buffer.from(
  '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n' +
    '3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n',
);
