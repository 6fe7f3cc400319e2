import { createHash } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseAllowedHosts } from '#shared/fetch-policy';
import { logger } from '#shared/logger';
import { createS3Client } from '#shared/storage';
import { mirrorInvoiceFiles } from '../../functions/download/mirror.ts';
import { listen } from '../helpers/servers.ts';

/**
 * Checksums S3 keeps (S3_CHECKSUMS on): a file with a declared length goes up in one PutObject with a SHA-256, which
 * S3 answers and which must be the SHA-256 of the bytes streamed; a file without one goes up in parts with a full-object
 * CRC64NVME. What S3 answered is recorded beside the file's own sha256, for the audit. The embedded S3 cannot take
 * checksummed streamed uploads, so this path is tested against a mocked S3.
 */

const s3mock = mockClient(S3Client);
let host: Awaited<ReturnType<typeof listen>>;
const pdf = Buffer.from('%PDF-1.4 a small invoice');
const xml = Buffer.from('PK\x03\x04 a small zip', 'latin1');
const ofd = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(6 * 1024 * 1024, 7)]);
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes);

beforeAll(async () => {
  host = await listen((req, res) => {
    if (req.url === '/ofd.zip') return res.writeHead(200).end(ofd); // no content-length: multipart
    const body = req.url === '/pdf.PDF' ? pdf : xml;
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
});
afterAll(() => host.close());
beforeEach(() => {
  s3mock.reset();
  vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
});

const links = () => ({ pdf: `${host.url}/pdf.PDF`, ofd: `${host.url}/ofd.zip`, xml: `${host.url}/xml.zip` });
const options = (checksums: boolean) => ({
  s3: new S3Client({ region: 'cn-north-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }),
  bucket: 'archive',
  prefix: 'invoices/T/N',
  invoiceNo: 'N',
  policy: { allowedHosts: parseAllowedHosts(new URL(host.url).host), maxBytes: 64 * 1024 * 1024, maxRedirects: 3 },
  fileTimeoutMs: 10_000,
  signal: new AbortController().signal,
  checksums,
});

/** The versions the mocked S3 stored, in order. */
let storedVersions: string[] = [];

/** A PutObject that reads the body as S3 would and answers the SHA-256 of what it read (or `answer`'s). */
function s3StoresWithSha256(answer?: (bytes: Buffer) => string) {
  storedVersions = [];
  s3mock.on(PutObjectCommand).callsFake(async (input: { Key: string; Body: AsyncIterable<Buffer> }) => {
    const chunks: Buffer[] = [];
    for await (const chunk of input.Body) chunks.push(chunk);
    const bytes = Buffer.concat(chunks);
    const versionId = `v${storedVersions.length + 1}-${input.Key}`;
    storedVersions.push(versionId);
    return { ETag: '"e"', VersionId: versionId, ChecksumSHA256: answer ? answer(bytes) : sha256(bytes).digest('base64') };
  });
  s3mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-1' });
  s3mock.on(UploadPartCommand).callsFake(async (input: { PartNumber: number }) => ({ ETag: `"p${input.PartNumber}"` }));
  s3mock.on(CompleteMultipartUploadCommand).resolves({ VersionId: 'v-ofd', ChecksumCRC64NVME: 'AAECAwQFBgc=', ChecksumType: 'FULL_OBJECT' });
  s3mock.on(DeleteObjectCommand).resolves({});
}

describe('mirroring with checksums S3 keeps', () => {
  it('asks for a SHA-256 on each PutObject and a full-object CRC64NVME on a multipart upload, and records what S3 answered', async () => {
    // Prepare
    s3StoresWithSha256();
    // Act
    const files = await mirrorInvoiceFiles(links(), options(true));
    // Assess: the requests
    expect(s3mock).toHaveReceivedCommandWith(PutObjectCommand, { Key: 'invoices/T/N/pdf.pdf', ChecksumAlgorithm: 'SHA256' });
    expect(s3mock).toHaveReceivedCommandWith(PutObjectCommand, { Key: 'invoices/T/N/xml.zip', ChecksumAlgorithm: 'SHA256' });
    expect(s3mock).toHaveReceivedCommandWith(CreateMultipartUploadCommand, { Key: 'invoices/T/N/ofd.zip', ChecksumAlgorithm: 'CRC64NVME', ChecksumType: 'FULL_OBJECT' });
    // Assess: what is recorded, beside the file's own sha256 and version
    expect(files.pdf).toMatchObject({ sha256: sha256(pdf).digest('hex'), versionId: expect.stringMatching(/^v\d-invoices\/T\/N\/pdf\.pdf$/), checksum: { algorithm: 'SHA256', value: sha256(pdf).digest('base64') } });
    expect(files.xml.checksum).toEqual({ algorithm: 'SHA256', value: sha256(xml).digest('base64') });
    expect(files.ofd).toMatchObject({ sha256: sha256(ofd).digest('hex'), versionId: 'v-ofd', checksum: { algorithm: 'CRC64NVME', value: 'AAECAwQFBgc=' } });
  });

  it('fails the file when S3 answers another SHA-256 than the bytes sent, and keeps nothing', async () => {
    // Prepare: S3 says it holds other bytes, every time
    s3StoresWithSha256(() => sha256(Buffer.from('other bytes')).digest('base64'));
    // Act
    const mirroring = mirrorInvoiceFiles(links(), options(true));
    // Assess
    await expect(mirroring).rejects.toThrow(/S3 stored the (pdf|xml) file with another SHA-256 than the bytes sent/);
    // Assess: every version S3 stored with the wrong checksum (each try of a file) was removed
    expect(storedVersions.length).toBeGreaterThanOrEqual(1);
    const removed = s3mock.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input.VersionId);
    for (const version of storedVersions) expect(removed).toContain(version);
  });

  it('asks for no checksum with S3_CHECKSUMS off (an S3-compatible server), and records none', async () => {
    // Prepare: the client local mode makes for its endpoint
    s3StoresWithSha256();
    // Act
    const files = await mirrorInvoiceFiles(links(), { ...options(false), s3: createS3Client('http://127.0.0.1:9') });
    // Assess
    const puts = s3mock.commandCalls(PutObjectCommand).map((call) => call.args[0].input);
    expect(puts.map((input) => input.ChecksumAlgorithm)).toEqual([undefined, undefined]);
    expect(s3mock.commandCalls(CreateMultipartUploadCommand)[0]!.args[0].input.ChecksumAlgorithm).toBeUndefined();
    expect(Object.values(files).map((file) => file.checksum)).toEqual([undefined, undefined, undefined]);
  });
});
