import { strToU8, zipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  MAX_XML_BYTES,
  formatCents,
  readInvoiceXml,
  taxRatePercent,
  toCents,
  type ExpectedInvoice,
} from '../../functions/download/invoice-xml.ts';
import {
  SANDBOX_XML_CASES,
  sandboxInvoiceXml,
  sandboxInvoiceZip,
  type SandboxInvoiceSpec,
} from '../../local/sandboxes/invoice-xml.ts';

const plain = SANDBOX_XML_CASES.plain.spec;

const expectedOf = (spec: SandboxInvoiceSpec, change: Partial<ExpectedInvoice> = {}): ExpectedInvoice => ({
  invoiceNo: spec.invoiceNo,
  taxNum: spec.seller.taxNum,
  direction: 'sales',
  ...change,
});

/** Reads a document the way the mirror does, asked for the invoice it names, by its seller. */
const readXml = (xml: string, expected: ExpectedInvoice = expectedOf(plain)) =>
  readInvoiceXml(sandboxInvoiceZip(xml), expected);

const readSpec = (spec: SandboxInvoiceSpec, change: Partial<ExpectedInvoice> = {}) =>
  readXml(sandboxInvoiceXml(spec), expectedOf(spec, change));

const unreadable = (problem: unknown) => ({
  xmlRead: false,
  numberMatches: false,
  partyMatches: false,
  itemsAddUp: false,
  problem,
});

