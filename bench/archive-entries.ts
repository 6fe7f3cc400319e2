import { createHash } from 'node:crypto';
import type { Direction } from '#shared/providers/jumdata';
import type { InvoiceEntry } from '../functions/download/invoice-entry.ts';
import type { InvoiceItem } from '../functions/download/invoice-metadata.ts';
import type { FileKind, MirroredFile } from '../functions/download/invoice-files.ts';

/**
 * Index entries as mirroring writes them (functions/download/archive.ts), for the archive bench: one taxpayer, one
 * direction, issue dates spread evenly over a period. Each has the XML's metadata with one to four items that add
 * up, its checks, three files with keys, sizes, SHA-256 and versions, and Jumdata's fields as billed, so that an
 * item weighs what a real one does (about 2 KB): DynamoDB's 1 MB page, and the ledger's memory, depend on it.
 * A few are voided, red-letter or unread, as in a real archive, so that the ledger's notes and totals do their work.
 * Seeded: every run writes the same entries.
 */

export interface EntrySet {
  taxNum: string;
  direction: Direction;
  /** YYYY-MM-DD, both included. */
  from: string;
  to: string;
  count: number;
  /** Numbers are `{prefix}{sequence}`, 20 digits in all. */
  numberPrefix: string;
}

const DAY_MS = 86_400_000;

export function* entriesOf(set: EntrySet): Generator<InvoiceEntry> {
  const random = seededRandom(hashOf(`${set.taxNum}/${set.from}`));
  const first = Date.parse(set.from);
  const days = (Date.parse(set.to) - first) / DAY_MS + 1;
  for (let i = 0; i < set.count; i++) {
    const issueDate = new Date(first + Math.floor((i * days) / set.count) * DAY_MS).toISOString().slice(0, 10);
    const invoiceNo = `${set.numberPrefix}${String(i).padStart(20 - set.numberPrefix.length, '0')}`;
    yield entryOf(set, invoiceNo, issueDate, random);
  }
}

const COUNTERPARTIES = [
  { taxNum: '91110000600037341L', name: '北京示例贸易有限公司' },
  { taxNum: '91440300708461136T', name: '深圳市示例电子科技有限公司' },
  { taxNum: '91330100MA27XK8F3N', name: '杭州示例网络技术有限公司' },
  { taxNum: '91510100MA61R0AB2C', name: '成都示例餐饮管理有限公司' },
  { taxNum: '91320500MA1MDQ0K4Q', name: '苏州示例精密机械制造有限公司' },
];
const GOODS = [
  { name: '*信息技术服务*软件开发服务', unit: '项', taxRate: 6 },
  { name: '*信息技术服务*技术维护服务', unit: '月', taxRate: 6 },
  { name: '*计算机外部设备*激光打印机', unit: '台', taxRate: 13 },
  { name: '*纸制品*复印纸', unit: '箱', taxRate: 13 },
  { name: '*餐饮服务*餐费', unit: '次', taxRate: 6 },
];

