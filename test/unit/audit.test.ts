import { createHash } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NotFound,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { JobStore } from '#shared/jobs';
import { logger } from '#shared/logger';
import { auditJobs, type AuditReport } from '../../functions/download/audit-job.ts';
import type { InvoiceEntry } from '../../functions/download/invoice-entry.ts';
import { invoiceIndex, type InvoiceIndex } from '../../functions/download/invoice-index.ts';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb.ts';

/**
 * The integrity audit against a versioned bucket, which no local S3 server has: S3 is a small in-memory versioned
 * bucket behind aws-sdk-client-mock (versions, delete markers, S3's checksums, Object Lock dates), the index a real
 * one in dynalite. Each kind of damage is done to one invoice, and the report must name exactly that.
 */

const DAY = 24 * 3_600_000;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes);

/** One version of an object in the fake bucket. */
interface Version {
  versionId: string;
  bytes?: Buffer;
  deleteMarker?: boolean;
  checksumSha256?: string;
  retainUntil?: Date;
  lastModified: Date;
}

/** A versioned bucket: each key's versions, the last one current. */
const bucket = new Map<string, Version[]>();
let versions = 0;

function store(key: string, bytes: Buffer, options: { s3Checksum?: boolean; retainUntil?: Date; lastModified?: Date } = {}): Version {
  const version: Version = {
    versionId: `v${++versions}`,
    bytes,
    checksumSha256: options.s3Checksum === false ? undefined : sha256(bytes).digest('base64'),
    retainUntil: options.retainUntil,
    lastModified: options.lastModified ?? new Date(),
  };
  bucket.set(key, [...(bucket.get(key) ?? []), version]);
  return version;
}

/** A GetObject body as the SDK gives it: a stream, with its transform helpers. */
const body = (bytes: Buffer) =>
  Object.assign(Readable.from([bytes]), { transformToString: async () => bytes.toString(), transformToByteArray: async () => new Uint8Array(bytes) });

const notFound = () => new NotFound({ message: 'Not Found', $metadata: { httpStatusCode: 404 } });

const s3mock = mockClient(S3Client);
function fakeVersionedBucket() {
  const find = (key: string, versionId?: string) => {
    const all = bucket.get(key) ?? [];
    const version = versionId ? all.find((v) => v.versionId === versionId) : all.at(-1);
    if (!version || version.deleteMarker) throw notFound();
    return version;
  };
  s3mock.on(HeadObjectCommand).callsFake(async (input: { Key: string; VersionId?: string }) => {
    const v = find(input.Key, input.VersionId);
    return {
      VersionId: v.versionId,
      ContentLength: v.bytes!.length,
      ChecksumSHA256: v.checksumSha256,
      ...(v.retainUntil ? { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: v.retainUntil } : {}),
    };
  });
  s3mock.on(GetObjectCommand).callsFake(async (input: { Key: string; VersionId?: string }) => ({
    VersionId: find(input.Key, input.VersionId).versionId,
    Body: body(find(input.Key, input.VersionId).bytes!),
  }));
  s3mock.on(PutObjectCommand).callsFake(async (input: { Key: string; Body: string }) => ({ VersionId: store(input.Key, Buffer.from(input.Body)).versionId }));
  s3mock.on(PutObjectRetentionCommand).callsFake(async (input: { Key: string; VersionId: string; Retention: { RetainUntilDate: Date } }) => {
    find(input.Key, input.VersionId).retainUntil = input.Retention.RetainUntilDate;
    return {};
  });
  s3mock.on(DeleteObjectCommand).callsFake(async (input: { Key: string; VersionId?: string }) => {
    if (!input.VersionId) throw new Error('the audit must delete by version');
    bucket.set(input.Key, (bucket.get(input.Key) ?? []).filter((v) => v.versionId !== input.VersionId));
    return {};
  });
  s3mock.on(ListObjectsV2Command).callsFake(async (input: { Prefix: string; StartAfter?: string }) => ({
    Contents: [...bucket.entries()]
      .filter(([key, all]) => key.startsWith(input.Prefix) && (!input.StartAfter || key > input.StartAfter) && all.length > 0 && !all.at(-1)!.deleteMarker)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, all]) => ({ Key: key, LastModified: all.at(-1)!.lastModified })),
    IsTruncated: false,
  }));
}

let dynamo: LocalDynamo;
let client: DynamoDBClient;
let index: InvoiceIndex;
let jobs: JobStore;

beforeAll(async () => {
  dynamo = await startLocalDynamo({ tables: ['jobs'], invoiceTables: ['invoices'] });
  client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'cn-north-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
});
afterAll(async () => {
  client.destroy();
  await dynamo.close();
});
beforeEach(async () => {
  s3mock.reset();
  bucket.clear();
  fakeVersionedBucket();
  index = invoiceIndex(client, 'invoices');
  jobs = new JobStore(client, 'jobs');
  vi.spyOn(logger, 'info').mockImplementation(() => undefined);
});

