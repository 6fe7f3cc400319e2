import {
  AbortMultipartUploadCommand,
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
import { mirrorInvoiceFiles } from '../../functions/download/mirror.ts';
import { listen } from '../helpers/servers.ts';

/**
 * The failure paths a local S3 server cannot produce: S3 itself failing in the middle of an upload. Files with a
 * declared length go up in one streamed PutObject; the ofd file here is sent without a length, so it goes through
 * lib-storage's multipart Upload. Whatever fails, the multipart upload is aborted and the files already stored are
 * removed, version and all.
 */

const s3mock = mockClient(S3Client);
let host: Awaited<ReturnType<typeof listen>>;
const bigZip = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(12 * 1024 * 1024, 1)]);

beforeAll(async () => {
  host = await listen((req, res) => {
    if (req.url === '/ofd.zip') {
      res.writeHead(200); // no content-length: chunked
      res.write(bigZip.subarray(0, 1024));
      return res.end(bigZip.subarray(1024));
    }
    // A PDF where the xml zip belongs, answered late so that its siblings are stored by the time it is refused.
    if (req.url === '/pdf-as-xml.zip') {
      setTimeout(() => res.writeHead(200, { 'content-length': 14 }).end('%PDF-1.4 small'), 300);
      return;
    }
    // The small files declare their length: one streamed PutObject each.
    if (req.url === '/pdf.PDF') return res.writeHead(200, { 'content-length': 14 }).end('%PDF-1.4 small');
    res.writeHead(200, { 'content-length': 10 }).end('PK\x03\x04 small');
  });
});
afterAll(() => host.close());
beforeEach(() => s3mock.reset());

