import { describe, expect, it } from 'vitest';
import { decodeCursorJson, InvalidCursorError, startKeyOf } from '#shared/job-cursor';

/** The store's page cursors: only a DynamoDB key of the queue asked for ever reaches ExclusiveStartKey. */

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const key = { pk: 'retry#job#T/1', queue: 'retry#open', dueAt: '2026-01-01T00:00:00.000Z#retry#job#T/1' };

describe('a store cursor', () => {
  it('gives back the key it was made from, for its own queue', () => {
    // Act
    const startKey = startKeyOf(encode(key), 'retry#open');
    // Assess
    expect(startKey).toEqual(key);
  });

  it.each([
    ['JSON null', encode(null)],
    ['a JSON string', encode('x')],
    ['an array', encode([key])],
    ['a key without dueAt', encode({ pk: key.pk, queue: key.queue })],
    ['a key with an extra attribute', encode({ ...key, version: '1' })],
    ['a key with a number', encode({ ...key, pk: 1 })],
    ['a key with a null', encode({ ...key, dueAt: null })],
    ["another queue's key", encode({ ...key, queue: 'retry#failed' })],
    ['text that is not base64url', '!!'],
    ['base64url that is not JSON', Buffer.from('{"pk":').toString('base64url')],
  ])('is refused when it is %s', (_case, cursor) => {
    // Act
    const read = () => startKeyOf(cursor, 'retry#open');
    // Assess
    expect(read).toThrow(InvalidCursorError);
  });
});

describe('the JSON a cursor holds', () => {
  it('is read only from canonical base64url of valid UTF-8', () => {
    // Prepare
    const padded = `${encode({ a: 'b' })}=`;
    const badUtf8 = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]).toString('base64url');
    // Act
    const answers = [decodeCursorJson(encode({ a: 'b' })), decodeCursorJson(padded), decodeCursorJson(badUtf8), decodeCursorJson('')];
    // Assess
    expect(answers).toEqual([{ a: 'b' }, undefined, undefined, undefined]);
  });
});
