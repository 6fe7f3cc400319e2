import * as z from 'zod';
import type { InvoiceStatus, WdtClient } from '#shared/providers/wdt';
import { freeTextSchema, httpUrlSchema, identifierSchema, parseRequest } from '#shared/validation';

/** Lengths from WDT's vip_invoice_info_update document (varchar, in characters). */
const LIMITS = { invoiceNo: 20, invoiceNoOut: 40, invoiceCode: 20, errorInfo: 255, filePath: 1024 } as const;

/** An empty optional field means "not given", as WDT treats it. */
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' || value === null ? undefined : value), schema.optional());

export const erpUpdateRequestSchema = z
  .object({
    invoiceNo: identifierSchema(LIMITS.invoiceNo),
    status: z
      .union([z.literal(65), z.literal(75), z.literal(80)], { error: 'must be 65, 75 or 80' })
      .default(80),
    invoiceNoOut: optional(identifierSchema(LIMITS.invoiceNoOut)),
    // WDT requires the field, but 数电 invoices have no invoice code: empty is allowed and sent empty.
    invoiceCode: z.union([z.literal(''), identifierSchema(LIMITS.invoiceCode)]).default(''),
    errorInfo: optional(freeTextSchema(LIMITS.errorInfo)),
    filePath: optional(httpUrlSchema(LIMITS.filePath)),
  })
  // `when` runs the rule even when another field is bad, so one answer names every bad field.
  .refine((request) => request.status !== 80 || request.invoiceNoOut !== undefined, {
    path: ['invoiceNoOut'],
    error: 'is required when status is 80',
    when: ({ value }) => {
      const { status, invoiceNoOut } = (value ?? {}) as { status?: unknown; invoiceNoOut?: unknown };
      return (status === undefined || status === 80) && (invoiceNoOut === undefined || invoiceNoOut === '');
    },
  });

export interface ErpUpdateResult {
  invoiceNo: string;
  status: InvoiceStatus;
  message: string;
}

/**
 * Write one invoicing result back to 旺店通 ERP (回传开发票结果).
 * Input: `{invoiceNo, status, invoiceNoOut, invoiceCode, errorInfo, filePath}` as received · Output: WDT's answer
 *  1. Validate the request; a bad one never reaches WDT
 *  2. Send one signed update
 */
export function updateErp(deps: { client: WdtClient }) {
  return async (input: unknown): Promise<ErpUpdateResult> => {
    const request = parseRequest(erpUpdateRequestSchema, input);
    const { message } = await deps.client.updateInvoice(request);
    return { invoiceNo: request.invoiceNo, status: request.status, message };
  };
}
