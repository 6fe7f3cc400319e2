import type { Direction } from '#shared/providers/jumdata';
import type { InvoiceChecks, InvoiceMetadata, JumdataSummary } from './invoice-metadata.ts';
import type { FileKind, MirroredFile } from './invoice-files.ts';

/**
 * One mirrored invoice as the archive's index holds it (DynamoDB): what GET /invoices lists and the ledger totals,
 * without opening a file. Written last, after the files and invoice.json: an invoice without its entry is not
 * complete.
 */
export interface InvoiceEntry {
  taxNum: string;
  invoiceNo: string;
  direction: Direction;
  /** YYYY-MM-DD: the XML's issue date where it was read, else the request's. */
  issueDate: string;
  mirroredAt: string;
  invoice: InvoiceMetadata | JumdataSummary;
  checks?: InvoiceChecks;
  files: Record<FileKind, MirroredFile>;
  /** Jumdata's answer as billed: its task number, charge flag and every field it sent (Sfzf, Sfch, Cyjg, …). */
  jumdata?: { taskNo: string; charged: boolean; fields: Record<string, unknown> };
}
