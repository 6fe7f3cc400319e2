import { identifierSchema } from '#shared/validation';
import * as z from '#shared/zod';

/**
 * `erp` on POST /download: the 旺店通 invoice to tell once the invoice is mirrored, and which file's durable link to
 * send (tell-erp.ts, loaded only by a download that carries it).
 */
export const erpBlockSchema = () =>
  z.object({
    // As POST /erp-update's invoiceNo: WDT's invoice_no, at most 20 characters.
    invoiceNo: identifierSchema(20),
    file: z._default(z.enum(['pdf', 'ofd', 'xml'], { error: "must be 'pdf', 'ofd' or 'xml'" }), 'pdf'),
  });

export type ErpBlock = z.output<ReturnType<typeof erpBlockSchema>>;
