import { Unzip, UnzipInflate, unzipSync } from 'fflate';
import { XMLParser, XMLValidator, type EntityDecoderOptions } from 'fast-xml-parser';
import type { InvoiceChecks, InvoiceItem, InvoiceParty, XmlInvoice } from './invoice-metadata.ts';

/**
 * Reads the tax bureau's 数电 invoice XML out of Jumdata's xml zip, by element path, never by position (no schema is
 * public; optional elements may be absent): the invoice's metadata, and whether it is the invoice that was asked
 * for. Pure: bytes in, result out. It never throws: whatever the bytes, an unreadable XML comes back as
 * `checks.xmlRead: false` with the problem, and memory stays bounded by MAX_XML_BYTES whatever the zip claims.
 */

/** The largest XML entry read. A real invoice is a few KB; even one with hundreds of items stays far below this. */
export const MAX_XML_BYTES = 10 * 1024 * 1024;

/**
 * Compressed bytes handed to the inflater at a time. Deflate expands at most about 1032×, so one step adds at most
 * ~1 MiB (and fflate's growing buffers a few MiB more, briefly) before the size is checked again.
 */
const INFLATE_STEP_BYTES = 1024;

export interface ExpectedInvoice {
  invoiceNo: string;
  taxNum: string;
  direction: 'sales' | 'purchase';
}

export interface InvoiceXmlReading {
  invoice?: XmlInvoice;
  checks: InvoiceChecks;
}

/** Why the XML could not be read; its message is the `checks.problem` shown to people. */
class XmlProblem extends Error {
  override name = 'XmlProblem';
}

/** The invoice's metadata from its xml zip, and how it compares with the invoice asked for. */
export function readInvoiceXml(zipBytes: Uint8Array, expected: ExpectedInvoice): InvoiceXmlReading {
  try {
    const document = findEInvoiceXml(zipBytes);
    const invoice = invoiceOf(parseEInvoice(document));
    return { invoice, checks: checksOf(invoice, expected) };
  } catch (error) {
    const problem =
      error instanceof XmlProblem ? error.message : `the XML could not be read: ${clip(errorMessage(error))}`;
    return { checks: { xmlRead: false, numberMatches: false, partyMatches: false, itemsAddUp: false, problem } };
  }
}

function checksOf(invoice: XmlInvoice, expected: ExpectedInvoice): InvoiceChecks {
  const party = expected.direction === 'sales' ? invoice.seller : invoice.buyer;
  return {
    xmlRead: true,
    numberMatches: invoice.number === expected.invoiceNo,
    partyMatches: party.taxNum === expected.taxNum,
    itemsAddUp: itemsAddUp(invoice),
  };
}

/** Discount lines are items too: their negative amounts belong in the sums. */
function itemsAddUp(invoice: XmlInvoice): boolean {
  const sum = (field: 'amount' | 'tax') =>
    invoice.items.reduce((total, item) => total + (toCents(item[field]) ?? 0n), 0n);
  return sum('amount') === toCents(invoice.amount) && sum('tax') === toCents(invoice.tax);
}

// ---------------------------------------------------------------------------------------------------------------
// Money and tax rates

const PLAIN_DECIMAL = /^-?\d+(?:\.\d+)?$/;
const GROUPED_DECIMAL = /^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/;
/** Far beyond any invoice (a trillion yuan is 15 digits), and short enough that BigInt never sees a huge string. */
const MAX_MONEY_CHARS = 32;

/**
 * An amount written as a decimal (`1000`, `1000.5`, `-72.00`, `1,000.00`) in integer cents; undefined for anything
 * else (exponents, garbage, or a fraction finer than a cent, which cents cannot hold exactly). Never a float.
 */
export function toCents(text: string): bigint | undefined {
  const written = text.trim();
  if (written.length > MAX_MONEY_CHARS) return undefined;
  if (!PLAIN_DECIMAL.test(written) && !GROUPED_DECIMAL.test(written)) return undefined;
  const [whole = '', fraction = ''] = written.replace(/^-|,/g, '').split('.');
  if (/[1-9]/.test(fraction.slice(2))) return undefined;
  const cents = BigInt(whole) * 100n + BigInt(fraction.slice(0, 2).padEnd(2, '0'));
  return written.startsWith('-') ? -cents : cents;
}

