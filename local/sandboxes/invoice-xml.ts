import { strToU8, zipSync } from 'fflate';
import { formatCents, toCents } from '../../functions/download/invoice-xml.ts';

/**
 * Realistic 数电 EInvoice documents for the Jumdata sandbox and the tests: the tax bureau's element paths, its
 * traps (TotalTax-includedAmount beside each item's TotaltaxIncludedAmount, tax rates as fractions or percentages,
 * discount lines, red-letter invoices) and, on travel invoices, a PassengerTransportation block holding personal
 * data that the reader must never copy.
 */

export interface SandboxInvoiceItem {
  name: string;
  spec?: string;
  unit?: string;
  /** Absent on a discount line. */
  quantity?: string;
  unitPrice?: string;
  /** Written as given: `1000.00`, `-50.00`, or a tool's `1,000.00`. */
  amount: string;
  /** Written as given: a fraction (`0.06`), a percentage (`6%`) or text (`免税`). */
  taxRate: string;
  tax: string;
}

export interface SandboxInvoiceSpec {
  invoiceNo: string;
  /** `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD`, China time. */
  issuedAt: string;
  type: string;
  seller: { taxNum: string; name: string };
  buyer: { taxNum: string; name: string };
  items: SandboxInvoiceItem[];
  /** The blue invoice this red-letter invoice reverses (its items and totals are then negative). */
  redLetterOf?: string;
  remark?: string;
  /** A travel invoice's traveller: personal data that must never reach the archive's metadata. */
  traveller?: { name: string; idNum: string };
  /**
   * Totals written instead of the items' sums: for a document whose items do not add up, or written the way some
   * tools do (`1,200.00`). The total then is amount + tax.
   */
  writtenTotals?: { amount: string; tax: string };
  /** Another root element than EInvoice: a document that is not an invoice. */
  rootElement?: string;
}

