import { createHash } from 'node:crypto';
import {
  UpstreamRateLimitedError,
  UpstreamRejectedError,
  UpstreamTemporaryError,
  UpstreamUnavailableError,
} from '#shared/errors';
import { postForm } from '#shared/http';
import { logger } from '#shared/logger';
import { countBilledJumdataCall } from '#shared/metrics';
import type { JumdataSecret } from '#shared/secrets';

/**
 * Jumdata (聚美智数) 发票下载: the links to a 数电 invoice's pdf, ofd and xml files. Every successful call is billed.
 * Fields: appId, timestamp (milliseconds), sign, nsrsbh, fphm, kprq, jxxbz. Only appId, appSecret and timestamp are
 * signed.
 */

/** Pay-per-call path; the yearly plan uses /invoice/download/year (JUMDATA_DOWNLOAD_PATH). */
export const DEFAULT_DOWNLOAD_PATH = '/invoice/download';

/** sign = sha256(appId + appSecret + timestamp), lowercase hex. */
export function signJumdata(appId: string, appSecret: string, timestampMs: string): string {
  return createHash('sha256').update(appId + appSecret + timestampMs, 'utf8').digest('hex');
}

export type Direction = 'sales' | 'purchase';

export interface DownloadQuery {
  taxNum: string;
  invoiceNo: string;
  /** YYYY-MM-DD */
  issueDate: string;
  direction: Direction;
}

/** 进销项标志: 1 = 进项 (purchase), 2 = 销项 (sales). */
const JXXBZ: Record<Direction, string> = { purchase: '1', sales: '2' };

/**
 * The format Jumdata expects for kprq is not documented (its answers show `2024-04-25 15:58:41`); YYYY-MM-DD is
 * sent. UNCONFIRMED: this is the one place to change it.
 */
export const formatIssueDate = (issueDate: string) => issueDate;

export function downloadForm(query: DownloadQuery, secret: JumdataSecret, nowMs: number): Record<string, string> {
  const timestamp = String(nowMs);
  return {
    appId: secret.appId,
    timestamp,
    sign: signJumdata(secret.appId, secret.appSecret, timestamp),
    nsrsbh: query.taxNum,
    fphm: query.invoiceNo,
    kprq: formatIssueDate(query.issueDate),
    jxxbz: JXXBZ[query.direction],
  };
}

type CodeKind = 'success' | 'login_required' | 'rate_limited' | 'temporary' | 'terminal';

/** Every documented code, in one table. Temporary ones are worth trying again later; terminal ones are not. */
export const JUMDATA_CODES: Record<number, { kind: CodeKind; meaning: string }> = {
  200: { kind: 'success', meaning: '成功(计费)' },
  301: { kind: 'login_required', meaning: '纳税人未登录或登录失效' },
  399: { kind: 'temporary', meaning: '税局异常,请稍候再试' },
  400: { kind: 'terminal', meaning: '参数错误' },
  500: { kind: 'temporary', meaning: '系统维护,请稍候再试' },
  501: { kind: 'temporary', meaning: '数据源维护,请稍候再试' },
  601: { kind: 'terminal', meaning: '接口未开通' },
  602: { kind: 'terminal', meaning: '账号停用' },
  603: { kind: 'terminal', meaning: '余额不足请充值' },
  604: { kind: 'terminal', meaning: '接口停用' },
  606: { kind: 'rate_limited', meaning: '调用超限,请稍候再试' },
  607: { kind: 'terminal', meaning: 'ip不在白名单' },
  609: { kind: 'rate_limited', meaning: '请求过于频繁,请稍候再试' },
  610: { kind: 'temporary', meaning: '请求超时' },
  999: { kind: 'terminal', meaning: '其他' },
};

/** How long to wait before trying again after a temporary or rate-limit code. */
export const JUMDATA_RETRY_AFTER_SECONDS = 60;

/** Raised for 301: nothing can be downloaded until someone logs in to the tax bureau through Jumdata. */
export class TaxBureauLoginRequiredError extends UpstreamRejectedError {
  /** Someone has to log in through Jumdata first: it can pass, but asking again within the hour is no use. */
  readonly retryable = true;
  readonly retryAfterSeconds = 3_600;
  constructor(taxNum: string, upstreamMessage: string) {
    super(
      'jumdata',
      301,
      upstreamMessage,
      `The tax bureau login for ${taxNum} is missing or expired (Jumdata 301): log in through Jumdata, then ask again`,
    );
    this.name = 'TaxBureauLoginRequiredError';
  }
}

