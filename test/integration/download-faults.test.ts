import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { JobStore } from '#shared/jobs';
import { JUMDATA_SANDBOX_INVOICES as INVOICES } from '../../local/sandboxes/jumdata.ts';
import type { DownloadWork } from '../../functions/download/work.ts';
import { localDynamoClient, localS3Client, useLocalMode } from '../helpers/local-mode.ts';

/**
 * Downloads that met a fault, end to end through local mode: a file host slower than its timeout, a job on its last
 * attempt, an invocation that died holding the job or leaving files behind, kept links the fetch rules refuse, and
 * a mirrored invoice asked for under another date or direction.
 */

const { state, post } = useLocalMode(
  { requestBudgetMs: 6_000, jumdata: { slowFileMs: 10_000 } },
  // Files get 1 s each (less than the request's time), a job 2 attempts, a waiter half a second.
  { MIRROR_FILE_TIMEOUT_MS: '1000', JOB_MAX_ATTEMPTS: '2', JOB_WAIT_MS: '500' },
);
const taxNum = '91310117568051222X';
const request = (invoiceNo: string, change: object = {}) => ({ taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales', ...change });
const jumdata = () => state.local.sandboxes.jumdata!;
let s3: S3Client;
let jobs: JobStore;

beforeAll(() => {
  s3 = localS3Client(state.local);
  const dynamo = localDynamoClient(state.local);
  jobs = new JobStore(dynamo, state.local.jobsTable);
});

const work = async (invoiceNo: string) => (await jobs.get<DownloadWork>('download', `${taxNum}/${invoiceNo}`))?.value;
async function keysUnder(invoiceNo: string): Promise<string[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: state.local.bucket, Prefix: `invoices/${taxNum}/${invoiceNo}/` }));
  return (listed.Contents ?? []).map((object) => object.Key!).sort();
}

/** A download record as a killed invocation leaves it: running, with Jumdata's answer kept. */
async function plantRecord(invoiceNo: string, change: Partial<DownloadWork>): Promise<void> {
  const now = new Date().toISOString();
  const links = (host: string) => ({ pdf: `${host}/files/${invoiceNo}/pdf.PDF`, ofd: `${host}/files/${invoiceNo}/ofd.zip`, xml: `${host}/files/${invoiceNo}/xml.zip` });
  await jobs.create<DownloadWork>({
    fn: 'download',
    key: `${taxNum}/${invoiceNo}`,
    request: request(invoiceNo) as DownloadWork['request'],
    state: 'running',
    attempts: 1,
    leaseUntil: new Date(Date.now() - 1_000).toISOString(),
    jumdata: { taskNo: 'T-planted', charged: true, files: links(jumdata().url), fields: {}, fetchedAt: now },
    createdAt: now,
    updatedAt: now,
    ...change,
  });
}

describe('a file host slower than the file timeout, within the request time', () => {
  it('answers 202 pending, as when the request runs out of time, and keeps the work (README and contract agree)', async () => {
    const answer = await post('/download', request(INVOICES.slowFile));
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ invoiceNo: INVOICES.slowFile, status: 'pending' });
    expect(await work(INVOICES.slowFile)).toMatchObject({ state: 'pending', lastError: { statusCode: 504, code: 'UPSTREAM_TIMEOUT' } });
  });

  it('is failed with 504, never 202, once its last attempt is used, and says so to every request after', async () => {
    // The second attempt is the last (JOB_MAX_ATTEMPTS 2)
    const answer = await post('/download', request(INVOICES.slowFile));
    expect(answer.status).toBe(504);
    expect(await work(INVOICES.slowFile)).toMatchObject({ state: 'failed', lastError: { statusCode: 504, code: 'UPSTREAM_TIMEOUT' } });
    expect(jumdata().billedCallsFor(INVOICES.slowFile)).toBe(1);
  });
});

