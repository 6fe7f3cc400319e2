import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { lambdaContext } from '../../local/api-gateway.ts';
import { JUMDATA_SANDBOX_CREDENTIALS, JUMDATA_SANDBOX_INVOICES as INVOICES } from '../../local/sandboxes/jumdata.ts';
import { linkSignature } from '../../functions/download/links.ts';
import { jobPk } from '#shared/jobs';
import type { BatchReport } from '#shared/middleware';
import { signJumdata } from '#shared/providers/jumdata';
import { localDynamoClient, localS3Client, useLocalMode } from '../helpers/local-mode.ts';

/**
 * The download function end to end: real HTTP requests to local mode, the Jumdata sandbox and its file host, and
 * the embedded S3, whose contents the tests read back with the real SDK client.
 */

const { state, post } = useLocalMode(
  { requestBudgetMs: 6_000, jumdata: { slowFileMs: 10_000, overCapBytes: 2 * 1024 * 1024 } },
  { MIRROR_MAX_FILE_BYTES: String(1024 * 1024) },
);
const taxNum = '91310117568051222X';
const jumdata = () => state.local.sandboxes.jumdata!;
let s3: S3Client;

beforeAll(() => {
  s3 = localS3Client(state.local);
});

const request = (invoiceNo: string) => ({ taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales' });
const download = (invoiceNo: string) => post('/download', request(invoiceNo));

async function keysUnder(prefix: string): Promise<string[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: state.local.bucket, Prefix: prefix }));
  return (listed.Contents ?? []).map((object) => object.Key!).sort();
}

