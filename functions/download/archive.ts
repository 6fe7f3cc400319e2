import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, NotFound, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import type { FileFetchPolicy } from '#shared/fetch-policy';
import { logger } from '#shared/logger';
import { countMirroredInvoice } from '#shared/metrics';
import type { DownloadQuery, JumdataInvoice } from '#shared/providers/jumdata';
import { JsonStore } from '#shared/storage';
import type { InvoiceChecks, InvoiceMetadata, JumdataSummary } from './invoice-metadata.ts';
import type { InvoiceEntry } from './invoice-entry.ts';
import type { InvoiceIndex } from './invoice-index.ts';
import type { InvoiceXmlReading } from './invoice-xml.ts';
import { loadMirroring } from './load-mirroring.ts';
import type { KeptBytes } from './mirror.ts';
import { FILE_KINDS, objectNameOf, type FileKind, type MirroredFile } from './invoice-files.ts';
import type { LockableObject, RetentionRule } from './retention.ts';

/**
 * The archive: every S3 call on an invoice's objects goes through here or through archive-stage.ts, its half that
 * stores a new invoice (mirror.ts streams the files and retention.ts locks them, for it alone). An invoice is its
 * files and, written last, `invoice.json`: the record that it is completely mirrored. Whatever has an invoice.json
 * is never fetched from Jumdata again.
 *
 *   invoices/{taxNum}/{invoiceNo}/pdf.pdf | ofd.zip | xml.zip    the files, named by what their bytes are
 *   invoices/{taxNum}/{invoiceNo}/invoice.json                   MirroredInvoice
 * The download's job record (its lease, Jumdata's kept answer) is in the jobs table (shared/job-lifecycle.ts).
 */

export const invoicePrefix = (taxNum: string, invoiceNo: string) => `invoices/${taxNum}/${invoiceNo}`;
export const invoiceRecordKey = (taxNum: string, invoiceNo: string) => `${invoicePrefix(taxNum, invoiceNo)}/invoice.json`;

export interface MirroredInvoice extends DownloadQuery {
  mirroredAt: string;
  /** The metadata read from the XML (Jumdata's verdicts only, on an invoice mirrored before the XML was read). */
  invoice: InvoiceMetadata | JumdataSummary;
  /** What reading the XML found; absent on an invoice mirrored before the XML was read. */
  checks?: InvoiceChecks;
  jumdata: { taskNo: string; charged: boolean; fields: Record<string, unknown> };
  files: Record<FileKind, MirroredFile>;
}

export interface ArchiveSettings {
  s3: S3Client;
  bucket: string;
  /** The index of mirrored invoices (DynamoDB): its entry is what makes an invoice complete. */
  index: InvoiceIndex;
  policy: FileFetchPolicy;
  /** Per-file deadline for the whole transfer. */
  fileTimeoutMs: number;
  /** Object Lock (compliance mode) on each mirrored invoice's objects, for this long; none when absent. */
  retention?: RetentionRule;
  /** Upload each file with a checksum S3 keeps (S3_CHECKSUMS). */
  checksums?: boolean;
}

/** An invoice as answered: its index entry, or for one mirrored before the index, its invoice.json. */
export type StoredInvoice = InvoiceEntry | MirroredInvoice;

/** An invoice as the archive holds it; while staged, its invoice.json to be and the Object Lock on its files. */
export interface ArchivedInvoice {
  invoice: StoredInvoice;
  staged?: { record: MirroredInvoice; locked?: LockedFiles };
}

/** Versions of an attempt's files under Object Lock, and until when. */
export interface LockedFiles {
  locked: readonly LockableObject[];
  retainUntil: Date;
}

export type InvoiceArchive = ReturnType<typeof invoiceArchive>;

