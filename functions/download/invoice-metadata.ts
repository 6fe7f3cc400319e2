/**
 * What the archive knows of an invoice without opening a file: read from the tax bureau's XML (invoice-xml.ts) and
 * Jumdata's fields. Money is a decimal string with two decimals (negative on a red-letter invoice), never a float.
 */

export interface InvoiceParty {
  taxNum: string;
  name: string;
}

export interface InvoiceItem {
  name: string;
  spec: string;
  unit: string;
  /** As written, e.g. "1", "2.5"; "" on a discount line. */
  quantity: string;
  /** As written; "" on a discount line. */
  unitPrice: string;
  /** Two decimals. */
  amount: string;
  /** A percentage ("6%", "13%", "0%") whatever form the XML used; text such as 免税 kept as it is. */
  taxRate: string;
  /** Two decimals. */
  tax: string;
}

/** What the XML says of the invoice. Missing optional elements are "" (null for `redLetterOf`). */
export interface XmlInvoice {
  number: string;
  /** `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD` (China time), as written. */
  issuedAt: string;
  type: string;
  seller: InvoiceParty;
  buyer: InvoiceParty;
  amount: string;
  tax: string;
  total: string;
  items: InvoiceItem[];
  /** The blue invoice a red-letter invoice reverses. */
  redLetterOf: string | null;
  remark: string;
}

export interface InvoiceChecks {
  xmlRead: boolean;
  /** The XML names the invoice asked for. */
  numberMatches: boolean;
  /** The request's taxNum is the XML's seller (sales) or buyer (purchase). */
  partyMatches: boolean;
  /** The items' amounts and taxes add up to the totals, to the cent. */
  itemsAddUp: boolean;
  /** Why the XML could not be read, when it could not. */
  problem?: string;
}

/** The invoice as the API shows it: the XML's fields, and Jumdata's verdicts on it. */
export interface InvoiceMetadata extends XmlInvoice {
  /** Jumdata: 是否作废. */
  voided: boolean;
  /** Jumdata: 是否冲红. */
  redFlushed: boolean;
  /** Jumdata's buyer tax number (购买方纳税人识别号). */
  buyerTaxNum?: string;
  /** Jumdata's 查验结果, e.g. 经查验,发票信息一致. */
  verification: string;
}

/** Jumdata's verdicts on an invoice, from its fields. */
export interface JumdataSummary {
  voided: boolean;
  redFlushed: boolean;
  buyerTaxNum?: string;
}

/**
 * The invoice's metadata: the XML's fields where it was read; otherwise Jumdata's fields only, with empty money
 * (an invoice whose XML could not be read adds nothing to a ledger's totals).
 */
export function invoiceMetadata(
  xml: XmlInvoice | undefined,
  jumdata: JumdataSummary,
  fields: Record<string, unknown>,
  invoiceNo: string,
): InvoiceMetadata {
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  const verdicts = { ...jumdata, verification: text(fields.Cyjg) };
  if (xml) return { ...xml, ...verdicts };
  return {
    number: text(fields.Qdfphm) || text(fields.Fphm) || invoiceNo,
    issuedAt: text(fields.Kprq),
    type: '',
    seller: { taxNum: '', name: '' },
    buyer: { taxNum: jumdata.buyerTaxNum ?? '', name: '' },
    amount: '',
    tax: '',
    total: '',
    items: [],
    redLetterOf: null,
    remark: '',
    ...verdicts,
  };
}