async function objectBytes(key: string): Promise<{ bytes: Buffer; contentType?: string }> {
  const object = await s3.send(new GetObjectCommand({ Bucket: state.local.bucket, Key: key }));
  return { bytes: Buffer.from(await object.Body!.transformToByteArray()), contentType: object.ContentType };
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const invoiceFolder = (invoiceNo: string) => `invoices/${taxNum}/${invoiceNo}/`;
/** The download's job record as stored in the embedded DynamoDB's jobs table, read with the SDK. */
async function workRecord(invoiceNo: string): Promise<Record<string, any>> {
  const documents = DynamoDBDocumentClient.from(
    localDynamoClient(state.local),
  );
  const { Item } = await documents.send(
    new GetCommand({ TableName: state.local.jobsTable, Key: { pk: jobPk('download', `${taxNum}/${invoiceNo}`) }, ConsistentRead: true }),
  );
  return Item!;
}

/** Removes an invoice's entry from the archive's index, as if its write had failed. */
async function deleteIndexEntry(invoiceNo: string): Promise<void> {
  const documents = DynamoDBDocumentClient.from(
    localDynamoClient(state.local),
  );
  await documents.send(new DeleteCommand({ TableName: state.local.invoicesTable, Key: { pk: `${taxNum}#${invoiceNo}` } }));
}

describe('POST /download: a successful mirror', () => {
  it('asks Jumdata once, signed, and stores the three files and then invoice.json in S3', async () => {
    // Act
    const answer = await download(INVOICES.success);
    // Assess: the answer
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      taxNum,
      invoiceNo: INVOICES.success,
      issueDate: '2024-04-25',
      fromCache: false,
      // Read from the tax bureau's XML (the sandbox's plain invoice: three lines, one a discount), and Jumdata's verdicts
      invoice: {
        number: INVOICES.success,
        issuedAt: '2024-04-25 15:58:41',
        type: '普通发票',
        seller: { taxNum, name: '上海示例信息技术有限公司' },
        buyer: { taxNum: '91110000600037341L', name: '北京示例贸易有限公司' },
        amount: '1200.00',
        tax: '93.00',
        total: '1293.00',
        redLetterOf: null,
        voided: false,
        redFlushed: false,
        buyerTaxNum: '91110000600037341L',
        verification: '经查验,发票信息一致',
      },
      checks: { xmlRead: true, numberMatches: true, partyMatches: true, itemsAddUp: true },
    });
    expect(answer.body.invoice.items).toHaveLength(3);
    expect(answer.body.invoice.items[1]).toMatchObject({ amount: '-100.00', quantity: '', taxRate: '6%' });
    // Assess: the billed call, signed with a millisecond timestamp
    expect(jumdata().billedCallsFor(INVOICES.success)).toBe(1);
    const call = jumdata().received.find((r) => r.fields.fphm === INVOICES.success)!;
    expect(call.fields).toMatchObject({ appId: JUMDATA_SANDBOX_CREDENTIALS.appId, nsrsbh: taxNum, kprq: '2024-04-25', jxxbz: '2' });
    expect(call.fields.timestamp).toMatch(/^\d{13}$/);
    expect(call.fields.sign).toBe(signJumdata(JUMDATA_SANDBOX_CREDENTIALS.appId, JUMDATA_SANDBOX_CREDENTIALS.appSecret, call.fields.timestamp!));
    // Assess: what is in S3
    expect(await keysUnder(invoiceFolder(INVOICES.success))).toEqual(
      ['invoice.json', 'ofd.zip', 'pdf.pdf', 'xml.zip'].map((name) => invoiceFolder(INVOICES.success) + name),
    );
    for (const [kind, name, type] of [['pdf', 'pdf.pdf', 'application/pdf'], ['ofd', 'ofd.zip', 'application/zip'], ['xml', 'xml.zip', 'application/zip']] as const) {
      const stored = await objectBytes(invoiceFolder(INVOICES.success) + name);
      const original = Buffer.from(await (await fetch(`${jumdata().url}/files/${INVOICES.success}/${kind}.x?nsrsbh=${taxNum}&jxxbz=2&kprq=2024-04-25`)).arrayBuffer());
      expect(stored.bytes.equals(original)).toBe(true);
      expect(stored.contentType).toBe(type);
      expect(answer.body.files[kind]).toMatchObject({ bytes: original.length, sha256: sha256(original), contentType: type });
    }
    const record = JSON.parse((await objectBytes(invoiceFolder(INVOICES.success) + 'invoice.json')).bytes.toString());
    expect(record).toMatchObject({
      taxNum,
      invoiceNo: INVOICES.success,
      jumdata: { charged: true, taskNo: expect.any(String) },
      files: { pdf: { key: `${invoiceFolder(INVOICES.success)}pdf.pdf`, sha256: answer.body.files.pdf.sha256 } },
    });
    // Assess: the job record is kept, done, out of the queues, and set to expire (TTL) a day later
    const job = await workRecord(INVOICES.success);
    expect(job).toMatchObject({ state: 'done', attempts: 1, jumdata: { charged: true } });
    expect(job).not.toHaveProperty('queue');
    expect(Number(job.expiresAt) - Date.now() / 1000).toBeGreaterThan(23 * 3600);
    expect(Number(job.expiresAt) - Date.now() / 1000).toBeLessThanOrEqual(24 * 3600);
  });

  it('hands out presigned URLs of 15 minutes or less that open the stored files', async () => {
    const answer = await download(INVOICES.success);
    const { url, expiresAt, sha256: expected } = answer.body.files.pdf;
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(15 * 60 * 1000);
    expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('600');
    const bytes = Buffer.from(await (await fetch(url)).arrayBuffer());
    expect(sha256(bytes)).toBe(expected);
  });

  it('answers the second request from S3 with fromCache and no Jumdata call', async () => {
    const billedBefore = jumdata().billedCalls();
    const answer = await download(INVOICES.success);
    expect(answer.status).toBe(200);
    expect(answer.body.fromCache).toBe(true);
    expect(jumdata().billedCalls()).toBe(billedBefore);
  });

  it('makes exactly one billed call for twenty identical requests arriving at once', async () => {
    const invoiceNo = '24312000000055550020';
    const answers = await Promise.all(Array.from({ length: 20 }, () => download(invoiceNo)));
    expect(jumdata().billedCallsFor(invoiceNo)).toBe(1);
    expect(answers.filter((a) => a.status !== 200 && a.status !== 202)).toEqual([]);
    expect(answers.filter((a) => a.status === 200 && a.body.fromCache === false)).toHaveLength(1);
    expect(await keysUnder(invoiceFolder(invoiceNo))).toHaveLength(4);
  });

  it('answers from the index alone, as mirrored, when invoice.json has gone', async () => {
    // Arrange: the index entry is the commit point: an invoice with one is complete
    const invoiceNo = '24312000000055550022';
    expect((await download(invoiceNo)).status).toBe(200);
    await s3.send(new DeleteObjectCommand({ Bucket: state.local.bucket, Key: `${invoiceFolder(invoiceNo)}invoice.json` }));
    // Act
    const answer = await download(invoiceNo);
    // Assess
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ fromCache: true, checks: { xmlRead: true } });
    expect(jumdata().billedCallsFor(invoiceNo)).toBe(1);
  });

  it('mirrors again from the finished record\'s kept answer, unbilled, when neither invoice.json nor its index entry was written', async () => {
    // Arrange: a finished invoice whose invoice.json and index entry are lost (a finish whose writes failed)
    const invoiceNo = '24312000000055550021';
    expect((await download(invoiceNo)).status).toBe(200);
    await s3.send(new DeleteObjectCommand({ Bucket: state.local.bucket, Key: `${invoiceFolder(invoiceNo)}invoice.json` }));
    await deleteIndexEntry(invoiceNo);
    // Act
    const answer = await download(invoiceNo);
    // Assess: mirrored anew from the done record's links, with no second billed call, and done again (a job that
    // ended and is asked again starts its count over, as every job does)
    expect(answer.status).toBe(200);
    expect(answer.body.fromCache).toBe(false);
    expect(jumdata().billedCallsFor(invoiceNo)).toBe(1);
    expect(await keysUnder(invoiceFolder(invoiceNo))).toHaveLength(4);
    expect(await workRecord(invoiceNo)).toMatchObject({ state: 'done', attempts: 1 });
  });
});

