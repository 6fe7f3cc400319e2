import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ValidationError } from '#shared/errors';
import { issueDateSchema, parseRequest } from '#shared/validation';
import { downloadRequestSchema } from '../../functions/download/download-invoice.ts';

/** Jumdata bills every call: an issue date no invoice can have is refused before one is made. */

const schema = downloadRequestSchema(true);
const valid = { taxNum: '91310117568051222X', invoiceNo: '24312000000022669098', issueDate: '2024-04-25', direction: 'sales' };

function problems(input: unknown) {
  try {
    parseRequest(schema, input);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).details;
  }
  throw new Error('expected a ValidationError');
}

beforeEach(() => {
  // 00:30 on 2026-05-02 in China (UTC+8), still 2026-05-01 in UTC
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(new Date('2026-05-01T16:30:00Z'));
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the issue date of POST /download', () => {
  it.each(['2015-01-01', '2024-04-25', '2026-05-02', '2026-05-03'])('accepts %s, from 2015-01-01 to tomorrow in China', (issueDate) => {
    // Act
    const request = parseRequest(schema, { ...valid, issueDate });
    // Assess
    expect(request.issueDate).toBe(issueDate);
  });

  it.each(['0000-01-01', '2014-12-31', '2026-05-04', '2099-01-01'])('refuses %s, naming the allowed range', (issueDate) => {
    // Act
    const found = problems({ ...valid, issueDate });
    // Assess
    expect(found).toEqual([{ field: 'issueDate', message: 'must be from 2015-01-01 to 2026-05-03 (tomorrow, China time)' }]);
  });

  it('moves its last day with the China calendar, not with UTC', () => {
    // Prepare: 23:59 on 2026-05-02 in China
    vi.setSystemTime(new Date('2026-05-02T15:59:00Z'));
    // Act
    const result = issueDateSchema().safeParse('2026-05-04');
    // Assess
    expect(result.success).toBe(false);
    expect(issueDateSchema().safeParse('2026-05-03').success).toBe(true);
  });

  it('refuses a date that does not exist or is not YYYY-MM-DD with the format message', () => {
    // Act
    const found = [problems({ ...valid, issueDate: '2024-02-30' }), problems({ ...valid, issueDate: '2024/04/25' })];
    // Assess
    expect(found).toEqual([
      [{ field: 'issueDate', message: 'must be a date as YYYY-MM-DD' }],
      [{ field: 'issueDate', message: 'must be a date as YYYY-MM-DD' }],
    ]);
  });
});
