import { createHash } from 'node:crypto';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NotFound,
  PutObjectRetentionCommand,
  S3ServiceException,
  type HeadObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { invoicePrefix, invoiceRecordKey } from './archive.ts';
import type { InvoiceEntry } from './invoice-entry.ts';
import { FILE_KINDS, type FileKind, type MirroredFile } from './invoice-files.ts';
import { retainUntilOf, type RetentionRule } from './retention.ts';

/**
 * What the integrity audit checks of one mirrored invoice, object by object, with one HeadObject each where S3 keeps
 * a checksum (it reads a file only where S3 has none: local mode, or files mirrored before checksums), and what it
 * does with files of no complete invoice (orphans). Nothing here deletes an object of an invoice with an index entry.
 */

export type ProblemKind = 'missing' | 'overwritten' | 'size' | 'checksum' | 'unlocked' | 'retention';

export interface AuditProblem {
  taxNum: string;
  invoiceNo: string;
  kind: FileKind | 'invoice.json';
  problem: ProblemKind;
  message: string;
}

/** A lock the audit lengthened to what the retention rule asks (compliance mode allows extending, never shortening). */
export interface RetentionExtended {
  taxNum: string;
  invoiceNo: string;
  kind: FileKind | 'invoice.json';
  /** The lock before: absent for an object that was not locked. */
  from?: string;
  to: string;
}

export interface InvoiceFindings {
  problems: AuditProblem[];
  extended: RetentionExtended[];
}

export interface AuditSettings {
  s3: S3Client;
  bucket: string;
  /** With Object Lock configured: how long each invoice must be locked. Without it, retention is not checked. */
  retention?: RetentionRule;
}

type Subject = Pick<AuditProblem, 'taxNum' | 'invoiceNo' | 'kind'>;
type Head = HeadObjectCommandOutput;

