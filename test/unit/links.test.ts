import { describe, expect, it } from 'vitest';
import { durableLink, isValidLinkSignature, linkSignature } from '../../functions/download/links.ts';
import { sniffContentType } from '../../functions/download/mirror.ts';

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
  it('knows a zip by PK\\x03\\x04 and a pdf by %PDF-', () => {
    expect(sniffContentType(Buffer.from('PK\x03\x04\x14\x00', 'latin1'))).toEqual({ contentType: 'application/zip', extension: 'zip' });
    expect(sniffContentType(Buffer.from('%PDF-1.7\n'))).toEqual({ contentType: 'application/pdf', extension: 'pdf' });
  });

  it.each([
    ['an HTML error page', '<!DOCTYPE html><html>'],
    ['a JSON error', '{"code":404}'],
    ['an empty body', ''],
    ['an empty zip (end of central directory only)', 'PK\x05\x06'],
    ['a truncated signature', 'PK\x03'],
  ])('refuses %s', (_case, start) => {
    expect(sniffContentType(Buffer.from(start, 'latin1'))).toBeUndefined();
  });
});
