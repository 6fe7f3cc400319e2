/**
 * Page cursors of the jobs index. A store cursor is base64url JSON of the DynamoDB key where a query stopped (its
 * LastEvaluatedKey: the table key `pk` and the index key `queue` + `dueAt`). Cursors come back from callers, so one
 * is read only if it is exactly such a key, of the queue asked for: anything else would reach DynamoDB as a
 * malformed ExclusiveStartKey (a 500), or start another queue's listing.
 */

/** A cursor this code did not make, or made for another question. */
export class InvalidCursorError extends Error {
  constructor() {
    super('is not a cursor from an earlier answer to the same question');
    this.name = 'InvalidCursorError';
  }
}

const START_KEY_ATTRIBUTES = ['pk', 'queue', 'dueAt'];

/** The ExclusiveStartKey a store cursor holds for `queue` (e.g. `retry#open`); throws InvalidCursorError otherwise. */
export function startKeyOf(cursor: string, queue: string): Record<string, string> {
  const key = decodeStartKey(cursor, queue);
  if (!key) throw new InvalidCursorError();
  return key;
}

/** The ExclusiveStartKey a store cursor holds for `queue`, or undefined. */
export function decodeStartKey(cursor: string, queue: string): Record<string, string> | undefined {
  const key = decodeCursorJson(cursor);
  return isKeyOf(key, queue) ? key : undefined;
}

/**
 * The JSON value a cursor holds, or undefined. Only canonical base64url of valid UTF-8 is read: Buffer's decoder
 * skips characters it does not know and replaces bad bytes, which would let a mangled cursor half-work.
 */
export function decodeCursorJson(cursor: string): unknown {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const bytes = Buffer.from(cursor, 'base64url');
  if (bytes.toString('base64url') !== cursor) return undefined;
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
}

/** A plain object whose own values are strings. */
export const isStringRecord = (value: unknown): value is Record<string, string> =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  Object.values(value).every((attribute) => typeof attribute === 'string');

function isKeyOf(value: unknown, queue: string): value is Record<string, string> {
  if (!isStringRecord(value)) return false;
  const names = Object.keys(value);
  const exactlyTheKey = names.length === START_KEY_ATTRIBUTES.length && START_KEY_ATTRIBUTES.every((name) => names.includes(name));
  return exactlyTheKey && value.queue === queue;
}
