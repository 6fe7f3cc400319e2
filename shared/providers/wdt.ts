import { createHash } from 'node:crypto';
import { UpstreamRateLimitedError, UpstreamRejectedError, UpstreamUnavailableError } from '#shared/errors';
import { postForm } from '#shared/http';
import type { WdtSecret } from '#shared/secrets';

/**
 * 旺店通 (WDT) enterprise ERP, openapi2: vip_invoice_info_update.php (回传开发票结果). Its signing, its form and its
 * answer codes. Public fields: sid, appkey, timestamp (Unix seconds), sign.
 */

export const INVOICE_UPDATE_PATH = '/vip_invoice_info_update.php';

/** Length in Unicode code points, as WDT's PHP SDK counts (iconv_strlen), not UTF-16 units. */
const codePoints = (text: string) => [...text].length;

/**
 * Each entry `pad2(len(key)) + '-' + key + ':' + pad4(len(value)) + '-' + value`, keys sorted, joined by `;`, then
 * the appsecret appended. Padding never truncates: a 10000-character value prints 5 digits, as `%04d` does.
 */
export function wdtSigningText(fields: Record<string, string>, appSecret: string): string {
  const entries = Object.keys(fields)
    .filter((key) => key !== 'sign')
    .sort()
    .map((key) => {
      const value = fields[key] ?? '';
      return `${pad(codePoints(key), 2)}-${key}:${pad(codePoints(value), 4)}-${value}`;
    });
  return entries.join(';') + appSecret;
}

export function signWdt(fields: Record<string, string>, appSecret: string): string {
  return createHash('md5').update(wdtSigningText(fields, appSecret), 'utf8').digest('hex');
}

const pad = (value: number, width: number) => String(value).padStart(width, '0');

/** Characters outside the Basic Multilingual Plane (emoji and the like). */
const NON_BMP = /[\u{10000}-\u{10FFFF}]/gu;

/**
 * WDT's SDKs disagree on how long a non-BMP character is (PHP counts 1 code point, Java 2 UTF-16 units), so a
 * signature over one may be refused; its MySQL text columns may not store them either. Free text is therefore sent
 * with each such character replaced by U+FFFD, which every reader counts, stores and shows the same way.
 */
export function replaceNonBmp(text: string): string {
  return text.replace(NON_BMP, '\uFFFD');
}

export type InvoiceStatus = 65 | 75 | 80;

export interface InvoiceUpdate {
  invoiceNo: string;
  status: InvoiceStatus;
  invoiceNoOut?: string;
  /** Required by WDT; 数电 invoices have no code, so it may be empty, and it is then sent empty. */
  invoiceCode: string;
  errorInfo?: string;
  filePath?: string;
}

/**
 * The signed form. Optional fields left empty are left out of both the body and the signature (the SDKs refuse
 * empty values); `invoice_code` is required by WDT and always sent.
 */
export function invoiceUpdateForm(update: InvoiceUpdate, secret: WdtSecret, nowSeconds: number): Record<string, string> {
  const optional: Record<string, string | undefined> = {
    invoice_no_out: update.invoiceNoOut,
    error_info: update.errorInfo === undefined ? undefined : replaceNonBmp(update.errorInfo),
    file_path: update.filePath,
  };
  const fields: Record<string, string> = {
    sid: secret.sid,
    appkey: secret.appKey,
    timestamp: String(nowSeconds),
    invoice_no: update.invoiceNo,
    status: String(update.status),
    invoice_code: update.invoiceCode,
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined && value !== '') fields[key] = value;
  }
  return { ...fields, sign: signWdt(fields, secret.appSecret) };
}

/**
 * WDT's answer codes: the one table. WDT publishes no list; 0 is success, and 1012 ("too frequent", about 60 calls
 * a minute) comes from a third-party client and is UNCONFIRMED. Every other code is a business error.
 */
export const WDT_CODES = {
  success: 0,
  rateLimited: new Set([1012]),
} as const;

/** How long to wait after a rate-limit answer (the third-party client that knows code 1012 waits 30 s). */
export const WDT_RATE_LIMIT_RETRY_AFTER_SECONDS = 30;

/** Returns WDT's message on success; throws the product's error for anything else. */
export function interpretWdtAnswer(body: unknown): string {
  const answer = body as { code?: unknown; message?: unknown };
  // The document's own example sends the code as a string ('0'), so numeric strings are accepted.
  const code = typeof answer?.code === 'string' && /^-?\d+$/.test(answer.code) ? Number(answer.code) : answer?.code;
  if (typeof answer !== 'object' || answer === null || typeof code !== 'number' || !Number.isInteger(code)) {
    throw new UpstreamUnavailableError('wdt', 'wdt answered JSON without an integer code');
  }
  const message = typeof answer.message === 'string' ? answer.message : '';
  if (code === WDT_CODES.success) return message;
  if (WDT_CODES.rateLimited.has(code)) {
    throw new UpstreamRateLimitedError('wdt', code, message, WDT_RATE_LIMIT_RETRY_AFTER_SECONDS);
  }
  throw new UpstreamRejectedError('wdt', code, message);
}

export interface WdtClientOptions {
  baseUrl: string;
  timeoutMs: number;
  credentials: () => Promise<WdtSecret>;
  nowSeconds?: () => number;
}

export interface WdtClient {
  updateInvoice(update: InvoiceUpdate): Promise<{ message: string }>;
}

export function createWdtClient(options: WdtClientOptions): WdtClient {
  const nowSeconds = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
  const url = options.baseUrl.replace(/\/+$/, '') + INVOICE_UPDATE_PATH;
  return {
    async updateInvoice(update) {
      const fields = invoiceUpdateForm(update, await options.credentials(), nowSeconds());
      const answer = await postForm({ provider: 'wdt', url, fields, timeoutMs: options.timeoutMs });
      return { message: interpretWdtAnswer(answer.body) };
    },
  };
}
