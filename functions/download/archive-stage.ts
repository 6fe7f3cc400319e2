import { UpstreamUnavailableError } from '#shared/errors';
import { invoiceSummary, type DownloadQuery, type JumdataInvoice } from '#shared/providers/jumdata';
import { entryOf, invoicePrefix, MAX_XML_ZIP_BYTES, readXml, type ArchivedInvoice, type ArchiveSettings, type LockedFiles, type MirroredInvoice } from './archive.ts';
import type { FileKind, MirroredFile } from './invoice-files.ts';
import { invoiceMetadata } from './invoice-metadata.ts';
import type { InvoiceXmlReading } from './invoice-xml.ts';
import { KeptBytes, mirrorInvoiceFiles } from './mirror.ts';
import { lockObjects, ObjectLockError, retainUntilOf } from './retention.ts';

/**
 * The archive's half that stores a new invoice: the files streamed into S3 (mirror.ts), the XML read, the Object
 * Lock (retention.ts). Loaded by archive.ts at the first invoice an instance mirrors: a cold start that answers a
 * link, a mirrored invoice or a sweep with nothing due never reads the fetcher, its address checks or the upload.
 */

export interface StagingDeps {
  settings: ArchiveSettings;
  /** archive.ts's removal of an attempt's files, which leaves locked versions (and logs them). */
  remove: (files: Record<FileKind, MirroredFile>, lock?: LockedFiles) => Promise<void>;
}

/**
 * Stores and locks an invoice's files, invoice.json apart. On failure, no file is left, except versions already
 * locked (logged).
 */
export async function stageInvoice(deps: StagingDeps, query: DownloadQuery, answer: JumdataInvoice, signal: AbortSignal): Promise<ArchivedInvoice> {
  const { s3, bucket, policy, fileTimeoutMs, checksums } = deps.settings;
  const prefix = invoicePrefix(query.taxNum, query.invoiceNo);
  // The XML is kept in memory as it streams by (up to a cap), and read once the three files are stored.
  const keep = new KeptBytes('xml', MAX_XML_ZIP_BYTES);
  const files = await mirrorInvoiceFiles(answer.files, { s3, bucket, prefix, invoiceNo: query.invoiceNo, policy, fileTimeoutMs, signal, keep, checksums });
  const reading = await readXml(keep, query);
  // Files of another invoice or taxpayer are not this invoice's originals: nothing is kept, before any lock.
  const wrong = wrongInvoice(reading, query);
  if (wrong) {
    await deps.remove(files);
    throw wrong;
  }
  const invoice: MirroredInvoice = {
    ...query,
    mirroredAt: new Date().toISOString(),
    invoice: invoiceMetadata(reading.invoice, invoiceSummary(answer.fields), answer.fields, query.invoiceNo),
    checks: reading.checks,
    jumdata: { taskNo: answer.taskNo, charged: answer.charged, fields: answer.fields },
    files,
  };
  // Retention by law counts from the XML's issue date (the request's where the XML could not be read).
  const locked = await lockOrRemove(deps, files, entryOf(invoice).issueDate);
  return { invoice, staged: { record: invoice, locked } };
}

/**
 * Locks the files before invoice.json exists: an invoice is only ever complete with its files locked. A refusal
 * removes the files; whatever got locked before it stays (and is logged).
 */
async function lockOrRemove({ settings, remove }: StagingDeps, files: Record<FileKind, MirroredFile>, issueDate: string): Promise<LockedFiles | undefined> {
  if (settings.retention === undefined) return undefined;
  try {
    const retainUntil = await lockObjects(settings.s3, settings.bucket, Object.values(files), retainUntilOf(settings.retention, issueDate));
    return { locked: Object.values(files), retainUntil };
  } catch (error) {
    await remove(files, error instanceof ObjectLockError ? error : undefined);
    throw error;
  }
}

/** The XML names another invoice, or a party other than the request's taxpayer: Jumdata's files are not this invoice. */
function wrongInvoice({ invoice, checks }: InvoiceXmlReading, query: DownloadQuery): WrongInvoiceError | undefined {
  if (!invoice || !checks.xmlRead) return undefined;
  if (!checks.numberMatches) return new WrongInvoiceError(`the invoice's XML names invoice ${invoice.number}, not ${query.invoiceNo}`);
  if (checks.partyMatches) return undefined;
  const role = query.direction === 'sales' ? 'seller (sales)' : 'buyer (purchase)';
  return new WrongInvoiceError(
    `the invoice's XML names seller ${invoice.seller.taxNum} and buyer ${invoice.buyer.taxNum}: ${query.taxNum} is not its ${role}`,
  );
}

/** Jumdata's files are another invoice's (502); asking again would get them again, so the job fails for a person. */
export class WrongInvoiceError extends UpstreamUnavailableError {
  readonly retryable = false;
  constructor(reason: string) {
    super('jumdata', `${reason}; nothing was stored`);
    this.name = 'WrongInvoiceError';
  }
}
