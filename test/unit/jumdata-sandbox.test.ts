import { afterEach, describe, expect, it, vi } from 'vitest';
import { UpstreamRejectedError, UpstreamTemporaryError } from '#shared/errors';
import { logger } from '#shared/logger';
import { createJumdataClient, type DownloadQuery } from '#shared/providers/jumdata';
import {
  JUMDATA_SANDBOX_CREDENTIALS,
  JUMDATA_SANDBOX_INVOICES as INVOICES,
  startJumdataSandbox,
  type JumdataSandbox,
} from '../../local/sandboxes/jumdata.ts';

/** The Jumdata sandbox's report of billed calls, which `npm start` prints one line each. */

let sandbox: JumdataSandbox | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await sandbox?.close();
});

const query = (invoiceNo: string): DownloadQuery => ({ taxNum: '91310117568051222X', invoiceNo, issueDate: '2024-04-25', direction: 'sales' });

describe('the Jumdata sandbox reporting billed calls', () => {
  it('reports each billed call with the running total and the invoice, and none of the calls it does not bill', async () => {
    // Prepare
    vi.spyOn(logger, 'info').mockImplementation(() => undefined); // the client's "jumdata answered" lines
    const reported: Array<{ billedCalls: number; invoiceNo: string }> = [];
    sandbox = await startJumdataSandbox({ onBilledCall: (call) => reported.push(call) });
    const client = createJumdataClient({
      baseUrl: sandbox.url,
      downloadPath: '/invoice/download',
      timeoutMs: 5_000,
      credentials: async () => JUMDATA_SANDBOX_CREDENTIALS,
    });
    // Act: two billed calls, a 399 (not billed) and a 603 (not billed), then the 399's billed second call
    await client.fetchInvoice(query(INVOICES.success));
    await client.fetchInvoice(query(INVOICES.success));
    await expect(client.fetchInvoice(query(INVOICES.flakyOnce))).rejects.toBeInstanceOf(UpstreamTemporaryError);
    await expect(client.fetchInvoice(query(INVOICES.noBalance))).rejects.toBeInstanceOf(UpstreamRejectedError);
    await client.fetchInvoice(query(INVOICES.flakyOnce));
    // Assess
    expect(reported).toEqual([
      { billedCalls: 1, invoiceNo: INVOICES.success },
      { billedCalls: 2, invoiceNo: INVOICES.success },
      { billedCalls: 3, invoiceNo: INVOICES.flakyOnce },
    ]);
    expect(sandbox.billedCalls()).toBe(3);
  });
});
