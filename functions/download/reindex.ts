import { logger } from '#shared/logger';
import { invoiceSummary } from '#shared/providers/jumdata';
import { entryOf, readXml, type InvoiceArchive, type MirroredInvoice } from './archive.ts';
import type { InvoiceIndex } from './invoice-index.ts';
import { invoiceMetadata } from './invoice-metadata.ts';

/**
 * The one-off run that indexes invoices mirrored before the index: each invoice.json without an entry gets one,
 * with the metadata read from its stored XML. No Jumdata call; invoice.json is left as it is (it may be locked).
 * An XML that names another invoice or party is indexed with that check false, never deleted: the files are what
 * Jumdata delivered, and a person decides. The run goes page by page and stops before its time runs out: run it
 * again with the cursor it returns until it returns none.
 */

export interface ReindexReport {
  /** Entries written. */
  indexed: number;
  /** Invoices that already had an entry. */
  alreadyIndexed: number;
  /** Indexed with the XML unreadable, or naming another invoice or party. */
  withProblems: number;
  /** Where to go on from, when the run stopped for time. */
  cursor?: string;
}

/** Kept in hand after the last page, to return the report. */
const MARGIN_MS = 5_000;

export async function reindex(archive: InvoiceArchive, index: InvoiceIndex, options: { cursor?: string; deadline: number }): Promise<ReindexReport> {
  const report: ReindexReport = { indexed: 0, alreadyIndexed: 0, withProblems: 0 };
  let cursor = options.cursor;
  do {
    const page = await archive.listRecords(cursor);
    for (const record of page.records) await indexOne(record, archive, index, report);
    cursor = page.cursor;
  } while (cursor && Date.now() < options.deadline - MARGIN_MS);
  logger.info('reindex finished', { ...report });
  return cursor ? { ...report, cursor } : report;
}

async function indexOne(record: MirroredInvoice, archive: InvoiceArchive, index: InvoiceIndex, report: ReindexReport): Promise<void> {
  if (await index.get(record.taxNum, record.invoiceNo)) {
    report.alreadyIndexed += 1;
    return;
  }
  const reading = await readXml(await archive.readStoredXml(record), record);
  const { checks } = reading;
  const fields = record.jumdata.fields;
  const invoice = invoiceMetadata(reading.invoice, invoiceSummary(fields), fields, record.invoiceNo);
  if (await index.add(entryOf({ ...record, invoice, checks }))) report.indexed += 1;
  else report.alreadyIndexed += 1;
  if (!checks.xmlRead || !checks.numberMatches || !checks.partyMatches) {
    report.withProblems += 1;
    logger.warn('invoice indexed with a problem in its XML', { taxNum: record.taxNum, invoiceNo: record.invoiceNo, checks });
  }
}
