import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { strToU8, zipSync } from 'fflate';
import { HOSTILE_XML_SIZES, largeXmlZip, withDeclaredSize, xmlBombZip, zipWithoutXml } from './hostile-xml.ts';
import { SANDBOX_XML_CASES, sandboxInvoiceXml, type SandboxInvoiceSpec } from './invoice-xml.ts';
import { sendJson, startSandboxServer, type ReceivedRequest } from './sandbox-server.ts';

/** The buyer of the sandbox's sales invoices (Jumdata's Gmfnsrsbh, and the XML's buyer). */
const SANDBOX_BUYER_TAX_NUM = SANDBOX_XML_CASES.plain.spec.buyer.taxNum;

/**
 * A stand-in for Jumdata's /invoice/download and for the file host its links point to, on 127.0.0.1. Like Jumdata it
 * checks the sha256 signature and that the timestamp is in milliseconds and current, and it counts the calls it
 * billed (code 200). The invoice number picks a behaviour; any other 8- or 20-digit number is a plain success.
 * The files are real: a PDF, and zips holding an OFD and an XML document.
 * `onBilledCall` hears of each billed call as it is answered: `npm start` prints a line for each, so that someone
 * trying local mode sees what the same requests would cost against Jumdata; tests leave it unset and stay quiet.
 */

export const JUMDATA_SANDBOX_CREDENTIALS = { appId: 'sandbox-jumdata-app', appSecret: 'sandbox-jumdata-secret' };

export const JUMDATA_SANDBOX_MAX_SKEW_MS = 300_000;

export const JUMDATA_SANDBOX_INVOICES = {
  success: '24312000000022669098',
  /** code 301: the tax-bureau login is missing. */
  loginRequired: '24312000000000000301',
  /** code 399 on the first call, success on the next. */
  flakyOnce: '24312000000000000399',
  /** code 603: balance too low (terminal). */
  noBalance: '24312000000000000603',
  /** code 609: too frequent (rate limited). */
  tooFrequent: '24312000000000000609',
  /** The pdf file trickles in slower than any time budget. */
  slowFile: '24312000000000000001',
  /** The ofd file's connection is cut half way through its declared length. */
  truncatedFile: '24312000000000000002',
  /** The xml link answers an HTML page instead of a zip. */
  htmlInsteadOfZip: '24312000000000000003',
  /** The ofd file is larger than the mirror's size cap (sent without a length, so only counting catches it). */
  overCap: '24312000000000000004',
  /** The links of the first answer are already expired (404); those of the next answer work. */
  expiredLinks: '24312000000000000005',
  /** The xml link answers a real PDF (the pdf file) where a zip belongs: a well-formed file in the wrong slot. */
  pdfInsteadOfZip: '24312000000000000006',
  /** The XML keeps its own seller and buyer, whoever asks: a purchase request by the seller is not its buyer. */
  otherParties: '24312000000000000109',
  /** The xml zip holds an XML bomb: an EInvoice whose DOCTYPE nests entities a billion "lol"s deep. */
  xmlBomb: '24312000000000000110',
  /** The xml zip holds a real EInvoice of 50 MiB (declared so), deflated to about 50 KB. */
  largeXml: '24312000000000000111',
  /** The xml zip is a zip bomb: its entry declares 4 KiB in both headers and inflates to 2 GiB (a 2 MB zip). */
  zipBomb: '24312000000000000112',
  /** The xml zip holds no .xml file, only a readme.txt. */
  noXmlInZip: '24312000000000000113',
  /** Jumdata says it is voided (Sfzf 已作废): mirrored as any other, and never told to the ERP as issued. */
  voided: '24312000000000000114',
  /** Jumdata says it is red-flushed (Sfch 已冲红). */
  redFlushed: '24312000000000000115',
  /**
   * The pdf file trickles in over several seconds (slowOnceFileMs) the first time it is ever served, and comes at
   * once after that. With a state directory, "ever" survives restarts: the time to kill local mode half way through
   * a download, and to see the restarted one finish it without paying Jumdata again.
   */
  slowOnceFile: '24312000000000000007',
  /**
   * A range for many invoices at once (tests, the sweep): `24312990` + 12 digits. Those ending in 399 answer code
   * 399 the first time, those ending in 603 code 603; the others succeed.
   */
  rangePrefix: '24312990',
} as const;