/** Mirrors an invoice into the fake bucket and the index, as the download does; returns its entry. */
async function mirrored(taxNum: string, invoiceNo: string, options: { s3Checksum?: boolean; retainUntil?: Date } = {}): Promise<InvoiceEntry> {
  const prefix = `invoices/${taxNum}/${invoiceNo}`;
  const file = (name: string, bytes: Buffer, contentType: string) => {
    const version = store(`${prefix}/${name}`, bytes, options);
    return {
      key: `${prefix}/${name}`,
      bytes: bytes.length,
      sha256: sha256(bytes).digest('hex'),
      contentType,
      versionId: version.versionId,
      ...(options.s3Checksum === false ? {} : { checksum: { algorithm: 'SHA256' as const, value: version.checksumSha256! } }),
    };
  };
  const entry: InvoiceEntry = {
    taxNum,
    invoiceNo,
    direction: 'sales',
    issueDate: '2024-04-25',
    mirroredAt: '2024-04-26T02:00:00.000Z',
    invoice: { voided: false, redFlushed: false },
    files: {
      pdf: file('pdf.pdf', Buffer.from(`%PDF-1.4 ${invoiceNo}`), 'application/pdf'),
      ofd: file('ofd.zip', Buffer.from(`PK\x03\x04 ofd ${invoiceNo}`, 'latin1'), 'application/zip'),
      xml: file('xml.zip', Buffer.from(`PK\x03\x04 xml ${invoiceNo}`, 'latin1'), 'application/zip'),
    },
  };
  store(`${prefix}/invoice.json`, Buffer.from(JSON.stringify(entry)), options);
  await index.add(entry);
  return entry;
}

