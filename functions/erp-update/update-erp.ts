import * as z from 'zod';
import { deferJob, jobRunner, replyOf, type JobRunnerSettings } from '#shared/job-runner';
import type { Held, JobRecord } from '#shared/jobs';
import type { HttpReply } from '#shared/middleware';
import type { InvoiceStatus, WdtClient } from '#shared/providers/wdt';
import type { SweptState } from '#shared/sweep';
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
 *  1. Validate the request; a bad one never reaches WDT and leaves no record
 *  2. Claim the invoice's job record: the latest request replaces an older unfinished one, so a sweep never sends
 *     a stale result over a newer one
 *  3. Send one signed update, and record how it ended; one that met a network failure, a timeout or WDT's rate
 *     limit stays pending for the sweep
 */
export function updateErp(deps: { client: WdtClient; jobs: Omit<JobRunnerSettings, 'fn'> }) {
  const run = jobRunner({ ...deps.jobs, fn: 'erp-update' });

  async function send(request: z.infer<typeof erpUpdateRequestSchema>): Promise<HttpReply> {
    const { message } = await deps.client.updateInvoice(request);
    const result: ErpUpdateResult = { invoiceNo: request.invoiceNo, status: request.status, message };
    return { statusCode: 200, body: result };
  }

  return {
    /** A request from the API or a scheduled batch (`runId` identifies the batch's run and the job's place in it). */
    async answer(input: unknown, runId?: string): Promise<HttpReply> {
      const request = parseRequest(erpUpdateRequestSchema, input);
      return replyOf(await run({ key: request.invoiceNo, request, runId }, () => send(request)));
    },
    /** A recorded job, taken up by the sweep. */
    async resume(held: Held<JobRecord>): Promise<SweptState> {
      const outcome = await run({ key: held.value.key, request: held.value.request, held }, () =>
        send(parseRequest(erpUpdateRequestSchema, held.value.request)),
      );
      return outcome.state === 'busy' ? 'skipped' : outcome.state;
    },
    /** A batch's job it had no time for: kept pending for the sweep. */
    async defer(input: unknown): Promise<void> {
      const request = parseRequest(erpUpdateRequestSchema, input);
      await deferJob(deps.jobs.store, 'erp-update', request.invoiceNo, request);
    },
  };
}