export interface JumdataSandboxOptions {
  /** Size of each served file; the benchmark uses 1 MB and 100 MB. */
  fileBytes?: number;
  /** How long the slow file takes to finish. */
  slowFileMs?: number;
  /** How long the slow-once file takes to finish, the first time it is served (default 10 s). */
  slowOnceFileMs?: number;
  /** Where the sandbox notes what must outlive it: that the slow-once file was served. In memory when absent. */
  stateDir?: string;
  port?: number;
  /** Size of the over-cap file. */
  overCapBytes?: number;
  /** Calls a minute that Jumdata allows before it answers 609 (not billed). */
  callsPerMinute?: number;
  /** The sliding window the rate is enforced over (default a minute; tests use a second). */
  rateWindowMs?: number;
  /** Called for each billed call once it is counted: `billedCalls` is the total so far, this one included. */
  onBilledCall?: (call: { billedCalls: number; invoiceNo: string }) => void;
}

export interface JumdataSandbox {
  /** Base URL of the API (append /invoice/download). */
  url: string;
  /** host:port of the file host, for MIRROR_ALLOWED_HOSTS. */
  fileHost: string;
  received: ReceivedRequest[];
  /** Calls answered with code 200 and charge: true. */
  billedCalls(): number;
  /** Billed calls per invoice number. */
  billedCallsFor(invoiceNo: string): number;
  /** Calls refused with 609 because more than callsPerMinute came in a minute. */
  refusedForRate(): number;
  close(): Promise<void>;
}