/** Cents as a decimal with two places: `-7200n` → `-72.00`. */
export function formatCents(cents: bigint): string {
  const size = cents < 0n ? -cents : cents;
  return `${cents < 0n ? '-' : ''}${size / 100n}.${(size % 100n).toString().padStart(2, '0')}`;
}

/**
 * A tax rate as a percentage whatever form the XML used: `0.06` → `6%`, `0.015` → `1.5%`, `6%` as it is. A bare
 * number above 1 cannot be a fraction (1300% is no rate): it is a percentage missing its sign. Text such as 免税 or
 * 不征税 is kept as written.
 */
export function taxRatePercent(written: string): string {
  const rate = written.trim();
  if (!/^\d{1,3}(?:\.\d{1,6})?$/.test(rate)) return rate;
  const [whole = '', fraction = ''] = rate.split('.');
  if (Number(rate) > 1) return `${rate}%`;
  // Moving the decimal point two places by hand keeps 0.07 from becoming 7.000000000000001.
  const padded = fraction.padEnd(2, '0');
  const percent = `${whole}${padded.slice(0, 2)}`.replace(/^0+(?=\d)/, '');
  const rest = padded.slice(2).replace(/0+$/, '');
  return `${percent}${rest ? `.${rest}` : ''}%`;
}

// ---------------------------------------------------------------------------------------------------------------
// The zip: which entry is the invoice, read within the cap

interface XmlDocument {
  entry: string;
  text: string;
}

/** The first `.xml` entry (in any folder) whose root element is EInvoice. */
function findEInvoiceXml(zip: Uint8Array): XmlDocument {
  const declared = declaredXmlSizes(zip);
  if (declared.size === 0) throw new XmlProblem('the zip holds no .xml file');
  const readable = new Map([...declared].filter(([, size]) => size <= MAX_XML_BYTES));
  if (readable.size === 0) {
    const [entry, size] = [...declared][0]!;
    throw new XmlProblem(`${clip(entry)} is too large: ${size} bytes, at most ${MAX_XML_BYTES} are read`);
  }
  const { found, others } = scanEntries(zip, readable);
  if (found) return found;
  const seen = others.length > 0 ? others.slice(0, 3).join('; ') : 'none could be found in the zip';
  throw new XmlProblem(`no .xml file in the zip is an EInvoice (${seen})`);
}

/**
 * Jumdata's zip holds one XML, maybe beside a few other files. The bound matters: a forged directory can claim
 * billions of entries, and listing them would never end.
 */
const MAX_ZIP_ENTRIES = 1000;

/**
 * The `.xml` entries and the uncompressed sizes they declare, from the central directory, without inflating
 * anything: the filter sees each entry and declines it. The first of two entries with one name wins, as in the scan.
 */
function declaredXmlSizes(zip: Uint8Array): Map<string, number> {
  const sizes = new Map<string, number>();
  let entries = 0;
  try {
    unzipSync(zip, {
      filter: ({ name, originalSize }) => {
        if (++entries > MAX_ZIP_ENTRIES) throw new XmlProblem(`the zip holds more than ${MAX_ZIP_ENTRIES} entries`);
        if (name.toLowerCase().endsWith('.xml') && !sizes.has(name)) sizes.set(name, originalSize);
        return false;
      },
    });
  } catch (error) {
    if (error instanceof XmlProblem) throw error;
    throw new XmlProblem(`the xml file is not a readable zip (${clip(errorMessage(error))})`);
  }
  return sizes;
}

/**
 * Inflates the readable entries one after the other, each held only until its root element is known, and stops at
 * the first EInvoice. The central directory's declared size is the cap while inflating: an entry that inflates past
 * it is hostile (a zip bomb claiming a small size), and reading stops there.
 */