describe('POST /download: what Jumdata refuses', () => {
  it('answers 422 saying a tax-bureau login is needed for 301, and keeps the work for later', async () => {
    const answer = await download(INVOICES.loginRequired);
    expect(answer.status).toBe(422);
    expect(answer.body.error).toMatchObject({ code: 'UPSTREAM_REJECTED', upstream: { provider: 'jumdata', code: 301 } });
    expect(answer.body.error.message).toContain('tax bureau login');
    expect(await workRecord(INVOICES.loginRequired)).toMatchObject({ state: 'pending', attempts: 1, lastError: { upstream: { code: 301 } } });
    expect(await keysUnder(invoiceFolder(INVOICES.loginRequired))).toEqual([]);
  });

  it('answers 503 for 399, and mirrors on the next request with one billed call in all', async () => {
    const first = await download(INVOICES.flakyOnce);
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toBe('60');
    const second = await download(INVOICES.flakyOnce);
    expect(second.status).toBe(200);
    expect(second.body.fromCache).toBe(false);
    expect(jumdata().billedCallsFor(INVOICES.flakyOnce)).toBe(1);
  });

  it('answers 422 for a terminal code and records the work as failed', async () => {
    const answer = await download(INVOICES.noBalance);
    expect(answer.status).toBe(422);
    expect(answer.body.error.upstream).toEqual({ provider: 'jumdata', code: 603, message: '余额不足请充值' });
    expect(await workRecord(INVOICES.noBalance)).toMatchObject({ state: 'failed' });
  });

  it('gives every one of twenty concurrent requests the answer of the one Jumdata call', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => download(INVOICES.tooFrequent)));
    expect(jumdata().received.filter((r) => r.fields.fphm === INVOICES.tooFrequent)).toHaveLength(1);
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(422));
    expect(answers.map((a) => a.headers.get('retry-after'))).toEqual(Array(20).fill('60'));
    expect(answers[19]!.body.error).toMatchObject({ code: 'UPSTREAM_RATE_LIMITED', upstream: { code: 609 } });
  });

  it('asks Jumdata for new links when the kept ones have expired', async () => {
    const first = await download(INVOICES.expiredLinks);
    expect(first.status).toBe(502);
    expect(first.body.error.message).toContain('HTTP 404');
    // The dead answer is kept, marked: an API request buys new links; a sweep would record LINKS_EXPIRED instead.
    expect(await workRecord(INVOICES.expiredLinks)).toMatchObject({ state: 'pending', jumdata: { linksGone: true } });
    const second = await download(INVOICES.expiredLinks);
    expect(second.status).toBe(200);
    expect(jumdata().billedCallsFor(INVOICES.expiredLinks)).toBe(2);
  });

  it('answers 400 naming each bad field, with no Jumdata call', async () => {
    const callsBefore = jumdata().received.length;
    const answer = await post('/download', { taxNum, invoiceNo: '2431', issueDate: '2024-02-30', direction: 'both' });
    expect(answer.status).toBe(400);
    expect(answer.body.error.details.map((d: { field: string }) => d.field)).toEqual(['invoiceNo', 'issueDate', 'direction']);
    expect(jumdata().received.length).toBe(callsBefore);
  });
});