export function auditChecks(settings: AuditSettings) {
  const { s3, bucket } = settings;

  /** Every check of one invoice: invoice.json present, and each file as recorded; locks lengthened where short. */
  async function auditInvoice(entry: InvoiceEntry): Promise<InvoiceFindings> {
    const findings: InvoiceFindings = { problems: [], extended: [] };
    const subject = (kind: Subject['kind']): Subject => ({ taxNum: entry.taxNum, invoiceNo: entry.invoiceNo, kind });
    await Promise.all([
      auditRecord(entry, subject('invoice.json'), findings),
      ...FILE_KINDS.map((kind) => auditFile(entry, entry.files[kind], subject(kind), findings)),
    ]);
    return findings;
  }

  async function auditRecord(entry: InvoiceEntry, subject: Subject, findings: InvoiceFindings) {
    const head = await headOf(invoiceRecordKey(entry.taxNum, entry.invoiceNo));
    if (!head) return findings.problems.push({ ...subject, problem: 'missing', message: 'invoice.json is missing: the invoice is not known as mirrored' });
    await auditRetention(entry, subject, invoiceRecordKey(entry.taxNum, entry.invoiceNo), head, findings);
  }

  /** The file's current version: the recorded one (nothing written over it), with its size and checksum. */
  async function auditFile(entry: InvoiceEntry, file: MirroredFile, subject: Subject, findings: InvoiceFindings) {
    const problem = (kind: ProblemKind, message: string) => findings.problems.push({ ...subject, problem: kind, message });
    const current = await headOf(file.key);
    if (!current) return problem('missing', `${file.key} is missing (deleted, or a delete marker is its current version)`);
    let recorded: Head | undefined = current;
    if (file.versionId !== undefined && current.VersionId !== file.versionId) {
      problem('overwritten', `version ${current.VersionId ?? '(none)'} was written over the recorded version ${file.versionId}`);
      recorded = await headOf(file.key, file.versionId);
      if (!recorded) return problem('missing', `the recorded version ${file.versionId} of ${file.key} is gone`);
    }
    if (recorded.ContentLength !== file.bytes) problem('size', `${recorded.ContentLength} bytes where ${file.bytes} were recorded`);
    const sha256 = await checksumOf(file, recorded);
    if (sha256 !== undefined) problem('checksum', sha256);
    await auditRetention(entry, subject, file.key, recorded, findings);
  }

  /**
   * A difference between the checksum recorded and the one of the stored bytes, as a message; undefined when they
   * agree. S3's own checksum where it has one of the algorithm recorded, else the file is read.
   */
  async function checksumOf(file: MirroredFile, head: Head): Promise<string | undefined> {
    const stored = storedChecksum(head);
    const recorded = file.checksum ?? { algorithm: 'SHA256', value: Buffer.from(file.sha256, 'hex').toString('base64') };
    if (stored && stored.algorithm === recorded.algorithm) {
      return stored.value === recorded.value ? undefined : `S3's ${stored.algorithm} is ${stored.value}, ${recorded.value} was recorded`;
    }
    const read = await sha256Of(file.key, head.VersionId);
    return read === file.sha256 ? undefined : `the stored bytes' SHA-256 is ${read}, ${file.sha256} was recorded`;
  }

  async function sha256Of(key: string, versionId: string | undefined): Promise<string> {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    const hash = createHash('sha256');
    for await (const chunk of object.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
    return hash.digest('hex');
  }

  /** With a retention rule: the version locked at least until the rule's date; a shorter lock or none is extended. */
  async function auditRetention(entry: InvoiceEntry, subject: Subject, key: string, head: Head, findings: InvoiceFindings) {
    if (!settings.retention) return;
    const required = retainUntilOf(settings.retention, entry.issueDate, new Date(entry.mirroredAt));
    const lockedUntil = head.ObjectLockMode === 'COMPLIANCE' ? head.ObjectLockRetainUntilDate : undefined;
    if (lockedUntil && lockedUntil.getTime() >= required.getTime()) return;
    try {
      await s3.send(
        new PutObjectRetentionCommand({ Bucket: bucket, Key: key, VersionId: head.VersionId, Retention: { Mode: 'COMPLIANCE', RetainUntilDate: required } }),
      );
      findings.extended.push({ ...subject, ...(lockedUntil ? { from: lockedUntil.toISOString() } : {}), to: required.toISOString() });
    } catch (error) {
      const why = `could not be locked until ${required.toISOString()} (${(error as Error).name}: ${(error as Error).message})`;
      findings.problems.push(
        lockedUntil
          ? { ...subject, problem: 'retention', message: `locked only until ${lockedUntil.toISOString()}; ${why}` }
          : { ...subject, problem: 'unlocked', message: `not locked; ${why}` },
      );
    }
  }

  /** HeadObject of the current version (or of `versionId`), with S3's checksum; undefined if there is none. */
  async function headOf(key: string, versionId?: string): Promise<Head | undefined> {
    try {
      return await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId, ChecksumMode: 'ENABLED' }));
    } catch (error) {
      if (error instanceof NotFound || (error instanceof S3ServiceException && [404, 405].includes(error.$metadata.httpStatusCode ?? 0))) return undefined;
      throw error;
    }
  }

  return { auditInvoice, listFolders, removeOrphans };

  /**
   * One page of the invoice folders under `invoices/` (or one taxpayer's), with their current objects, in key order.
   * A folder cut by the page's end is left for the next page, which starts at it.
   */
  async function listFolders(taxNum: string | undefined, cursor: string | undefined): Promise<{ folders: Folder[]; cursor?: string }> {
    const prefix = taxNum ? `invoices/${taxNum}/` : 'invoices/';
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, StartAfter: cursor, MaxKeys: 1000 }));
    const folders = new Map<string, Folder>();
    for (const object of page.Contents ?? []) {
      const match = /^invoices\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(object.Key!);
      if (!match) continue;
      const [, folderTaxNum, invoiceNo, name] = match;
      const folder = folders.get(`${folderTaxNum}/${invoiceNo}`) ?? { taxNum: folderTaxNum!, invoiceNo: invoiceNo!, objects: [] };
      folder.objects.push({ key: object.Key!, name: name!, lastModified: object.LastModified ?? new Date(0) });
      folders.set(`${folderTaxNum}/${invoiceNo}`, folder);
    }
    const all = [...folders.values()];
    if (!page.IsTruncated) return { folders: all };
    const cut = all.pop()!;
    // The next page starts just before the cut folder's first object (StartAfter is exclusive).
    return { folders: all, cursor: all.length > 0 ? `${invoicePrefix(cut.taxNum, cut.invoiceNo)}/` : page.Contents!.at(-1)!.Key };
  }

  /**
   * Removes, by version, the objects of a folder that is no complete invoice and holds no invoice.json, older than
   * `olderThan`. A version under Object Lock cannot be removed: it is reported with its retention date instead.
   */
  async function removeOrphans(folder: Folder, olderThan: Date): Promise<OrphanFound[]> {
    const stale = folder.objects.filter((object) => object.lastModified.getTime() < olderThan.getTime());
    return Promise.all(stale.map((object) => removeOrphan(object.key)));
  }

  async function removeOrphan(key: string): Promise<OrphanFound> {
    const head = await headOf(key);
    if (!head) return { key, removed: true };
    const lockedUntil = head.ObjectLockRetainUntilDate;
    const found = { key, versionId: head.VersionId };
    if (lockedUntil && lockedUntil.getTime() > Date.now()) return { ...found, removed: false, retainUntil: lockedUntil.toISOString() };
    try {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: head.VersionId }));
      return { ...found, removed: true };
    } catch (error) {
      return { ...found, removed: false, error: `${(error as Error).name}: ${(error as Error).message}` };
    }
  }
}

/** An invoice's folder under invoices/ as the bucket lists it. */
export interface Folder {
  taxNum: string;
  invoiceNo: string;
  objects: Array<{ key: string; name: string; lastModified: Date }>;
}

/** An object of no complete invoice: removed (by version), or kept by its Object Lock until `retainUntil`. */
export interface OrphanFound {
  key: string;
  versionId?: string;
  removed: boolean;
  retainUntil?: string;
  /** Why S3 refused to remove it, when it did. */
  error?: string;
}

/** S3's checksum of a version, where it keeps one of the algorithms the mirror asks for. */
function storedChecksum(head: Head): MirroredFile['checksum'] {
  if (head.ChecksumSHA256) return { algorithm: 'SHA256', value: head.ChecksumSHA256 };
  if (head.ChecksumCRC64NVME) return { algorithm: 'CRC64NVME', value: head.ChecksumCRC64NVME };
  return undefined;
}
