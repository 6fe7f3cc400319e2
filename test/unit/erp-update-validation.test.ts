import { describe, expect, it } from 'vitest';
import { ValidationError } from '#shared/errors';
import { parseRequest } from '#shared/validation';
import { erpUpdateRequestSchema } from '../../functions/erp-update/update-erp.ts';

const success = { invoiceNo: 'DZ202202150004', status: 80, invoiceNoOut: '24312000000022669098', invoiceCode: '000000000000' };

function problems(input: unknown) {
  try {
    parseRequest(erpUpdateRequestSchema, input);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).details;
  }
  throw new Error('expected a ValidationError');
}

describe('erp-update request validation', () => {
  it('defaults status to 80 and invoiceCode to empty', () => {
    expect(parseRequest(erpUpdateRequestSchema, { invoiceNo: 'DZ1', invoiceNoOut: '243120' })).toEqual({
      invoiceNo: 'DZ1',
      status: 80,
      invoiceNoOut: '243120',
      invoiceCode: '',
    });
  });

  it('accepts a failure without invoiceNoOut, and treats empty optional fields as absent', () => {
    expect(
      parseRequest(erpUpdateRequestSchema, { invoiceNo: 'DZ1', status: 65, invoiceNoOut: '', errorInfo: '', filePath: '' }),
    ).toEqual({ invoiceNo: 'DZ1', status: 65, invoiceCode: '' });
  });

  it('requires invoiceNoOut when status is 80, also when status is left to its default', () => {
    expect(problems({ invoiceNo: 'DZ1', status: 80 })).toEqual([{ field: 'invoiceNoOut', message: 'is required when status is 80' }]);
    expect(problems({ invoiceNo: 'DZ1' })).toEqual([{ field: 'invoiceNoOut', message: 'is required when status is 80' }]);
  });

  it('answers a body that is not an object (JSON null) with the body problem, not a crash', () => {
    expect(problems(null)).toEqual([{ field: 'body', message: 'must be a JSON object' }]);
    expect(problems(undefined)).toEqual([{ field: 'body', message: 'must be a JSON object' }]);
  });

  it('names every bad field in one answer', () => {
    expect(problems({ invoiceNo: '', status: 80, filePath: 'ftp://x' }).map((p) => p.field)).toEqual([
      'invoiceNo',
      'filePath',
      'invoiceNoOut',
    ]);
  });

  it.each([
    ['a status outside 65/75/80', { status: 70 }, 'status', 'must be 65, 75 or 80'],
    ['a status sent as text', { status: '80' }, 'status', 'must be 65, 75 or 80'],
    ['an invoiceNo of 21 characters', { invoiceNo: 'D'.repeat(21) }, 'invoiceNo', 'must be at most 20 characters'],
    ['an invoiceNoOut of 41 characters', { invoiceNoOut: '2'.repeat(41) }, 'invoiceNoOut', 'must be at most 40 characters'],
    ['an invoiceCode of 21 characters', { invoiceCode: '0'.repeat(21) }, 'invoiceCode', 'must be at most 20 characters'],
    ['an errorInfo of 256 characters', { errorInfo: '错'.repeat(256) }, 'errorInfo', 'must be at most 255 characters'],
    ['a relative filePath', { filePath: '/fp/1.pdf' }, 'filePath', 'must be an absolute http(s) URL'],
    ['a javascript: filePath', { filePath: 'javascript:alert(1)' }, 'filePath', 'must be an absolute http(s) URL'],
    ['a filePath of 1025 characters', { filePath: `https://e.com/${'a'.repeat(1011)}` }, 'filePath', 'must be at most 1024 characters'],
    ['an invoiceNo with a space', { invoiceNo: 'DZ 1' }, 'invoiceNo', 'must not contain whitespace, control characters or emoji'],
    ['an invoiceNoOut with an emoji', { invoiceNoOut: '2431😀' }, 'invoiceNoOut', 'must be ASCII digits and letters only'],
    ['an invoiceNoOut of full-width digits', { invoiceNoOut: '２４３１２０００００００２２６６９０９８' }, 'invoiceNoOut', 'must be ASCII digits and letters only'],
    ['an invoiceNoOut of Arabic-Indic digits', { invoiceNoOut: '٢٤٣١٢٠٠٠' }, 'invoiceNoOut', 'must be ASCII digits and letters only'],
    ['an invoiceNoOut of Devanagari digits', { invoiceNoOut: '२४३१२०००' }, 'invoiceNoOut', 'must be ASCII digits and letters only'],
    ['an invoiceNoOut with a hyphen', { invoiceNoOut: '2431-2000' }, 'invoiceNoOut', 'must be ASCII digits and letters only'],
    ['an invoiceCode of full-width digits', { invoiceCode: '０３３００２３００１１１' }, 'invoiceCode', 'must be ASCII digits and letters only'],
    ['an invoiceCode with a full-width letter', { invoiceCode: '０３３Ａ' }, 'invoiceCode', 'must be ASCII digits and letters only'],
    ['an invoiceCode with a tab', { invoiceCode: '0\t1' }, 'invoiceCode', 'must be ASCII digits and letters only'],
  ])('names the field for %s', (_case, change, field, message) => {
    expect(problems({ ...success, ...change })).toEqual([{ field, message }]);
  });

  it('accepts the invoice numbers and codes of every invoice kind: digits, and ASCII letters', () => {
    // Prepare
    const valid = [
      { invoiceNoOut: '24312000000022669098', invoiceCode: '' },
      { invoiceNoOut: '00012345', invoiceCode: '033002300111' },
      { invoiceNoOut: '12345678', invoiceCode: '1100153130' },
      { invoiceNoOut: 'A1B2c3', invoiceCode: 'Z9' },
    ];
    // Act
    const parsed = valid.map((fields) => parseRequest(erpUpdateRequestSchema, { ...success, ...fields }));
    // Assess
    expect(parsed.map(({ invoiceNoOut, invoiceCode }) => ({ invoiceNoOut, invoiceCode }))).toEqual(valid);
  });

  it('counts length in characters: 255 Chinese characters or emoji are allowed in errorInfo', () => {
    expect(parseRequest(erpUpdateRequestSchema, { ...success, errorInfo: '😀'.repeat(255) }).errorInfo).toHaveLength(510);
  });

  it('accepts a 1024-character https URL with & = + in it', () => {
    const filePath = `https://e.com/a?x=1&y=a+b&z=${'c'.repeat(1024 - 'https://e.com/a?x=1&y=a+b&z='.length)}`;
    expect(parseRequest(erpUpdateRequestSchema, { ...success, filePath }).filePath).toBe(filePath);
  });
});