describe('POST /download: issue dates no invoice can have', () => {
  it.each(['0000-01-01', '2014-12-31', '2099-01-01'])('answers 400 naming issueDate for %s, with no billed call', async (issueDate) => {
    // Prepare
    const invoiceNo = '24312990000000000515';
    // Act
    const answer = await post('/download', { taxNum, invoiceNo, issueDate, direction: 'sales' });
    // Assess
    expect(answer.status).toBe(400);
    expect(answer.body.error.details).toEqual([{ field: 'issueDate', message: expect.stringMatching(/^must be from 2015-01-01 to \d{4}-\d{2}-\d{2} \(tomorrow, China time\)$/) }]);
    expect(jumdata().billedCallsFor(invoiceNo)).toBe(0);
  });
});

describe('POST /download: files that cannot be mirrored leave nothing behind', () => {
  it.each([
    ['a truncated file', INVOICES.truncatedFile, 'the ofd transfer broke off'],
    ['an HTML page instead of a zip', INVOICES.htmlInsteadOfZip, 'the xml link gave content starting with "<!DOCTYPE html><", not a zip'],
    ['a PDF instead of a zip', INVOICES.pdfInsteadOfZip, 'the xml link gave a pdf, not a zip'],
    ['a file over the cap', INVOICES.overCap, 'the ofd file is over the 1048576-byte cap'],
  ])('answers 502 for %s, with no object in S3 and the billed answer kept', async (_case, invoiceNo, reason) => {
    const answer = await download(invoiceNo);
    expect(answer.status).toBe(502);
    expect(answer.body.error.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(answer.body.error.message).toContain(reason);
    expect(await keysUnder(invoiceFolder(invoiceNo))).toEqual([]);
    const work = await workRecord(invoiceNo);
    expect(work.jumdata.files.pdf).toContain(`/files/${invoiceNo}/pdf.PDF`);
  });

  it('answers a PDF in the xml slot as it answers an HTML page there, but gives the job up at once: asking again gets the same PDF', async () => {
    const [html, pdf] = await Promise.all([download(INVOICES.htmlInsteadOfZip), download(INVOICES.pdfInsteadOfZip)]);
    expect(pdf.status).toBe(html.status);
    expect(pdf.body.error.code).toBe(html.body.error.code);
    const [htmlWork, pdfWork] = await Promise.all([workRecord(INVOICES.htmlInsteadOfZip), workRecord(INVOICES.pdfInsteadOfZip)]);
    // The HTML page may be the file host's passing trouble: the sweep tries again. The PDF is what the link holds.
    expect({ state: htmlWork.state, code: htmlWork.lastError.code }).toEqual({ state: 'pending', code: 'UPSTREAM_UNAVAILABLE' });
    expect({ state: pdfWork.state, code: pdfWork.lastError.code }).toEqual({ state: 'failed', code: 'UPSTREAM_UNAVAILABLE' });
    expect(pdfWork.nextAttemptAt).toBeUndefined();
    expect(await keysUnder(invoiceFolder(INVOICES.pdfInsteadOfZip))).toEqual([]);
    // Asked twice, paid once: the second attempt used the kept links.
    expect(jumdata().billedCallsFor(INVOICES.pdfInsteadOfZip)).toBe(1);
  });

  it('never pays twice for an invoice whose files failed: the kept links are used again', async () => {
    await download(INVOICES.truncatedFile);
    expect(jumdata().billedCallsFor(INVOICES.truncatedFile)).toBe(1);
  });

  it('answers 202 pending when the files cannot arrive within the time budget, and keeps the work', async () => {
    const answer = await download(INVOICES.slowFile);
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ taxNum, invoiceNo: INVOICES.slowFile, status: 'pending' });
    expect(await keysUnder(invoiceFolder(INVOICES.slowFile))).toEqual([]);
    expect(await workRecord(INVOICES.slowFile)).toMatchObject({
      state: 'pending',
      lastError: { code: 'TIME_BUDGET_EXHAUSTED' },
      jumdata: { charged: true },
    });
    expect(jumdata().billedCallsFor(INVOICES.slowFile)).toBe(1);
  });
});

