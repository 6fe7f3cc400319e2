import { describe, expect, it } from 'vitest';
import { ValidationError } from '#shared/errors';
import { retryRequestSchema } from '../../functions/retry/retry-order.ts';
import { creditCodeCheckCharacter, parseRequest } from '#shared/validation';

const strict = retryRequestSchema(true);
const relaxed = retryRequestSchema(false);
const valid = { taxNum: '91310117568051222X', orderNo: '20240122150518179381' };

function problems(schema: typeof strict, input: unknown) {
  try {
    parseRequest(schema, input);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).details;
  }
  throw new Error('expected a ValidationError');
}

describe('GB 32100-2015 check character', () => {
  it.each([
    ['91310117568051222X', 'X'],
    ['91110000600037341L', 'L'],
    ['91330106MA2B0X7U4K', 'D'],
  ])('computes the check character of %s', (code, expected) => {
    expect(creditCodeCheckCharacter(code.slice(0, 17))).toBe(expected);
  });

  it('has no check character for letters the standard does not use', () => {
    expect(creditCodeCheckCharacter('9131011756805122I')).toBeUndefined();
  });
});

describe('retry request validation', () => {
  it('accepts a valid request and returns its fields', () => {
    expect(parseRequest(strict, { ...valid, extra: 'ignored' })).toEqual(valid);
  });

  it('accepts 15- and 20-character tax numbers, which carry no check character', () => {
    expect(parseRequest(strict, { ...valid, taxNum: '339901999999142' }).taxNum).toBe('339901999999142');
    expect(parseRequest(strict, { ...valid, taxNum: '33990199999914212345' }).taxNum).toHaveLength(20);
  });

  it.each([
    ['too short', '33990199999914'],
    ['too long', '339901999999142123456'],
    ['lowercase', '91310117568051222x'],
    ['with a space', '913101175680 1222X'],
  ])('names taxNum when it is %s', (_case, taxNum) => {
    expect(problems(strict, { ...valid, taxNum })).toEqual([
      { field: 'taxNum', message: 'must be 15 to 20 digits or capital letters' },
    ]);
  });

  it('names taxNum when an 18-character number has a wrong check character', () => {
    expect(problems(strict, { ...valid, taxNum: '91310117568051223X' })).toEqual([
      {
        field: 'taxNum',
        message: 'is not a valid 18-character unified social credit code (GB 32100-2015 check character)',
      },
    ]);
  });

  it('lets a wrong check character through when the check is relaxed for sandbox numbers', () => {
    expect(parseRequest(relaxed, { ...valid, taxNum: '91310117568051223X' }).taxNum).toBe('91310117568051223X');
  });

  it.each([
    ['empty', '', 'must not be empty'],
    ['with a space', '2024 0122', 'must not contain whitespace, control characters or emoji'],
    ['with a tab', '2024\t0122', 'must not contain whitespace, control characters or emoji'],
    ['with a control character', '2024\u00000122', 'must not contain whitespace, control characters or emoji'],
    ['with a zero-width space', '2024\u200b0122', 'must not contain whitespace, control characters or emoji'],
    ['65 characters long', 'A'.repeat(65), 'must be at most 64 characters'],
  ])('names orderNo when it is %s', (_case, orderNo, message) => {
    expect(problems(strict, { ...valid, orderNo })).toEqual([{ field: 'orderNo', message }]);
  });

  it('names every missing field at once', () => {
    expect(problems(strict, {})).toEqual([
      { field: 'taxNum', message: 'is required and must be a string' },
      { field: 'orderNo', message: 'is required and must be a string' },
    ]);
  });

  it('names a number where a string belongs', () => {
    expect(problems(strict, { ...valid, orderNo: 20240122 })).toEqual([
      { field: 'orderNo', message: 'is required and must be a string' },
    ]);
  });

  it.each([['an array', []], ['a string', 'x'], ['null', null]])('names the body when it is %s', (_case, body) => {
    expect(problems(strict, body)).toEqual([{ field: 'body', message: 'must be a JSON object' }]);
  });
});
