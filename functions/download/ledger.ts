import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, type CompleteMultipartUploadCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { stringify } from 'csv-stringify';
import { logger } from '#shared/logger';
import type { InvoiceEntry } from './invoice-entry.ts';
import type { InvoiceMetadata } from './invoice-metadata.ts';
import { formatCents, toCents } from './invoice-xml.ts';
import { UPLOAD_SETTINGS } from './mirror.ts';
import { FILE_KINDS, type FileKind } from './invoice-files.ts';
import { XLSX_CONTENT_TYPE, xlsxBytes, type SheetCell, type SheetRow } from './xlsx-sheet.ts';

/**
 * The archive's 台账 (ledger) for GET /invoices/ledger: one row per mirrored invoice, in the order given, then a 合计
 * row, written to S3 as CSV or XLSX while the entries are read.
 * Input: the index entries of one taxpayer, one direction, one period · Output: LedgerResult
 *  1. Turn each entry into a row, summing the money (in integer cents) of the rows that are not voided
 *  2. Encode the rows (csv-stringify, or the streaming XLSX writer), hashing and counting the bytes
 *  3. Stream the bytes into S3 (multipart, one part in flight): memory does not grow with the rows
 * The ledger is stored completely or not at all: on a failure or an abort nothing is left under the key.
 */

export type LedgerFormat = 'csv' | 'xlsx';

export interface LedgerOptions {
  s3: S3Client;
  bucket: string;
  /** Ends in the format's extension (`.csv`, `.xlsx`): its last segment is the file name a browser offers. */
  key: string;
  format: LedgerFormat;
  /** In GET /invoices order, one direction. */
  entries: AsyncIterable<InvoiceEntry>;
  /** The durable link to one of the invoice's files. */
  linkOf: (entry: InvoiceEntry, kind: FileKind) => string;
  signal?: AbortSignal;
}

export interface LedgerTotals {
  amount: string;
  tax: string;
  total: string;
}

export interface LedgerResult {
  /** Invoice rows: the header and the 合计 row not counted. */
  rows: number;
  totals: LedgerTotals;
  key: string;
  versionId?: string;
  sha256: string;
  bytes: number;
  contentType: string;
}

/** The contract's header (docs/api.md, "GET /invoices/ledger"), column for column. */
export const LEDGER_HEADER = [
  '发票号码', '开票日期', '方向', '发票类型', '销售方名称', '销售方纳税人识别号', '购买方名称', '购买方纳税人识别号',
  '金额', '税额', '价税合计', '作废', '冲红', '红字对应蓝票', 'PDF SHA-256', 'OFD SHA-256', 'XML SHA-256',
  'PDF 链接', 'OFD 链接', 'XML 链接', '备注',
] as const;

type LedgerColumn = (typeof LEDGER_HEADER)[number];

const LEDGER_CONTENT_TYPES: Record<LedgerFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  xlsx: XLSX_CONTENT_TYPE,
};

/** Writes the ledger of `entries` to S3 under `key`; rejects, leaving no object, on a failure or an abort. */
export async function writeLedger(options: LedgerOptions): Promise<LedgerResult> {
  if (!options.key.endsWith(`.${options.format}`)) {
    throw new TypeError(`a ${options.format} ledger's key must end in .${options.format}: ${options.key}`);
  }
  const tally: Tally = { rows: 0, amount: 0n, tax: 0n, total: 0n };
  const meter = new Meter();
  const [written, stored] = await Promise.allSettled([writeRows(options, tally, meter), upload(options, meter)]);
  if (options.signal?.aborted || written.status === 'rejected' || stored.status === 'rejected') {
    if (stored.status === 'fulfilled') await discard(options, stored.value);
    throw causeOf(options.signal, tally, written, stored);
  }
  return {
    rows: tally.rows,
    totals: { amount: formatCents(tally.amount), tax: formatCents(tally.tax), total: formatCents(tally.total) },
    key: options.key,
    ...(stored.value.VersionId ? { versionId: stored.value.VersionId } : {}),
    sha256: meter.hash.digest('hex'),
    bytes: meter.bytes,
    contentType: LEDGER_CONTENT_TYPES[options.format],
  };
}

/** The rows, encoded, into the meter; an abort breaks the pipeline, and with it the upload that reads the meter. */
function writeRows(options: LedgerOptions, tally: Tally, meter: Meter): Promise<void> {
  const rows = Readable.from(ledgerRows(options, tally));
  const { signal } = options;
  return options.format === 'csv'
    ? pipeline(rows, csvRecords, stringify(CSV_OPTIONS), meter, { signal })
    : pipeline(rows, (source: AsyncIterable<SheetRow>) => xlsxBytes(source, SHEET_LAYOUT), meter, { signal });
}