/** The document as the tax bureau writes it. */
export function sandboxInvoiceXml(spec: SandboxInvoiceSpec): string {
  const root = spec.rootElement ?? 'EInvoice';
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<${root}>`,
    headerXml(spec),
    '<EInvoiceData>',
    partyXml('Seller', spec.seller),
    partyXml('Buyer', spec.buyer),
    basicInformationXml(spec),
    ...spec.items.map(itemXml),
    specificInformationXml(spec),
    `<AdditionalInformation><Remark>${escapeXml(spec.remark ?? '')}</Remark></AdditionalInformation>`,
    '</EInvoiceData>',
    '<TaxSupervisionInfo>',
    element('InvoiceNumber', spec.invoiceNo),
    element('IssueTime', spec.issuedAt),
    element('TaxBureauCode', '13100000000'),
    element('TaxBureauName', '国家税务总局上海市税务局'),
    '</TaxSupervisionInfo>',
    `</${root}>`,
  ].join('\n');
}

export interface SandboxZipOptions {
  /** The XML's entry; by default `invoice/<its number>.xml`, in a folder as Jumdata's zips have it. */
  entry?: string;
  /** Other entries, placed before the XML so that a reader must look past them. */
  others?: Record<string, string | Uint8Array>;
}

/** The zip Jumdata's xmlFile link serves. */
export function sandboxInvoiceZip(xml: string, options: SandboxZipOptions = {}): Uint8Array {
  const number = /<EIid>([^<]*)<\/EIid>/.exec(xml)?.[1] ?? 'einvoice';
  const entries: Record<string, Uint8Array> = {};
  for (const [name, content] of Object.entries(options.others ?? {})) {
    entries[name] = typeof content === 'string' ? strToU8(content) : content;
  }
  entries[options.entry ?? `invoice/${number}.xml`] = strToU8(xml);
  return zipSync(entries);
}

/** The invoice's totals in cents: the items' sums, unless the spec writes its own. */
export function sandboxTotals(spec: SandboxInvoiceSpec): { amount: string; tax: string; total: string } {
  const cents = (text: string) => toCents(text) ?? 0n;
  const sum = (field: 'amount' | 'tax') => spec.items.reduce((total, item) => total + cents(item[field]), 0n);
  if (spec.writtenTotals) {
    const { amount, tax } = spec.writtenTotals;
    return { amount, tax, total: formatCents(cents(amount) + cents(tax)) };
  }
  const [amount, tax] = [sum('amount'), sum('tax')];
  return { amount: formatCents(amount), tax: formatCents(tax), total: formatCents(amount + tax) };
}

function headerXml(spec: SandboxInvoiceSpec): string {
  const code = spec.type === '增值税专用发票' ? '01' : '02';
  const label = `${element('LabelCode', code)}${element('LabelName', spec.type)}`;
  return [
    '<Header>',
    element('EIid', spec.invoiceNo),
    '<EInvoiceTag>SWEI3100</EInvoiceTag><Version>0.1</Version>',
    '<InherentLabel>',
    '<InIssuType><LabelCode>Y</LabelCode><LabelName>是</LabelName></InIssuType>',
    `<EInvoiceType>${label}</EInvoiceType>`,
    `<GeneralOrSpecialVAT>${label}</GeneralOrSpecialVAT>`,
    '</InherentLabel>',
    '</Header>',
  ].join('\n');
}

function partyXml(role: 'Seller' | 'Buyer', party: { taxNum: string; name: string }): string {
  return [
    `<${role}Information>`,
    element(`${role}IdNum`, party.taxNum),
    element(`${role}Name`, party.name),
    element(`${role}Addr`, '上海市杨浦区国定路 335 号'),
    element(`${role}TelNum`, '021-55550100'),
    element(`${role}BankName`, '中国工商银行上海市国定路支行'),
    element(`${role}BankAccNum`, '1001234509876543210'),
    `</${role}Information>`,
  ].join('\n');
}

function basicInformationXml(spec: SandboxInvoiceSpec): string {
  const totals = sandboxTotals(spec);
  return [
    '<BasicInformation>',
    element('TotalAmWithoutTax', totals.amount),
    element('TotalTaxAm', totals.tax),
    element('TotalTax-includedAmount', totals.total),
    element('TotalTax-includedAmountInChinese', '(见小写金额)'),
    element('Drawer', '王开票'),
    element('RequestTime', spec.issuedAt),
    '</BasicInformation>',
  ].join('\n');
}

/** One line; a discount line has no quantity or unit price. Its own total is TotaltaxIncludedAmount. */
function itemXml(item: SandboxInvoiceItem): string {
  const itemTotal = formatCents((toCents(item.amount) ?? 0n) + (toCents(item.tax) ?? 0n));
  return [
    '<IssuItemInformation>',
    element('ItemName', item.name),
    element('SpecMod', item.spec ?? ''),
    element('MeaUnits', item.unit ?? ''),
    element('Quantity', item.quantity ?? ''),
    element('UnPrice', item.unitPrice ?? ''),
    element('Amount', item.amount),
    element('TaxRate', item.taxRate),
    element('ComTaxAm', item.tax),
    element('TotaltaxIncludedAmount', itemTotal),
    element('TaxClassificationCode', '3040201030000000000'),
    '</IssuItemInformation>',
  ].join('\n');
}

function specificInformationXml(spec: SandboxInvoiceSpec): string {
  const parts: string[] = [];
  if (spec.redLetterOf) {
    parts.push(`<RedEInvoice>${element('OriginalInvoiceCode', spec.redLetterOf)}</RedEInvoice>`);
  }
  if (spec.traveller) {
    const { name, idNum } = spec.traveller;
    parts.push(
      '<PassengerTransportation><Traveller>',
      element('TravellerName', name),
      element('ValidIdType', '居民身份证'),
      element('ValidIdNum', idNum),
      element('TravelDate', spec.issuedAt.slice(0, 10)),
      element('DeparturePlace', '上海'),
      element('Destination', '北京'),
      element('VehicleType', '火车'),
      element('Grade', '二等座'),
      '</Traveller></PassengerTransportation>',
    );
  }
  return parts.length > 0 ? `<SpecificInformation>${parts.join('\n')}</SpecificInformation>` : '';
}

function element(name: string, text: string): string {
  return `<${name}>${escapeXml(text)}</${name}>`;
}

const ENTITY_NAMES: Record<string, string> = { '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' };

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&${ENTITY_NAMES[char]};`);
}

