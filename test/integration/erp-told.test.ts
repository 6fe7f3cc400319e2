import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { downloadResultSchema } from '#shared/api-responses';
import { JobStore } from '#shared/jobs';
import { signWdt } from '#shared/providers/wdt';
import { JUMDATA_SANDBOX_INVOICES } from '../../local/sandboxes/jumdata.ts';
import { SANDBOX_XML_CASES as CASES } from '../../local/sandboxes/invoice-xml.ts';
import { WDT_SANDBOX_CREDENTIALS, WDT_SANDBOX_INVOICES } from '../../local/sandboxes/wdt.ts';
import { localDynamoClient, useLocalMode } from '../helpers/local-mode.ts';

/**
 * The ERP told by itself, end to end in local mode: POST /download with `erp` mirrors the invoice, records the
 * update as an erp-update job and asks the erp-update function (Lambda's Invoke API, local mode's) to send it to the
 * WDT sandbox, which checks the signature as WDT does. WDT is told once per (taxNum, invoiceNo, erp.invoiceNo).
 */

const { state, post, get } = useLocalMode();
const taxNum = '91310117568051222X';
const download = (invoiceNo: string, erp: object) => post('/download', { taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales', erp });
const sentTo = (erpInvoiceNo: string) => state.local.sandboxes.wdt!.received.filter((request) => request.fields.invoice_no === erpInvoiceNo);
const settled = () => state.local.asyncInvocationsSettled();

describe('a download with an erp block', () => {
  it('tells the sandbox ERP once: the signed form POST /erp-update would send, with the durable link of the file', async () => {
    // Act
    const first = await download('24312000000077770101', { invoiceNo: 'FP202412010001', file: 'ofd' });
    await settled();
    const again = await download('24312000000077770101', { invoiceNo: 'FP202412010001', file: 'ofd' });
    // Assess: the answers
    expect(first.status).toBe(200);
    expect(first.body.erp).toEqual({ invoiceNo: 'FP202412010001', status: 'pending', message: 'the erp-update function is sending it' });
    expect(downloadResultSchema.safeParse(first.body).error?.issues ?? []).toEqual([]);
    expect(again.body).toMatchObject({ fromCache: true, erp: { invoiceNo: 'FP202412010001', status: 'sent' } });
    // Assess: exactly one update, with exactly these fields, signed with the ERP's keys
    const [update, ...more] = sentTo('FP202412010001');
    expect(more).toEqual([]);
    const { sign, timestamp, sid, appkey, ...fields } = update!.fields;
    expect(fields).toEqual({
      invoice_no: 'FP202412010001',
      status: '80',
      invoice_no_out: '24312000000077770101',
      invoice_code: '',
      file_path: first.body.files.ofd.link,
    });
    expect({ sid, appkey }).toEqual({ sid: WDT_SANDBOX_CREDENTIALS.sid, appkey: WDT_SANDBOX_CREDENTIALS.appKey });
    expect(sign).toBe(signWdt({ ...fields, sid: sid!, appkey: appkey!, timestamp: timestamp! }, WDT_SANDBOX_CREDENTIALS.appSecret));
    // Assess: the link the ERP got opens the file, as stored
    const opened = await fetch(fields.file_path!);
    expect(opened.status).toBe(200);
    expect(createHash('sha256').update(Buffer.from(await opened.arrayBuffer())).digest('hex')).toBe(first.body.files.ofd.sha256);
  });

  it('tells WDT once for 20 concurrent identical requests, and every answer says where the update stands', async () => {
    // Act
    const answers = await Promise.all(Array.from({ length: 20 }, () => download('24312000000077770102', { invoiceNo: 'FP202412010002' })));
    await settled();
    const after = await download('24312000000077770102', { invoiceNo: 'FP202412010002' });
    // Assess
    for (const answer of answers) {
      expect([200, 202]).toContain(answer.status);
      expect(['pending', 'sent']).toContain(answer.body.erp.status);
    }
    expect(after.body.erp.status).toBe('sent');
    expect(sentTo('FP202412010002')).toHaveLength(1);
    expect(sentTo('FP202412010002')[0]!.fields.file_path).toContain('/files/91310117568051222X/24312000000077770102/pdf?sig=');
  });

  it('is finished by the erp-update sweep when WDT could not take it, shown by GET /jobs with its invoice meanwhile', async () => {
    // Prepare: WDT answers 1012 (too frequent) to this ERP invoice's first update
    const erpNo = `${WDT_SANDBOX_INVOICES.flakyPrefix}CHAIN`;
    // Act
    const first = await download('24312000000077770103', { invoiceNo: erpNo });
    await settled();
    // Assess: pending, listed like any erp-update job, with a reference to its invoice
    const pending = await get('/jobs?state=pending&function=erp-update');
    const job = pending.body.jobs.find((listed: any) => listed.key === erpNo);
    expect(job).toMatchObject({ function: 'erp-update', request: { invoiceNo: erpNo, chain: { taxNum, invoiceNo: '24312000000077770103' } } });
    expect((await download('24312000000077770103', { invoiceNo: erpNo })).body.erp.status).toBe('pending');
    // Act: the time WDT asked for goes by (the record made due), and the sweep runs
    const store = new JobStore(localDynamoClient(state.local), state.local.jobsTable);
    const held = (await store.get('erp-update', erpNo))!;
    await store.replace(held, { ...held.value, nextAttemptAt: new Date(Date.now() - 1_000).toISOString() });
    await state.local.sweep('erp-update');
    // Assess: sent by the sweep; told, so a later download does not send it again
    expect(first.body.erp.status).toBe('pending');
    expect(sentTo(erpNo)).toHaveLength(2);
    expect((await download('24312000000077770103', { invoiceNo: erpNo })).body.erp.status).toBe('sent');
    await settled();
    expect(sentTo(erpNo)).toHaveLength(2);
  });

  it.each([
    [JUMDATA_SANDBOX_INVOICES.voided, /voided \(作废\)/],
    [JUMDATA_SANDBOX_INVOICES.redFlushed, /red-flushed \(冲红\)/],
    [CASES.redLetter.invoiceNo, /red-letter invoice \(红字发票\) reversing 24312000000000000101/],
    [JUMDATA_SANDBOX_INVOICES.noXmlInZip, /its XML could not be read/],
  ])('skips invoice %s: the ERP is not told it was issued', async (invoiceNo, why) => {
    const answer = await download(invoiceNo, { invoiceNo: 'FP202412010009' });
    await settled();
    expect(answer.status).toBe(200);
    expect(answer.body.erp).toMatchObject({ invoiceNo: 'FP202412010009', status: 'skipped', message: expect.stringMatching(why) });
    expect(sentTo('FP202412010009')).toEqual([]);
  });

  it.each([
    [{ file: 'pdf' }, 'erp.invoiceNo'],
    [{ invoiceNo: 'FP 1' }, 'erp.invoiceNo'],
    [{ invoiceNo: 'FP202412010010', file: 'jpg' }, 'erp.file'],
    ['FP202412010010', 'erp'],
  ])('refuses erp %j with a 400 naming %s, before anything is billed', async (erp, field) => {
    const billed = state.local.sandboxes.jumdata!.billedCalls();
    const answer = await download('24312000000077770199', erp as object);
    expect(answer.status).toBe(400);
    expect(answer.body.error.details.map((detail: any) => detail.field)).toContain(field);
    expect(state.local.sandboxes.jumdata!.billedCalls()).toBe(billed);
  });
});