describe('reading the invoice from its XML', () => {
  it('reads every field of a realistic document by its element path', () => {
    // Prepare
    const zip = sandboxInvoiceZip(sandboxInvoiceXml(plain));
    // Act
    const { invoice, checks } = readInvoiceXml(zip, expectedOf(plain));
    // Assess
    expect(checks).toEqual({ xmlRead: true, numberMatches: true, partyMatches: true, itemsAddUp: true });
    expect(invoice).toEqual({
      number: '24312000000000000101',
      issuedAt: '2024-04-25 15:58:41',
      type: '普通发票',
      seller: { taxNum: '91310117568051222X', name: '上海示例信息技术有限公司' },
      buyer: { taxNum: '91110000600037341L', name: '北京示例贸易有限公司' },
      amount: '1200.00',
      tax: '93.00',
      total: '1293.00',
      items: [
        {
          name: '*信息技术服务*软件维护服务费',
          spec: 'V1',
          unit: '项',
          quantity: '1',
          unitPrice: '1000',
          amount: '1000.00',
          taxRate: '6%',
          tax: '60.00',
        },
        {
          name: '*信息技术服务*软件维护服务费',
          spec: '',
          unit: '',
          quantity: '',
          unitPrice: '',
          amount: '-100.00',
          taxRate: '6%',
          tax: '-6.00',
        },
        {
          name: '*计算机配套产品*无线鼠标',
          spec: 'M330',
          unit: '个',
          quantity: '2',
          unitPrice: '150',
          amount: '300.00',
          taxRate: '13%',
          tax: '39.00',
        },
      ],
      redLetterOf: null,
      remark: '合同号 HT-2024-0425',
    });
  });

  it('writes a tax rate as a percentage whether the XML wrote a fraction or a percentage', () => {
    // Prepare
    const items = ['0.06', '6%', '0.13', '0', '0.015', '免税', '不征税'].map((taxRate) => ({
      name: '*服务*费',
      amount: '0.00',
      taxRate,
      tax: '0.00',
    }));
    // Act
    const { invoice } = readSpec({ ...plain, items });
    // Assess
    const rates = invoice?.items.map((item) => item.taxRate);
    expect(rates).toEqual(['6%', '6%', '13%', '0%', '1.5%', '免税', '不征税']);
  });

  it('keeps a discount line in its place, negative, with no quantity or unit price', () => {
    // Prepare
    const [item, discount] = plain.items;
    // Act
    const { invoice, checks } = readSpec(plain);
    // Assess
    expect(invoice?.items[0]?.name).toBe(item?.name);
    expect(invoice?.items[1]).toMatchObject({ name: discount?.name, quantity: '', unitPrice: '', amount: '-100.00' });
    expect(checks.itemsAddUp).toBe(true);
  });

  it('reads a red-letter invoice as negative, naming the blue invoice it reverses', () => {
    // Prepare
    const { spec, invoiceNo } = SANDBOX_XML_CASES.redLetter;
    // Act
    const { invoice, checks } = readSpec(spec);
    // Assess
    expect(invoice).toMatchObject({ number: invoiceNo, amount: '-1000.00', tax: '-60.00', total: '-1060.00' });
    expect(invoice?.redLetterOf).toBe(SANDBOX_XML_CASES.plain.invoiceNo);
    expect(checks.itemsAddUp).toBe(true);
  });

  it('finds the blue invoice under another spelling inside SpecificInformation', () => {
    // Prepare
    const xml = sandboxInvoiceXml(plain).replace(
      '<AdditionalInformation>',
      '<SpecificInformation><RedInvoiceInfo><OriginalEInvoiceNumber>24312000000000000042</OriginalEInvoiceNumber>' +
        '</RedInvoiceInfo></SpecificInformation><AdditionalInformation>',
    );
    // Act
    const { invoice } = readXml(xml);
    // Assess
    expect(invoice?.redLetterOf).toBe('24312000000000000042');
  });

  it('reads amounts written with thousands separators', () => {
    // Prepare
    const items = [{ name: '*服务*费', amount: '1,000.00', taxRate: '0.06', tax: '60.00' }];
    const spec = { ...plain, items, writtenTotals: { amount: '1,000.00', tax: '60' } };
    // Act
    const { invoice, checks } = readSpec(spec);
    // Assess
    expect(invoice).toMatchObject({ amount: '1000.00', tax: '60.00', total: '1060.00' });
    expect(invoice?.items[0]?.amount).toBe('1000.00');
    expect(checks.itemsAddUp).toBe(true);
  });

  it("takes the total from TotalTax-includedAmount, never from an item's TotaltaxIncludedAmount", () => {
    // Prepare
    const xml = sandboxInvoiceXml(plain).replace(
      /<TotaltaxIncludedAmount>[^<]*</,
      '<TotaltaxIncludedAmount>999999.99<',
    );
    // Act
    const { invoice } = readXml(xml);
    // Assess
    expect(invoice?.total).toBe('1293.00');
  });

  it("refuses a document without TotalTax-includedAmount rather than taking an item's total", () => {
    // Prepare
    const xml = sandboxInvoiceXml(plain).replace(/<TotalTax-includedAmount>[^<]*<\/TotalTax-includedAmount>/, '');
    // Act
    const { invoice, checks } = readXml(xml);
    // Assess
    expect(invoice).toBeUndefined();
    expect(checks).toEqual(unreadable('the EInvoice has no TotalTax-includedAmount (EInvoiceData/BasicInformation)'));
  });

  it('falls back to InvoiceNumber, RequestTime and GeneralOrSpecialVAT when the first choices are absent', () => {
    // Prepare
    const xml = sandboxInvoiceXml({ ...plain, type: '增值税专用发票' })
      .replace(/<EIid>[^<]*<\/EIid>/, '')
      .replace(/<IssueTime>[^<]*<\/IssueTime>/, '')
      .replace(/<BasicInformation>/, '<BasicInformation><RequestTime>2024-04-25</RequestTime>')
      .replace(/<RequestTime>2024-04-25 15:58:41<\/RequestTime>/, '')
      .replace(/<EInvoiceType>.*?<\/EInvoiceType>/s, '');
    // Act
    const { invoice, checks } = readXml(xml);
    // Assess
    expect(invoice).toMatchObject({ number: plain.invoiceNo, issuedAt: '2024-04-25', type: '增值税专用发票' });
    expect(checks.numberMatches).toBe(true);
  });

  it('reads missing optional elements as empty, and no blue invoice as null', () => {
    // Prepare
    const xml = sandboxInvoiceXml(plain)
      .replace(/<AdditionalInformation>.*?<\/AdditionalInformation>/s, '')
      .replace(/<SpecMod>V1<\/SpecMod>/, '')
      .replace(/<BuyerName>[^<]*<\/BuyerName>/, '');
    // Act
    const { invoice, checks } = readXml(xml);
    // Assess
    expect(invoice).toMatchObject({ remark: '', redLetterOf: null, buyer: { taxNum: plain.buyer.taxNum, name: '' } });
    expect(invoice?.items[0]?.spec).toBe('');
    expect(checks.xmlRead).toBe(true);
  });

  it('decodes the XML entities and character references once, and keeps a formula-like name as it is', () => {
    // Prepare
    const { spec } = SANDBOX_XML_CASES.formulaSellerName;
    const xml = sandboxInvoiceXml({ ...spec, remark: 'A&B <C> &lt;' })
      .replace('</Remark>', ' &#20013;&#x6587;</Remark>');
    // Act
    const { invoice } = readXml(xml, expectedOf(spec));
    // Assess
    expect(invoice?.seller.name).toBe('=HYPERLINK("http://example.com","点此")有限公司');
    expect(invoice?.remark).toBe('A&B <C> &lt; 中文');
  });

  it('reads a document its declaration says is GBK', () => {
    // Prepare: 中文 in GBK is D6 D0 CE C4
    const before =
      '<?xml version="1.0" encoding="GBK"?><EInvoice><Header><EIid>24312000000000000101</EIid></Header><EInvoiceData>' +
      '<BasicInformation><TotalAmWithoutTax>0</TotalAmWithoutTax><TotalTaxAm>0</TotalTaxAm>' +
      '<TotalTax-includedAmount>0</TotalTax-includedAmount></BasicInformation><AdditionalInformation><Remark>';
    const after = '</Remark></AdditionalInformation></EInvoiceData></EInvoice>';
    const bytes = new Uint8Array([...strToU8(before), 0xd6, 0xd0, 0xce, 0xc4, ...strToU8(after)]);
    // Act
    const { invoice } = readInvoiceXml(zipSync({ 'fp.xml': bytes }), expectedOf(plain));
    // Assess
    expect(invoice?.remark).toBe('中文');
  });

  it('takes the EInvoice entry of a zip holding other files, in a folder, whatever the case of .xml', () => {
    // Prepare
    const zip = sandboxInvoiceZip(sandboxInvoiceXml(plain), {
      entry: 'some/folder/INVOICE.XML',
      others: { 'readme.txt': 'hello', 'meta.xml': '<?xml version="1.0"?><Meta><EIid>1</EIid></Meta>' },
    });
    // Act
    const { invoice, checks } = readInvoiceXml(zip, expectedOf(plain));
    // Assess
    expect(invoice?.number).toBe(plain.invoiceNo);
    expect(checks.xmlRead).toBe(true);
  });

  it('copies nothing from PassengerTransportation: no traveller name or ID number anywhere in the result', () => {
    // Prepare
    const { spec } = SANDBOX_XML_CASES.travel;
    // Act
    const reading = readSpec(spec);
    // Assess
    expect(reading.checks.xmlRead).toBe(true);
    const serialized = JSON.stringify(reading);
    expect(serialized).not.toContain(spec.traveller.name);
    expect(serialized).not.toContain(spec.traveller.idNum);
  });
});

