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
