import { createHash } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { HOSTILE_XML_SIZES } from '../../local/sandboxes/hostile-xml.ts';
import { SANDBOX_XML_CASES } from '../../local/sandboxes/invoice-xml.ts';
import { JUMDATA_SANDBOX_INVOICES as INVOICES } from '../../local/sandboxes/jumdata.ts';
import { localS3Client, useLocalMode } from '../helpers/local-mode.ts';

/**
 * Hostile xml files end to end through local mode: an XML bomb, a 50 MiB XML, a zip bomb and a zip without XML
 * are still mirrored (they are Jumdata's originals), their metadata is marked unreadable with the reason, and the
 * process's memory stays far below what the files would take if they were expanded. Local mode runs in this
 * process, so its memory is this process's.
 */

const { state, post } = useLocalMode();
const taxNum = '91310117568051222X';
const issueDate = '2024-04-25';
const download = (invoiceNo: string, asTaxNum = taxNum) => post('/download', { taxNum: asTaxNum, invoiceNo, issueDate, direction: 'sales' });
const jumdata = () => state.local.sandboxes.jumdata!;
let s3: S3Client;

beforeAll(() => {
  s3 = localS3Client(state.local);
});

const HOSTILE = [
  { what: 'an XML bomb', invoiceNo: INVOICES.xmlBomb, problem: 'declares a DOCTYPE or entities, which are refused' },
  { what: 'a 50 MiB XML', invoiceNo: INVOICES.largeXml, problem: `is too large: ${HOSTILE_XML_SIZES.large} bytes` },
  { what: 'a zip bomb', invoiceNo: INVOICES.zipBomb, problem: `inflates past the ${HOSTILE_XML_SIZES.claimed} bytes it declares` },
  { what: 'a zip without XML', invoiceNo: INVOICES.noXmlInZip, problem: 'the zip holds no .xml file' },
];

const folder = (invoiceNo: string) => `invoices/${taxNum}/${invoiceNo}/`;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function keysUnder(invoiceNo: string): Promise<string[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: state.local.bucket, Prefix: folder(invoiceNo) }));
  return (listed.Contents ?? []).map((object) => object.Key!).sort();
}

async function storedBytes(key: string): Promise<Uint8Array> {
  const object = await s3.send(new GetObjectCommand({ Bucket: state.local.bucket, Key: key }));
  return object.Body!.transformToByteArray();
}

/** The xml zip as the sandbox's file host serves it, asked with the query its links carry. */
async function servedXml(invoiceNo: string): Promise<Uint8Array> {
  const query = new URLSearchParams({ answer: '1', nsrsbh: taxNum, jxxbz: '2', kprq: issueDate });
  const response = await fetch(`${jumdata().url}/files/${invoiceNo}/xml.zip?${query}`);
  return new Uint8Array(await response.arrayBuffer());
}

describe('a hostile xml file', () => {
  it.each(HOSTILE.map((hostile) => [hostile.what, hostile] as const))(
    'mirrors %s as the original with invoice.json, marks the XML unreadable saying why, and bills one call',
    async (_what, { invoiceNo, problem }) => {
      // Prepare
      const billed = jumdata().billedCallsFor(invoiceNo);
      // Act
      const answer = await download(invoiceNo);
      // Assess
      expect(answer.status).toBe(200);
      expect(answer.body.checks).toMatchObject({ xmlRead: false, problem: expect.stringContaining(problem) });
      expect(answer.body.invoice).toMatchObject({ number: invoiceNo, amount: '', tax: '', total: '', items: [] });
      expect(await keysUnder(invoiceNo)).toEqual(['invoice.json', 'ofd.zip', 'pdf.pdf', 'xml.zip'].map((name) => folder(invoiceNo) + name));
      const served = sha256(await servedXml(invoiceNo));
      expect(sha256(await storedBytes(`${folder(invoiceNo)}xml.zip`))).toBe(served);
      expect(answer.body.files.xml.sha256).toBe(served);
      const record = JSON.parse(new TextDecoder().decode(await storedBytes(`${folder(invoiceNo)}invoice.json`)));
      expect(record).toMatchObject({ invoice: answer.body.invoice, checks: answer.body.checks });
      expect(jumdata().billedCallsFor(invoiceNo)).toBe(billed + 1);
    },
  );
});

describe('memory while mirroring hostile xml files', () => {
  /**
   * What the four downloads may add to the process's resident memory, at its highest. Legitimately: the kept xml
   * zips (2 MB at most here, 10 MB by the cap), the reader's inflate steps (a few MiB), S3 bodies in flight and the
   * heap's ordinary growth: about 10 MB measured after the tests above, about 60 MB when this test runs alone
   * (modules loaded and the sandbox's zips built on first use). Expanding what the files hold would add 50 MiB (the
   * large XML; more than twice that once decoded and parsed) or 2 GiB (the zip bomb), and the bomb's "lol"s 3 GB:
   * with the reader's cap raised to let the large XML through, the process grew to about 2 GB. 100 MB leaves room
   * for the garbage collector's slack and still fails on any of those. RSS, not arrayBuffers: a buffer inflated and
   * dropped within one synchronous read may be collected before anything can look at it.
   */
  const MAX_RSS_GROWTH = 100 * 1024 * 1024;

  it('stays bounded over the four downloads, far below what their contents would take expanded', async () => {
    // Prepare: another taxpayer's invoices, so each is mirrored and read afresh
    const otherTaxNum = SANDBOX_XML_CASES.plain.spec.buyer.taxNum;
    const before = process.memoryUsage().rss;
    let peak = before;
    const sample = () => (peak = Math.max(peak, process.memoryUsage().rss));
    const sampler = setInterval(sample, 10);
    // Act
    const answers = [];
    for (const { invoiceNo } of HOSTILE) answers.push(await download(invoiceNo, otherTaxNum));
    clearInterval(sampler);
    sample();
    // Assess
    expect(answers.map(({ status, body }) => [status, body.checks?.xmlRead])).toEqual(HOSTILE.map(() => [200, false]));
    expect(peak - before).toBeLessThan(MAX_RSS_GROWTH);
  });

  it('leaves local mode answering: a plain download afterwards is mirrored and read', async () => {
    // Act
    const answer = await download(INVOICES.success);
    // Assess
    expect(answer.status).toBe(200);
    expect(answer.body.checks).toMatchObject({ xmlRead: true });
  });
});