export async function startJumdataSandbox(options: JumdataSandboxOptions = {}): Promise<JumdataSandbox> {
  const billed = new Map<string, number>();
  let billedTotal = 0;
  const seen = new Map<string, number>();
  const files = new InvoiceFiles(options.fileBytes);
  let origin = '';
  const callsPerMinute = options.callsPerMinute ?? 600;
  const windowMs = options.rateWindowMs ?? 60_000;
  const callsPerWindow = Math.max(1, Math.floor((callsPerMinute * windowMs) / 60_000));
  const recentCalls: number[] = [];
  let refusedForRate = 0;
  const firstServing = firstServingOf(options.stateDir);

  async function handle(request: ReceivedRequest, res: ServerResponse, req: IncomingMessage) {
    if (request.method === 'GET' && request.path.startsWith('/files/')) {
      await serveFile(request.path, new URL(req.url ?? '/', 'http://sandbox').search.slice(1), res);
      return;
    }
    if (!/^\/invoice\/download(\/year)?$/.test(request.path)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    sendJson(res, answer(request.fields));
  }

  function answer(fields: Record<string, string>): object {
    const missing = ['appId', 'timestamp', 'sign', 'nsrsbh', 'fphm', 'kprq', 'jxxbz'].filter((k) => !fields[k]);
    if (missing.length > 0) return { code: 400, msg: `参数错误: 缺少${missing.join(',')}` };
    if (fields.appId !== JUMDATA_SANDBOX_CREDENTIALS.appId) return { code: 400, msg: '参数错误: appId不存在' };
    if (!/^\d{13}$/.test(fields.timestamp!) || Math.abs(Date.now() - Number(fields.timestamp)) > JUMDATA_SANDBOX_MAX_SKEW_MS) {
      return { code: 400, msg: '参数错误: timestamp须为当前毫秒时间戳' };
    }
    const expected = createHash('sha256')
      .update(`${fields.appId}${JUMDATA_SANDBOX_CREDENTIALS.appSecret}${fields.timestamp}`)
      .digest('hex');
    if (fields.sign !== expected) return { code: 400, msg: '参数错误: 签名错误' };
    if (!['1', '2'].includes(fields.jxxbz!)) return { code: 400, msg: '参数错误: jxxbz只能是1或2' };
    if (!/^\d{4}-\d{2}-\d{2}/.test(fields.kprq!)) return { code: 400, msg: '参数错误: kprq格式错误' };

    const invoiceNo = fields.fphm!;
    const taskNo = randomBytes(12).toString('hex');
    const now = Date.now();
    while (recentCalls.length > 0 && recentCalls[0]! <= now - windowMs) recentCalls.shift();
    if (recentCalls.length >= callsPerWindow) {
      refusedForRate += 1;
      return { code: 609, msg: '请求过于频繁,请稍候再试', taskNo, charge: false };
    }
    recentCalls.push(now);
    const calls = (seen.get(invoiceNo) ?? 0) + 1;
    seen.set(invoiceNo, calls);
    switch (invoiceNo) {
      case JUMDATA_SANDBOX_INVOICES.loginRequired:
        return { code: 301, msg: '纳税人未登录或登录失效, 请重新登录', taskNo, charge: false };
      case JUMDATA_SANDBOX_INVOICES.noBalance:
        return { code: 603, msg: '余额不足请充值', taskNo, charge: false };
      case JUMDATA_SANDBOX_INVOICES.tooFrequent:
        return { code: 609, msg: '请求过于频繁,请稍候再试', taskNo, charge: false };
      case JUMDATA_SANDBOX_INVOICES.flakyOnce:
        if (calls === 1) return { code: 399, msg: '税局异常,请稍候再试', taskNo, charge: false };
    }
    if (invoiceNo.startsWith(JUMDATA_SANDBOX_INVOICES.rangePrefix)) {
      if (invoiceNo.endsWith('399') && calls === 1) return { code: 399, msg: '税局异常,请稍候再试', taskNo, charge: false };
      if (invoiceNo.endsWith('603')) return { code: 603, msg: '余额不足请充值', taskNo, charge: false };
    }
    billed.set(invoiceNo, (billed.get(invoiceNo) ?? 0) + 1);
    billedTotal += 1;
    options.onBilledCall?.({ billedCalls: billedTotal, invoiceNo });
    const base = `${origin}/files/${invoiceNo}`;
    // The file host writes the XML for the request's taxpayer, as seller (sales) or buyer (purchase).
    const answerNo = `?${new URLSearchParams({ answer: String(billed.get(invoiceNo)), nsrsbh: fields.nsrsbh!, jxxbz: fields.jxxbz!, kprq: fields.kprq!.slice(0, 10) })}`;
    return {
      msg: '成功',
      code: 200,
      taskNo,
      charge: true,
      data: {
        xmlFile: `${base}/xml.zip${answerNo}`,
        ofdFile: `${base}/ofd.zip${answerNo}`,
        pdfFile: `${base}/pdf.PDF${answerNo}`,
        Fphm: '',
        Qdfphm: invoiceNo,
        Kprq: `${fields.kprq!.slice(0, 10)} 15:58:41`,
        FppzDm: '01',
        Sfzf: invoiceNo === JUMDATA_SANDBOX_INVOICES.voided ? '已作废' : '未作废',
        Sfch: invoiceNo === JUMDATA_SANDBOX_INVOICES.redFlushed ? '已冲红' : '未冲红',
        SfchDm: invoiceNo === JUMDATA_SANDBOX_INVOICES.redFlushed ? 'Y' : 'N',
        Gmfnsrsbh: fields.jxxbz === '1' ? fields.nsrsbh : SANDBOX_BUYER_TAX_NUM,
        Cyjg: '经查验,发票信息一致',
      },
    };
  }

  async function serveFile(path: string, query: string, res: ServerResponse) {
    const [, , invoiceNo = '', name = ''] = path.split('/');
    const kind = name.split('.')[0] as 'pdf' | 'ofd' | 'xml';
    if (!['pdf', 'ofd', 'xml'].includes(kind)) {
      res.writeHead(404).end();
      return;
    }
    const params = new URLSearchParams(query);
    const body = kind === 'xml' ? files.xml(invoiceNo, params) : files.get(kind);
    const type = kind === 'pdf' ? 'application/pdf' : 'application/zip';
    if (invoiceNo === JUMDATA_SANDBOX_INVOICES.expiredLinks && params.get('answer') === '1') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('link expired');
    } else if (invoiceNo === JUMDATA_SANDBOX_INVOICES.htmlInsteadOfZip && kind === 'xml') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!DOCTYPE html><html><body>文件不存在或已过期</body></html>');
    } else if (invoiceNo === JUMDATA_SANDBOX_INVOICES.pdfInsteadOfZip && kind === 'xml') {
      const pdf = files.get('pdf');
      res.writeHead(200, { 'content-type': 'application/pdf', 'content-length': pdf.length }).end(pdf);
    } else if (invoiceNo === JUMDATA_SANDBOX_INVOICES.truncatedFile && kind === 'ofd') {
      res.writeHead(200, { 'content-type': type, 'content-length': body.length });
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy());
    } else if (invoiceNo === JUMDATA_SANDBOX_INVOICES.overCap && kind === 'ofd') {
      await streamBytes(res, type, options.overCapBytes ?? 80 * 1024 * 1024);
    } else if (invoiceNo === JUMDATA_SANDBOX_INVOICES.slowFile && kind === 'pdf') {
      await trickle(res, type, body, options.slowFileMs ?? 120_000);
    } else if (invoiceNo === JUMDATA_SANDBOX_INVOICES.slowOnceFile && kind === 'pdf' && (await firstServing())) {
      await trickle(res, type, body, options.slowOnceFileMs ?? 10_000);
    } else {
      res.writeHead(200, { 'content-type': type, 'content-length': body.length }).end(body);
    }
  }

  const server = await startSandboxServer(handle, options.port);
  origin = server.origin;
  return {
    url: origin,
    fileHost: origin.replace('http://', ''),
    received: server.received,
    billedCalls: () => billedTotal,
    billedCallsFor: (invoiceNo) => billed.get(invoiceNo) ?? 0,
    refusedForRate: () => refusedForRate,
    close: server.close,
  };
}