describe('checking the XML is the invoice asked for', () => {
  it('says the number does not match when the XML names another invoice', () => {
    // Prepare
    const { spec, invoiceNo } = SANDBOX_XML_CASES.namesAnotherInvoice;
    // Act
    const { invoice, checks } = readSpec(spec, { invoiceNo });
    // Assess
    expect(invoice?.number).toBe('24312000000000000199');
    expect(checks).toEqual({ xmlRead: true, numberMatches: false, partyMatches: true, itemsAddUp: true });
  });

  it.each([
    ['sales', 'the seller', true, plain.seller.taxNum],
    ['sales', 'the buyer', false, plain.buyer.taxNum],
    ['purchase', 'the buyer', true, plain.buyer.taxNum],
    ['purchase', 'the seller', false, plain.seller.taxNum],
    ['sales', 'neither party', false, '91440300MA5FXXXX0X'],
  ] as const)('for direction %s, says a taxNum that is %s matches: %s', (direction, _who, matches, taxNum) => {
    // Prepare
    const expected = expectedOf(plain, { direction, taxNum });
    // Act
    const { checks } = readSpec(plain, expected);
    // Assess
    expect(checks.partyMatches).toBe(matches);
    expect(checks.numberMatches).toBe(true);
  });

  it('says the items do not add up when the totals differ from their sums by a cent', () => {
    // Prepare
    const { spec } = SANDBOX_XML_CASES.itemsDoNotAddUp;
    // Act
    const { invoice, checks } = readSpec(spec);
    // Assess
    expect(invoice?.amount).toBe('1200.01');
    expect(checks).toEqual({ xmlRead: true, numberMatches: true, partyMatches: true, itemsAddUp: false });
  });

  it('says the items do not add up when only their taxes differ', () => {
    // Prepare
    const spec = { ...plain, writtenTotals: { amount: '1200.00', tax: '92.99' } };
    // Act
    const { checks } = readSpec(spec);
    // Assess
    expect(checks.itemsAddUp).toBe(false);
  });

  it.each([
    [
      'its TotalTaxAm',
      /<TotalTaxAm>[^<]*</,
      '<TotalTaxAm>9.3e1<',
      `the EInvoice's TotalTaxAm is not a decimal amount: "9.3e1"`,
    ],
    [
      "an item's Amount",
      /<Amount>-100.00</,
      '<Amount>about 100<',
      `the EInvoice's IssuItemInformation[2]/Amount is not a decimal amount: "about 100"`,
    ],
  ])('refuses a document when %s is not a decimal, naming the field', (_field, pattern, replacement, problem) => {
    // Prepare
    const xml = sandboxInvoiceXml(plain).replace(pattern, replacement);
    // Act
    const reading = readXml(xml);
    // Assess
    expect(reading).toEqual({ checks: unreadable(problem) });
  });
});