const audits = (options: { retention?: boolean; pageSize?: number } = {}) =>
  auditJobs({
    s3: new S3Client({ region: 'cn-north-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }),
    bucket: 'archive',
    index,
    jobs: { store: jobs, leaseSeconds: 60, policy: { maxAttempts: 2, backoffBaseSeconds: 1, backoffMaxSeconds: 2 }, waitMs: 0 },
    retention: options.retention ? { years: 30, from: 'fiscal-year-end', graceYears: 1 } : undefined,
    pageSize: options.pageSize,
  });

/** Runs an audit of one taxpayer to its end, one run after another; its report and how many runs it took. */
async function auditToTheEnd(taxNum: string, options: { retention?: boolean; pageSize?: number; deadline?: () => number } = {}) {
  const job = audits(options);
  for (let runs = 1; runs <= 50; runs++) {
    const outcome = await job.run({ taxNum }, { deadline: options.deadline?.() ?? Date.now() + 20_000, mode: 'request' });
    if (outcome.kind === 'done') return { report: (await job.report(outcome.result.key))!, runs, latest: await job.report() };
    if (outcome.kind !== 'pending') throw new Error(`audit ${outcome.kind}: ${String((outcome as { reason?: unknown }).reason)}`);
  }
  throw new Error('the audit did not finish in 50 runs');
}

let taxNums = 0;
/** Each test audits the invoices of a taxpayer of its own: the index and the jobs table are the file's. */
const taxpayer = () => `9131011756805${String(++taxNums).padStart(5, '0')}`;

const problemsOf = (report: AuditReport) => report.problems.map(({ invoiceNo, kind, problem }) => `${invoiceNo} ${kind} ${problem}`).sort();

describe('the integrity audit', () => {
  it('reports nothing on a clean archive, with one HeadObject per object and no file read where S3 keeps a checksum', async () => {
    // Prepare
    const taxNum = taxpayer();
    for (const invoiceNo of ['24312000000000000001', '24312000000000000002', '24312000000000000003']) await mirrored(taxNum, invoiceNo);
    s3mock.resetHistory();
    // Act
    const { report } = await auditToTheEnd(taxNum);
    // Assess
    expect(report).toMatchObject({ scope: taxNum, finished: true, invoices: 3, files: 9, problems: [], extended: [], orphans: [], unindexed: 0 });
    expect(report.finishedAt).toBeDefined();
    expect(s3mock.commandCalls(HeadObjectCommand)).toHaveLength(3 * 4);
    expect(s3mock.commandCalls(GetObjectCommand).filter((call) => call.args[0].input.Key!.startsWith('invoices/'))).toHaveLength(0);
  });
});

describe('the integrity audit finds', () => {
  it('a file written over, deleted, of another size, with another checksum, an invoice.json missing: each exactly', async () => {
    // Prepare: six invoices; five damaged behind the bridge's back, one a different way each
    const taxNum = taxpayer();
    const n = (i: number) => `2431200000000000010${i}`;
    const entries = [];
    for (let i = 1; i <= 6; i++) entries.push(await mirrored(taxNum, n(i)));
    store(`invoices/${taxNum}/${n(1)}/pdf.pdf`, Buffer.from('%PDF-1.4 a new version on top'));
    bucket.get(`invoices/${taxNum}/${n(2)}/ofd.zip`)!.push({ versionId: 'marker', deleteMarker: true, lastModified: new Date() });
    bucket.get(`invoices/${taxNum}/${n(3)}/xml.zip`)!.at(-1)!.bytes = Buffer.from('PK\x03\x04 truncated', 'latin1');
    const changed = bucket.get(`invoices/${taxNum}/${n(4)}/pdf.pdf`)!.at(-1)!;
    changed.checksumSha256 = sha256(Buffer.from('other bytes of the same length')).digest('base64');
    bucket.delete(`invoices/${taxNum}/${n(5)}/invoice.json`);
    // Act
    const { report } = await auditToTheEnd(taxNum);
    // Assess: exactly these problems, each once (the recorded version under the new one is intact); the sixth is clean
    expect(problemsOf(report)).toEqual([
      `${n(1)} pdf overwritten`,
      `${n(2)} ofd missing`,
      `${n(3)} xml size`,
      `${n(4)} pdf checksum`,
      `${n(5)} invoice.json missing`,
    ].sort());
    expect(report.problems.find((p) => p.invoiceNo === n(1) && p.problem === 'overwritten')!.message).toMatch(/version v\d+ was written over the recorded version v\d+/);
    expect(report).toMatchObject({ invoices: 6, files: 18, finished: true });
  });

  it('a changed file that S3 keeps no checksum of, by reading it, and only those files', async () => {
    // Prepare: mirrored before checksums (or on an S3-compatible server): the audit reads each file
    const taxNum = taxpayer();
    await mirrored(taxNum, '24312000000000000201', { s3Checksum: false });
    const pdf = bucket.get(`invoices/${taxNum}/24312000000000000201/pdf.pdf`)!.at(-1)!;
    pdf.bytes = Buffer.from(pdf.bytes!.toString().replace('0201', '9999'));
    s3mock.resetHistory();
    // Act
    const { report } = await auditToTheEnd(taxNum);
    // Assess
    expect(problemsOf(report)).toEqual(['24312000000000000201 pdf checksum']);
    expect(report.problems[0]!.message).toMatch(/the stored bytes' SHA-256 is [0-9a-f]{64}, [0-9a-f]{64} was recorded/);
    expect(s3mock.commandCalls(GetObjectCommand).filter((call) => call.args[0].input.Key!.startsWith('invoices/'))).toHaveLength(3);
  });

  it('locks shorter than the law asks, and extends them (never shortens), reporting what it extended', async () => {
    // Prepare: one invoice locked for 10 years from mirroring, as objectLockYears did; one not locked at all
    const taxNum = taxpayer();
    await mirrored(taxNum, '24312000000000000301', { retainUntil: new Date('2034-04-26T02:00:00Z') });
    await mirrored(taxNum, '24312000000000000302');
    // Act
    const { report } = await auditToTheEnd(taxNum, { retention: true });
    // Assess: every object (three files and invoice.json) of both now locked until the end of 2055, China time
    expect(report.problems).toEqual([]);
    expect(report.extended).toHaveLength(8);
    const until = '2055-12-31T16:00:00.000Z';
    expect(report.extended.filter((e) => e.invoiceNo === '24312000000000000301')).toEqual(
      expect.arrayContaining([{ taxNum, invoiceNo: '24312000000000000301', kind: 'pdf', from: '2034-04-26T02:00:00.000Z', to: until }]),
    );
    expect(report.extended.find((e) => e.invoiceNo === '24312000000000000302' && e.kind === 'invoice.json')).toEqual({ taxNum, invoiceNo: '24312000000000000302', kind: 'invoice.json', to: until });
    for (const [key, all] of bucket) if (key.startsWith(`invoices/${taxNum}/`)) expect(all.at(-1)!.retainUntil?.toISOString()).toBe(until);
    // Assess: a second audit finds nothing to extend
    expect((await auditToTheEnd(taxNum, { retention: true })).report.extended).toEqual([]);
  });

  it('a lock S3 refuses to extend, as a problem', async () => {
    const taxNum = taxpayer();
    await mirrored(taxNum, '24312000000000000401');
    s3mock.on(PutObjectRetentionCommand).rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));
    const { report } = await auditToTheEnd(taxNum, { retention: true });
    expect(problemsOf(report)).toEqual(['ofd', 'pdf', 'xml', 'invoice.json'].map((kind) => `24312000000000000401 ${kind} unlocked`).sort());
    expect(report.problems[0]!.message).toMatch(/^not locked; could not be locked until 2055-12-31T16:00:00.000Z \(AccessDenied: Access Denied\)$/);
  });
});

describe('the integrity audit and orphans', () => {
  it('removes by version the files of an attempt that died over a day ago, reports a locked one, and leaves the young and the complete alone', async () => {
    // Prepare
    const taxNum = taxpayer();
    const complete = await mirrored(taxNum, '24312000000000000501');
    const old = new Date(Date.now() - 2 * DAY);
    const dead = store(`invoices/${taxNum}/24312000000000000502/pdf.pdf`, Buffer.from('%PDF-1.4 left behind'), { lastModified: old });
    const retainUntil = new Date('2060-01-01T00:00:00Z');
    store(`invoices/${taxNum}/24312000000000000503/ofd.zip`, Buffer.from('PK locked'), { lastModified: old, retainUntil });
    store(`invoices/${taxNum}/24312000000000000504/xml.zip`, Buffer.from('PK in progress'));
    store(`invoices/${taxNum}/24312000000000000505/invoice.json`, Buffer.from('{}'), { lastModified: old });
    // Act
    const { report } = await auditToTheEnd(taxNum);
    // Assess: the report
    expect(report.orphans).toEqual([
      { key: `invoices/${taxNum}/24312000000000000502/pdf.pdf`, versionId: dead.versionId, removed: true },
      { key: `invoices/${taxNum}/24312000000000000503/ofd.zip`, versionId: expect.any(String), removed: false, retainUntil: retainUntil.toISOString() },
    ]);
    expect(report).toMatchObject({ unindexed: 1, problems: [], invoices: 1 });
    // Assess: exactly one delete, by version; nothing of the complete invoice touched
    const deletes = s3mock.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input);
    expect(deletes).toEqual([{ Bucket: 'archive', Key: `invoices/${taxNum}/24312000000000000502/pdf.pdf`, VersionId: dead.versionId }]);
    expect(bucket.get(complete.files.pdf.key)).toHaveLength(1);
    expect(bucket.get(`invoices/${taxNum}/24312000000000000504/xml.zip`)).toHaveLength(1);
  });

  it('never deletes an object of a complete invoice, however old and whatever its state', async () => {
    // Prepare: complete invoices, old, one of them with every kind of damage
    const taxNum = taxpayer();
    for (let i = 1; i <= 3; i++) await mirrored(taxNum, `2431200000000000060${i}`);
    for (const all of bucket.values()) for (const v of all) v.lastModified = new Date(Date.now() - 400 * DAY);
    store(`invoices/${taxNum}/24312000000000000601/pdf.pdf`, Buffer.from('%PDF on top'), { lastModified: new Date(Date.now() - 3 * DAY) });
    bucket.delete(`invoices/${taxNum}/24312000000000000602/invoice.json`);
    // Act
    await auditToTheEnd(taxNum);
    // Assess
    expect(s3mock).not.toHaveReceivedCommand(DeleteObjectCommand);
  });
});

