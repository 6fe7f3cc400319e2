import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { XMLParser } from 'fast-xml-parser';
import { strFromU8, unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InvoiceEntry } from '../../functions/download/invoice-entry.ts';
import type { InvoiceChecks, InvoiceMetadata, JumdataSummary } from '../../functions/download/invoice-metadata.ts';
import { LEDGER_HEADER, writeLedger, type LedgerFormat, type LedgerOptions } from '../../functions/download/ledger.ts';
import { LOCAL_S3_CREDENTIALS, startLocalS3, type LocalS3 } from '../../local/s3.ts';

/**
 * The 台账 as docs/api.md's "GET /invoices/ledger" describes it, written into a local S3 server (s3rver) and read back byte
 * for byte; S3 failures that s3rver cannot produce (and AbortMultipartUpload, which it lacks) with
 * aws-sdk-client-mock on a client of their own.
 */

const bucket = 'ledger-test';
const taxNum = '91310117568051222X';
let local: LocalS3;
let directory: string;
let s3: S3Client;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ledger-s3-'));
  local = await startLocalS3({ directory, buckets: [bucket] });
  s3 = new S3Client({
    endpoint: local.endpoint,
    region: 'cn-north-1',
    forcePathStyle: true,
    credentials: LOCAL_S3_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
});