function scanEntries(zip: Uint8Array, readable: Map<string, number>): { found?: XmlDocument; others: string[] } {
  let found: XmlDocument | undefined;
  let failure: unknown;
  let unread = readable.size;
  const others: string[] = [];
  const unzip = new Unzip((file) => {
    const declared = readable.get(file.name);
    if (declared === undefined || found || failure) return;
    readable.delete(file.name);
    file.ondata = collectCapped(file.name, declared, (error, bytes) => {
      unread -= 1;
      if (error) failure = error;
      else if (bytes) ({ found } = judgeEntry(file.name, bytes, others));
    });
    file.start();
  });
  unzip.register(UnzipInflate);
  // Once every candidate is read, the rest of the zip (an OFD, padding) is not worth a look.
  for (let at = 0; at < zip.length && !found && !failure && unread > 0; at += INFLATE_STEP_BYTES) {
    unzip.push(zip.subarray(at, at + INFLATE_STEP_BYTES), at + INFLATE_STEP_BYTES >= zip.length);
  }
  if (failure) throw failure;
  return { found, others };
}

/** An fflate data handler gathering one entry's chunks, refusing it as soon as it passes its declared size. */
function collectCapped(entry: string, declared: number, done: (error?: unknown, bytes?: Uint8Array) => void) {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let over = false;
  return (error: Error | null, chunk: Uint8Array, final: boolean) => {
    if (over) return;
    if (error) return done(new XmlProblem(`${clip(entry)} cannot be unzipped (${clip(error.message)})`));
    size += chunk.length;
    if (size > declared) {
      over = true;
      chunks.length = 0;
      return done(new XmlProblem(`${clip(entry)} inflates past the ${declared} bytes it declares: refused`));
    }
    chunks.push(chunk);
    if (final) done(undefined, joinChunks(chunks, size));
  };
}

function joinChunks(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const joined = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    joined.set(chunk, at);
    at += chunk.length;
  }
  return joined;
}

/** The entry as a document if its root element is EInvoice; otherwise a note of what it is, for the problem. */
function judgeEntry(entry: string, bytes: Uint8Array, others: string[]): { found?: XmlDocument } {
  let text: string;
  try {
    text = decodeXml(bytes);
  } catch {
    others.push(`${clip(entry)}: not text in its declared encoding`);
    return {};
  }
  const root = rootElementOf(text);
  if (root === 'EInvoice') return { found: { entry, text } };
  others.push(`${clip(entry)}: ${root ? `root element ${clip(root)}` : 'no root element found'}`);
  return {};
}

/**
 * The bytes as text. The tax bureau writes UTF-8; older Chinese tools declare GBK or GB2312, which GB18030 (their
 * superset) decodes. Anything that is not valid text in its encoding is refused rather than guessed.
 */
function decodeXml(bytes: Uint8Array): string {
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 200));
  const declared = /^(?:\xEF\xBB\xBF)?\s*<\?xml[^>]*encoding\s*=\s*["']([\w.-]+)["']/.exec(head)?.[1]?.toLowerCase();
  const encoding = declared && ['gbk', 'gb2312', 'gb18030'].includes(declared) ? 'gb18030' : 'utf-8';
  return new TextDecoder(encoding, { fatal: true }).decode(bytes);
}

/** The root element's local name: past the declaration, comments, processing instructions and any DOCTYPE. */
function rootElementOf(text: string): string | undefined {
  const whitespace = /\s*/y;
  let at = 0;
  for (;;) {
    whitespace.lastIndex = at;
    whitespace.exec(text);
    at = whitespace.lastIndex;
    if (text.startsWith('<?', at)) at = endOf(text, '?>', at);
    else if (text.startsWith('<!--', at)) at = endOf(text, '-->', at);
    else if (text.startsWith('<!DOCTYPE', at)) at = endOfDoctype(text, at);
    else break;
    if (at < 0) return undefined;
  }
  return /^<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)/.exec(text.slice(at, at + 200))?.[1];
}

function endOf(text: string, closing: string, from: number): number {
  const at = text.indexOf(closing, from);
  return at < 0 ? -1 : at + closing.length;
}