/** lib-storage's multipart Upload of what the meter lets through: one 5 MB part in flight, one filling. */
function upload(options: LedgerOptions, meter: Meter): Promise<CompleteMultipartUploadCommandOutput> {
  const params = objectParams(options, meter);
  const upload = new Upload({ client: options.s3, params, ...UPLOAD_SETTINGS, leavePartsOnError: false });
  return upload.done().catch((error: unknown) => {
    // An upload that fails stops reading: the rows would wait for it for ever, unless the meter goes too.
    meter.destroy(error as Error);
    throw error;
  });
}

/**
 * Why the ledger is not stored: the abort (whatever it broke on its way); the entries' own failure; otherwise S3's
 * (or the encoder's, which reaches the upload through the meter). Each of these also breaks the other side, whose
 * error is only a consequence.
 */
function causeOf(
  signal: AbortSignal | undefined,
  tally: Tally,
  written: PromiseSettledResult<void>,
  stored: PromiseSettledResult<unknown>,
): unknown {
  if (signal?.aborted) return signal.reason;
  if ('failure' in tally) return tally.failure;
  return stored.status === 'rejected' ? stored.reason : (written as PromiseRejectedResult).reason;
}

/** An upload that finished although the ledger failed (the abort came after its last byte) goes, version and all. */
async function discard(options: LedgerOptions, stored: CompleteMultipartUploadCommandOutput): Promise<void> {
  const command = new DeleteObjectCommand({ Bucket: options.bucket, Key: options.key, VersionId: stored.VersionId });
  // A delete that fails does not replace the cause: it is named in the log, for someone to remove.
  await options.s3.send(command).catch((error: unknown) =>
    logger.error('unfinished ledger not removed', { key: options.key, versionId: stored.VersionId, error }),
  );
}

function objectParams(options: LedgerOptions, body: Readable) {
  const fileName = options.key.slice(options.key.lastIndexOf('/') + 1);
  return {
    Bucket: options.bucket,
    Key: options.key,
    Body: body,
    ContentType: LEDGER_CONTENT_TYPES[options.format],
    ContentDisposition: attachment(fileName),
  };
}

/**
 * A Content-Disposition naming the file (RFC 6266): an ASCII name as it is; any other with an ASCII stand-in, and
 * its real name in `filename*` (an HTTP header cannot carry raw UTF-8, and S3 would refuse to sign it).
 */
