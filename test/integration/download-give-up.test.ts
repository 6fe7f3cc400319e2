import { describe, expect, it } from 'vitest';
import { JobStore } from '#shared/jobs';
import { JUMDATA_SANDBOX_INVOICES as INVOICES } from '../../local/sandboxes/jumdata.ts';
import type { DownloadWork } from '../../functions/download/work.ts';
import { localDynamoClient, useLocalMode } from '../helpers/local-mode.ts';

/**
 * A download that keeps running out of its request's time (5 s, so 2 s of work after the answer margin) until its
 * attempts are used up (JOB_MAX_ATTEMPTS 2): the job fails, and its record and every answer say so.
 */

const { state, post } = useLocalMode({ requestBudgetMs: 5_000, jumdata: { slowFileMs: 10_000 } }, { JOB_MAX_ATTEMPTS: '2' });
const request = { taxNum: '91310117568051222X', invoiceNo: INVOICES.slowFile, issueDate: '2024-04-25', direction: 'sales' };

async function work(): Promise<DownloadWork | undefined> {
  const dynamo = localDynamoClient(state.local);
  return (await new JobStore(dynamo, state.local.jobsTable).get<DownloadWork>('download', `${request.taxNum}/${request.invoiceNo}`))?.value;
}

describe('a download given up after running out of time on its last attempt', () => {
  it('is recorded failed with 504, and a request that waited for the last attempt answers 504, not 202 pending', async () => {
    // Prepare: the first attempt runs out of time and is kept pending
    const first = await post('/download', request);
    expect(first.status).toBe(202);
    expect(await work()).toMatchObject({ state: 'pending', lastError: { code: 'TIME_BUDGET_EXHAUSTED' } });
    // Act: the last attempt, and a request arriving while it runs
    const last = post('/download', request);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const waiter = await post('/download', request);
    // Assess
    expect((await last).status).toBe(504);
    expect(waiter.status).toBe(504);
    expect(waiter.body.error.code).toBe('UPSTREAM_TIMEOUT');
    expect(await work()).toMatchObject({ state: 'failed', lastError: { statusCode: 504, code: 'UPSTREAM_TIMEOUT' } });
    expect(state.local.sandboxes.jumdata!.billedCallsFor(request.invoiceNo)).toBe(1);
  });
});
