import { ValidationError, type FieldProblem } from '#shared/errors';
import * as z from '#shared/zod';

/**
 * Request validation shared by every function: the field rules, and the one translation from zod's issues to the
 * `details` list of a 400 answer.
 */

/** GB 32100-2015: the 31 characters a unified social credit code may use (no I, O, S, V, Z). */
const CREDIT_CODE_CHARSET = '0123456789ABCDEFGHJKLMNPQRTUWXY';
const CREDIT_CODE_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/** The check character GB 32100-2015 prescribes for the first 17 characters, or undefined if one is not allowed. */
export function creditCodeCheckCharacter(first17: string): string | undefined {
  let sum = 0;
  for (let i = 0; i < 17; i++) {
    const value = CREDIT_CODE_CHARSET.indexOf(first17.charAt(i));
    if (value < 0) return undefined;
    sum += value * (CREDIT_CODE_WEIGHTS[i] ?? 0);
  }
  return CREDIT_CODE_CHARSET[(31 - (sum % 31)) % 31];
}

/**
 * A seller's tax number: 15 to 20 digits and capital letters. The 18-character unified social credit code must
 * carry a valid check character unless `checkCreditCode` is off (sandbox accounts use made-up numbers).
 */
export function taxNumSchema(checkCreditCode: boolean) {
  return z.string({ error: 'is required and must be a string' }).check(
    z.regex(/^[0-9A-Z]{15,20}$/, { error: 'must be 15 to 20 digits or capital letters' }),
    z.refine(
      // Only a well-formed 18-character number is checked, so a malformed one gets a single complaint.
      (value) =>
        !checkCreditCode || !/^[0-9A-Z]{18}$/.test(value) || creditCodeCheckCharacter(value) === value.charAt(17),
      { error: 'is not a valid 18-character unified social credit code (GB 32100-2015 check character)' },
    ),
  );
}

/** Length in Unicode code points: what the providers' MySQL columns and WDT's signature count. */
export const codePointLength = (text: string) => [...text].length;

/**
 * An identifier a provider stores as varchar: printable, no whitespace, no characters outside the Basic
 * Multilingual Plane (providers count those differently, and may not store them), at most `maxLength` characters.
 */
export function identifierSchema(maxLength: number) {
  return z.string({ error: 'is required and must be a string' }).check(
    z.minLength(1, { error: 'must not be empty' }),
    z.refine((value) => codePointLength(value) <= maxLength, { error: `must be at most ${maxLength} characters` }),
    // \p{C} covers control, format, unassigned and surrogate characters; \s every kind of whitespace.
    z.regex(/^[^\s\p{C}\u{10000}-\u{10FFFF}]*$/u, {
      error: 'must not contain whitespace, control characters or emoji',
    }),
  );
}

/**
 * An invoice number (发票号码) or code (发票代码) as the tax bureau prints it: digits, and ASCII letters, which this
 * API has always taken. Full-width and other scripts' digits look the same to a person but are other characters:
 * WDT would store them as sent, and nothing would match them. `typeError` says what the field is for.
 */
export function invoiceNumberSchema(maxLength: number, { allowEmpty = false, typeError = 'must be a string' } = {}) {
  return z.string({ error: typeError }).check(
    ...(allowEmpty ? [] : [z.minLength(1, { error: 'must not be empty' })]),
    z.maxLength(maxLength, { error: `must be at most ${maxLength} characters` }),
    z.regex(/^[0-9A-Za-z]*$/, { error: 'must be ASCII digits and letters only' }),
  );
}

/** Longest order number accepted; Nuonuo's own order numbers are far shorter, so anything longer is a mistake. */
export const ORDER_NO_MAX_LENGTH = 64;

/** Nuonuo's order number: what the shop sent when invoicing. */
export const orderNoSchema = () => identifierSchema(ORDER_NO_MAX_LENGTH);

/** Free text a provider stores: any characters, at most `maxLength` code points. */
export function freeTextSchema(maxLength: number) {
  return z.string({ error: 'must be a string' }).check(
    z.refine((value) => codePointLength(value) <= maxLength, { error: `must be at most ${maxLength} characters` }),
  );
}

