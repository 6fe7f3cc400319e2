import { ValidationError } from '#shared/errors';
import { InvalidCursorError } from '#shared/job-cursor';
import { parseRequest, periodChecks, taxNumSchema } from '#shared/validation';
import * as z from '#shared/zod';
import type { InvoiceEntry } from './invoice-entry.ts';
import type { InvoiceIndex } from './invoice-index.ts';
import { durableLink } from './links.ts';
import { FILE_KINDS } from './invoice-files.ts';

/**
 * GET /invoices?taxNum=…&from=YYYY-MM-DD&to=YYYY-MM-DD[&direction][&limit][&cursor]: a taxpayer's mirrored invoices
 * issued in a period (at most 366 days), by issue date then number, a page at a time, from the index alone.
 * Built at the first such request (z.lazy): most instances never answer one.
 */

export const listInvoicesSchema = z.lazy(() =>
  z
    .object({
      taxNum: taxNumSchema(false),
      from: z.iso.date({ error: 'is required: a date as YYYY-MM-DD' }),
      to: z.iso.date({ error: 'is required: a date as YYYY-MM-DD' }),
      direction: z.optional(z.enum(['sales', 'purchase'], { error: "must be 'sales' (销项) or 'purchase' (进项)" })),
      limit: z._default(
        z.coerce.number({ error: 'must be a number' }).check(
          z.int({ error: 'must be a whole number' }),
          z.gte(1, { error: 'must be 1 to 500' }),
          z.lte(500, { error: 'must be 1 to 500' }),
        ),
        100,
      ),
      cursor: z.optional(z.string().check(z.minLength(1, { error: 'must not be empty: leave it out for the first page' }))),
    })
    .check(...periodChecks()),
);

export type ListInvoicesQuery = z.output<typeof listInvoicesSchema>;

export interface ListLinks {
  linkKey: string;
  baseUrl: string;
}

/**
 * One page of the listing: the entries as the API shows them (no items, no presigned URL), and the cursor. The
 * query is checked before `links` are asked for: a bad parameter is a 400 whatever the deployment lacks.
 */
export async function listInvoices(index: InvoiceIndex, input: Record<string, string | undefined>, links: () => Promise<ListLinks>) {
  const query = parseRequest(listInvoicesSchema, input);
  try {
    const [page, linking] = await Promise.all([index.list(query), links()]);
    return { invoices: page.entries.map((entry) => presentEntry(entry, linking)), ...(page.cursor ? { cursor: page.cursor } : {}) };
  } catch (error) {
    // A cursor not made here, or made for another question, names no place in the index.
    if (error instanceof InvalidCursorError || (error as Error).name === 'ValidationException') {
      throw new ValidationError([{ field: 'cursor', message: 'is not a cursor from an earlier answer to the same question' }]);
    }
    throw error;
  }
}

function presentEntry(entry: InvoiceEntry, links: ListLinks) {
  const { items: _items, ...invoice } = entry.invoice as { items?: unknown };
  const files = Object.fromEntries(
    FILE_KINDS.map((kind) => {
      const { bytes, sha256, contentType } = entry.files[kind];
      return [kind, { link: durableLink(links.baseUrl, links.linkKey, entry.taxNum, entry.invoiceNo, kind), bytes, sha256, contentType }];
    }),
  );
  const { taxNum, invoiceNo, issueDate, direction, mirroredAt, checks } = entry;
  return { taxNum, invoiceNo, issueDate, direction, mirroredAt, invoice, ...(checks ? { checks } : {}), files };
}
