import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { parseAllowedHosts } from '#shared/fetch-policy';
import { JobStore } from '#shared/jobs';
import { logger } from '#shared/logger';
import { createJumdataClient, type DownloadQuery } from '#shared/providers/jumdata';
import { downloadInvoice } from '../../functions/download/download-invoice.ts';
import { invoiceIndex } from '../../functions/download/invoice-index.ts';
import { ObjectLockError, type RetentionRule } from '../../functions/download/retention.ts';
import type { DownloadWork } from '../../functions/download/work.ts';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb.ts';
import { JUMDATA_SANDBOX_CREDENTIALS, startJumdataSandbox, type JumdataSandbox } from '../../local/sandboxes/jumdata.ts';

/**
 * The download with Object Lock (`lockYears`), from the claim to invoice.json: the Jumdata sandbox bills and serves
 * the files, the job record lives in an in-memory dynalite, and S3 is mocked, since no local S3 server has Object
 * Lock. The mock's calls are kept in order, so the tests can tell what was locked before invoice.json was written.
 */

const LOCK_YEARS = 10;
const taxNum = '91310117568051222X';
const prefix = (invoiceNo: string) => `invoices/${taxNum}/${invoiceNo}`;
const fileKeys = (invoiceNo: string) => ['pdf.pdf', 'ofd.zip', 'xml.zip'].map((name) => `${prefix(invoiceNo)}/${name}`);
const recordKey = (invoiceNo: string) => `${prefix(invoiceNo)}/invoice.json`;
const request = (invoiceNo: string) => ({ taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales' });

const s3mock = mockClient(S3Client);
let jumdata: JumdataSandbox;
let dynamo: LocalDynamo;
let dynamoClient: DynamoDBClient;
let jobs: JobStore;
let logged: { error: MockInstance; warn: MockInstance };

beforeAll(async () => {
  jumdata = await startJumdataSandbox();
});
afterAll(() => jumdata.close());

beforeEach(async () => {
  dynamo = await startLocalDynamo({ tables: ['jobs'], invoiceTables: ['invoices'] });
  dynamoClient = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'cn-north-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  jobs = new JobStore(dynamoClient, 'jobs');
  s3mock.reset();
  // No invoice.json yet: every run mirrors.
  s3mock.on(GetObjectCommand).rejects(new NoSuchKey({ message: 'The specified key does not exist.', $metadata: { httpStatusCode: 404 } }));
  // Each write makes a new version, named after the key and how many writes it had, as a versioned bucket would.
  const writes = new Map<string, number>();
  s3mock.on(PutObjectCommand).callsFake(async (input: { Key: string; Body: unknown }) => {
    if (typeof input.Body !== 'string') for await (const _chunk of input.Body as AsyncIterable<Buffer>); // read, as S3 would
    const n = (writes.get(input.Key) ?? 0) + 1;
    writes.set(input.Key, n);
    return { ETag: '"e"', VersionId: versionOf(input.Key, n) };
  });
  s3mock.on(DeleteObjectCommand).resolves({});
  // Nothing left by an earlier attempt unless a test says so.
  s3mock.on(HeadObjectCommand).rejects(new NotFound({ message: 'Not Found', $metadata: { httpStatusCode: 404 } }));
  // The log lines are inspected, and kept out of the test output.
  logged = {
    error: vi.spyOn(logger, 'error').mockImplementation(() => undefined),
    warn: vi.spyOn(logger, 'warn').mockImplementation(() => undefined),
  };
  vi.spyOn(logger, 'info').mockImplementation(() => undefined);
});
afterEach(async () => {
  vi.restoreAllMocks();
  dynamoClient.destroy();
  await dynamo.close();
});

const versionOf = (key: string, write: number) => `${key.split('/').at(-1)}#${write}`;

function download(retention: RetentionRule = { years: LOCK_YEARS, from: 'mirrored', graceYears: 0 }) {
  return downloadInvoice({
    jumdata: createJumdataClient({
      baseUrl: jumdata.url,
      downloadPath: '/invoice/download',
      timeoutMs: 5_000,
      credentials: async () => JUMDATA_SANDBOX_CREDENTIALS,
    }),
    jobs,
    index: invoiceIndex(dynamoClient, 'invoices'),
    s3: new S3Client({ region: 'cn-north-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }),
    bucket: 'archive',
    policy: { allowedHosts: parseAllowedHosts(jumdata.fileHost), maxBytes: 1024 * 1024, maxRedirects: 3 },
    fileTimeoutMs: 10_000,
    jumdataTimeoutMs: 5_000,
    leaseSeconds: 60,
    retryPolicy: { maxAttempts: 5, backoffBaseSeconds: 10, backoffMaxSeconds: 300 },
    retention,
    checkCreditCode: false,
  });
}

/** One API request's download, its outcome as mirrored or thrown (its failure's reason). */
async function run(invoiceNo: string) {
  const outcome = await download().run(request(invoiceNo) as DownloadQuery, { deadline: Date.now() + 20_000, mode: 'request' });
  if (outcome.kind === 'done') return { kind: 'mirrored' as const, fromCache: outcome.replayed, invoice: outcome.result.invoice };
  throw outcome.kind === 'busy' ? new Error('busy') : outcome.reason;
}

/** An S3 call as sent: the command's name and its input. */
interface SentCall {
  command: string;
  Key?: string;
  VersionId?: string;
  Retention?: { Mode?: string; RetainUntilDate?: Date };
  ObjectLockMode?: string;
  ObjectLockRetainUntilDate?: Date;
}

/** The S3 calls in the order they were sent. */
const s3Calls = (): SentCall[] =>
  s3mock.calls().map((call) => {
    const command = call.args[0] as unknown as { constructor: { name: string }; input: Omit<SentCall, 'command'> };
    return { command: command.constructor.name, ...command.input };
  });
const indexOf = (command: string, key: string) => s3Calls().findIndex((call) => call.command === command && call.Key === key);
const sentFor = (command: string, key: string) => s3Calls().filter((call) => call.command === command && call.Key === key);

/** `date` moved `years` ahead, as Object Lock's retain-until date is computed. */
function yearsAfter(date: number, years: number): number {
  const later = new Date(date);
  later.setUTCFullYear(later.getUTCFullYear() + years);
  return later.getTime();
}

const workRecord = async (invoiceNo: string) => (await jobs.get<DownloadWork>('download', `${taxNum}/${invoiceNo}`))!.value;

/** Refuses PutObjectRetention for the keys `refuse` picks, and locks the others. */
function retentionRefusedFor(refuse: (key: string) => boolean) {
  s3mock.on(PutObjectRetentionCommand).callsFake((input: { Key: string }) => {
    if (refuse(input.Key)) throw new Error('InvalidRequest: Bucket is missing Object Lock Configuration');
    return {};
  });
}

describe('a download with Object Lock', () => {
  it('locks by law from the XML\'s issue date: to the end of the fiscal year 30 years on, plus a year of grace', async () => {
    // Prepare: the sandbox's XML of this invoice says 2024-04-25; the request says 2023-12-30
    const invoiceNo = '24312000000000000101';
    s3mock.on(PutObjectRetentionCommand).resolves({});
    const lawful = download({ years: 30, from: 'fiscal-year-end', graceYears: 1 });
    // Act
    const outcome = await lawful.run({ ...request(invoiceNo), issueDate: '2023-12-30' } as DownloadQuery, { deadline: Date.now() + 20_000, mode: 'request' });
    // Assess: the files and invoice.json, locked until the end of 31 December 2055, China time
    expect(outcome.kind).toBe('done');
    const until = new Date('2055-12-31T16:00:00Z');
    for (const key of fileKeys(invoiceNo)) expect(sentFor('PutObjectRetentionCommand', key)).toEqual([expect.objectContaining({ Retention: { Mode: 'COMPLIANCE', RetainUntilDate: until } })]);
    expect(sentFor('PutObjectCommand', recordKey(invoiceNo))).toEqual([expect.objectContaining({ ObjectLockRetainUntilDate: until })]);
  });

  it('locks the three files (compliance mode, their versions, N years) before invoice.json is written, then invoice.json', async () => {
    // Prepare
    const invoiceNo = '24312000000077770001';
    s3mock.on(PutObjectRetentionCommand).resolves({});
    // Act
    const before = Date.now();
    const outcome = await run(invoiceNo);
    const after = Date.now();
    // Assess: mirrored
    expect(outcome).toMatchObject({ kind: 'mirrored', fromCache: false });
    // Assess: each file's stored version locked in compliance mode until N years ahead, before invoice.json's write
    const invoiceWritten = indexOf('PutObjectCommand', recordKey(invoiceNo));
    expect(invoiceWritten).toBeGreaterThan(-1);
    for (const key of fileKeys(invoiceNo)) {
      const [lock, ...more] = sentFor('PutObjectRetentionCommand', key);
      expect(more).toEqual([]);
      expect(lock).toMatchObject({ Bucket: 'archive', VersionId: versionOf(key, 1), Retention: { Mode: 'COMPLIANCE' } });
      const retainUntil = lock!.Retention!.RetainUntilDate!.getTime();
      expect(retainUntil).toBeGreaterThanOrEqual(yearsAfter(before, LOCK_YEARS));
      expect(retainUntil).toBeLessThanOrEqual(yearsAfter(after, LOCK_YEARS));
      expect(indexOf('PutObjectRetentionCommand', key)).toBeLessThan(invoiceWritten);
    }
    // Assess: invoice.json is stored already locked, in the same mode and until the same date as the files: it
    // never exists unlocked, not even if the function dies right after writing it
    const filesLockedUntil = sentFor('PutObjectRetentionCommand', fileKeys(invoiceNo)[0]!)[0]!.Retention!.RetainUntilDate;
    expect(sentFor('PutObjectCommand', recordKey(invoiceNo))).toEqual([
      expect.objectContaining({ ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: filesLockedUntil }),
    ]);
    expect(sentFor('PutObjectRetentionCommand', recordKey(invoiceNo))).toEqual([]);
    expect(s3mock).not.toHaveReceivedCommand(DeleteObjectCommand);
    expect(await workRecord(invoiceNo)).toMatchObject({ state: 'done' });
  });

  it('writes no invoice.json and removes the three files when S3 refuses to lock them, keeping the paid answer', async () => {
    // Prepare: a bucket without Object Lock refuses every lock
    const invoiceNo = '24312000000077770002';
    retentionRefusedFor(() => true);
    // Act
    const outcome = run(invoiceNo);
    // Assess: refused, with nothing locked (the first refusal stops the others) and nothing left behind
    await expect(outcome).rejects.toBeInstanceOf(ObjectLockError);
    expect(s3mock).toHaveReceivedCommandTimes(PutObjectRetentionCommand, 1);
    expect(sentFor('PutObjectCommand', recordKey(invoiceNo))).toEqual([]);
    for (const key of fileKeys(invoiceNo)) {
      expect(s3mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Bucket: 'archive', Key: key, VersionId: versionOf(key, 1) });
    }
    // Assess: the job is unfinished, with Jumdata's billed answer kept
    expect(await workRecord(invoiceNo)).toMatchObject({
      state: 'pending',
      lastError: { code: 'INTERNAL', statusCode: 500 },
      jumdata: { charged: true, files: { xml: expect.stringContaining(`/files/${invoiceNo}/xml.zip`) } },
    });
    expect(jumdata.billedCallsFor(invoiceNo)).toBe(1);
  });

  it('finishes on a later run from the kept answer, without paying Jumdata again, once locking works', async () => {
    // Prepare: a first run refused by S3
    const invoiceNo = '24312000000077770003';
    retentionRefusedFor(() => true);
    await expect(run(invoiceNo)).rejects.toBeInstanceOf(ObjectLockError);
    s3mock.on(PutObjectRetentionCommand).resolves({});
    // Act
    const outcome = await run(invoiceNo);
    // Assess
    expect(outcome).toMatchObject({ kind: 'mirrored', fromCache: false });
    expect(jumdata.billedCallsFor(invoiceNo)).toBe(1);
    expect(await workRecord(invoiceNo)).toMatchObject({ state: 'done', attempts: 2 });
  });
});

describe('a download whose files are locked only in part', () => {
  it('removes only the unlocked file, logs the locked versions and their date, and keeps the paid answer', async () => {
    // Prepare: the pdf and ofd locks go through, the xml one is refused
    const invoiceNo = '24312000000077770005';
    const [pdf, ofd, xml] = fileKeys(invoiceNo) as [string, string, string];
    retentionRefusedFor((key) => key === xml);
    // Act
    const outcome = run(invoiceNo);
    // Assess: no delete of a locked version (S3 would refuse it for N years); the unlocked one goes
    await expect(outcome).rejects.toBeInstanceOf(ObjectLockError);
    expect(s3mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Key: xml, VersionId: versionOf(xml, 1) });
    expect(s3mock).toHaveReceivedCommandTimes(DeleteObjectCommand, 1);
    expect(sentFor('PutObjectCommand', recordKey(invoiceNo))).toEqual([]);
    // Assess: which keys stay locked, and until when, in one error line
    const lockedLine = logged.error.mock.calls.find(([message]) => String(message).includes('stay locked'));
    expect(lockedLine?.[1]).toEqual({
      lockedVersions: [
        { key: pdf, versionId: versionOf(pdf, 1) },
        { key: ofd, versionId: versionOf(ofd, 1) },
      ],
      retainUntil: sentFor('PutObjectRetentionCommand', pdf)[0]!.Retention!.RetainUntilDate!.toISOString(),
    });
    expect(await workRecord(invoiceNo)).toMatchObject({ state: 'pending', jumdata: { charged: true } });
  });

  it('finishes on the next run with new, locked versions, and no second billed call', async () => {
    // Prepare: a run that left the pdf and ofd locked
    const invoiceNo = '24312000000077770006';
    const [pdf, ofd, xml] = fileKeys(invoiceNo) as [string, string, string];
    retentionRefusedFor((key) => key === xml);
    await expect(run(invoiceNo)).rejects.toBeInstanceOf(ObjectLockError);
    s3mock.on(PutObjectRetentionCommand).resolves({});
    // Act
    const outcome = await run(invoiceNo);
    // Assess: invoice.json names the new versions, each locked; the old locked ones are left as they are
    expect(outcome.kind === 'mirrored' && outcome.invoice.files).toMatchObject({
      pdf: { key: pdf, versionId: versionOf(pdf, 2) },
      ofd: { key: ofd, versionId: versionOf(ofd, 2) },
      xml: { key: xml, versionId: versionOf(xml, 2) },
    });
    for (const key of [pdf, ofd, xml]) {
      expect(s3mock).toHaveReceivedCommandWith(PutObjectRetentionCommand, { Key: key, VersionId: versionOf(key, 2) });
      expect(s3mock).not.toHaveReceivedCommandWith(DeleteObjectCommand, { Key: key, VersionId: versionOf(key, 2) });
    }
    expect(jumdata.billedCallsFor(invoiceNo)).toBe(1);
  });

  it('leaves the locked files in place, logged, when invoice.json cannot be written after they were locked', async () => {
    // Prepare
    const invoiceNo = '24312000000077770007';
    s3mock.on(PutObjectRetentionCommand).resolves({});
    s3mock.on(PutObjectCommand, { Key: recordKey(invoiceNo) }).rejects(new Error('ServiceUnavailable'));
    // Act
    const outcome = run(invoiceNo);
    // Assess: no delete is even tried; the three locked versions are named in the log
    await expect(outcome).rejects.toThrow('ServiceUnavailable');
    expect(s3mock).not.toHaveReceivedCommand(DeleteObjectCommand);
    const lockedLine = logged.error.mock.calls.find(([message]) => String(message).includes('stay locked'));
    expect((lockedLine?.[1] as { lockedVersions: unknown[] }).lockedVersions).toEqual(
      fileKeys(invoiceNo).map((key) => ({ key, versionId: versionOf(key, 1) })),
    );
    expect(await workRecord(invoiceNo)).toMatchObject({ state: 'pending', jumdata: { charged: true } });
  });
});

describe('an attempt that takes over from one that died after storing files', () => {
  it('removes the versions the dead attempt left before storing new ones, and logs a locked one by key and version', async () => {
    // Prepare: a dead attempt's record (lease lapsed, answer kept) and its three files, the xml one locked
    const invoiceNo = '24312000000077770008';
    const [pdf, ofd, xml] = fileKeys(invoiceNo) as [string, string, string];
    const now = new Date().toISOString();
    const files = { pdf: `${jumdata.url}/files/${invoiceNo}/pdf.PDF`, ofd: `${jumdata.url}/files/${invoiceNo}/ofd.zip`, xml: `${jumdata.url}/files/${invoiceNo}/xml.zip` };
    await jobs.create<DownloadWork>({
      fn: 'download',
      key: `${taxNum}/${invoiceNo}`,
      request: request(invoiceNo) as DownloadWork['request'],
      state: 'running',
      attempts: 1,
      leaseUntil: new Date(Date.now() - 1_000).toISOString(),
      jumdata: { taskNo: 'T-dead', charged: true, files, fields: {}, fetchedAt: now },
      createdAt: now,
      updatedAt: now,
    });
    s3mock.on(HeadObjectCommand).callsFake((input: { Key: string }) => ({ VersionId: `${input.Key.split('/').at(-1)}#dead` }));
    s3mock.on(DeleteObjectCommand, { Key: xml }).rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));
    s3mock.on(PutObjectRetentionCommand).resolves({});
    // Act
    const outcome = await run(invoiceNo);
    // Assess: each dead version deleted by its id before the first new file went up; the locked one logged
    expect(outcome).toMatchObject({ kind: 'mirrored', fromCache: false });
    const firstNewFile = s3Calls().findIndex((call) => call.command === 'PutObjectCommand');
    for (const key of [pdf, ofd, xml]) {
      const deleted = s3Calls().findIndex((call) => call.command === 'DeleteObjectCommand' && call.Key === key && call.VersionId === `${key.split('/').at(-1)}#dead`);
      expect(deleted).toBeGreaterThan(-1);
      expect(deleted).toBeLessThan(firstNewFile);
    }
    const lockedLine = logged.warn.mock.calls.find(([message]) => String(message).includes('not removed'));
    expect(lockedLine?.[1]).toMatchObject({ key: xml, versionId: 'xml.zip#dead' });
    expect(jumdata.billedCallsFor(invoiceNo)).toBe(0);
  });
});

