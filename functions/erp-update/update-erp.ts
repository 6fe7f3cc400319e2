import { jobLifecycle, type LifecycleSettings } from '#shared/job-lifecycle';
import type { ErpTold, InvoiceRef } from '#shared/invoice-erp';
import { countErpUpdateSent } from '#shared/metrics';
import type { InvoiceStatus, WdtClient } from '#shared/providers/wdt';
import { freeTextSchema, httpUrlSchema, identifierSchema, invoiceNumberSchema, parseRequest } from '#shared/validation';
import * as z from '#shared/zod';

/** Lengths from WDT's vip_invoice_info_update document (varchar, in characters). */
const LIMITS = { invoiceNo: 20, invoiceNoOut: 40, invoiceCode: 20, errorInfo: 255, filePath: 1024 } as const;

/** An empty optional field means "not given", as WDT treats it; null is empty. */
const optional = <T extends z.ZodMiniType>(schema: T) =>
  z.pipe(
    z.transform((value: unknown): unknown => (value === '' || value === null ? undefined : value)),
    z.optional(schema),
  );

/** A field WDT requires but that may be empty: null and absent are sent empty. */
const emptyByDefault = (schema: z.ZodMiniType<string>) =>
  z.pipe(
    z.transform((value: unknown): unknown => (value === null ? undefined : value)),
    z._default(schema, ''),
  );

/** Built at the first request (z.lazy), not at import: see shared/zod.ts. */
export const erpUpdateRequestSchema = z.lazy(() =>
  z
    .object({
      invoiceNo: identifierSchema(LIMITS.invoiceNo),
      status: z._default(z.union([z.literal(65), z.literal(75), z.literal(80)], { error: 'must be 65, 75 or 80' }), 80),
      invoiceNoOut: optional(invoiceNumberSchema(LIMITS.invoiceNoOut)),
      // WDT requires the field, but 数电 invoices have no invoice code: empty is allowed and sent empty.
      invoiceCode: emptyByDefault(
        invoiceNumberSchema(LIMITS.invoiceCode, {
          allowEmpty: true,
          typeError: 'must be a string, empty when the invoice has no code (数电)',
        }),
      ),
      errorInfo: optional(freeTextSchema(LIMITS.errorInfo)),
      filePath: optional(httpUrlSchema(LIMITS.filePath)),
    })
    .check(
      // `when` runs the rule even when another field is bad, so one answer names every bad field.
      z.refine((request) => request.status !== 80 || request.invoiceNoOut !== undefined, {
        path: ['invoiceNoOut'],
        error: 'is required when status is 80',
        when: ({ value }) => {
          // Not an object (a JSON null body): the object's own issue says so, and the rule has nothing to read.
          if (typeof value !== 'object' || value === null) return false;
          const { status, invoiceNoOut } = value as { status?: unknown; invoiceNoOut?: unknown };
          return (status === undefined || status === 80) && (invoiceNoOut === undefined || invoiceNoOut === '');
        },
      }),
    ),
);

/** An update chained to an archived invoice by a download (`erp` on POST /download): WDT is told of it once. */
const chainSchema = z.lazy(() => z.object({ taxNum: z.string(), invoiceNo: z.string() }));

export type ErpUpdateRequest = z.output<typeof erpUpdateRequestSchema>;
/** A job's request: the update, and the invoice it is chained to, when a download recorded it. */
export type ErpUpdateJob = ErpUpdateRequest & { chain?: InvoiceRef };

/** A job's stored request: the API's fields, and a chain only a download writes (the API's schema drops it). */
export function parseErpUpdateJob(input: unknown): ErpUpdateJob {
  const { chain, ...update } = (typeof input === 'object' && input !== null ? input : {}) as { chain?: unknown };
  const request = parseRequest(erpUpdateRequestSchema, update);
  return chain === undefined ? request : { ...request, chain: parseRequest(chainSchema, chain) };
}

export interface ErpUpdateResult {
  invoiceNo: string;
  status: InvoiceStatus;
  message: string;
}

/**
 * Write one invoicing result back to 旺店通 ERP (回传开发票结果).
 * Input: `{invoiceNo, status, invoiceNoOut, invoiceCode, errorInfo, filePath}` as received · Output: the job's
 * outcome, done with WDT's answer
 *  1. Validate the request; a bad one never reaches WDT and leaves no record
 *  2. Claim the invoice's job record: the latest request replaces an older unfinished one, so a sweep never sends
 *     a stale result over a newer one
 *  3. Send one signed update, and record how it ended; one that met a network failure, a timeout or WDT's rate
 *     limit stays pending for the sweep
 */
export function updateErp(deps: { client: WdtClient; jobs: LifecycleSettings; told?: ErpTold }) {
  async function send(request: ErpUpdateJob): Promise<ErpUpdateResult> {
    const { chain, ...update } = request;
    // Chained to an invoice: told once, whoever asked and however often (the fact is on the invoice's index entry).
    if (chain && (await deps.told?.wasTold(chain, update.invoiceNo))) {
      return { invoiceNo: update.invoiceNo, status: update.status, message: 'WDT was told already' };
    }
    const { message } = await deps.client.updateInvoice(update);
    countErpUpdateSent();
    // A crash right here sends the same update again next time: harmless, the same values.
    if (chain) await deps.told?.markTold(chain, update.invoiceNo);
    return { invoiceNo: update.invoiceNo, status: update.status, message };
  }

  const jobs = jobLifecycle<ErpUpdateJob, ErpUpdateResult, object>(deps.jobs, { fn: 'erp-update', keyOf: (request) => request.invoiceNo, attempt: send });
  return { ...jobs, parse: (input: unknown): ErpUpdateJob => parseRequest(erpUpdateRequestSchema, input), parseJob: parseErpUpdateJob };
}

export type ErpUpdate = ReturnType<typeof updateErp>;