describe('an invocation that died holding the job', () => {
  it('keeps a request waiting at most its wait, then answers 202 with the time until the lease lapses', async () => {
    // Prepare: its own deadline passed, its lease has 20 s left
    const invoiceNo = '24312000000066660001';
    await plantRecord(invoiceNo, {
      leaseUntil: new Date(Date.now() + 20_000).toISOString(),
      workUntil: new Date(Date.now() - 1_000).toISOString(),
    });
    // Act
    const started = Date.now();
    const answer = await post('/download', request(invoiceNo));
    // Assess
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(answer.status).toBe(202);
    expect(answer.body.status).toBe('pending');
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(18);
    expect(Number(answer.headers.get('retry-after'))).toBeLessThanOrEqual(20);
    expect(jumdata().billedCallsFor(invoiceNo)).toBe(0);
  });

  it('had its leftover files removed by the next attempt, even one that fails', async () => {
    // Prepare: the files of a killed attempt, stored without invoice.json; its kept links are over a month old
    const invoiceNo = '24312000000066660002';
    for (const name of ['pdf.pdf', 'ofd.zip', 'xml.zip']) {
      await s3.send(new PutObjectCommand({ Bucket: state.local.bucket, Key: `invoices/${taxNum}/${invoiceNo}/${name}`, Body: 'left over' }));
    }
    const old = new Date(Date.now() - 40 * 86_400_000).toISOString();
    await plantRecord(invoiceNo, { jumdata: { taskNo: 'T-old', charged: true, files: { pdf: 'x', ofd: 'x', xml: 'x' }, fields: {}, fetchedAt: old } });
    // Act: the sweep takes the dead job over; it cannot pay again, so the job fails (LINKS_EXPIRED)
    await state.local.sweep('download');
    // Assess
    expect(await work(invoiceNo)).toMatchObject({ state: 'failed', lastError: { code: 'LINKS_EXPIRED' } });
    expect(await keysUnder(invoiceNo)).toEqual([]);
    expect(jumdata().billedCallsFor(invoiceNo)).toBe(0);
  });
});

describe('kept links that the fetch rules refuse (a file host that moved)', () => {
  it('are replaced by new ones an API request buys', async () => {
    const invoiceNo = '24312000000066660003';
    await plantRecord(invoiceNo, { state: 'pending', leaseUntil: undefined, jumdata: movedAnswer(invoiceNo) });
    const answer = await post('/download', request(invoiceNo));
    expect(answer.status).toBe(200);
    expect(jumdata().billedCallsFor(invoiceNo)).toBe(1);
  });

  it('are recorded LINKS_EXPIRED by a sweep, which never pays again by itself', async () => {
    const invoiceNo = '24312000000066660004';
    await plantRecord(invoiceNo, { jumdata: movedAnswer(invoiceNo) });
    await state.local.sweep('download');
    const record = await work(invoiceNo);
    expect(record).toMatchObject({ state: 'failed', lastError: { code: 'LINKS_EXPIRED', statusCode: 410 } });
    expect(record?.lastError?.message).toContain('refused by the fetch rules');
    expect(jumdata().billedCallsFor(invoiceNo)).toBe(0);
  });
});

/** Jumdata's answer whose links name a host local mode no longer allows (http on another port). */
function movedAnswer(invoiceNo: string): DownloadWork['jumdata'] {
  const host = 'http://127.0.0.1:9';
  const files = { pdf: `${host}/files/${invoiceNo}/pdf.PDF`, ofd: `${host}/files/${invoiceNo}/ofd.zip`, xml: `${host}/files/${invoiceNo}/xml.zip` };
  return { taskNo: 'T-moved', charged: true, files, fields: {}, fetchedAt: new Date().toISOString() };
}

describe('a mirrored invoice asked for under another issue date or direction', () => {
  it('is answered from the archive with a notice naming the fields that differ', async () => {
    const invoiceNo = '24312000000066660005';
    expect((await post('/download', request(invoiceNo))).status).toBe(200);
    const same = await post('/download', request(invoiceNo));
    const other = await post('/download', request(invoiceNo, { issueDate: '2024-04-26', direction: 'purchase' }));
    expect(same.body.notice).toBeUndefined();
    expect(other.status).toBe(200);
    expect(other.body).toMatchObject({ fromCache: true, issueDate: '2024-04-25', direction: 'sales' });
    expect(other.body.notice).toContain('issueDate 2024-04-25');
    expect(other.body.notice).toContain('direction sales');
    expect(jumdata().billedCallsFor(invoiceNo)).toBe(1);
  });
});