/** An absolute http(s) URL of at most `maxLength` characters, sent exactly as given. */
export function httpUrlSchema(maxLength: number) {
  return z.string({ error: 'must be a string' }).check(
    z.refine((value) => codePointLength(value) <= maxLength, { error: `must be at most ${maxLength} characters` }),
    z.refine((value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol), {
      error: 'must be an absolute http(s) URL',
    }),
    z.regex(/^[^\s\p{C}\u{10000}-\u{10FFFF}]*$/u, {
      error: 'must not contain whitespace, control characters or emoji (percent-encode them)',
    }),
  );
}

/** The earliest issue date Jumdata is asked about: the product's floor. */
export const EARLIEST_ISSUE_DATE = '2015-01-01';

const CHINA_OFFSET_MS = 8 * 3600 * 1000; // UTC+8 all year

/** Tomorrow's date in China, YYYY-MM-DD: a day of margin for an issuer whose clock runs ahead of ours. */
export const latestIssueDate = (now = Date.now()) =>
  new Date(now + CHINA_OFFSET_MS + 24 * 3600 * 1000).toISOString().slice(0, 10);

/**
 * An invoice's issue date: a real YYYY-MM-DD date from 2015-01-01 to tomorrow, China time. Jumdata bills every call,
 * also one for a date no invoice can have. The last day is read at each parse: a schema outlives a day.
 */
export function issueDateSchema() {
  const allowedRange = () => `must be from ${EARLIEST_ISSUE_DATE} to ${latestIssueDate()} (tomorrow, China time)`;
  return z.iso.date({ error: 'must be a date as YYYY-MM-DD' }).check(
    // ISO dates compare as text; only a well-formed date is compared (an empty one is not skipped by default).
    z.refine((value) => value >= EARLIEST_ISSUE_DATE && value <= latestIssueDate(), {
      error: allowedRange,
      when: (payload) => payload.issues.length === 0,
    }),
  );
}

/** Parses `input` with `schema` or throws a ValidationError naming every bad field. */
export function parseRequest<T extends z.ZodMiniType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new ValidationError(toFieldProblems(result.error));
}

function toFieldProblems(error: z.core.$ZodError): FieldProblem[] {
  // A value of the wrong type gets its type's message alone: length checks also read arrays ("must not be empty").
  const fieldOf = (issue: z.core.$ZodIssue) => issue.path.join('.');
  const mistyped = new Set(error.issues.filter((issue) => issue.code === 'invalid_type').map(fieldOf));
  const issues = error.issues.filter((issue) => issue.code === 'invalid_type' || !mistyped.has(fieldOf(issue)));
  return issues.flatMap((issue) => {
    // A strict schema's unknown fields (a misspelt one would otherwise be ignored), each named.
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ field: [...issue.path, key].join('.'), message: 'is not a field of this request' }));
    return [{ field: issue.path.length > 0 ? issue.path.join('.') : 'body', message: issue.path.length > 0 ? issue.message : 'must be a JSON object' }];
  });
}


/** The longest period a listing or a ledger covers, both ends included. */
export const MAX_PERIOD_DAYS = 366;

/**
 * The checks of a period `from`–`to` (dates as YYYY-MM-DD): `to` not before `from`, and at most MAX_PERIOD_DAYS days
 * in all. Each names `to`, the date to change.
 */
export function periodChecks<T extends { from: string; to: string }>() {
  const days = (query: T) => (Date.parse(query.to) - Date.parse(query.from)) / 86_400_000 + 1;
  return [
    z.refine<T>((query) => query.to >= query.from, { path: ['to'], error: 'must not be before from' }),
    z.refine<T>((query) => query.to < query.from || days(query) <= MAX_PERIOD_DAYS, {
      path: ['to'],
      error: `must be at most ${MAX_PERIOD_DAYS} days after from, both included`,
    }),
  ] as const;
}