export function invoiceArchive(settings: ArchiveSettings) {
  const { s3, bucket } = settings;
  const records = new JsonStore(s3, bucket);

  /**
   * The mirrored invoice: its index entry, read beside invoice.json. An invoice.json without an entry is an invoice
   * mirrored before the index (answered as it is, until `reindex` reads it), or one whose entry was not written: one
   * that carries the XML's metadata is indexed now.
   */
  async function read(taxNum: string, invoiceNo: string): Promise<ArchivedInvoice | undefined> {
    const [entry, stored] = await Promise.all([settings.index.get(taxNum, invoiceNo), records.get<MirroredInvoice>(invoiceRecordKey(taxNum, invoiceNo))]);
    if (entry) return { invoice: entry };
    if (!stored) return undefined;
    if (stored.value.checks) await settings.index.add(entryOf(stored.value));
    return { invoice: stored.value };
  }

  /**
   * Stores an invoice's files from Jumdata's answer, and locks them (Object Lock): everything but invoice.json,
   * which `commit` writes. Loaded at the first invoice this instance mirrors, not at cold start (archive-stage.ts).
   */
  async function stage(query: DownloadQuery, answer: JumdataInvoice, signal: AbortSignal): Promise<ArchivedInvoice> {
    return (await loadMirroring()).stageInvoice({ settings, remove }, query, answer, signal);
  }

  /**
   * Writes invoice.json (under Object Lock stored locked, like its files), then the index entry, which makes the
   * invoice complete. Without invoice.json the files are orphans and go; an entry that fails leaves an invoice.json
   * that the next read indexes.
   */
  async function commit({ staged }: ArchivedInvoice): Promise<void> {
    const { record, locked } = staged!;
    try {
      await records.put(invoiceRecordKey(record.taxNum, record.invoiceNo), record, { lockUntil: locked?.retainUntil });
    } catch (error) {
      await remove(record.files, locked);
      throw error;
    }
    // Mirrored now: an index entry that fails is written by the next read, which stores nothing again.
    countMirroredInvoice(Object.values(record.files).reduce((bytes, file) => bytes + file.bytes, 0));
    await settings.index.add(entryOf(record));
    logger.info('invoice mirrored', { taxNum: record.taxNum, invoiceNo: record.invoiceNo, taskNo: record.jumdata.taskNo });
  }

  /**
   * Removes the files of an attempt that did not finish. Versions under Object Lock cannot be removed (S3 refuses
   * every delete until the lock ends): they are left, and said so once, by key, version and date.
   */
  async function remove(files: Record<FileKind, MirroredFile>, lock?: LockedFiles) {
    const isLocked = (file: MirroredFile) => lock?.locked.some((v) => v.key === file.key && v.versionId === file.versionId) ?? false;
    const stayLocked = Object.values(files).filter(isLocked);
    if (stayLocked.length > 0) {
      logger.error('files of an unfinished download stay locked (Object Lock, compliance mode) and cannot be removed', {
        lockedVersions: stayLocked.map((file) => ({ key: file.key, versionId: file.versionId })),
        retainUntil: lock!.retainUntil.toISOString(),
      });
    }
    await Promise.all(Object.values(files).filter((file) => !isLocked(file)).map((file) => deleteVersion(file.key, file.versionId)));
  }

  const deleteVersion = (key: string, versionId: string | undefined) =>
    s3
      .send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }))
      .catch((error: unknown) => logger.error('orphaned file not removed', { key, versionId, error }));

  /**
   * Removes what an earlier attempt of the same invoice left (an invocation killed after storing files, before
   * invoice.json): the current version of each file's key. A version under Object Lock cannot be removed: it is
   * logged by key and version (the audit accounts for it) and stays behind the next attempt's version.
   */
  async function removeLeftovers(query: Pick<DownloadQuery, 'taxNum' | 'invoiceNo'>): Promise<void> {
    const prefix = invoicePrefix(query.taxNum, query.invoiceNo);
    await Promise.all(
      FILE_KINDS.map(async (kind) => {
        const key = `${prefix}/${objectNameOf(kind)}`;
        const versionId = await currentVersion(key);
        if (versionId === null) return;
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId })).catch((error: unknown) => {
          logger.warn('file left by an unfinished download not removed (locked?)', { key, versionId, reason: (error as Error).name });
        });
      }),
    );
  }

  /** The current version of `key` (undefined on an unversioned bucket), or null when there is no object. */
  async function currentVersion(key: string): Promise<string | undefined | null> {
    try {
      return (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).VersionId;
    } catch (error) {
      if (error instanceof NotFound || (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404)) return null;
      throw error;
    }
  }

  /**
   * The invoice.json of every mirrored invoice, a page of the bucket's listing at a time, in key order, from after
   * `cursor` (for reindexing invoices mirrored before the index).
   */
  async function listRecords(cursor: string | undefined): Promise<{ records: MirroredInvoice[]; cursor?: string }> {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'invoices/', StartAfter: cursor, MaxKeys: 400 }));
    const keys = (page.Contents ?? []).map((object) => object.Key!).filter((key) => key.endsWith('/invoice.json'));
    const found = await Promise.all(keys.map(async (key) => (await records.get<MirroredInvoice>(key))?.value));
    const last = page.Contents?.at(-1)?.Key;
    return { records: found.filter((record) => record !== undefined), cursor: page.IsTruncated ? last : undefined };
  }

  /** A stored invoice's xml zip, in memory up to the cap that mirroring keeps. */
  async function readStoredXml(record: MirroredInvoice): Promise<Pick<KeptBytes, 'bytes'>> {
    const file = record.files.xml;
    if (file.bytes > MAX_XML_ZIP_BYTES) return { bytes: undefined };
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: file.key }));
    return { bytes: Buffer.from(await object.Body!.transformToByteArray()) };
  }

  return { read, stage, commit, removeLeftovers, listRecords, readStoredXml };
}

/** The index entry of a mirrored invoice: listed by the XML's issue date where it was read, else the request's. */
export function entryOf(record: MirroredInvoice): InvoiceEntry {
  const { taxNum, invoiceNo, direction, mirroredAt, invoice, checks, files, jumdata } = record;
  const issuedOn = 'issuedAt' in invoice ? /^\d{4}-\d{2}-\d{2}/.exec(invoice.issuedAt)?.[0] : undefined;
  return { taxNum, invoiceNo, direction, issueDate: issuedOn ?? record.issueDate, mirroredAt, invoice, checks, files, jumdata };
}

/** The xml slot's zip is read in memory up to this size; a larger one is kept, marked unreadable. */
export const MAX_XML_ZIP_BYTES = 10 * 1024 * 1024;

/** What the XML says, read from the kept bytes. The reader is loaded at the first mirror, not at cold start. */
export async function readXml(keep: Pick<KeptBytes, 'bytes'>, query: DownloadQuery): Promise<InvoiceXmlReading> {
  const bytes = keep.bytes;
  if (!bytes) {
    const problem = `the xml zip is over ${MAX_XML_ZIP_BYTES} bytes, more than is read`;
    return { checks: { xmlRead: false, numberMatches: false, partyMatches: false, itemsAddUp: false, problem } };
  }
  const { readInvoiceXml } = await loadMirroring();
  return readInvoiceXml(bytes, query);
}
