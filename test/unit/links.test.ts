import { describe, expect, it } from 'vitest';
import { durableLink, isValidLinkSignature, linkSignature } from '../../functions/download/links.ts';
import { FileFetchError } from '#shared/file-fetch';
import { sniffContentType, sniffFormat } from '../../functions/download/mirror.ts';
import type { FileKind } from '../../functions/download/invoice-files.ts';

const key = 'k'.repeat(64);
const taxNum = '91310117568051222X';
const invoiceNo = '24312000000022669098';

describe('durable file links', () => {
  it('carry an HMAC of the tax number, invoice number and kind', () => {
    const link = new URL(durableLink('https://api.example.com/', key, taxNum, invoiceNo, 'pdf'));
    expect(link.pathname).toBe(`/files/${taxNum}/${invoiceNo}/pdf`);
    expect(link.searchParams.get('sig')).toBe(linkSignature(key, taxNum, invoiceNo, 'pdf'));
    expect(isValidLinkSignature(key, taxNum, invoiceNo, 'pdf', link.searchParams.get('sig')!)).toBe(true);
  });

  it('do not open another file, invoice or company when the path is changed', () => {
    const sig = linkSignature(key, taxNum, invoiceNo, 'pdf');
    expect(isValidLinkSignature(key, taxNum, invoiceNo, 'ofd', sig)).toBe(false);
    expect(isValidLinkSignature(key, taxNum, '24312000000022669099', 'pdf', sig)).toBe(false);
    expect(isValidLinkSignature(key, '91110000600037341L', invoiceNo, 'pdf', sig)).toBe(false);
  });

  it('are refused when the signature is altered, truncated or made with another key', () => {
    const sig = linkSignature(key, taxNum, invoiceNo, 'pdf');
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    expect(isValidLinkSignature(key, taxNum, invoiceNo, 'pdf', flipped)).toBe(false);
    expect(isValidLinkSignature(key, taxNum, invoiceNo, 'pdf', sig.slice(0, -1))).toBe(false);
    expect(isValidLinkSignature(key, taxNum, invoiceNo, 'pdf', '')).toBe(false);
    expect(isValidLinkSignature('other'.repeat(10), taxNum, invoiceNo, 'pdf', sig)).toBe(false);
  });
});

describe('sniffing what a file is', () => {
  const zip = Buffer.from('PK\x03\x04\x14\x00', 'latin1');
  const pdf = Buffer.from('%PDF-1.7\n');
  const refusal = (kind: FileKind, head: Buffer) => {
    try {
      sniffContentType(kind, head);
    } catch (error) {
      return error;
    }
    throw new Error(`the ${kind} slot accepted ${JSON.stringify(head.toString('latin1'))}`);
  };

  it('knows a zip by PK\\x03\\x04 and a pdf by %PDF-', () => {
    expect(sniffFormat(zip)).toBe('zip');
    expect(sniffFormat(pdf)).toBe('pdf');
  });

  it('stores the pdf slot as a pdf and the ofd and xml slots as zips', () => {
    expect(sniffContentType('pdf', pdf)).toEqual({ contentType: 'application/pdf', extension: 'pdf' });
    expect(sniffContentType('ofd', zip)).toEqual({ contentType: 'application/zip', extension: 'zip' });
    expect(sniffContentType('xml', zip)).toEqual({ contentType: 'application/zip', extension: 'zip' });
  });

  it.each([
    // A well-formed file of the other format is what the link holds: asking again cannot help.
    ['a zip in the pdf slot', 'pdf', zip, 'the pdf link gave a zip, not a pdf', false],
    ['a pdf in the ofd slot', 'ofd', pdf, 'the ofd link gave a pdf, not a zip', false],
    ['a pdf in the xml slot', 'xml', pdf, 'the xml link gave a pdf, not a zip', false],
    // Something unrecognised may be the file host's passing trouble: worth another attempt.
    ['an HTML page in the xml slot', 'xml', Buffer.from('<!DOCTYPE html><html>'), 'the xml link gave content starting with "<!DOCTYPE html><", not a zip', true],
    ['an empty body in the pdf slot', 'pdf', Buffer.alloc(0), 'the pdf link gave an empty body, not a pdf', true],
  ] as const)('refuses %s as wrong content, saying what came instead', (_case, kind, head, message, retryable) => {
    const error = refusal(kind, head);
    expect(error).toBeInstanceOf(FileFetchError);
    expect(error).toMatchObject({ reason: 'wrong_content', message, retryable });
  });

  it.each([
    ['an HTML error page', '<!DOCTYPE html><html>'],
    ['a JSON error', '{"code":404}'],
    ['an empty body', ''],
    ['an empty zip (end of central directory only)', 'PK\x05\x06'],
    ['a truncated signature', 'PK\x03'],
  ])('does not take %s for a zip or a pdf', (_case, start) => {
    const head = Buffer.from(start, 'latin1');
    expect(sniffFormat(head)).toBeUndefined();
    for (const kind of ['pdf', 'ofd', 'xml'] as const) expect(refusal(kind, head)).toMatchObject({ reason: 'wrong_content' });
  });
});
