import { createHash } from 'node:crypto';
import { invoiceRecordKey } from '../functions/download/archive.ts';
import type { InvoiceEntry } from '../functions/download/invoice-entry.ts';
import { FILE_KINDS, type FileKind, type MirroredFile } from '../functions/download/invoice-files.ts';
import { entriesOf, type EntrySet } from './archive-entries.ts';

/**
 * Mirrored invoices as local mode stores them, for the audit bench: each index entry (bench/archive-entries.ts) with
 * three small files whose bytes are really there, and the four objects to write: the files and invoice.json. The
 * entry records each file's size and sha256 of those bytes and no version id (s3rver keeps no versions, so
 * mirroring in local mode records none) nor S3 checksum (S3_CHECKSUMS is off there): an audit finds nothing wrong.
 */

export interface StoredObject {
  key: string;
  body: Buffer;
  contentType: string;
}

export interface MirroredInvoiceObjects {
  entry: InvoiceEntry;
  objects: StoredObject[];
}

/** Sizes of the small files, in bytes: from the least to less than the most. */
const FILE_SIZES: Record<FileKind, [number, number]> = { pdf: [1_000, 4_000], ofd: [500, 2_000], xml: [300, 1_200] };

export function* mirroredInvoicesOf(set: EntrySet): Generator<MirroredInvoiceObjects> {
  for (const generated of entriesOf(set)) {
    const bodies = Object.fromEntries(FILE_KINDS.map((kind) => [kind, bytesOf(generated.invoiceNo, kind)])) as Record<FileKind, Buffer>;
    const files = Object.fromEntries(FILE_KINDS.map((kind) => [kind, fileOf(generated.files[kind], bodies[kind])])) as Record<FileKind, MirroredFile>;
    const entry: InvoiceEntry = { ...generated, files };
    yield {
      entry,
      // invoice.json holds what the entry holds (a MirroredInvoice: the request's fields, the XML's, the files).
      objects: [
        ...FILE_KINDS.map((kind) => ({ key: files[kind].key, body: bodies[kind], contentType: files[kind].contentType })),
        { key: invoiceRecordKey(entry.taxNum, entry.invoiceNo), body: Buffer.from(JSON.stringify(entry)), contentType: 'application/json' },
      ],
    };
  }
}

function fileOf(generated: MirroredFile, body: Buffer): MirroredFile {
  const { versionId: _none, ...file } = generated;
  return { ...file, bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') };
}

/** Bytes that differ from one invoice and kind to the next, of a size that does too: SHA-256 chained to length. */
function bytesOf(invoiceNo: string, kind: FileKind): Buffer {
  const seed = createHash('sha256').update(`${invoiceNo}/${kind}`).digest();
  const [least, most] = FILE_SIZES[kind];
  const size = least + (seed.readUInt32BE(0) % (most - least));
  const blocks: Buffer[] = [];
  for (let block = seed; blocks.length * 32 < size; block = createHash('sha256').update(block).digest()) blocks.push(block);
  return Buffer.concat(blocks).subarray(0, size);
}
