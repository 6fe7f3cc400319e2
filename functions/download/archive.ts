import type { JsonStore } from '#shared/storage';
import type { DownloadQuery } from '#shared/providers/jumdata';
import type { FileKind, MirroredFile } from './mirror.ts';

/**
 * Where an invoice lives in the bucket. Its files and, written last, `invoice.json`: the record that the invoice is
 * completely mirrored. Whatever has an invoice.json is never fetched from Jumdata again.
 *
 *   invoices/{taxNum}/{invoiceNo}/pdf.pdf | ofd.zip | xml.zip    the files, named by what their bytes are
 *   invoices/{taxNum}/{invoiceNo}/invoice.json                   MirroredInvoice
 * The download's work record (its lease, Jumdata's kept answer) is a job record in the jobs table (work.ts).
 */

export const invoicePrefix = (taxNum: string, invoiceNo: string) => `invoices/${taxNum}/${invoiceNo}`;
export const invoiceRecordKey = (taxNum: string, invoiceNo: string) => `${invoicePrefix(taxNum, invoiceNo)}/invoice.json`;
export interface MirroredInvoice extends DownloadQuery {
  mirroredAt: string;
  invoice: { voided: boolean; redFlushed: boolean; buyerTaxNum?: string };
  jumdata: { taskNo: string; charged: boolean; fields: Record<string, unknown> };
  files: Record<FileKind, MirroredFile>;
}

export async function readMirroredInvoice(store: JsonStore, taxNum: string, invoiceNo: string) {
  return (await store.get<MirroredInvoice>(invoiceRecordKey(taxNum, invoiceNo)))?.value;
}