describe('an audit cut by its time', () => {
  it('goes on from where it stopped, run after run, and reports every invoice once', async () => {
    // Prepare: seven invoices, two of them damaged; pages of two, and no time at all in each run
    const taxNum = taxpayer();
    for (let i = 1; i <= 7; i++) await mirrored(taxNum, `2431200000000000070${i}`);
    bucket.delete(`invoices/${taxNum}/24312000000000000703/invoice.json`);
    store(`invoices/${taxNum}/24312000000000000706/xml.zip`, Buffer.from('PK on top'));
    // Act
    const { report, runs, latest } = await auditToTheEnd(taxNum, { pageSize: 2, deadline: () => Date.now() });
    // Assess: one page a run (four of the index, one of the bucket), each invoice counted and reported once
    expect(runs).toBe(5);
    expect(report).toMatchObject({ invoices: 7, files: 21, finished: true });
    expect(problemsOf(report)).toEqual([
      '24312000000000000703 invoice.json missing',
      '24312000000000000706 xml overwritten',
    ]);
    expect(latest).toEqual(report);
  });

  it('is shown unfinished by the latest report while it goes on', async () => {
    const taxNum = taxpayer();
    for (let i = 1; i <= 3; i++) await mirrored(taxNum, `2431200000000000080${i}`);
    const job = audits({ pageSize: 1 });
    const outcome = await job.run({ taxNum }, { deadline: Date.now(), mode: 'request' });
    expect(outcome.kind).toBe('pending');
    expect(await job.report()).toMatchObject({ scope: taxNum, finished: false, invoices: 1, progress: { phase: 'invoices' } });
  });
});