const SELLER = { taxNum: '91310117568051222X', name: '上海示例信息技术有限公司' };
const BUYER = { taxNum: '91110000600037341L', name: '北京示例贸易有限公司' };

const SERVICE_ITEMS: SandboxInvoiceItem[] = [
  {
    name: '*信息技术服务*软件维护服务费',
    spec: 'V1',
    unit: '项',
    quantity: '1',
    unitPrice: '1000',
    amount: '1000.00',
    taxRate: '0.06',
    tax: '60.00',
  },
  { name: '*信息技术服务*软件维护服务费', amount: '-100.00', taxRate: '0.06', tax: '-6.00' },
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
];

const plain: SandboxInvoiceSpec = {
  invoiceNo: '24312000000000000101',
  issuedAt: '2024-04-25 15:58:41',
  type: '普通发票',
  seller: SELLER,
  buyer: BUYER,
  items: SERVICE_ITEMS,
  remark: '合同号 HT-2024-0425',
};

/**
 * Documents the sandbox can serve, each under its own invoice number (`invoiceNo`, what a request asks for). The
 * spec's own invoiceNo is what the XML says: they differ only for `namesAnotherInvoice`.
 */
export const SANDBOX_XML_CASES = {
  /** A 普通发票 with several items, one of them a discount line, tax rates in both forms. */
  plain: { invoiceNo: plain.invoiceNo, spec: plain },
  special: {
    invoiceNo: '24312000000000000102',
    spec: { ...plain, invoiceNo: '24312000000000000102', type: '增值税专用发票', remark: '' },
  },
  /** Negative as a whole, naming the blue invoice it reverses. */
  redLetter: {
    invoiceNo: '24312000000000000103',
    spec: {
      ...plain,
      invoiceNo: '24312000000000000103',
      items: [{ ...SERVICE_ITEMS[0]!, quantity: '-1', amount: '-1000.00', tax: '-60.00' }],
      redLetterOf: plain.invoiceNo,
      remark: '被红冲蓝字数电票号码：24312000000000000101',
    },
  },
  /** A seller name that a spreadsheet would take for a formula. */
  formulaSellerName: {
    invoiceNo: '24312000000000000104',
    spec: {
      ...plain,
      invoiceNo: '24312000000000000104',
      seller: { ...SELLER, name: '=HYPERLINK("http://example.com","点此")有限公司' },
    },
  },
  /** Totals that are not the items' sums (to the cent). */
  itemsDoNotAddUp: {
    invoiceNo: '24312000000000000105',
    spec: { ...plain, invoiceNo: '24312000000000000105', writtenTotals: { amount: '1200.01', tax: '93.00' } },
  },
  /** Served for one number, it names another. */
  namesAnotherInvoice: { invoiceNo: '24312000000000000106', spec: { ...plain, invoiceNo: '24312000000000000199' } },
  /** Well-formed XML that is not an EInvoice. */
  notEInvoice: {
    invoiceNo: '24312000000000000107',
    spec: { ...plain, invoiceNo: '24312000000000000107', rootElement: 'InvoiceReport' },
  },
  /** A travel invoice carrying a traveller's name and ID number. */
  travel: {
    invoiceNo: '24312000000000000108',
    spec: {
      ...plain,
      invoiceNo: '24312000000000000108',
      items: [
        {
          name: '*运输服务*铁路旅客运输服务',
          unit: '张',
          quantity: '1',
          unitPrice: '553.21',
          amount: '553.21',
          taxRate: '0.09',
          tax: '49.79',
        },
      ],
      traveller: { name: '张三丰', idNum: '110101199003071234' },
      remark: '',
    },
  },
} satisfies Record<string, { invoiceNo: string; spec: SandboxInvoiceSpec }>;