describe('GET /files/{taxNum}/{invoiceNo}/{kind}: durable links', () => {
  const linkKey = async () =>
    (JSON.parse(await readFile(process.env.LOCAL_SECRETS_FILE!, 'utf8')) as { linkKey: { key: string } }).linkKey.key;

  it('answers 302 to a fresh presigned URL of the stored file', async () => {
    const answer = await download(INVOICES.success);
    const response = await fetch(answer.body.files.ofd.link, { redirect: 'manual' });
    expect(response.status).toBe(302);
    const location = response.headers.get('location')!;
    expect(location).toContain(`/invoices/${taxNum}/${INVOICES.success}/ofd.zip?`);
    const bytes = Buffer.from(await (await fetch(location)).arrayBuffer());
    expect(sha256(bytes)).toBe(answer.body.files.ofd.sha256);
  });

  it('answers 403 to a tampered link', async () => {
    const answer = await download(INVOICES.success);
    const tampered = answer.body.files.ofd.link.replace('/ofd?', '/xml?');
    const response = await fetch(tampered, { redirect: 'manual' });
    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
  });

  it('answers 404 to a correctly signed link of an invoice that is not mirrored', async () => {
    const invoiceNo = '24312000000099990000';
    const sig = linkSignature(await linkKey(), taxNum, invoiceNo, 'pdf');
    const response = await fetch(`${state.local.url}/files/${taxNum}/${invoiceNo}/pdf?sig=${sig}`, { redirect: 'manual' });
    expect(response.status).toBe(404);
  });

  it('answers 400 to a link without a signature or with an unknown kind', async () => {
    const noSig = await fetch(`${state.local.url}/files/${taxNum}/${INVOICES.success}/pdf`);
    const badKind = await fetch(`${state.local.url}/files/${taxNum}/${INVOICES.success}/doc?sig=x`);
    expect(noSig.status).toBe(400);
    expect(((await noSig.json()) as { error: { details: unknown } }).error.details).toEqual([{ field: 'sig', message: 'is required: use the link from a download response' }]);
    expect(badKind.status).toBe(400);
  });
});

describe('a scheduled batch to the download function', () => {
  it('keeps a job it has no time for pending for the sweep, with no Jumdata call', async () => {
    const { handler } = await import('../../functions/download/handler.ts');
    const invoiceNo = '24312000000055550040';
    // 3.5 s left: less than a download's budget (25 s) and the margin, so the job is not started.
    const report = (await handler({ jobs: [request(invoiceNo)] }, lambdaContext('download', 3_500))) as BatchReport;
    expect(report).toMatchObject({ received: 1, succeeded: 0, failed: 0, skipped: 1 });
    expect(report.results[0]).toMatchObject({ statusCode: 202, body: { status: 'deferred' } });
    expect(jumdata().received.filter((r) => r.fields.fphm === invoiceNo)).toHaveLength(0);
    expect(await workRecord(invoiceNo)).toMatchObject({ state: 'pending', attempts: 0, lastError: { code: 'NOT_STARTED' } });
  });

  it('mirrors each job and reports each one', async () => {
    const { handler } = await import('../../functions/download/handler.ts');
    const jobs = [request('24312000000055550030'), request(INVOICES.success), { ...request('x'), direction: 'sales' }];
    const report = (await handler({ jobs }, lambdaContext('download', 60_000))) as BatchReport;
    expect(report.results.map((r) => r.statusCode)).toEqual([200, 200, 400]);
    expect(report.results[1]!.body).toMatchObject({ fromCache: true });
    expect(jumdata().billedCallsFor('24312000000055550030')).toBe(1);
  });
});