/** A DOCTYPE ends at the `>` after its internal subset `[...]`, if it has one. */
function endOfDoctype(text: string, from: number): number {
  const close = text.indexOf('>', from);
  const subset = text.indexOf('[', from);
  if (subset < 0 || close < subset) return close < 0 ? -1 : close + 1;
  const subsetEnd = text.indexOf(']', subset);
  return subsetEnd < 0 ? -1 : endOf(text, '>', subsetEnd);
}

// ---------------------------------------------------------------------------------------------------------------
// The XML: parsed safely, read by element path

/**
 * Decodes the five XML entities and character references (`&#20013;`), in one pass so that `&amp;lt;` stays `&lt;`.
 * Nothing else is expanded: entities a DOCTYPE would declare never get here, since a DOCTYPE is refused first.
 */
const XML_ONLY_ENTITIES: EntityDecoderOptions = {
  setExternalEntities: () => undefined,
  addInputEntities: () => undefined,
  reset: () => undefined,
  setXmlVersion: () => undefined,
  decode: (text) => text.replace(/&(?:(lt|gt|amp|quot|apos)|#(\d{1,7})|#x([\da-fA-F]{1,6}));/g, decodeReference),
};

const NAMED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeReference(reference: string, name?: string, decimal?: string, hex?: string): string {
  if (name) return NAMED_ENTITIES[name]!;
  const codePoint = decimal ? Number(decimal) : Number.parseInt(hex!, 16);
  const isCharacter = codePoint > 0 && codePoint <= 0x10ffff && (codePoint < 0xd800 || codePoint > 0xdfff);
  return isCharacter ? String.fromCodePoint(codePoint) : reference;
}

const PARSER = new XMLParser({
  // The invoice's data is all in elements; attributes carry nothing read here.
  ignoreAttributes: true,
  removeNSPrefix: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  // Strings only: money and numbers must never pass through floating point.
  parseTagValue: false,
  trimValues: true,
  isArray: (name) => name === 'IssuItemInformation',
  processEntities: true,
  entityDecoder: XML_ONLY_ENTITIES,
});

/** The EInvoice element, once the text is known to declare no entities and to be well-formed. */
function parseEInvoice({ entry, text }: XmlDocument): unknown {
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) {
    throw new XmlProblem(`${clip(entry)} declares a DOCTYPE or entities, which are refused`);
  }
  const validation = XMLValidator.validate(text);
  if (validation !== true) {
    const { msg, line } = validation.err;
    throw new XmlProblem(`${clip(entry)} is malformed XML: ${clip(msg)} (line ${line})`);
  }
  try {
    return (PARSER.parse(text) as Record<string, unknown>).EInvoice;
  } catch (error) {
    throw new XmlProblem(`${clip(entry)} is malformed XML: ${clip(errorMessage(error))}`);
  }
}

/**
 * The invoice, read by element path as the tax bureau lays it out. PassengerTransportation (travellers' names and
 * ID numbers) is personal data: nothing is ever read from it.
 */
function invoiceOf(root: unknown): XmlInvoice {
  const data = childAt(root, 'EInvoiceData');
  const basic = childAt(data, 'BasicInformation');
  const number = textAt(root, 'Header/EIid') || textAt(root, 'TaxSupervisionInfo/InvoiceNumber');
  if (!number) {
    throw new XmlProblem('the EInvoice has no invoice number (Header/EIid, TaxSupervisionInfo/InvoiceNumber)');
  }
  return {
    number,
    issuedAt: textAt(root, 'TaxSupervisionInfo/IssueTime') || textAt(basic, 'RequestTime'),
    type:
      textAt(root, 'Header/InherentLabel/EInvoiceType/LabelName') ||
      textAt(root, 'Header/InherentLabel/GeneralOrSpecialVAT/LabelName'),
    seller: partyOf(data, 'Seller'),
    buyer: partyOf(data, 'Buyer'),
    amount: requiredMoney(basic, 'TotalAmWithoutTax'),
    tax: requiredMoney(basic, 'TotalTaxAm'),
    // The invoice's total; an item's own total is TotaltaxIncludedAmount, one letter's case and a hyphen apart.
    total: requiredMoney(basic, 'TotalTax-includedAmount'),
    items: itemElements(data).map(itemOf),
    redLetterOf: redLetterOf(childAt(data, 'SpecificInformation')),
    remark: textAt(data, 'AdditionalInformation/Remark'),
  };
}

function partyOf(data: unknown, role: 'Seller' | 'Buyer'): InvoiceParty {
  const information = childAt(data, `${role}Information`);
  return { taxNum: textAt(information, `${role}IdNum`), name: textAt(information, `${role}Name`) };
}

function itemElements(data: unknown): unknown[] {
  const items = isRecord(data) ? data.IssuItemInformation : undefined;
  return Array.isArray(items) ? items : [];
}

function itemOf(item: unknown, index: number): InvoiceItem {
  const where = `IssuItemInformation[${index + 1}]`;
  return {
    name: textAt(item, 'ItemName'),
    spec: textAt(item, 'SpecMod'),
    unit: textAt(item, 'MeaUnits'),
    quantity: textAt(item, 'Quantity'),
    unitPrice: textAt(item, 'UnPrice'),
    amount: optionalMoney(item, 'Amount', where),
    taxRate: taxRatePercent(textAt(item, 'TaxRate')),
    tax: optionalMoney(item, 'ComTaxAm', where),
  };
}

function requiredMoney(basic: unknown, field: string): string {
  const written = textAt(basic, field);
  if (!written) throw new XmlProblem(`the EInvoice has no ${field} (EInvoiceData/BasicInformation)`);
  return money(written, field);
}

/** An item's money: "" when absent (it then adds nothing), refused when written but not a decimal. */
function optionalMoney(item: unknown, field: string, where: string): string {
  const written = textAt(item, field);
  return written ? money(written, `${where}/${field}`) : '';
}

function money(written: string, field: string): string {
  const cents = toCents(written);
  if (cents === undefined) {
    throw new XmlProblem(`the EInvoice's ${field} is not a decimal amount: ${JSON.stringify(clip(written, 24))}`);
  }
  return formatCents(cents);
}

/**
 * The blue invoice a red-letter invoice reverses: RedEInvoice/OriginalInvoiceCode, or else the first element under
 * SpecificInformation whose name says it holds the original (blue) invoice's number and whose value looks like one.
 */
function redLetterOf(specific: unknown): string | null {
  return textAt(specific, 'RedEInvoice/OriginalInvoiceCode') || originalNumberUnder(specific) || null;
}

const ORIGINAL_INVOICE_ELEMENT = /^(?:original|blue)\w*(?:invoice|eiid)/i;
const INVOICE_NUMBER = /^\d{8,20}$/;

function originalNumberUnder(node: unknown): string {
  if (!isRecord(node)) return '';
  for (const [name, value] of Object.entries(node)) {
    if (name === 'PassengerTransportation') continue;
    for (const each of Array.isArray(value) ? value : [value]) {
      if (typeof each === 'string' && ORIGINAL_INVOICE_ELEMENT.test(name) && INVOICE_NUMBER.test(each.trim())) {
        return each.trim();
      }
      const deeper = originalNumberUnder(each);
      if (deeper) return deeper;
    }
  }
  return '';
}

/** The element at a `/` path; the first of repeated elements. */
function childAt(node: unknown, path: string): unknown {
  let at = node;
  for (const name of path.split('/')) {
    if (Array.isArray(at)) at = at[0];
    if (!isRecord(at) || !Object.hasOwn(at, name)) return undefined;
    at = at[name];
  }
  return Array.isArray(at) ? at[0] : at;
}

/** An element's text, trimmed; "" when it is absent or holds elements rather than text. */
function textAt(node: unknown, path: string): string {
  const value = childAt(node, path);
  if (typeof value === 'string') return value.trim();
  if (isRecord(value) && typeof value['#text'] === 'string') return value['#text'].trim();
  return '';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Names and messages from a hostile file go into a problem people read: keep them short. */
function clip(text: string, max = 120): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