/**
 * Whether this is the first time the slow-once file is served, noting that it was. The note is a file in the state
 * directory, made before the first byte goes out, so a local mode killed while the file trickles serves it at once
 * when started again.
 */
function firstServingOf(stateDir: string | undefined): () => Promise<boolean> {
  let served = false;
  if (!stateDir) {
    return async () => {
      const first = !served;
      served = true;
      return first;
    };
  }
  const marker = resolve(stateDir, 'jumdata-sandbox-slow-once-served');
  return async () => {
    try {
      await writeFile(marker, `${new Date().toISOString()}\n`, { flag: 'wx' }); // fails if it exists: one first time
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
  };
}

/**
 * The hostile xml zips, by invoice number: served as they are, whoever asks (no padding, no request's taxpayer).
 * The zip bomb takes about a second to build (the CRC of its 2 GiB), which is why each is built once.
 */
const HOSTILE_XML_ZIPS: Record<string, (invoiceNo: string) => Buffer> = {
  [JUMDATA_SANDBOX_INVOICES.xmlBomb]: xmlBombZip,
  [JUMDATA_SANDBOX_INVOICES.largeXml]: (invoiceNo) => largeXmlZip(invoiceNo, HOSTILE_XML_SIZES.large),
  [JUMDATA_SANDBOX_INVOICES.zipBomb]: (invoiceNo) =>
    withDeclaredSize(largeXmlZip(invoiceNo, HOSTILE_XML_SIZES.inflated), HOSTILE_XML_SIZES.claimed),
  [JUMDATA_SANDBOX_INVOICES.noXmlInZip]: () => zipWithoutXml(),
};

/**
 * The three documents, built once per size: a real PDF, and zips holding an OFD and an XML invoice; and the hostile
 * xml zips, built once each when first served.
 */
class InvoiceFiles {
  private readonly cache = new Map<string, Buffer>();
  private padding?: Uint8Array;
  constructor(private readonly size?: number) {}

  /**
   * The xml slot's zip for one invoice and request: the tax bureau's EInvoice of the catalogue's case for that number
   * (SANDBOX_XML_CASES), or a plain invoice of that number; the request's taxpayer is its seller (jxxbz 2, sales) or
   * its buyer (jxxbz 1, purchase), issued on the requested day. Padded with stored random bytes up to the size asked.
   */
  xml(invoiceNo: string, params: URLSearchParams): Buffer {
    const hostile = HOSTILE_XML_ZIPS[invoiceNo];
    if (hostile) return this.cached(`xml:${invoiceNo}`, () => hostile(invoiceNo));
    const known = Object.values(SANDBOX_XML_CASES).find((c) => c.invoiceNo === invoiceNo);
    const spec: SandboxInvoiceSpec = known ? { ...known.spec } : { ...SANDBOX_XML_CASES.plain.spec, invoiceNo };
    const taxNum = invoiceNo === JUMDATA_SANDBOX_INVOICES.otherParties ? undefined : params.get('nsrsbh');
    if (taxNum && params.get('jxxbz') === '1') spec.buyer = { ...spec.buyer, taxNum };
    else if (taxNum) spec.seller = { ...spec.seller, taxNum };
    const day = params.get('kprq');
    if (day && !known) spec.issuedAt = `${day} 15:58:41`;
    this.padding ??= randomBytes(Math.max(0, (this.size ?? 0) - 4096));
    // A fixed time in the entries: the same invoice and request give the same bytes, whenever they are served.
    const mtime = new Date('2024-04-25T07:58:41Z');
    const entries: Record<string, [Uint8Array, { level?: 0; mtime: Date }]> = {};
    if (this.padding.length > 0) entries['padding.bin'] = [this.padding, { level: 0, mtime }];
    entries[`invoice/${spec.invoiceNo}.xml`] = [strToU8(sandboxInvoiceXml(spec)), { mtime }];
    return Buffer.from(zipSync(entries));
  }

  get(kind: 'pdf' | 'ofd' | 'xml'): Buffer {
    return this.cached(kind, () => (kind === 'pdf' ? pdfDocument(this.size ?? 0) : zipOf(`invoice.${kind}`, this.size ?? 0)));
  }

  private cached(key: string, build: () => Buffer): Buffer {
    let file = this.cache.get(key);
    if (!file) {
      file = build();
      this.cache.set(key, file);
    }
    return file;
  }
}

/** A valid one-page PDF; `padding` bytes of incompressible data in a stream make it as large as asked. */
function pdfDocument(size: number): Buffer {
  const padding = randomBytes(Math.max(0, size - 600));
  const parts: Buffer[] = [];
  const offsets: number[] = [];
  let length = 0;
  const add = (chunk: string | Buffer) => {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    parts.push(buffer);
    length += buffer.length;
  };
  const object = (text: string) => {
    offsets.push(length);
    add(text);
  };
  add('%PDF-1.4\n');
  object('1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n');
  object('2 0 obj <</Type /Pages /Kids [3 0 R] /Count 1>> endobj\n');
  object('3 0 obj <</Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R>> endobj\n');
  const content = 'BT /F1 12 Tf 72 760 Td (einvoice-bridge sandbox invoice) Tj ET';
  object(`4 0 obj <</Length ${content.length}>> stream\n${content}\nendstream endobj\n`);
  offsets.push(length);
  add(`5 0 obj <</Length ${padding.length}>> stream\n`);
  add(padding);
  add('\nendstream endobj\n');
  const xref = length;
  add(`xref\n0 6\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`);
  add(`trailer <</Size 6 /Root 1 0 R>>\nstartxref\n${xref}\n%%EOF\n`);
  return Buffer.concat(parts);
}

/** A real zip holding one document, padded with a stored (uncompressed) entry of random bytes up to `size`. */
function zipOf(name: string, size: number): Buffer {
  const document = strToU8(`<?xml version="1.0" encoding="UTF-8"?><EInvoice><InvoiceNumber>sandbox</InvoiceNumber></EInvoice>`);
  const entries: Record<string, Uint8Array | [Uint8Array, { level: 0 }]> = { [name]: document };
  if (size > 1024) entries['padding.bin'] = [randomBytes(size - 1024), { level: 0 }];
  return Buffer.from(zipSync(entries));
}

/** Sends `total` bytes of a zip-looking stream with no declared length. */
async function streamBytes(res: ServerResponse, type: string, total: number) {
  res.writeHead(200, { 'content-type': type });
  const chunk = Buffer.alloc(64 * 1024, 7);
  chunk.write('PK\x03\x04', 'latin1');
  for (let sent = 0; sent < total && !res.destroyed; sent += chunk.length) {
    if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
  }
  res.end();
}

/** Sends `body` in twenty pieces spread over `durationMs`. */
async function trickle(res: ServerResponse, type: string, body: Buffer, durationMs: number) {
  res.writeHead(200, { 'content-type': type, 'content-length': body.length });
  const step = Math.ceil(body.length / 20);
  for (let offset = 0; offset < body.length && !res.destroyed; offset += step) {
    res.write(body.subarray(offset, offset + step));
    await new Promise((resolve) => setTimeout(resolve, durationMs / 20));
  }
  res.end();
}