function entryOf(set: EntrySet, invoiceNo: string, issueDate: string, random: () => number): InvoiceEntry {
  const self = { taxNum: set.taxNum, name: '上海示例信息技术有限公司' };
  const other = COUNTERPARTIES[Math.floor(random() * COUNTERPARTIES.length)]!;
  const [seller, buyer] = set.direction === 'sales' ? [self, other] : [other, self];
  const roll = random();
  // About 1 in 100 voided, 1 in 100 a red-letter invoice (negative amounts), 1 in 200 whose XML was not read.
  const voided = roll < 0.01;
  const redLetterOf = roll >= 0.01 && roll < 0.02 ? `${invoiceNo.slice(0, -4)}9999` : null;
  const xmlRead = roll < 0.995;
  const items = itemsOf(random, redLetterOf === null ? 1 : -1);
  const amount = items.reduce((sum, item) => sum + item.cents, 0);
  const tax = items.reduce((sum, item) => sum + item.taxCents, 0);
  const money = (cents: number) => (xmlRead ? yuan(cents) : '');
  const fields = jumdataFields(invoiceNo, issueDate, buyer.taxNum, voided);
  return {
    taxNum: set.taxNum,
    invoiceNo,
    direction: set.direction,
    issueDate,
    mirroredAt: new Date(Date.parse(issueDate) + DAY_MS + 7_200_000).toISOString(),
    invoice: {
      number: invoiceNo,
      issuedAt: xmlRead ? `${issueDate} ${timeOfDay(random)}` : String(fields.Kprq),
      type: xmlRead ? '电子发票（普通发票）' : '',
      seller: xmlRead ? seller : { taxNum: '', name: '' },
      buyer: xmlRead ? buyer : { taxNum: buyer.taxNum, name: '' },
      amount: money(amount),
      tax: money(tax),
      total: money(amount + tax),
      items: xmlRead ? items.map((item) => item.written) : [],
      redLetterOf: xmlRead ? redLetterOf : null,
      remark: xmlRead && random() < 0.3 ? `合同号 HT-${issueDate.slice(0, 4)}-${invoiceNo.slice(-5)}` : '',
      voided,
      redFlushed: false,
      buyerTaxNum: buyer.taxNum,
      verification: '经查验,发票信息一致',
    },
    checks: xmlRead
      ? { xmlRead: true, numberMatches: true, partyMatches: true, itemsAddUp: true }
      : { xmlRead: false, numberMatches: false, partyMatches: false, itemsAddUp: false, problem: 'the zip holds no XML' },
    files: {
      pdf: fileOf(set.taxNum, invoiceNo, 'pdf', 'pdf.pdf', 'application/pdf', 40_000 + Math.floor(random() * 60_000)),
      ofd: fileOf(set.taxNum, invoiceNo, 'ofd', 'ofd.zip', 'application/zip', 8_000 + Math.floor(random() * 8_000)),
      xml: fileOf(set.taxNum, invoiceNo, 'xml', 'xml.zip', 'application/zip', 2_000 + Math.floor(random() * 2_000)),
    },
    jumdata: { taskNo: createHash('sha256').update(`task/${invoiceNo}`).digest('hex').slice(0, 24), charged: true, fields },
  };
}

/** One to four lines, in cents, each with its tax at its rate: the lines add up to the totals by construction. */
function itemsOf(random: () => number, sign: 1 | -1): Array<{ cents: number; taxCents: number; written: InvoiceItem }> {
  return Array.from({ length: 1 + Math.floor(random() * 4) }, () => {
    const goods = GOODS[Math.floor(random() * GOODS.length)]!;
    const quantity = 1 + Math.floor(random() * 20);
    const unitCents = 100 + Math.floor(random() * 500_000);
    const cents = sign * quantity * unitCents;
    const taxCents = Math.round((cents * goods.taxRate) / 100);
    const written: InvoiceItem = {
      name: goods.name,
      spec: '',
      unit: goods.unit,
      quantity: String(sign * quantity),
      unitPrice: yuan(unitCents),
      amount: yuan(cents),
      taxRate: `${goods.taxRate}%`,
      tax: yuan(taxCents),
    };
    return { cents, taxCents, written };
  });
}

/** What Jumdata sends besides the file links (local/sandboxes/jumdata.ts answers the same fields). */
function jumdataFields(invoiceNo: string, issueDate: string, buyerTaxNum: string, voided: boolean): Record<string, unknown> {
  return {
    Fphm: '',
    Qdfphm: invoiceNo,
    Kprq: `${issueDate} 15:58:41`,
    FppzDm: '01',
    Sfzf: voided ? '已作废' : '未作废',
    Sfch: '未冲红',
    SfchDm: 'N',
    Gmfnsrsbh: buyerTaxNum,
    Cyjg: '经查验,发票信息一致',
  };
}

function fileOf(taxNum: string, invoiceNo: string, kind: FileKind, name: string, contentType: string, bytes: number): MirroredFile {
  return {
    key: `invoices/${taxNum}/${invoiceNo}/${name}`,
    bytes,
    sha256: createHash('sha256').update(`${invoiceNo}/${kind}`).digest('hex'),
    contentType,
    // The bucket is versioned (infra/invoice-bucket.ts): S3 answers every write with a 32-character version id.
    versionId: createHash('sha256').update(`${invoiceNo}/${kind}`).digest('base64url').slice(0, 32),
  };
}

const yuan = (cents: number) => `${cents < 0 ? '-' : ''}${Math.floor(Math.abs(cents) / 100)}.${String(Math.abs(cents) % 100).padStart(2, '0')}`;
const timeOfDay = (random: () => number) =>
  [9 + Math.floor(random() * 9), Math.floor(random() * 60), Math.floor(random() * 60)].map((n) => String(n).padStart(2, '0')).join(':');

/** mulberry32: small, fast and good enough to vary test data the same way on every run. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const hashOf = (text: string) => createHash('sha256').update(text).digest().readUInt32BE(0);
