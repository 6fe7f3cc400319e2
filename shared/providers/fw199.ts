import { createHash } from 'node:crypto';
import { UpstreamRejectedError, UpstreamUnavailableError } from '#shared/errors';
import { postForm } from '#shared/http';
import type { Fw199Secret } from '#shared/secrets';

/**
 * 蜂巢 (fw199) gateway in front of Nuonuo: 开票重试 (rebillingnew). Its signing, its form, its answers.
 * Wire format: appid, timestamp (Unix seconds), tax_num, request_data (a JSON string), sign.
 */

export const REBILLING_PATH = '/gateway/nuonuo/invoice/rebillingnew';

/** Words in a failure message that mean "the invoice is being issued (retrying)": code unknown, so matched here. */
export const IN_PROGRESS_MARKER = '开票中';

/**
 * sign = md5(appSecret + k1 + v1 + k2 + v2 ... + appSecret) over every field but `sign`, keys in code-unit order,
 * values raw (before form encoding), empty values included as the bare key. Lowercase hex.
 */
export function signFw199(fields: Record<string, string>, appSecret: string): string {
  const concatenated = Object.keys(fields)
    .filter((key) => key !== 'sign')
    .sort()
    .map((key) => key + fields[key])
    .join('');
  return createHash('md5').update(appSecret + concatenated + appSecret, 'utf8').digest('hex');
}

export interface RebillingRequest {
  taxNum: string;
  orderNo: string;
}

/** The signed form for one re-push. `request_data` is serialised once: the signed string is the sent string. */
export function rebillingForm(
  { taxNum, orderNo }: RebillingRequest,
  secret: Fw199Secret,
  nowSeconds: number,
): Record<string, string> {
  const fields: Record<string, string> = {
    appid: secret.appId,
    timestamp: String(nowSeconds),
    tax_num: taxNum,
    request_data: JSON.stringify({ orderno: orderNo }),
  };
  return { ...fields, sign: signFw199(fields, secret.appSecret) };
}

export type RebillingOutcome =
  | { status: 'retrying'; message: string }
  | { status: 'in_progress'; message: string }
  | { status: 'issued'; message: string; invoiceNo: string; pdfUrl: string };

/**
 * Reads the gateway's answer: 0 = retry accepted (the result is pushed later), 100 = already issued (number and pdf
 * link returned), a message containing 开票中 = still being issued, anything else = rejected with the gateway's code.
 */
export function interpretRebillingAnswer(body: unknown): RebillingOutcome {
  const answer = body as { code?: unknown; message?: unknown; invoice_no?: unknown; invoice_down_url?: unknown };
  if (typeof answer !== 'object' || answer === null || !Number.isInteger(answer.code)) {
    throw new UpstreamUnavailableError('fw199', 'fw199 answered JSON without an integer code');
  }
  const code = answer.code as number;
  const message = typeof answer.message === 'string' ? answer.message : '';
  if (code === 0) return { status: 'retrying', message };
  if (code === 100) {
    if (typeof answer.invoice_no !== 'string' || typeof answer.invoice_down_url !== 'string') {
      throw new UpstreamUnavailableError('fw199', 'fw199 answered code 100 without invoice_no and invoice_down_url');
    }
    return { status: 'issued', message, invoiceNo: answer.invoice_no, pdfUrl: answer.invoice_down_url };
  }
  if (message.includes(IN_PROGRESS_MARKER)) return { status: 'in_progress', message };
  throw new UpstreamRejectedError('fw199', code, message);
}

export interface Fw199ClientOptions {
  baseUrl: string;
  timeoutMs: number;
  credentials: () => Promise<Fw199Secret>;
  nowSeconds?: () => number;
}

export interface Fw199Client {
  rebill(request: RebillingRequest): Promise<RebillingOutcome>;
}

export function createFw199Client(options: Fw199ClientOptions): Fw199Client {
  const nowSeconds = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
  const url = options.baseUrl.replace(/\/+$/, '') + REBILLING_PATH;
  return {
    async rebill(request) {
      const fields = rebillingForm(request, await options.credentials(), nowSeconds());
      const answer = await postForm({ provider: 'fw199', url, fields, timeoutMs: options.timeoutMs });
      return interpretRebillingAnswer(answer.body);
    },
  };
}
