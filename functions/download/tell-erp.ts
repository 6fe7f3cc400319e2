import type { ErpTold } from '#shared/invoice-erp';
import { jobLifecycle, type LifecycleSettings } from '#shared/job-lifecycle';
import { logger } from '#shared/logger';
import { parseErpUpdateJob, type ErpUpdateJob } from '../erp-update/update-erp.ts';
import type { StoredInvoice } from './archive.ts';
import type { ErpBlock } from './erp-block.ts';
import type { InvoiceMetadata } from './invoice-metadata.ts';
import { durableLink } from './links.ts';
import type { FileKind } from './invoice-files.ts';

/**
 * The ERP told by itself: a download that carries `erp` has 旺店通 learn, once the invoice is mirrored, what
 * POST /erp-update would send (status 80, the invoice number, the durable link of the chosen file). The update is an
 * erp-update job recorded through the shared lifecycle and sent by the erp-update function (its secret, its rate
 * limits), asked at once by an asynchronous invoke, else by its sweep. WDT is told once per (taxNum, invoiceNo,
 * erp.invoiceNo): the fact is kept on the invoice's index entry (shared/invoice-erp.ts).
 */

export interface ErpAnswer {
  invoiceNo: string;
  status: 'sent' | 'pending' | 'failed' | 'skipped';
  message: string;
}

export interface TellErpDeps {
  told: ErpTold;
  jobs: LifecycleSettings;
  /** Asks the erp-update function to send a recorded update now (an asynchronous invoke); the sweep does otherwise. */
  sendNow(key: string): Promise<void>;
  /** The durable links' key and base URL. */
  links(): Promise<{ linkKey: string; baseUrl: string }>;
}

export function tellErp(deps: TellErpDeps) {
  // The erp-update function's jobs, as this function records them (never attempted here: `defer` only records).
  const updates = jobLifecycle<ErpUpdateJob, unknown, object>(deps.jobs, {
    fn: 'erp-update',
    keyOf: (request) => request.invoiceNo,
    attempt: () => Promise.reject(new Error('an ERP update is sent by the erp-update function')),
  });

  /** Where the chained update stands; recorded (and asked for) when it is neither sent nor on its way. */
  async function tell(invoice: StoredInvoice, erp: ErpBlock, deadline: number): Promise<ErpAnswer> {
    const answer = (status: ErpAnswer['status'], message: string): ErpAnswer => ({ invoiceNo: erp.invoiceNo, status, message });
    const skipped = whySkipped(invoice);
    if (skipped) return answer('skipped', `${skipped}: the ERP is not told it was issued`);
    if (await deps.told.wasTold(invoice, erp.invoiceNo)) return answer('sent', 'WDT was told (code 0)');
    const recorded = (await deps.jobs.store.get('erp-update', erp.invoiceNo))?.value;
    const ours = recorded !== undefined && isChainedTo(recorded.request, invoice);
    if (ours && recorded.state === 'failed') return answer('failed', recorded.lastError?.message ?? 'WDT refused the update');
    if (ours && (recorded.state === 'pending' || recorded.state === 'running')) return answer('pending', 'the erp-update function is sending it');
    const [report] = await updates.defer([await updateOf(invoice, erp)], deadline, parseErpUpdateJob, 'recorded by a download: the erp-update function sends it');
    if (!report?.deferred) throw report?.error ?? new Error('the ERP update could not be recorded');
    await deps.sendNow(erp.invoiceNo).catch((error: unknown) => logger.warn('erp-update not invoked; its sweep sends the update', { error }));
    return answer('pending', 'the erp-update function is sending it');
  }

  /** What POST /erp-update would send for this invoice, and the invoice it is chained to. */
  async function updateOf(invoice: StoredInvoice, erp: ErpBlock): Promise<ErpUpdateJob> {
    const { linkKey, baseUrl } = await deps.links();
    return {
      invoiceNo: erp.invoiceNo,
      status: 80,
      invoiceNoOut: invoice.invoiceNo,
      invoiceCode: invoiceCodeOf(invoice),
      filePath: durableLink(baseUrl, linkKey, invoice.taxNum, invoice.invoiceNo, erp.file satisfies FileKind),
      chain: { taxNum: invoice.taxNum, invoiceNo: invoice.invoiceNo },
    };
  }

  return { tell };
}

/**
 * Why the ERP must not be told an invoice was issued: Jumdata says it is voided or red-flushed, it is itself a
 * red-letter invoice (it reverses another), or its XML could not be read (what it is cannot be known).
 */
export function whySkipped(invoice: StoredInvoice): string | undefined {
  const { voided, redFlushed } = invoice.invoice;
  if (voided) return 'Jumdata says the invoice is voided (作废)';
  if (redFlushed) return 'Jumdata says the invoice is red-flushed (冲红)';
  if (!invoice.checks?.xmlRead) return 'its XML could not be read, so what it is cannot be known';
  const metadata = invoice.invoice as InvoiceMetadata;
  if (metadata.redLetterOf || metadata.total.startsWith('-')) return `it is a red-letter invoice (红字发票) reversing ${metadata.redLetterOf ?? 'another'}`;
  return undefined;
}

/** 数电 invoices have no invoice code; an older one's is Jumdata's `Fpdm` where its answer carries one. */
function invoiceCodeOf(invoice: StoredInvoice): string {
  const code = invoice.jumdata?.fields.Fpdm;
  return typeof code === 'string' && /^\d{10,12}$/.test(code) ? code : '';
}

function isChainedTo(request: unknown, invoice: StoredInvoice): boolean {
  const chain = (request as { chain?: { taxNum?: unknown; invoiceNo?: unknown } } | undefined)?.chain;
  return chain?.taxNum === invoice.taxNum && chain.invoiceNo === invoice.invoiceNo;
}