export interface InvoiceFileLinks {
  pdf: string;
  ofd: string;
  xml: string;
}

export interface JumdataInvoice {
  taskNo: string;
  charged: boolean;
  files: InvoiceFileLinks;
  /** Jumdata's invoice fields as it sent them (Sfzf, Sfch, Gmfnsrsbh, Kprq, ...), file links left out. */
  fields: Record<string, unknown>;
}

export function interpretDownloadAnswer(body: unknown, taxNum: string): JumdataInvoice {
  const answer = body as { code?: unknown; msg?: unknown; taskNo?: unknown; charge?: unknown; data?: unknown };
  if (typeof answer !== 'object' || answer === null || !Number.isInteger(answer.code)) {
    throw new UpstreamUnavailableError('jumdata', 'jumdata answered JSON without an integer code');
  }
  const code = answer.code as number;
  const message = typeof answer.msg === 'string' ? answer.msg : '';
  const taskNo = typeof answer.taskNo === 'string' ? answer.taskNo : '';
  const charged = answer.charge === true;
  // Billing is audited from the logs: every answer's task number and charge flag; and counted (JumdataBilledCalls).
  logger.info('jumdata answered', { jumdataCode: code, taskNo, charged });
  if (charged) countBilledJumdataCall();

  const kind = JUMDATA_CODES[code]?.kind ?? 'terminal';
  switch (kind) {
    case 'success':
      return { taskNo, charged, ...invoiceOf(answer.data) };
    case 'login_required':
      throw new TaxBureauLoginRequiredError(taxNum, message);
    case 'rate_limited':
      throw new UpstreamRateLimitedError('jumdata', code, message, JUMDATA_RETRY_AFTER_SECONDS);
    case 'temporary':
      throw new UpstreamTemporaryError('jumdata', code, message, JUMDATA_RETRY_AFTER_SECONDS);
    default:
      throw new UpstreamRejectedError('jumdata', code, message);
  }
}

/** Jumdata answered (and billed) success, but without what success promises; asking again would bill again. */
export class UnusableAnswerError extends UpstreamUnavailableError {
  readonly retryable = false;
  constructor(message: string) {
    super('jumdata', message);
    this.name = 'UnusableAnswerError';
  }
}

function invoiceOf(data: unknown): Pick<JumdataInvoice, 'files' | 'fields'> {
  const { pdfFile, ofdFile, xmlFile, ...fields } = (data ?? {}) as Record<string, unknown>;
  if (typeof pdfFile !== 'string' || typeof ofdFile !== 'string' || typeof xmlFile !== 'string') {
    throw new UnusableAnswerError('jumdata answered code 200 without the three file links');
  }
  return { files: { pdf: pdfFile, ofd: ofdFile, xml: xmlFile }, fields };
}

/** Jumdata's invoice fields in the API's terms. 是否作废 / 是否冲红 come as text (未作废) or as Y/N codes. */
export function invoiceSummary(fields: Record<string, unknown>) {
  const yes = (text: unknown, code: unknown) =>
    code === 'Y' || (typeof text === 'string' && /^(已|是|Y$)/.test(text));
  return {
    voided: yes(fields.Sfzf, fields.SfzfDm),
    redFlushed: yes(fields.Sfch, fields.SfchDm),
    buyerTaxNum: typeof fields.Gmfnsrsbh === 'string' ? fields.Gmfnsrsbh : undefined,
  };
}

export interface JumdataClientOptions {
  baseUrl: string;
  downloadPath: string;
  timeoutMs: number;
  credentials: () => Promise<JumdataSecret>;
  nowMs?: () => number;
}

export interface JumdataClient {
  /** One billed call: the file links and invoice fields. */
  fetchInvoice(query: DownloadQuery): Promise<JumdataInvoice>;
}

export function createJumdataClient(options: JumdataClientOptions): JumdataClient {
  const nowMs = options.nowMs ?? Date.now;
  const url = options.baseUrl.replace(/\/+$/, '') + options.downloadPath;
  return {
    async fetchInvoice(query) {
      const fields = downloadForm(query, await options.credentials(), nowMs());
      const answer = await postForm({ provider: 'jumdata', url, fields, timeoutMs: options.timeoutMs });
      return interpretDownloadAnswer(answer.body, query.taxNum);
    },
  };
}
