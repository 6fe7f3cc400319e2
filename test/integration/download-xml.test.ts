import { ListObjectsV2Command, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { JobStore } from '#shared/jobs';
import { SANDBOX_XML_CASES as CASES } from '../../local/sandboxes/invoice-xml.ts';
import { JUMDATA_SANDBOX_INVOICES as INVOICES } from '../../local/sandboxes/jumdata.ts';
import type { DownloadWork } from '../../functions/download/work.ts';
import { localDynamoClient, localS3Client, useLocalMode } from '../helpers/local-mode.ts';

/**
 * The tax bureau's XML read while mirroring, end to end through local mode: the sandbox serves the catalogue's
 * EInvoice documents, and the answers and invoice.json carry what they say, or refuse what is not this invoice.
 */

const { state, post } = useLocalMode();
const taxNum = '91310117568051222X';
const download = (invoiceNo: string, direction = 'sales') => post('/download', { taxNum, invoiceNo, issueDate: '2024-04-25', direction });
let s3: S3Client;

beforeAll(() => {
  s3 = localS3Client(state.local);
});

const folder = (invoiceNo: string) => `invoices/${taxNum}/${invoiceNo}/`;
async function keysUnder(invoiceNo: string): Promise<string[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: state.local.bucket, Prefix: folder(invoiceNo) }));
  return (listed.Contents ?? []).map((object) => object.Key!);
}
async function storedRecord(invoiceNo: string): Promise<string> {
  const object = await s3.send(new GetObjectCommand({ Bucket: state.local.bucket, Key: `${folder(invoiceNo)}invoice.json` }));
  return object.Body!.transformToString();
}
async function work(invoiceNo: string) {
  const dynamo = localDynamoClient(state.local);
  return (await new JobStore(dynamo, state.local.jobsTable).get<DownloadWork>('download', `${taxNum}/${invoiceNo}`))?.value;
}

describe('an invoice whose XML is read', () => {
  it('carries a special VAT invoice\'s type, and the same metadata in invoice.json', async () => {
    const answer = await download(CASES.special.invoiceNo);
    expect(answer.status).toBe(200);
    expect(answer.body.invoice).toMatchObject({ number: CASES.special.invoiceNo, type: '增值税专用发票', amount: '1200.00', total: '1293.00' });
    expect(JSON.parse(await storedRecord(CASES.special.invoiceNo))).toMatchObject({ invoice: answer.body.invoice, checks: answer.body.checks });
  });

  it('carries a red-letter invoice negative, naming the blue invoice it reverses', async () => {
    const answer = await download(CASES.redLetter.invoiceNo);
    expect(answer.status).toBe(200);
    expect(answer.body.invoice.redLetterOf).toBe(CASES.plain.invoiceNo);
    expect(answer.body.invoice.total).toMatch(/^-\d+\.\d{2}$/);
    expect(answer.body.checks).toEqual({ xmlRead: true, numberMatches: true, partyMatches: true, itemsAddUp: true });
  });

  it('flags items that do not add up to the totals, and still mirrors the invoice', async () => {
    const answer = await download(CASES.itemsDoNotAddUp.invoiceNo);
    expect(answer.status).toBe(200);
    expect(answer.body.checks).toMatchObject({ xmlRead: true, itemsAddUp: false });
  });

  it('keeps a seller name that starts with = as it is, as data', async () => {
    const answer = await download(CASES.formulaSellerName.invoiceNo);
    expect(answer.status).toBe(200);
    expect(answer.body.invoice.seller.name).toMatch(/^=/);
  });

  it("never copies a travel invoice's traveller into the answer or invoice.json", async () => {
    const { traveller } = CASES.travel.spec as { traveller: { name: string; idNum: string } };
    const answer = await download(CASES.travel.invoiceNo);
    expect(answer.status).toBe(200);
    for (const text of [JSON.stringify(answer.body), await storedRecord(CASES.travel.invoiceNo)]) {
      expect(text).not.toContain(traveller.name);
      expect(text).not.toContain(traveller.idNum);
    }
  });
});

describe('an XML that cannot be read', () => {
  it('still mirrors the files, with xmlRead false, the reason, and no money', async () => {
    const answer = await download(CASES.notEInvoice.invoiceNo);
    expect(answer.status).toBe(200);
    expect(answer.body.checks).toMatchObject({ xmlRead: false, problem: expect.stringContaining('EInvoice') });
    expect(answer.body.invoice).toMatchObject({ number: CASES.notEInvoice.invoiceNo, amount: '', tax: '', total: '', items: [] });
    expect(await keysUnder(CASES.notEInvoice.invoiceNo)).toHaveLength(4);
  });
});

describe('an XML that is not this invoice', () => {
  it('stores nothing and fails the job when it names another invoice number (502, saying which)', async () => {
    const answer = await download(CASES.namesAnotherInvoice.invoiceNo);
    expect(answer.status).toBe(502);
    expect(answer.body.error.message).toContain(`names invoice ${CASES.namesAnotherInvoice.spec.invoiceNo}, not ${CASES.namesAnotherInvoice.invoiceNo}`);
    expect(await keysUnder(CASES.namesAnotherInvoice.invoiceNo)).toEqual([]);
    expect(await work(CASES.namesAnotherInvoice.invoiceNo)).toMatchObject({ state: 'failed', lastError: { statusCode: 502 } });
  });

  it('stores nothing and fails the job when the taxpayer is not the buyer of a purchase (502, saying which)', async () => {
    const answer = await download(INVOICES.otherParties, 'purchase');
    expect(answer.status).toBe(502);
    expect(answer.body.error.message).toContain(`${taxNum} is not its buyer (purchase)`);
    expect(await keysUnder(INVOICES.otherParties)).toEqual([]);
    expect(await work(INVOICES.otherParties)).toMatchObject({ state: 'failed' });
    expect(state.local.sandboxes.jumdata!.billedCallsFor(INVOICES.otherParties)).toBe(1);
  });
});