afterAll(async () => {
  s3?.destroy();
  await local?.close();
  await rm(directory, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------------
// Entries as the archive's index holds them

interface EntryChange {
  invoiceNo?: string;
  issueDate?: string;
  direction?: InvoiceEntry['direction'];
  invoice?: Partial<InvoiceMetadata>;
  checks?: Partial<InvoiceChecks>;
}

const HASHES = { pdf: 'a'.repeat(64), ofd: 'b'.repeat(64), xml: 'c'.repeat(64) };

/** A mirrored invoice whose XML was read: 上海示例 sells to 北京示例 for 1200.00 + 72.00, unless changed. */
function entryOf(change: EntryChange = {}): InvoiceEntry {
  const invoiceNo = change.invoiceNo ?? '24312000000000000101';
  const file = (kind: 'pdf' | 'ofd' | 'xml', name: string) => ({
    key: `invoices/${taxNum}/${invoiceNo}/${name}`,
    bytes: 1000,
    sha256: HASHES[kind],
    contentType: kind === 'pdf' ? 'application/pdf' : 'application/zip',
  });
  return {
    taxNum,
    invoiceNo,
    direction: change.direction ?? 'sales',
    issueDate: change.issueDate ?? '2024-04-25',
    mirroredAt: '2024-04-26T02:00:00.000Z',
    invoice: {
      number: invoiceNo,
      issuedAt: '2024-04-25 15:58:41',
      type: '普通发票',
      seller: { taxNum, name: '上海示例信息技术有限公司' },
      buyer: { taxNum: '91110000600037341L', name: '北京示例贸易有限公司' },
      amount: '1200.00',
      tax: '72.00',
      total: '1272.00',
      items: [],
      redLetterOf: null,
      remark: '',
      voided: false,
      redFlushed: false,
      buyerTaxNum: '91110000600037341L',
      verification: '经查验,发票信息一致',
      ...change.invoice,
    },
    checks: { xmlRead: true, numberMatches: true, partyMatches: true, itemsAddUp: true, ...change.checks },
    files: { pdf: file('pdf', 'pdf.pdf'), ofd: file('ofd', 'ofd.zip'), xml: file('xml', 'xml.zip') },
  };
}

/** An invoice whose XML could not be read: Jumdata's fields only, money "". */
const unreadEntry = (invoiceNo: string): InvoiceEntry =>
  entryOf({
    invoiceNo,
    invoice: { type: '', seller: { taxNum: '', name: '' }, buyer: { taxNum: '91110000600037341L', name: '' }, amount: '', tax: '', total: '' },
    checks: { xmlRead: false, numberMatches: false, partyMatches: false, itemsAddUp: false, problem: 'the zip holds no XML' },
  });

/** An invoice mirrored before mirroring read the XML: Jumdata's verdicts are all its metadata, and it has no checks. */
function mirroredBeforeXmlEntry(invoiceNo: string): InvoiceEntry {
  const { checks: _checks, ...entry } = entryOf({ invoiceNo });
  const invoice: JumdataSummary = { voided: false, redFlushed: false, buyerTaxNum: '91110000600037341L' };
  return { ...entry, invoice };
}

const linkOf = (entry: InvoiceEntry, kind: string) =>
  `https://einvoice.example.com/files/${entry.taxNum}/${entry.invoiceNo}/${kind}?sig=s`;

async function* listed<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

// ---------------------------------------------------------------------------------------------------------------
// Writing and reading back

let written = 0;
const keyFor = (format: LedgerFormat) => `ledgers/${taxNum}/test-${++written}.${format}`;

function write(format: LedgerFormat, entries: InvoiceEntry[] | AsyncIterable<InvoiceEntry>, change: Partial<LedgerOptions> = {}) {
  const iterable = Array.isArray(entries) ? listed(entries) : entries;
  return writeLedger({ s3, bucket, key: keyFor(format), format, entries: iterable, linkOf, ...change });
}

async function storedBytes(key: string): Promise<Buffer> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

const storedText = async (key: string) => (await storedBytes(key)).toString('utf8');

async function keysUnder(prefix: string): Promise<string[]> {
  const listing = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (listing.Contents ?? []).map((object) => object.Key!);
}

const HEADER_LINE =
  '发票号码,开票日期,方向,发票类型,销售方名称,销售方纳税人识别号,购买方名称,购买方纳税人识别号,金额,税额,价税合计,作废,冲红,' +
  '红字对应蓝票,PDF SHA-256,OFD SHA-256,XML SHA-256,PDF 链接,OFD 链接,XML 链接,备注';

/** The CSV's lines after the header, without the BOM, split at CRLF (a quoted line break stays in its line). */
async function csvLines(key: string): Promise<string[]> {
  const lines = (await storedText(key)).replace(/^\uFEFF/, '').split('\r\n');
  return lines.slice(1, -1);
}

const hashCells = `${HASHES.pdf},${HASHES.ofd},${HASHES.xml}`;
const linkCells = (invoiceNo: string) =>
  ['pdf', 'ofd', 'xml'].map((kind) => `https://einvoice.example.com/files/${taxNum}/${invoiceNo}/${kind}?sig=s`).join(',');

describe('the CSV ledger', () => {
  it('is a BOM, the header, one CRLF-ended row per invoice and the 合计 row, byte for byte', async () => {
    // Prepare
    const entries = [
      entryOf({ invoiceNo: '24312000000000000101', issueDate: '2024-04-01', invoice: { amount: '0.10', tax: '0.01', total: '0.11' } }),
      entryOf({ invoiceNo: '24312000000000000102', issueDate: '2024-04-02', invoice: { amount: '0.20', tax: '0.02', total: '0.22', redFlushed: true } }),
      entryOf({ invoiceNo: '24312000000000000103', issueDate: '2024-04-03', invoice: { voided: true } }),
    ];
    const party = '上海示例信息技术有限公司,91310117568051222X,北京示例贸易有限公司,91110000600037341L';
    // Act
    const result = await write('csv', entries);
    // Assess
    const expected =
      `\uFEFF${HEADER_LINE}\r\n` +
      `24312000000000000101,2024-04-01,销项,普通发票,${party},0.10,0.01,0.11,否,否,,${hashCells},${linkCells('24312000000000000101')},\r\n` +
      `24312000000000000102,2024-04-02,销项,普通发票,${party},0.20,0.02,0.22,否,是,,${hashCells},${linkCells('24312000000000000102')},\r\n` +
      `24312000000000000103,2024-04-03,销项,普通发票,${party},1200.00,72.00,1272.00,是,否,,${hashCells},${linkCells('24312000000000000103')},作废\r\n` +
      '合计,,,,,,,,0.30,0.03,0.33,,,,,,,,,,\r\n';
    expect(await storedText(result.key)).toBe(expected);
    expect(result).toMatchObject({ rows: 3, totals: { amount: '0.30', tax: '0.03', total: '0.33' } });
  });

  it('has the contract header, column for column', () => {
    // Prepare
    const contract = HEADER_LINE.split(',');
    // Act
    const header = [...LEDGER_HEADER];
    // Assess
    expect(header).toEqual(contract);
  });

  it('quotes a comma, a quote and a line break in a name as RFC 4180 says', async () => {
    // Prepare
    const seller = { taxNum, name: '示例, "一号"\n有限公司' };
    const buyer = { taxNum: '91110000600037341L', name: '回车\r公司' };
    // Act
    const result = await write('csv', [entryOf({ invoice: { seller, buyer } })]);
    // Assess
    const [row] = await csvLines(result.key);
    expect(row).toContain(`,"示例, ""一号""\n有限公司",${taxNum},"回车\r公司",91110000600037341L,`);
  });

  it("puts a ' before text that a spreadsheet would run as a formula, and leaves negative money as it is", async () => {
    // Prepare
    const entry = entryOf({
      invoice: {
        seller: { taxNum, name: '=SUM(1)' },
        buyer: { taxNum: '91110000600037341L', name: '-示例公司' },
        type: '@类型',
        amount: '-1200.00',
        tax: '-72.00',
        total: '-1272.00',
        redLetterOf: '24312000000000000100',
      },
    });
    // Act
    const result = await write('csv', [entry]);
    // Assess
    const [row, totals] = await csvLines(result.key);
    expect(row).toContain(`,销项,'@类型,'=SUM(1),${taxNum},'-示例公司,91110000600037341L,-1200.00,-72.00,-1272.00,否,否,24312000000000000100,`);
    expect(totals).toBe('合计,,,,,,,,-1200.00,-72.00,-1272.00,,,,,,,,,,');
  });

  it('guards a name that starts with +, a tab or a carriage return too', async () => {
    // Prepare
    const names = ['+86 示例', '\t示例', '\r示例'];
    const entries = names.map((name, i) => entryOf({ invoiceNo: `2431200000000000020${i}`, invoice: { seller: { taxNum, name } } }));
    // Act
    const result = await write('csv', entries);
    // Assess
    const rows = (await csvLines(result.key)).slice(0, -1);
    expect(rows.map((row) => row.split(',')[4])).toEqual(["'+86 示例", "'\t示例", `"'\r示例"`]);
  });

  it('notes 作废, XML 未读取 and 明细不平 in 备注, several joined with ；', async () => {
    // Prepare
    const entries = [
      entryOf({ invoiceNo: '24312000000000000301', checks: { itemsAddUp: false } }),
      entryOf({ invoiceNo: '24312000000000000302', invoice: { voided: true }, checks: { itemsAddUp: false } }),
      { ...unreadEntry('24312000000000000303'), invoice: { ...(unreadEntry('24312000000000000303').invoice as InvoiceMetadata), voided: true } },
      entryOf({ invoiceNo: '24312000000000000304' }),
    ];
    // Act
    const result = await write('csv', entries);
    // Assess
    const notes = (await csvLines(result.key)).map((line) => line.slice(line.lastIndexOf(',') + 1));
    expect(notes).toEqual(['明细不平', '作废；明细不平', '作废；XML 未读取', '', '']);
  });

  it('leaves the money of an invoice whose XML was not read empty, adding nothing to the totals', async () => {
    // Prepare
    const entries = [entryOf({ invoiceNo: '24312000000000000401' }), unreadEntry('24312000000000000402')];
    // Act
    const result = await write('csv', entries);
    // Assess
    const [, unread, totals] = await csvLines(result.key);
    expect(unread).toBe(
      `24312000000000000402,2024-04-25,销项,,,,,91110000600037341L,,,,否,否,,${hashCells},${linkCells('24312000000000000402')},XML 未读取`,
    );
    expect(totals).toBe('合计,,,,,,,,1200.00,72.00,1272.00,,,,,,,,,,');
    expect(result.totals).toEqual({ amount: '1200.00', tax: '72.00', total: '1272.00' });
  });

  it('treats an invoice mirrored before the XML was read as unread, with Jumdata’s buyer tax number', async () => {
    // Prepare
    const entries = [mirroredBeforeXmlEntry('24312000000000000501')];
    // Act
    const result = await write('csv', entries);
    // Assess
    const [row, totals] = await csvLines(result.key);
    expect(row).toBe(
      `24312000000000000501,2024-04-25,销项,,,,,91110000600037341L,,,,否,否,,${hashCells},${linkCells('24312000000000000501')},XML 未读取`,
    );
    expect(totals).toBe('合计,,,,,,,,0.00,0.00,0.00,,,,,,,,,,');
  });

  it('writes 进项 for a purchase ledger and the blue invoice a red-letter invoice reverses', async () => {
    // Prepare
    const entry = entryOf({ direction: 'purchase', invoice: { redLetterOf: '24312000000000000100', amount: '-1.00', tax: '0.00', total: '-1.00' } });
    // Act
    const result = await write('csv', [entry]);
    // Assess
    const [row] = await csvLines(result.key);
    expect(row!.split(',').slice(0, 3)).toEqual(['24312000000000000101', '2024-04-25', '进项']);
    expect(row!.split(',')[13]).toBe('24312000000000000100');
  });

  it('sums to the cent where floating point would not: 0.10 + 0.20 + 0.07 × 3 = 0.51', async () => {
    // Prepare
    const amounts = ['0.10', '0.20', '0.07', '0.07', '0.07'];
    const entries = amounts.map((amount, i) =>
      entryOf({ invoiceNo: `2431200000000000060${i}`, invoice: { amount, tax: amount, total: amount } }),
    );
    // Act
    const result = await write('csv', entries);
    // Assess
    expect(result.totals).toEqual({ amount: '0.51', tax: '0.51', total: '0.51' });
    expect((await csvLines(result.key)).at(-1)).toBe('合计,,,,,,,,0.51,0.51,0.51,,,,,,,,,,');
  });

  it('writes the header and a zero 合计 row for a period without invoices', async () => {
    // Act
    const result = await write('csv', []);
    // Assess
    expect(await storedText(result.key)).toBe(`\uFEFF${HEADER_LINE}\r\n合计,,,,,,,,0.00,0.00,0.00,,,,,,,,,,\r\n`);
    expect(result.rows).toBe(0);
  });

  it('answers the SHA-256 and size of the object it stored, with its content type and file name', async () => {
    // Prepare
    const entries = [entryOf()];
    // Act
    const result = await write('csv', entries);
    // Assess
    const stored = await storedBytes(result.key);
    expect(result.sha256).toBe(createHash('sha256').update(stored).digest('hex'));
    expect(result.bytes).toBe(stored.length);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: result.key }));
    expect(head.ContentType).toBe('text/csv; charset=utf-8');
    expect(head.ContentDisposition).toBe(`attachment; filename="${result.key.split('/').at(-1)}"`);
    expect(result.contentType).toBe('text/csv; charset=utf-8');
  });

  it('offers a file name that is not ASCII through filename*, with an ASCII stand-in', async () => {
    // Prepare
    const key = `ledgers/${taxNum}/销项台账-2024-04.csv`;
    // Act
    await writeLedger({ s3, bucket, key, format: 'csv', entries: listed([entryOf()]), linkOf });
    // Assess
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentDisposition).toBe(
      `attachment; filename="____-2024-04.csv"; filename*=UTF-8''${encodeURIComponent('销项台账-2024-04.csv')}`,
    );
  });

  it('refuses a key whose extension is not the format’s, writing nothing', async () => {
    // Prepare
    const key = `ledgers/${taxNum}/2024-04.xlsx`;
    // Act
    const writing = writeLedger({ s3, bucket, key, format: 'csv', entries: listed([entryOf()]), linkOf });
    // Assess
    await expect(writing).rejects.toThrow(TypeError);
    expect(await keysUnder(key)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// XLSX

interface SheetCellRead {
  style?: string;
  type?: string;
  value?: string;
}

const sheetParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  isArray: (name) => name === 'row' || name === 'c',
});

/** The stored workbook's parts, by path. */
async function workbookParts(key: string): Promise<Record<string, string>> {
  const parts = unzipSync(new Uint8Array(await storedBytes(key)));
  return Object.fromEntries(Object.entries(parts).map(([path, bytes]) => [path, strFromU8(bytes)]));
}

/** The sheet's cells, row by row, by reference (A1, B1…). */
function sheetRows(sheetXml: string): Array<Record<string, SheetCellRead>> {
  const sheet = sheetParser.parse(sheetXml).worksheet;
  type Cell = { r: string; s?: string; t?: string; v?: string; is?: { t: string | { '#text': string } } };
  return (sheet.sheetData.row as Array<{ c?: Cell[] }>).map((row) =>
    Object.fromEntries(
      (row.c ?? []).map((cell) => {
        const inline = cell.is?.t;
        const value = typeof inline === 'object' ? inline['#text'] : (inline ?? cell.v);
        return [cell.r, { style: cell.s, type: cell.t, value }];
      }),
    ),
  );
}

const TEXT_STYLE = '1';
const MONEY_STYLE = '2';

describe('the XLSX ledger', () => {
  it('writes the invoice number as a text cell and the money as numbers in the 0.00 format', async () => {
    // Prepare
    const entry = entryOf({ invoice: { amount: '0.10', tax: '0.01', total: '0.11' } });
    // Act
    const result = await write('xlsx', [entry]);
    // Assess
    const parts = await workbookParts(result.key);
    const [, row] = sheetRows(parts['xl/worksheets/sheet1.xml']!);
    expect(row!.A2).toEqual({ style: TEXT_STYLE, type: 'inlineStr', value: '24312000000000000101' });
    expect(row!.I2).toEqual({ style: MONEY_STYLE, type: undefined, value: '0.10' });
    expect(row!.K2).toEqual({ style: MONEY_STYLE, type: undefined, value: '0.11' });
    expect(parts['xl/styles.xml']).toContain('<numFmt numFmtId="164" formatCode="0.00"/>');
    expect(parts['xl/styles.xml']).toMatch(/<cellXfs count="5"><xf [^>]*\/><xf numFmtId="49" [^>]*\/><xf numFmtId="164" /);
  });

  it('freezes the header row and ends with the 合计 row, totals as numbers', async () => {
    // Prepare
    const entries = [
      entryOf({ invoiceNo: '24312000000000000701', invoice: { amount: '0.10', tax: '0.01', total: '0.11' } }),
      entryOf({ invoiceNo: '24312000000000000702', invoice: { amount: '0.20', tax: '0.02', total: '0.22' } }),
      entryOf({ invoiceNo: '24312000000000000703', invoice: { voided: true } }),
    ];
    // Act
    const result = await write('xlsx', entries);
    // Assess
    const sheet = (await workbookParts(result.key))['xl/worksheets/sheet1.xml']!;
    expect(sheet).toContain('<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>');
    const rows = sheetRows(sheet);
    expect(Object.values(rows[0]!).map((cell) => cell.value)).toEqual([...LEDGER_HEADER]);
    expect(rows).toHaveLength(5);
    expect(rows[4]).toEqual({
      A5: { style: '3', type: 'inlineStr', value: '合计' },
      I5: { style: '4', type: undefined, value: '0.30' },
      J5: { style: '4', type: undefined, value: '0.03' },
      K5: { style: '4', type: undefined, value: '0.33' },
    });
  });

  it('writes text as it is, with no formula guard, and an unknown amount as an empty cell', async () => {
    // Prepare
    const entries = [
      entryOf({ invoice: { seller: { taxNum, name: '=SUM(1)' }, buyer: { taxNum: '91110000600037341L', name: ' -<示例>&_x0041_ ' } } }),
      unreadEntry('24312000000000000802'),
    ];
    // Act
    const result = await write('xlsx', entries);
    // Assess
    const [, written, unread] = sheetRows((await workbookParts(result.key))['xl/worksheets/sheet1.xml']!);
    expect(written!.E2).toEqual({ style: TEXT_STYLE, type: 'inlineStr', value: '=SUM(1)' });
    // Excel reads _x005F_ back as "_": the name shows as written.
    expect(written!.G2!.value).toBe(' -<示例>&_x005F_x0041_ ');
    expect(unread!.I3).toEqual({ style: MONEY_STYLE, type: undefined, value: undefined });
    expect(unread!.U3!.value).toBe('XML 未读取');
  });

  it('is a package a spreadsheet program opens: content types, relationships, one sheet named 台账, styles', async () => {
    // Act
    const result = await write('xlsx', [entryOf()]);
    // Assess
    const parts = await workbookParts(result.key);
    expect(Object.keys(parts).sort()).toEqual([
      '[Content_Types].xml',
      '_rels/.rels',
      'xl/_rels/workbook.xml.rels',
      'xl/styles.xml',
      'xl/workbook.xml',
      'xl/worksheets/sheet1.xml',
    ]);
    expect(parts['xl/workbook.xml']).toContain('<sheet name="台账" sheetId="1" r:id="rId1"/>');
    expect(parts['[Content_Types].xml']).toContain('PartName="/xl/worksheets/sheet1.xml"');
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: result.key }));
    expect(head.ContentType).toBe('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    expect(head.ContentDisposition).toMatch(/^attachment; filename="test-\d+\.xlsx"$/);
  });

  it('answers the SHA-256 and size of the workbook it stored', async () => {
    // Act
    const result = await write('xlsx', [entryOf()]);
    // Assess
    const stored = await storedBytes(result.key);
    expect(result).toMatchObject({ bytes: stored.length, sha256: createHash('sha256').update(stored).digest('hex') });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Many rows

/** Full collections on demand, so that what is measured is what the ledger keeps, not garbage yet to collect. */
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;
const liveBytes = () => {
  // The first collection leaves freed ArrayBuffers counted (their memory goes in a later phase); a second settles it.
  collectGarbage();
  collectGarbage();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
};

/** `count` generated invoices with long names (about 3 KB a CSV row), `onEach` called as each is read. */
async function* generated(count: number, onEach: (index: number) => void = () => undefined): AsyncGenerator<InvoiceEntry> {
  const longName = (i: number) => `${'示例'.repeat(150)}有限公司${i}`;
  for (let i = 0; i < count; i++) {
    onEach(i);
    const invoiceNo = String(24312000000000000000n + BigInt(i));
    yield entryOf({
      invoiceNo,
      invoice: { seller: { taxNum, name: longName(i) }, buyer: { taxNum: '91110000600037341L', name: longName(i + 1) }, amount: '0.10', tax: '0.01', total: '0.11' },
    });
  }
}

/** How far the live memory rose above where it started, sampled every 500 rows while the ledger is written. */
async function memoryGrowth(format: LedgerFormat, count: number): Promise<{ growth: number; rows: number; bytes: number }> {
  const start = liveBytes();
  let peak = start;
  const result = await write(format, generated(count, (i) => i % 500 === 0 && (peak = Math.max(peak, liveBytes()))));
  return { growth: Math.max(peak, liveBytes()) - start, rows: result.rows, bytes: result.bytes };
}

const MB = 1024 * 1024;

describe('a ledger of many invoices', () => {
  it.each(['csv', 'xlsx'] as const)(
    'keeps its %s memory bounded: 20,000 rows take about what 1,000 do',
    async (format) => {
      // Prepare
      await memoryGrowth(format, 200); // modules and connections warm
      // Act
      const few = await memoryGrowth(format, 1_000);
      const many = await memoryGrowth(format, 20_000);
      // Assess
      expect(many.rows).toBe(20_000);
      // About two 5 MB parts (the one filling, the one in flight) and their copies: 14-19 MB here for 46 MB of CSV,
      // 2-6 MB for the 2 MB workbook. Holding 20,000 rows would take over 45 MB, their CSV alone.
      expect(many.growth - few.growth).toBeLessThan(30 * MB);
    },
    60_000,
  );

  it('goes up in parts when it is larger than one, its SHA-256 that of the whole object', async () => {
    // Act
    const result = await write('csv', generated(6_000));
    // Assess
    expect(result.bytes).toBeGreaterThan(5 * MB);
    const stored = await storedBytes(result.key);
    expect(result).toMatchObject({ rows: 6_000, bytes: stored.length, sha256: createHash('sha256').update(stored).digest('hex') });
    expect(result.totals).toEqual({ amount: '600.00', tax: '60.00', total: '660.00' });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Failures and aborts

describe('a ledger that cannot be finished', () => {
  it('stores nothing when the signal is already aborted', async () => {
    // Prepare
    const key = keyFor('csv');
    const reason = new Error('no time left');
    // Act
    const writing = writeLedger({ s3, bucket, key, format: 'csv', entries: listed([entryOf()]), linkOf, signal: AbortSignal.abort(reason) });
    // Assess
    await expect(writing).rejects.toBe(reason);
    expect(await keysUnder(key)).toEqual([]);
  });

  it('stops half way through a multipart upload when the signal aborts, leaving no object', async () => {
    // Prepare
    const key = keyFor('csv');
    const abort = new AbortController();
    const entries = generated(8_000, (i) => i === 6_000 && abort.abort(new Error('no time left')));
    // Act
    const writing = writeLedger({ s3, bucket, key, format: 'csv', entries, linkOf, signal: abort.signal });
    // Assess
    await expect(writing).rejects.toThrow('no time left');
    expect(await keysUnder(key)).toEqual([]);
  });

  it('rejects with the entries’ own failure half way through a multipart upload, leaving no object', async () => {
    // Prepare
    const key = keyFor('csv');
    async function* failing(): AsyncGenerator<InvoiceEntry> {
      yield* generated(6_000);
      throw new Error('the index could not be read');
    }
    // Act
    const writing = writeLedger({ s3, bucket, key, format: 'csv', entries: failing(), linkOf });
    // Assess
    // (s3rver cannot abort a multipart upload: its error must not replace the cause)
    await expect(writing).rejects.toThrow('the index could not be read');
    expect(await keysUnder(key)).toEqual([]);
  });

  it('rejects when the signal aborts even while the entries keep it waiting', async () => {
    // Prepare
    const key = keyFor('csv');
    const abort = new AbortController();
    async function* stalled(): AsyncGenerator<InvoiceEntry> {
      yield entryOf();
      abort.abort(new Error('no time left'));
      await new Promise(() => undefined); // an index query that does not watch the signal
    }
    // Act
    const writing = writeLedger({ s3, bucket, key, format: 'csv', entries: stalled(), linkOf, signal: abort.signal });
    // Assess
    await expect(writing).rejects.toThrow('no time left');
    expect(await keysUnder(key)).toEqual([]);
  });
});

describe('a ledger when S3 fails or the abort comes late', () => {
  const client = new S3Client({ region: 'cn-north-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  const s3mock = mockClient(client);
  const options = (change: Partial<LedgerOptions>): LedgerOptions => ({
    s3: client,
    bucket: 'archive',
    key: 'ledgers/T/2024-04.csv',
    format: 'csv',
    entries: generated(8_000),
    linkOf,
    ...change,
  });

  it('aborts the multipart upload in S3 when the signal aborts after the first part', async () => {
    // Prepare
    s3mock.reset();
    const abort = new AbortController();
    s3mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-1' });
    s3mock.on(UploadPartCommand).callsFake(() => {
      abort.abort(new Error('no time left'));
      return { ETag: '"p1"' };
    });
    s3mock.on(AbortMultipartUploadCommand).resolves({});
    // Act
    const writing = writeLedger(options({ signal: abort.signal }));
    // Assess
    await expect(writing).rejects.toThrow('no time left');
    expect(s3mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { Bucket: 'archive', Key: 'ledgers/T/2024-04.csv', UploadId: 'upload-1' });
    expect(s3mock).not.toHaveReceivedCommand(CompleteMultipartUploadCommand);
  });

  it('rejects with S3’s error when a part fails, without waiting for the rows S3 no longer reads', async () => {
    // Prepare
    s3mock.reset();
    s3mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-2' });
    s3mock.on(UploadPartCommand).rejects(new Error('S3 is unavailable'));
    s3mock.on(AbortMultipartUploadCommand).resolves({});
    // Act
    const writing = writeLedger(options({ entries: generated(20_000) }));
    // Assess
    await expect(writing).rejects.toThrow('S3 is unavailable');
    expect(s3mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'upload-2' });
  });

  it('removes a ledger whose upload finished after the signal aborted, version and all', async () => {
    // Prepare
    s3mock.reset();
    const abort = new AbortController();
    s3mock.on(PutObjectCommand).callsFake(() => {
      abort.abort(new Error('no time left')); // while S3 stores the last byte
      return { ETag: '"e"', VersionId: 'v1' };
    });
    s3mock.on(DeleteObjectCommand).resolves({});
    // Act
    const writing = writeLedger(options({ entries: listed([entryOf()]), signal: abort.signal }));
    // Assess
    await expect(writing).rejects.toThrow('no time left');
    expect(s3mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Bucket: 'archive', Key: 'ledgers/T/2024-04.csv', VersionId: 'v1' });
  });
});