const links = () => ({ pdf: `${host.url}/pdf.PDF`, ofd: `${host.url}/ofd.zip`, xml: `${host.url}/xml.zip` });
const options = () => ({
  s3: new S3Client({ region: 'cn-north-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }),
  bucket: 'archive',
  prefix: 'invoices/T/N',
  invoiceNo: 'N',
  policy: { allowedHosts: parseAllowedHosts(new URL(host.url).host), maxBytes: 64 * 1024 * 1024, maxRedirects: 3 },
  fileTimeoutMs: 10_000,
  signal: new AbortController().signal,
});

describe('mirroring when S3 fails mid-upload', () => {
  it('aborts the multipart upload and removes the sibling files already stored', async () => {
    // Prepare
    s3mock.on(PutObjectCommand).callsFake((input: { Key: string }) => ({ ETag: '"e"', VersionId: `v-${input.Key}` }));
    s3mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-1' });
    s3mock.on(UploadPartCommand).callsFake(async () => {
      await new Promise((resolve) => setTimeout(resolve, 200)); // the small files finish first
      throw new Error('S3 is unavailable');
    });
    s3mock.on(AbortMultipartUploadCommand).resolves({});
    s3mock.on(DeleteObjectCommand).resolves({});
    // Act
    const mirroring = mirrorInvoiceFiles(links(), options());
    // Assess
    await expect(mirroring).rejects.toThrow('S3 is unavailable');
    expect(s3mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, {
      Bucket: 'archive',
      Key: 'invoices/T/N/ofd.zip',
      UploadId: 'upload-1',
    });
    expect(s3mock).not.toHaveReceivedCommand(CompleteMultipartUploadCommand);
    expect(s3mock).toHaveReceivedCommandWith(DeleteObjectCommand, {
      Bucket: 'archive',
      Key: 'invoices/T/N/pdf.pdf',
      VersionId: 'v-invoices/T/N/pdf.pdf',
    });
    expect(s3mock).toHaveReceivedCommandWith(DeleteObjectCommand, {
      Bucket: 'archive',
      Key: 'invoices/T/N/xml.zip',
      VersionId: 'v-invoices/T/N/xml.zip',
    });
  });

  it('fails, having tried to abort, when the abort itself fails too (the bucket rule removes the parts later)', async () => {
    s3mock.on(PutObjectCommand).resolves({ ETag: '"e"' });
    s3mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-2' });
    s3mock.on(UploadPartCommand).rejects(new Error('S3 is unavailable'));
    s3mock.on(AbortMultipartUploadCommand).rejects(new Error('abort failed too'));
    s3mock.on(DeleteObjectCommand).resolves({});
    // lib-storage rejects with the abort's error in this case.
    await expect(mirrorInvoiceFiles(links(), options())).rejects.toThrow('abort failed too');
    expect(s3mock).toHaveReceivedCommand(AbortMultipartUploadCommand);
    expect(s3mock).not.toHaveReceivedCommand(CompleteMultipartUploadCommand);
  });

  it('removes the stored siblings when S3 refuses the PutObject of one file', async () => {
    s3mock.on(PutObjectCommand).callsFake((input: { Key: string }) => {
      if (input.Key.endsWith('xml.zip')) throw new Error('S3 refused the xml file');
      return { ETag: '"e"', VersionId: `v-${input.Key}` };
    });
    s3mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-4' });
    s3mock.on(UploadPartCommand).resolves({ ETag: '"p"' });
    s3mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"c"', VersionId: 'v-ofd' });
    s3mock.on(AbortMultipartUploadCommand).resolves({});
    s3mock.on(DeleteObjectCommand).resolves({});
    await expect(mirrorInvoiceFiles(links(), options())).rejects.toThrow('S3 refused the xml file');
    expect(s3mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Key: 'invoices/T/N/pdf.pdf', VersionId: 'v-invoices/T/N/pdf.pdf' });
    expect(s3mock).not.toHaveReceivedCommandWith(DeleteObjectCommand, { Key: 'invoices/T/N/xml.zip' });
  });

  it('tries a file once more when S3 fails its streamed PutObject, reading the link again', async () => {
    let xmlAttempts = 0;
    s3mock.on(PutObjectCommand).callsFake(async (input: { Key: string; Body: AsyncIterable<Buffer> }) => {
      if (input.Key.endsWith('xml.zip') && ++xmlAttempts === 1) throw new Error('socket hang up');
      for await (const _chunk of input.Body); // read the streamed body, as S3 would
      return { ETag: '"e"', VersionId: 'v1' };
    });
    s3mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-5' });
    s3mock.on(UploadPartCommand).resolves({ ETag: '"p"' });
    s3mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"c"', VersionId: 'v2' });
    const files = await mirrorInvoiceFiles(links(), options());
    expect(xmlAttempts).toBe(2);
    expect(files.xml).toMatchObject({ key: 'invoices/T/N/xml.zip', bytes: 10 });
    expect(s3mock).not.toHaveReceivedCommand(DeleteObjectCommand);
  });

  it('refuses a PDF in the xml slot as wrong content and removes the siblings already stored', async () => {
    // Prepare
    s3mock.on(PutObjectCommand).callsFake((input: { Key: string }) => ({ ETag: '"e"', VersionId: `v-${input.Key}` }));
    s3mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-6' });
    s3mock.on(UploadPartCommand).resolves({ ETag: '"p"' });
    s3mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"c"', VersionId: 'v-ofd' });
    s3mock.on(DeleteObjectCommand).resolves({});
    // Act
    const mirroring = mirrorInvoiceFiles({ ...links(), xml: `${host.url}/pdf-as-xml.zip` }, options());
    // Assess: refused for what it is, and nothing of the attempt kept
    await expect(mirroring).rejects.toMatchObject({ reason: 'wrong_content', message: 'the xml link gave a pdf, not a zip' });
    expect(s3mock).not.toHaveReceivedCommandWith(PutObjectCommand, { Key: 'invoices/T/N/xml.zip' });
    expect(s3mock).not.toHaveReceivedCommandWith(PutObjectCommand, { Key: 'invoices/T/N/xml.pdf' });
    expect(s3mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Key: 'invoices/T/N/pdf.pdf', VersionId: 'v-invoices/T/N/pdf.pdf' });
    expect(s3mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Key: 'invoices/T/N/ofd.zip', VersionId: 'v-ofd' });
    expect(s3mock).toHaveReceivedCommandTimes(DeleteObjectCommand, 2);
  });

  it('keeps the cause when removing a stored sibling fails too, and names the file left behind', async () => {
    // Prepare: the pdf cannot be removed
    s3mock.on(PutObjectCommand).callsFake((input: { Key: string }) => ({ ETag: '"e"', VersionId: `v-${input.Key}` }));
    s3mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-7' });
    s3mock.on(UploadPartCommand).resolves({ ETag: '"p"' });
    s3mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"c"', VersionId: 'v-ofd' });
    s3mock.on(DeleteObjectCommand, { Key: 'invoices/T/N/pdf.pdf' }).rejects(new Error('AccessDenied'));
    s3mock.on(DeleteObjectCommand, { Key: 'invoices/T/N/ofd.zip' }).resolves({});
    const errors = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    // Act
    const mirroring = mirrorInvoiceFiles({ ...links(), xml: `${host.url}/pdf-as-xml.zip` }, options());
    // Assess: the wrong content is still the answer, the other sibling is removed, the orphan is named
    await expect(mirroring).rejects.toMatchObject({ reason: 'wrong_content' });
    expect(s3mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Key: 'invoices/T/N/ofd.zip', VersionId: 'v-ofd' });
    expect(errors).toHaveBeenCalledWith(
      'orphaned file not removed',
      expect.objectContaining({ key: 'invoices/T/N/pdf.pdf', versionId: 'v-invoices/T/N/pdf.pdf' }),
    );
    vi.restoreAllMocks();
  });

  it('stores the three files with their content types when S3 works', async () => {
    s3mock.on(PutObjectCommand).resolves({ ETag: '"e"', VersionId: 'v1' });
    s3mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-3' });
    s3mock.on(UploadPartCommand).resolves({ ETag: '"p"' });
    s3mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"c"', VersionId: 'v2' });
    const files = await mirrorInvoiceFiles(links(), options());
    expect(files.ofd).toMatchObject({ key: 'invoices/T/N/ofd.zip', bytes: bigZip.length, contentType: 'application/zip', versionId: 'v2' });
    expect(files.pdf).toMatchObject({ key: 'invoices/T/N/pdf.pdf', contentType: 'application/pdf', versionId: 'v1' });
    expect(s3mock).toHaveReceivedCommandWith(PutObjectCommand, { Key: 'invoices/T/N/pdf.pdf', ContentLength: 14 });
    expect(s3mock).toHaveReceivedCommandTimes(UploadPartCommand, 3);
    expect(s3mock).not.toHaveReceivedCommand(DeleteObjectCommand);
  });
});