describe('an attempt that takes over from one that ended (pending, failed or done)', () => {
  it('looks for no leftovers and deletes nothing: an attempt that ended removed its own files', async () => {
    // Prepare: a pending record (its attempt failed and cleaned up) with Jumdata's answer kept
    const invoiceNo = '24312000000077770009';
    const now = new Date().toISOString();
    const files = { pdf: `${jumdata.url}/files/${invoiceNo}/pdf.PDF`, ofd: `${jumdata.url}/files/${invoiceNo}/ofd.zip`, xml: `${jumdata.url}/files/${invoiceNo}/xml.zip` };
    await jobs.create<DownloadWork>({
      fn: 'download',
      key: `${taxNum}/${invoiceNo}`,
      request: request(invoiceNo) as DownloadWork['request'],
      state: 'pending',
      attempts: 1,
      jumdata: { taskNo: 'T-pending', charged: true, files, fields: {}, fetchedAt: now },
      createdAt: now,
      updatedAt: now,
    });
    s3mock.on(PutObjectRetentionCommand).resolves({});
    // Act
    const outcome = await run(invoiceNo);
    // Assess
    expect(outcome).toMatchObject({ kind: 'mirrored', fromCache: false });
    expect(s3mock).not.toHaveReceivedCommand(HeadObjectCommand);
    expect(s3mock).not.toHaveReceivedCommand(DeleteObjectCommand);
  });
});
