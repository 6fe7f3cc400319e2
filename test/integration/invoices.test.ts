import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { invoiceListSchema } from '#shared/api-responses';
import { SANDBOX_XML_CASES as CASES } from '../../local/sandboxes/invoice-xml.ts';
import { localDynamoClient, localS3Client, useLocalMode } from '../helpers/local-mode.ts';

/**
 * GET /invoices end to end through local mode: invoices mirrored by POST /download, listed from the archive's index
 * by issue date, a page at a time, each bad parameter a 400 naming it.
 */

const { state, post, get } = useLocalMode();
const taxNum = '91310117568051222X';
const mirror = (invoiceNo: string, issueDate: string, direction = 'sales') => post('/download', { taxNum, invoiceNo, issueDate, direction });
const list = (query: string) => get(`/invoices?${query}`);

describe('GET /invoices', () => {
  it('lists a month of mirrored invoices by issue date then number, with their metadata, checks and durable links', async () => {
    // Prepare: April and May invoices (the sandbox issues each on the requested day), one of them a purchase
    for (const [invoiceNo, day, direction] of [
      ['24312000000088880003', '2024-04-20', 'sales'],
      ['24312000000088880001', '2024-04-03', 'sales'],
      ['24312000000088880002', '2024-04-20', 'purchase'],
      ['24312000000088880004', '2024-05-02', 'sales'],
    ] as const) {
      expect((await mirror(invoiceNo, day, direction)).status).toBe(200);
    }
    // Act
    const april = await list(`taxNum=${taxNum}&from=2024-04-01&to=2024-04-30`);
    // Assess
    expect(april.status).toBe(200);
    expect(april.body.invoices.map((entry: any) => [entry.issueDate, entry.invoiceNo, entry.direction])).toEqual([
      ['2024-04-03', '24312000000088880001', 'sales'],
      ['2024-04-20', '24312000000088880002', 'purchase'],
      ['2024-04-20', '24312000000088880003', 'sales'],
    ]);
    const [first] = april.body.invoices;
    expect(first.invoice).toMatchObject({ number: '24312000000088880001', amount: '1200.00', tax: '93.00', total: '1293.00' });
    expect(first.invoice.items).toBeUndefined();
    expect(first.checks).toEqual({ xmlRead: true, numberMatches: true, partyMatches: true, itemsAddUp: true });
    expect(first.files.pdf).toMatchObject({ link: expect.stringContaining('/files/'), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(first.files.pdf.url).toBeUndefined();
    expect(april.body.cursor).toBeUndefined();
    expect(invoiceListSchema.safeParse(april.body).error?.issues ?? []).toEqual([]);
    // The link opens the file
    const opened = await fetch(first.files.pdf.link, { redirect: 'manual' });
    expect(opened.status).toBe(302);
  });

  it('keeps one direction when asked', async () => {
    const sales = await list(`taxNum=${taxNum}&from=2024-04-01&to=2024-04-30&direction=purchase`);
    expect(sales.body.invoices.map((entry: any) => entry.invoiceNo)).toEqual(['24312000000088880002']);
  });

  it('pages with its cursor, every invoice once', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await list(`taxNum=${taxNum}&from=2024-01-01&to=2024-12-31&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.invoices.map((entry: any) => entry.invoiceNo));
      cursor = page.body.cursor;
    } while (cursor);
    expect(seen).toEqual(['24312000000088880001', '24312000000088880002', '24312000000088880003', '24312000000088880004']);
  });

  it('lists a red-letter invoice with its negative totals and the blue one it reverses', async () => {
    expect((await mirror(CASES.redLetter.invoiceNo, '2024-06-01')).status).toBe(200);
    const june = await list(`taxNum=${taxNum}&from=2024-04-25&to=2024-04-25`);
    const red = june.body.invoices.find((entry: any) => entry.invoiceNo === CASES.redLetter.invoiceNo);
    // Listed on the XML's issue date, not the request's
    expect(red).toMatchObject({ issueDate: '2024-04-25', invoice: { redLetterOf: CASES.plain.invoiceNo, total: expect.stringMatching(/^-/) } });
  });

  it.each([
    ['taxNum', `from=2024-04-01&to=2024-04-30`],
    ['from', `taxNum=${taxNum}&from=2024-13-01&to=2024-04-30`],
    ['to', `taxNum=${taxNum}&from=2024-04-30&to=2024-04-01`],
    ['to', `taxNum=${taxNum}&from=2024-01-01&to=2025-01-01`],
    ['direction', `taxNum=${taxNum}&from=2024-04-01&to=2024-04-30&direction=both`],
    ['limit', `taxNum=${taxNum}&from=2024-04-01&to=2024-04-30&limit=501`],
    ['cursor', `taxNum=${taxNum}&from=2024-04-01&to=2024-04-30&cursor=`],
    ['cursor', `taxNum=${taxNum}&from=2024-04-01&to=2024-04-30&cursor=eyJwayI6IngifQ`],
  ])('answers 400 naming %s for %s', async (field, query) => {
    const answer = await list(query);
    expect(answer.status).toBe(400);
    expect(answer.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
  });

  it("answers 400 naming cursor for another taxpayer's cursor", async () => {
    const page = await list(`taxNum=${taxNum}&from=2024-01-01&to=2024-12-31&limit=1`);
    const other = await list(`taxNum=91110000600037341L&from=2024-01-01&to=2024-12-31&cursor=${page.body.cursor}`);
    expect(other.status).toBe(400);
    expect(other.body.error.details).toEqual([{ field: 'cursor', message: 'is not a cursor from an earlier answer to the same question' }]);
  });
});

describe('invoices mirrored before the index', () => {
  it('are indexed by the reindex run from their stored files, with no Jumdata call, a wrong party flagged, none deleted', async () => {
    // Prepare: two invoices as an earlier version left them: an invoice.json of the old shape, no index entry; the
    // second one recorded as a purchase, though its XML names the taxpayer as seller
    const old = ['24312000000077770101', '24312000000077770102'];
    for (const invoiceNo of old) expect((await mirror(invoiceNo, '2024-08-08')).status).toBe(200);
    await makeOld(old[0]!, 'sales');
    await makeOld(old[1]!, 'purchase');
    const billed = state.local.sandboxes.jumdata!.billedCalls();
    const before = await list(`taxNum=${taxNum}&from=2024-08-01&to=2024-08-31`);
    expect(before.body.invoices).toEqual([]);
    // Act
    const report = await state.local.invoke('download', { action: 'reindex' });
    // Assess
    expect(report).toMatchObject({ indexed: 2, withProblems: 1 });
    const after = await list(`taxNum=${taxNum}&from=2024-08-01&to=2024-08-31`);
    expect(after.body.invoices.map((entry: any) => [entry.invoiceNo, entry.checks.partyMatches])).toEqual([
      [old[0], true],
      [old[1], false],
    ]);
    expect(after.body.invoices[0].invoice).toMatchObject({ amount: '1200.00', total: '1293.00' });
    expect(state.local.sandboxes.jumdata!.billedCalls()).toBe(billed);
    // A second run finds nothing to do
    expect(await state.local.invoke('download', { action: 'reindex' })).toMatchObject({ indexed: 0 });
  });
});

/** Turns a mirrored invoice into one mirrored before the index: invoice.json of the old shape, and no entry. */
async function makeOld(invoiceNo: string, direction: string): Promise<void> {
  const s3 = localS3Client(state.local);
  const key = `invoices/${taxNum}/${invoiceNo}/invoice.json`;
  const record = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: state.local.bucket, Key: key }))).Body!.transformToString());
  const { checks: _checks, invoice, ...rest } = record;
  const oldShape = { ...rest, direction, invoice: { voided: invoice.voided, redFlushed: invoice.redFlushed, buyerTaxNum: invoice.buyerTaxNum } };
  await s3.send(new PutObjectCommand({ Bucket: state.local.bucket, Key: key, Body: JSON.stringify(oldShape), ContentType: 'application/json' }));
  const documents = DynamoDBDocumentClient.from(
    localDynamoClient(state.local),
  );
  await documents.send(new DeleteCommand({ TableName: state.local.invoicesTable, Key: { pk: `${taxNum}#${invoiceNo}` } }));
}

describe('GET /invoices/ledger', () => {
  const ledgerOf = (query: string) => fetch(`${state.local.url}/invoices/ledger?${query}`, { redirect: 'manual' });

  it('writes the sales 台账 of a period to S3 and answers 303 to it, with its rows, exact totals and sha256', async () => {
    // Act
    const answer = await ledgerOf(`taxNum=${taxNum}&from=2024-04-01&to=2024-04-30&direction=sales`);
    const body = (await answer.json()) as any;
    // Assess: the answer
    expect(answer.status).toBe(303);
    expect(answer.headers.get('location')).toBe(body.url);
    // Two April sales of 1200.00 + 93.00, and the red-letter invoice listed earlier (-1000.00, -60.00) of 2024-04-25
    expect(body).toMatchObject({ rows: 3, totals: { amount: '1400.00', tax: '126.00', total: '1526.00' }, key: expect.stringMatching(/^ledgers\/.+\.csv$/) });
    // Assess: the file, opened through the presigned URL
    const file = Buffer.from(await (await fetch(body.url)).arrayBuffer());
    expect(createHash('sha256').update(file).digest('hex')).toBe(body.sha256);
    const text = file.toString('utf8');
    expect(text.startsWith('\uFEFF发票号码,开票日期,方向,发票类型,销售方名称,销售方纳税人识别号,购买方名称,购买方纳税人识别号,金额,税额,价税合计,作废,冲红,红字对应蓝票,PDF SHA-256,OFD SHA-256,XML SHA-256,PDF 链接,OFD 链接,XML 链接,备注\r\n')).toBe(true);
    const lines = text.trimEnd().split('\r\n');
    expect(lines).toHaveLength(5);
    expect(lines[1]).toMatch(/^24312000000088880001,2024-04-03,销项,普通发票,/);
    expect(lines[3]).toMatch(/^24312000000000000103,2024-04-25,销项,.*,-1000\.00,-60\.00,-1060\.00,否,否,24312000000000000101,/);
    expect(lines[4]).toMatch(/^合计,+1400\.00,126\.00,1526\.00,*$/);
  });

  it('answers the same file to the same question asked again soon after', async () => {
    const first = (await (await ledgerOf(`taxNum=${taxNum}&from=2024-04-01&to=2024-04-30&direction=sales`)).json()) as any;
    const second = (await (await ledgerOf(`taxNum=${taxNum}&from=2024-04-01&to=2024-04-30&direction=sales`)).json()) as any;
    expect(second.key).toBe(first.key);
  });

  it('writes the purchase 台账 as XLSX on request', async () => {
    const answer = await ledgerOf(`taxNum=${taxNum}&from=2024-04-01&to=2024-04-30&direction=purchase&format=xlsx`);
    const body = (await answer.json()) as any;
    expect(answer.status).toBe(303);
    expect(body).toMatchObject({ rows: 1, key: expect.stringMatching(/\.xlsx$/) });
    const file = Buffer.from(await (await fetch(body.url)).arrayBuffer());
    expect(file.subarray(0, 4).toString('latin1')).toBe('PK\x03\x04');
  });

  it.each([
    ['direction', `taxNum=${taxNum}&from=2024-04-01&to=2024-04-30`],
    ['format', `taxNum=${taxNum}&from=2024-04-01&to=2024-04-30&direction=sales&format=pdf`],
    ['to', `taxNum=${taxNum}&from=2024-04-01&to=2025-04-30&direction=sales`],
  ])('answers 400 naming %s', async (field, query) => {
    const answer = await ledgerOf(query);
    expect(answer.status).toBe(400);
    expect(((await answer.json()) as any).error.details.map((d: { field: string }) => d.field)).toContain(field);
  });
});