describe('hostile or broken files', () => {
  /** 50 MiB of one letter inside an EInvoice: deflate shrinks it to about 50 KB. */
  let bigZip: Uint8Array;
  const BIG_BYTES = 50 * 1024 * 1024;

  beforeAll(() => {
    const payload = new Uint8Array(BIG_BYTES).fill(0x61);
    payload.set(strToU8('<EInvoice><Remark>'));
    bigZip = zipSync({ 'invoice/big.xml': payload }, { level: 1 });
  });

  it('refuses an XML entry that declares more than the cap, without inflating it', () => {
    // Prepare
    const started = performance.now();
    // Act
    const reading = readInvoiceXml(bigZip, expectedOf(plain));
    // Assess
    expect(reading).toEqual({
      checks: unreadable(`invoice/big.xml is too large: ${BIG_BYTES} bytes, at most ${MAX_XML_BYTES} are read`),
    });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('stops inflating an entry that claims 1 KB and inflates to 50 MB, holding far less than 50 MB', () => {
    // Prepare: the declared size lies in both the local header and the central directory
    const zip = withDeclaredSize(bigZip, 1024);
    const before = process.memoryUsage();
    const started = performance.now();
    // Act
    const reading = readInvoiceXml(zip, expectedOf(plain));
    // Assess
    const after = process.memoryUsage();
    expect(reading).toEqual({
      checks: unreadable('invoice/big.xml inflates past the 1024 bytes it declares: refused'),
    });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(10 * 1024 * 1024);
    expect(after.heapUsed - before.heapUsed).toBeLessThan(10 * 1024 * 1024);
  });

  it('refuses an XML bomb: a DOCTYPE declaring entities is never expanded', () => {
    // Prepare
    const laughs = Array.from({ length: 9 }, (_, level) => {
      const inner = `&lol${level || ''};`.repeat(10);
      return `<!ENTITY lol${level + 1} "${inner}">`;
    });
    const xml =
      `<?xml version="1.0"?>\n<!DOCTYPE EInvoice [<!ENTITY lol "lol">${laughs.join('')}]>\n` +
      '<EInvoice><Header><EIid>&lol9;</EIid></Header></EInvoice>';
    // Act
    const reading = readInvoiceXml(zipSync({ 'invoice/bomb.xml': strToU8(xml) }), expectedOf(plain));
    // Assess
    expect(reading).toEqual({
      checks: unreadable('invoice/bomb.xml declares a DOCTYPE or entities, which are refused'),
    });
  });

  it('says a zip holding no XML file holds none', () => {
    // Prepare
    const zip = zipSync({ 'invoice.ofd': strToU8('OFD'), 'readme.txt': strToU8('hello') });
    // Act
    const reading = readInvoiceXml(zip, expectedOf(plain));
    // Assess
    expect(reading).toEqual({ checks: unreadable('the zip holds no .xml file') });
  });

  it.each([
    ['a PDF', strToU8('%PDF-1.7\n%%EOF\n')],
    ['nothing', new Uint8Array(0)],
    ['a cut zip', sandboxInvoiceZip(sandboxInvoiceXml(plain)).subarray(0, 200)],
    ['random bytes', Uint8Array.from({ length: 4096 }, (_, index) => (index * 7919) % 251)],
  ])('says %s is not a readable zip', (_what, bytes) => {
    // Act
    const reading = readInvoiceXml(bytes, expectedOf(plain));
    // Assess
    expect(reading.invoice).toBeUndefined();
    expect(reading.checks).toEqual(unreadable(expect.stringMatching(/^the xml file is not a readable zip \(/)));
  });

  it('stops at a forged directory that claims four billion entries', () => {
    // Prepare: a zip64 end record claiming 0xFFFFFFFF entries, and nothing else
    const forged = new Uint8Array(56 + 20 + 22);
    const view = new DataView(forged.buffer);
    view.setUint32(0, 0x06064b50, true);
    view.setUint32(32, 0xffffffff, true);
    view.setUint32(56, 0x07064b50, true);
    view.setUint32(76, 0x06054b50, true);
    view.setUint16(76 + 8, 0xffff, true);
    view.setUint32(76 + 16, 0xffffffff, true);
    // Act
    const reading = readInvoiceXml(forged, expectedOf(plain));
    // Assess
    expect(reading).toEqual({ checks: unreadable('the zip holds more than 1000 entries') });
  });

  it('answers for any corruption of a real zip, never throwing', () => {
    // Prepare: a few bytes changed at pseudo-random places, the same places on every run
    const zip = sandboxInvoiceZip(sandboxInvoiceXml(plain));
    let seed = 20240425;
    const next = (below: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % below;
    const corrupted = Array.from({ length: 300 }, () => {
      const bytes = zip.slice();
      for (let flips = 1 + next(4); flips > 0; flips -= 1) bytes[next(bytes.length)] = next(256);
      return bytes;
    });
    // Act
    const readings = corrupted.map((bytes) => readInvoiceXml(bytes, expectedOf(plain)));
    // Assess
    for (const { invoice, checks } of readings) {
      if (checks.xmlRead) expect(invoice?.number).toBeTypeOf('string');
      else expect([invoice, typeof checks.problem]).toEqual([undefined, 'string']);
    }
  });

  it('says an XML whose root is not EInvoice is no EInvoice, naming the root it found', () => {
    // Prepare
    const { spec, invoiceNo } = SANDBOX_XML_CASES.notEInvoice;
    // Act
    const reading = readSpec(spec);
    // Assess
    expect(reading).toEqual({
      checks: unreadable(
        `no .xml file in the zip is an EInvoice (invoice/${invoiceNo}.xml: root element InvoiceReport)`,
      ),
    });
  });

  it('says malformed XML is malformed, with the line', () => {
    // Prepare
    const xml = sandboxInvoiceXml(plain).replace('</Header>', '');
    // Act
    const reading = readXml(xml);
    // Assess
    expect(reading.invoice).toBeUndefined();
    expect(reading.checks).toEqual(
      unreadable(expect.stringMatching(/^invoice\/24312000000000000101\.xml is malformed XML: .+ \(line \d+\)$/)),
    );
  });

  it('reports a document with no invoice number as unreadable', () => {
    // Prepare
    const xml = sandboxInvoiceXml(plain)
      .replace(/<EIid>[^<]*<\/EIid>/, '')
      .replace(/<InvoiceNumber>[^<]*<\/InvoiceNumber>/, '');
    // Act
    const reading = readInvoiceXml(zipSync({ 'fp.xml': strToU8(xml) }), expectedOf(plain));
    // Assess
    expect(reading).toEqual({
      checks: unreadable('the EInvoice has no invoice number (Header/EIid, TaxSupervisionInfo/InvoiceNumber)'),
    });
  });
});

describe('money in cents', () => {
  it.each([
    ['1000', 100000n],
    ['1000.5', 100050n],
    ['-72.00', -7200n],
    ['1,000.00', 100000n],
    ['-1,234,567.89', -123456789n],
    ['0.10', 10n],
    [' 93.00 ', 9300n],
    ['72.000', 7200n],
  ])('reads %j as %s cents', (text, cents) => {
    // Act
    const read = toCents(text);
    // Assess
    expect(read).toBe(cents);
  });

  const notMoney = ['1e3', '9.3E1', '0x10', '12.5.3', '1,00.00', '1000,00', '.5', '5.', '+5', '', 'NaN', 'Infinity'];
  // A fraction of a cent, full-width digits, a space as separator, misplaced signs.
  const alsoNotMoney = ['72.001', '１０', '1 000.00', '--5', '5-'];

  it.each([...notMoney, ...alsoNotMoney])('refuses %j', (text) => {
    // Act
    const read = toCents(text);
    // Assess
    expect(read).toBeUndefined();
  });

  it('formats cents with two decimals, negative ones included', () => {
    // Act
    const formatted = [0n, 5n, -5n, 100000n, -7200n, 123456789012345n].map(formatCents);
    // Assess
    expect(formatted).toEqual(['0.00', '0.05', '-0.05', '1000.00', '-72.00', '1234567890123.45']);
  });

  it('adds amounts exactly where floating point would not', () => {
    // Prepare: 0.1 + 0.2 is 0.30000000000000004 in floating point
    const amounts = ['0.10', '0.20'];
    // Act
    const sum = amounts.reduce((total, text) => total + toCents(text)!, 0n);
    // Assess
    expect(formatCents(sum)).toBe('0.30');
  });
});

describe('tax rates as percentages', () => {
  it.each([
    ['0.06', '6%'],
    ['0.13', '13%'],
    ['0', '0%'],
    ['0.00', '0%'],
    ['0.015', '1.5%'],
    ['0.07', '7%'],
    ['6%', '6%'],
    ['13', '13%'],
    ['免税', '免税'],
    ['不征税', '不征税'],
    ['', ''],
  ])('writes %j as %j', (written, percent) => {
    // Act
    const rate = taxRatePercent(written);
    // Assess
    expect(rate).toBe(percent);
  });
});

/** The zip with its only entry's uncompressed size rewritten in the local header and the central directory. */
function withDeclaredSize(zip: Uint8Array, size: number): Uint8Array {
  const patched = zip.slice();
  const view = new DataView(patched.buffer);
  view.setUint32(22, size, true);
  // zipSync writes no archive comment: the end record is the last 22 bytes, and names where the directory starts.
  const central = view.getUint32(patched.length - 22 + 16, true);
  view.setUint32(central + 24, size, true);
  return patched;
}
