import { describe, expect, it } from 'vitest';
import { ValidationError } from '#shared/errors';
import { listJobsSchema } from '#shared/jobs-api';
import { parseRequest } from '#shared/validation';
import { downloadRequestSchema } from '../../functions/download/download-invoice.ts';
import { fileLinkSchema } from '../../functions/download/links.ts';
import { erpUpdateRequestSchema } from '../../functions/erp-update/update-erp.ts';
import { retryRequestSchema } from '../../functions/retry/retry-order.ts';

/**
 * Every request schema, every field, every wrong JSON type: a refusal names the field once, with what it must be,
 * never zod's generic "Invalid input: expected string, received null".
 */

const taxNum = '91310117568051222X';
const invoiceNo = '24312000000022669098';
const schemas = [
  ['POST /retry', retryRequestSchema(true), { taxNum, orderNo: '20240122150518179381' }],
  [
    'POST /erp-update',
    erpUpdateRequestSchema,
    { invoiceNo: 'DZ202202150004', status: 80, invoiceNoOut: invoiceNo, invoiceCode: '033002300111', errorInfo: '购方税号错误', filePath: 'https://e.com/1.pdf' },
  ],
  ['POST /download', downloadRequestSchema(true), { taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales' }],
  ['GET /jobs', listJobsSchema, { state: 'pending', function: 'retry', limit: '20', cursor: 'eyJyZXRyeSI6IngifQ' }],
  ['GET /files', fileLinkSchema, { taxNum, invoiceNo, kind: 'pdf', sig: 'c2lnbmF0dXJl' }],
] as const;
const wrongValues = [
  ['null', null],
  ['a number', 42],
  ['a boolean', true],
  ['an object', { a: 1 }],
  ['an array', ['x']],
  ['an empty array', []],
  ['an empty string', ''],
  ['missing', undefined],
] as const;

const cases = schemas.flatMap(([route, schema, valid]) =>
  Object.keys(valid).flatMap((field) => wrongValues.map(([label, value]) => ({ route, schema, valid, field, label, value }))),
);

/** The problems a request has, none if it is accepted. */
function problemsOf(schema: (typeof schemas)[number][1], input: unknown) {
  try {
    parseRequest(schema, input);
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).details;
  }
}

describe('the message of a field of the wrong type', () => {
  it.each(cases)('names $field of $route once, with what it must be, when it is $label', ({ schema, valid, field, value }) => {
    // Prepare
    const request = { ...valid, [field]: value };
    // Act
    const problems = problemsOf(schema, request);
    // Assess: accepted (an optional field left empty) or refused once, specifically
    expect(problems.length).toBeLessThanOrEqual(1);
    for (const problem of problems) {
      expect(problem.field).toBe(field);
      expect(problem.message).toMatch(/^(must|is) /);
      expect(problem.message).not.toMatch(/invalid input|expected|received|too (big|small)/i);
    }
  });
});

describe('null in an optional field of POST /erp-update', () => {
  it.each(['invoiceNoOut', 'invoiceCode', 'errorInfo', 'filePath'])('means empty in %s, as leaving it out does', (field) => {
    // Prepare
    const request = { invoiceNo: 'DZ1', status: 75, [field]: null };
    // Act
    const withNull = parseRequest(erpUpdateRequestSchema, request);
    // Assess
    expect(withNull).toEqual(parseRequest(erpUpdateRequestSchema, { invoiceNo: 'DZ1', status: 75 }));
    expect(withNull.invoiceCode).toBe('');
  });
});