function attachment(fileName: string): string {
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\]/g, '_');
  if (ascii === fileName) return `attachment; filename="${fileName}"`;
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(fileName)}`;
}

/** Passes the file's bytes through on their way to S3, hashing and counting them. */
class Meter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Rows

/** What the rows add up to so far, in integer cents; and why the entries stopped, if they failed. */
interface Tally {
  rows: number;
  amount: bigint;
  tax: bigint;
  total: bigint;
  failure?: unknown;
}

interface RowMoney {
  amount: bigint | undefined;
  tax: bigint | undefined;
  total: bigint | undefined;
}

const DIRECTIONS = { sales: '销项', purchase: '进项' } as const;
const NOTE_SEPARATOR = '；';

/** The header, one row per entry, then 合计; `tally` counts and sums the rows as they pass. */
async function* ledgerRows(options: LedgerOptions, tally: Tally): AsyncGenerator<SheetRow> {
  yield { cells: LEDGER_HEADER.map(text), bold: true };
  for await (const entry of readEntries(options.entries, tally, options.signal)) {
    const money = moneyOf(entry);
    tally.rows += 1;
    // A voided invoice is listed, and counts for nothing.
    if (!entry.invoice.voided) {
      tally.amount += money.amount ?? 0n;
      tally.tax += money.tax ?? 0n;
      tally.total += money.total ?? 0n;
    }
    yield { cells: invoiceCells(entry, money, options.linkOf) };
  }
  yield { cells: totalsCells(tally), bold: true };
}

/**
 * The entries, as they come; an abort ends them even while one is awaited (a query that does not watch the signal
 * would otherwise hold the ledger up), and their own failure (the index could not be read) is noted in the tally.
 * Only theirs: an error thrown into the rows from outside (S3 failing) ends the loop over this with return().
 */
async function* readEntries(entries: AsyncIterable<InvoiceEntry>, tally: Tally, signal?: AbortSignal): AsyncGenerator<InvoiceEntry> {
  const iterator = entries[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await untilAborted(iterator.next(), signal);
      if (next.done) return;
      yield next.value;
    }
  } catch (error) {
    tally.failure = error;
    throw error;
  } finally {
    // Entries left unread are closed (a paginator stops); an entry still awaited may fail later, to no one.
    iterator.return?.().catch(() => undefined);
  }
}

/**
 * The promise's outcome, or the signal's reason if it aborts first. The listener goes as soon as either comes: one
 * left on the signal per entry would grow with the rows.
 */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    const settle = () => signal.removeEventListener('abort', onAbort);
    promise.then(
      (value) => (settle(), resolve(value)),
      (error: unknown) => (settle(), reject(error as Error)),
    );
  });
}

function invoiceCells(entry: InvoiceEntry, money: RowMoney, linkOf: LedgerOptions['linkOf']): SheetCell[] {
  const known = metadataOf(entry);
  const { voided, redFlushed } = entry.invoice;
  return [
    text(entry.invoiceNo),
    text(entry.issueDate),
    text(DIRECTIONS[entry.direction]),
    text(known?.type ?? ''),
    text(known?.seller.name ?? ''),
    text(known?.seller.taxNum ?? ''),
    text(known?.buyer.name ?? ''),
    // Jumdata's buyer tax number stands in where the XML gave none (or was not read).
    text(known?.buyer.taxNum || entry.invoice.buyerTaxNum || ''),
    decimal(money.amount),
    decimal(money.tax),
    decimal(money.total),
    text(voided ? '是' : '否'),
    text(redFlushed ? '是' : '否'),
    text(known?.redLetterOf ?? ''),
    ...FILE_KINDS.map((kind) => text(entry.files[kind].sha256)),
    ...FILE_KINDS.map((kind) => text(linkOf(entry, kind))),
    text(notesOf(entry).join(NOTE_SEPARATOR)),
  ];
}

/** 合计 in the first column, the sums under their columns, every other cell empty. */
function totalsCells(tally: Tally): SheetCell[] {
  const sums: Partial<Record<LedgerColumn, bigint>> = { 金额: tally.amount, 税额: tally.tax, 价税合计: tally.total };
  return LEDGER_HEADER.map((column, i) => {
    const sum = sums[column];
    return i === 0 ? text('合计') : sum === undefined ? text('') : decimal(sum);
  });
}

/** The ledger's own notes (not the invoice's remark): what a reader must know before trusting the row's money. */
function notesOf(entry: InvoiceEntry): string[] {
  const notes: string[] = [];
  if (entry.invoice.voided) notes.push('作废');
  if (!xmlRead(entry)) notes.push('XML 未读取');
  else if (entry.checks?.itemsAddUp === false) notes.push('明细不平');
  return notes;
}

/**
 * The row's money, from the XML alone: an invoice whose XML was not read (or was mirrored before the XML was read
 * at all) has no known amount, and adds nothing.
 */
function moneyOf(entry: InvoiceEntry): RowMoney {
  const invoice = xmlRead(entry) ? metadataOf(entry) : undefined;
  return {
    amount: invoice && toCents(invoice.amount),
    tax: invoice && toCents(invoice.tax),
    total: invoice && toCents(invoice.total),
  };
}

const xmlRead = (entry: InvoiceEntry) => entry.checks?.xmlRead === true && metadataOf(entry) !== undefined;

/** The invoice's metadata; undefined on an entry mirrored before the XML was read (Jumdata's verdicts only). */
const metadataOf = (entry: InvoiceEntry): InvoiceMetadata | undefined =>
  'seller' in entry.invoice ? entry.invoice : undefined;

const text = (value: string): SheetCell => ({ text: value });
const decimal = (cents: bigint | undefined): SheetCell => ({ decimal: cents === undefined ? '' : formatCents(cents) });

// ---------------------------------------------------------------------------------------------------------------
// Encodings

/**
 * RFC 4180 as a spreadsheet program reads it: a byte-order mark (else Excel takes UTF-8 for the local code page),
 * CRLF, and quotes around any field with a comma, a quote or a line break; csv-stringify quotes a lone CR or LF
 * only when asked (quoted_match).
 */
const CSV_OPTIONS = { bom: true, record_delimiter: 'windows', quoted_match: /[\r\n]/ } as const;

/** A text cell a spreadsheet would run as a formula (or a DDE call) starts with one of these. */
const FORMULA_START = /^[=+\-@\t\r]/;

/** The rows as CSV records: text guarded against formulas; money as plain decimals, a minus sign included. */
async function* csvRecords(rows: AsyncIterable<SheetRow>): AsyncGenerator<string[]> {
  for await (const row of rows) {
    yield row.cells.map((cell) =>
      'decimal' in cell ? cell.decimal : FORMULA_START.test(cell.text) ? `'${cell.text}` : cell.text,
    );
  }
}

const SHEET_LAYOUT = {
  name: '台账',
  columnWidths: [23, 12, 6, 16, 32, 22, 32, 22, 14, 12, 14, 6, 6, 23, 66, 66, 66, 60, 60, 60, 24],
} as const;
