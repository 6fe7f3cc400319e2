import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobStore } from '#shared/jobs';
import { invoiceIndex, type InvoiceIndex } from '../../functions/download/invoice-index.ts';
import { ledgerJobKey, ledgerJobs } from '../../functions/download/ledger-job.ts';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb.ts';
import { LOCAL_S3_CREDENTIALS, startLocalS3, type LocalS3 } from '../../local/s3.ts';

/**
 * A ledger as a job, against the embedded S3 and DynamoDB: one that cannot be written within its request is kept
 * pending, and the sweep writes it; the answer to the same question asked again soon after is that file.
 */

const bucket = 'archive';
let s3Server: LocalS3;
let dynamo: LocalDynamo;
let directory: string;
let s3: S3Client;
let store: JobStore;
let index: InvoiceIndex;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ledger-job-'));
  s3Server = await startLocalS3({ directory, buckets: [bucket] });
  dynamo = await startLocalDynamo({ tables: ['jobs'], invoiceTables: ['invoices'] });
  s3 = new S3Client({
    endpoint: s3Server.endpoint,
    region: 'cn-north-1',
    forcePathStyle: true,
    credentials: LOCAL_S3_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'cn-north-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  store = new JobStore(client, 'jobs');
  index = invoiceIndex(client, 'invoices');
});
afterAll(async () => {
  await Promise.all([s3Server.close(), dynamo.close()]);
  await rm(directory, { recursive: true, force: true });
});

const ledgers = () =>
  ledgerJobs({
    s3,
    bucket,
    index,
    jobs: { store, leaseSeconds: 60, policy: { maxAttempts: 5, backoffBaseSeconds: 1, backoffMaxSeconds: 2 }, waitMs: 0 },
    links: async () => ({ linkKey: 'k'.repeat(32), baseUrl: 'https://api.example.com' }),
  });
const request = { taxNum: '91310117568051222X', from: '2024-04-01', to: '2024-04-30', direction: 'sales' as const, format: 'csv' as const };

describe('a ledger that cannot be written within its request', () => {
  it('is kept pending, written by the sweep, and then answered to the same question', async () => {
    // Act: a request with no time left
    const first = await ledgers().run(request, { deadline: Date.now(), mode: 'request' });
    // Assess: pending, kept in the jobs table for the sweep
    expect(first.kind).toBe('pending');
    const held = (await store.get('download', ledgerJobKey(request)))!;
    expect(held.value).toMatchObject({ state: 'pending', lastError: { code: 'TIME_BUDGET_EXHAUSTED' } });
    // Act: the sweep's attempt, then the question asked again
    expect(await ledgers().resume(held, Date.now() + 20_000, ledgers().parse)).toBe('done');
    const again = await ledgers().run(request, { deadline: Date.now() + 20_000, mode: 'request' });
    // Assess
    expect(again).toMatchObject({ kind: 'done', replayed: true, result: { rows: 0, totals: { amount: '0.00', tax: '0.00', total: '0.00' }, key: expect.stringMatching(/^ledgers\//) } });
  });
});

describe('a ledger too large to be written within a sweep run', () => {
  it('is given up at its first background attempt, saying to ask for shorter periods, not tried 48 times', async () => {
    // Prepare: another question, kept pending by a request with no time left
    const large = { ...request, from: '2024-01-01', to: '2024-06-30' };
    expect((await ledgers().run(large, { deadline: Date.now(), mode: 'request' })).kind).toBe('pending');
    const held = (await store.get('download', ledgerJobKey(large)))!;
    // Act: the sweep's attempt runs out of time as well
    const state = await ledgers().resume(held, Date.now(), ledgers().parse);
    // Assess: failed with a reason a person can act on, and no longer due
    expect(state).toBe('failed');
    const record = (await store.get('download', ledgerJobKey(large)))!.value;
    expect(record).toMatchObject({ state: 'failed', lastError: { statusCode: 504, code: 'UPSTREAM_TIMEOUT' } });
    expect(record.lastError!.message).toMatch(/given up: the period holds more invoices than one ledger can be written for within a run; ask for shorter periods/);
  });
});
