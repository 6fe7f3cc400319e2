import { constants, crc32, deflateRawSync } from 'node:zlib';
import { strToU8, zipSync } from 'fflate';
import { SANDBOX_XML_CASES, sandboxInvoiceXml } from './invoice-xml.ts';

/**
 * Hostile files for the Jumdata sandbox's xml slot: what a broken or malicious file host could serve in place of the
 * tax bureau's zip. Each is a real zip, small enough for the mirror to keep in memory (it keeps up to 10 MB), and
 * each is unreadable to the XML reader for its own reason. Their large contents are never held whole: they are one
 * chunk repeated, and deflating a chunk on its own, ended by a sync flush on a byte boundary, gives bytes that can
 * be repeated as often as the chunk is. Building one costs a few MB whatever it inflates to.
 */

export const HOSTILE_XML_SIZES = {
  /** The large XML: a real EInvoice of 50 MiB, five times what the reader reads. */
  large: 50 * 1024 * 1024,
  /** What the zip bomb's entry claims in both headers: the size of a real invoice's XML. */
  claimed: 4096,
  /** What the zip bomb's entry inflates to: 2 GiB. */
  inflated: 2 * 1024 ** 3,
} as const;

/** The chunk a large content repeats: large enough that the repeated bytes are few, small enough to hold. */
const CHUNK_BYTES = 1024 * 1024;

/** A fixed time in the entries: the same hostile file has the same bytes whenever it is built. */
const MTIME = new Date('2024-04-25T07:58:40Z');

/** The invoice as the sandbox writes it, with an empty Remark for hostile content to go into. */
function invoiceXmlAround(invoiceNo: string): { head: string; tail: string } {
  const xml = sandboxInvoiceXml({ ...SANDBOX_XML_CASES.plain.spec, invoiceNo, remark: '' });
  const at = xml.indexOf('<Remark></Remark>') + '<Remark>'.length;
  return { head: xml.slice(0, at), tail: xml.slice(at) };
}

/**
 * The billion laughs: an EInvoice whose DOCTYPE declares nine levels of entities, each ten of the one below, and
 * whose Remark names the top one. Expanded, that Remark is 10⁹ "lol"s (3 GB); the file is about 1 KB.
 */
export function xmlBombZip(invoiceNo: string): Buffer {
  const levels = Array.from({ length: 9 }, (_, level) => `<!ENTITY lol${level + 1} "${`&lol${level || ''};`.repeat(10)}">`);
  const doctype = `<!DOCTYPE EInvoice [<!ENTITY lol "lol">${levels.join('')}]>`;
  const { head, tail } = invoiceXmlAround(invoiceNo);
  const xml = `${head.replace('?>', `?>\n${doctype}`)}&lol9;${tail}`;
  return Buffer.from(zipSync({ [`invoice/${invoiceNo}.xml`]: [strToU8(xml), { mtime: MTIME }] }));
}

/**
 * A real EInvoice of exactly `bytes` bytes, its Remark filled with one letter, in a zip that says so: 50 MiB
 * deflates to about 50 KB, 2 GiB to about 2 MB.
 */
export function largeXmlZip(invoiceNo: string, bytes: number): Buffer {
  const { head, tail } = invoiceXmlAround(invoiceNo);
  const fill = bytes - Buffer.byteLength(head) - Buffer.byteLength(tail);
  const times = Math.floor(fill / CHUNK_BYTES);
  const start = Buffer.from(head + 'a'.repeat(fill - times * CHUNK_BYTES));
  return oneEntryZip(`invoice/${invoiceNo}.xml`, deflateRepeated(start, Buffer.alloc(CHUNK_BYTES, 'a'), times, Buffer.from(tail)));
}

/** A zip of a readme and nothing else: no .xml entry at all. */
export function zipWithoutXml(): Buffer {
  const readme = strToU8('该发票的XML文件尚未生成,请稍后再试。\n');
  return Buffer.from(zipSync({ 'readme.txt': [readme, { mtime: MTIME }] }));
}

/**
 * The zip with its only entry's uncompressed size rewritten in the local header and in the central directory: a
 * zip bomb's lie. Like the reader's unit test, for a zip with one entry and no archive comment.
 */
export function withDeclaredSize(zip: Buffer, size: number): Buffer {
  const patched = Buffer.from(zip);
  patched.writeUInt32LE(size, 22);
  // With no archive comment the end record is the last 22 bytes; it names where the directory starts.
  const central = patched.readUInt32LE(patched.length - 22 + 16);
  patched.writeUInt32LE(size, central + 24);
  return patched;
}

interface DeflatedEntry {
  data: Buffer;
  crc: number;
  size: number;
}

/** `start`, `chunk` `times` over, then `end`, as one raw deflate stream, with its CRC-32 and size. */
function deflateRepeated(start: Buffer, chunk: Buffer, times: number, end: Buffer): DeflatedEntry {
  // Each piece is a stream of its own that a sync flush leaves open and byte-aligned: concatenated, they are one.
  const open = { level: 9, finishFlush: constants.Z_SYNC_FLUSH };
  const repeated = deflateRawSync(chunk, open);
  const data = Buffer.concat([deflateRawSync(start, open), ...Array<Buffer>(times).fill(repeated), deflateRawSync(end)]);
  let crc = crc32(start);
  for (let i = 0; i < times; i++) crc = crc32(chunk, crc);
  crc = crc32(end, crc);
  return { data, crc, size: start.length + chunk.length * times + end.length };
}

/** A zip of one deflated entry, written by hand: fflate's zipSync would need the whole content in memory. */
function oneEntryZip(name: string, entry: DeflatedEntry): Buffer {
  const fileName = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  writeEntryFields(local, 4, fileName.length, entry);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4); // made by: zip 2.0, MS-DOS attributes
  writeEntryFields(central, 6, fileName.length, entry);
  // Comment length, disk, attributes: all zero; the local header is at offset 0.
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + fileName.length, 12);
  end.writeUInt32LE(local.length + fileName.length + entry.data.length, 16);
  return Buffer.concat([local, fileName, entry.data, central, fileName, end]);
}

/** The fields a local header and a central directory entry share, from "version needed" to "extra field length". */
function writeEntryFields(header: Buffer, at: number, nameLength: number, entry: DeflatedEntry) {
  header.writeUInt16LE(20, at); // version needed: deflate
  header.writeUInt16LE(0, at + 2); // flags: sizes in the header, no data descriptor
  header.writeUInt16LE(8, at + 4); // deflate
  header.writeUInt16LE((MTIME.getUTCHours() << 11) | (MTIME.getUTCMinutes() << 5) | (MTIME.getUTCSeconds() >> 1), at + 6);
  header.writeUInt16LE(((MTIME.getUTCFullYear() - 1980) << 9) | ((MTIME.getUTCMonth() + 1) << 5) | MTIME.getUTCDate(), at + 8);
  header.writeUInt32LE(entry.crc >>> 0, at + 10);
  header.writeUInt32LE(entry.data.length, at + 14);
  header.writeUInt32LE(entry.size, at + 18);
  header.writeUInt16LE(nameLength, at + 22);
}
