import { describe, expect, it } from 'vitest';
import { toErrorResponse } from '#shared/errors';
import { parseMediaType, readJsonBody } from '#shared/request-body';

/**
 * How a request body becomes a value: its media type parsed as RFC 9110 says, its bytes read as UTF-8 only, its text
 * as JSON. Each refusal is the contract's answer: 415 for a body not sent as JSON, 400 for one that is not JSON.
 */

const event = (contentType: string | undefined, body: string | undefined, isBase64Encoded = false) => ({
  headers: contentType === undefined ? {} : { 'content-type': contentType },
  body,
  isBase64Encoded,
});

/** The status, code and message a refused body gets, or the value read. */
function answerTo(request: ReturnType<typeof event>) {
  try {
    return { value: readJsonBody(request) };
  } catch (error) {
    const { statusCode, body } = toErrorResponse(error);
    return { statusCode, ...body.error };
  }
}

describe('a media type', () => {
  it('is read case-insensitively, with whitespace around ; and quoted parameter values', () => {
    // Act
    const parsed = parseMediaType('Application/JSON ;\tCharset="UTF-8" ; q=1');
    // Assess
    expect(parsed).toEqual({ type: 'application', subtype: 'json', parameters: { charset: 'UTF-8', q: '1' } });
  });

  it('unescapes a quoted-pair in a quoted value, and allows an empty parameter', () => {
    expect(parseMediaType('application/json; a="x\\"y";')).toEqual({ type: 'application', subtype: 'json', parameters: { a: 'x"y' } });
  });

  it.each(['', 'application', 'application/', '/json', 'application/json charset=utf-8', 'application/json; charset', 'application/json; charset = utf-8', 'application/json; charset="utf-8', 'application /json'])(
    'is malformed as %j',
    (header) => {
      expect(parseMediaType(header)).toBeUndefined();
    },
  );
});

describe('a JSON request body', () => {
  it.each([
    'application/json',
    'application/json; charset=utf-8',
    'application/json ; charset=utf-8',
    'APPLICATION/JSON;CHARSET=UTF-8',
    'application/json; charset="utf-8"',
    'application/json;',
    'application/problem+json',
  ])('is read when sent as %s', (contentType) => {
    // Act
    const answer = answerTo(event(contentType, '{"orderNo":"甲1"}'));
    // Assess
    expect(answer).toEqual({ value: { orderNo: '甲1' } });
  });

  it('is read from base64, as API Gateway hands over a body it does not pass as text', () => {
    // Act
    const answer = answerTo(event('application/json', Buffer.from('{"orderNo":"甲1"}').toString('base64'), true));
    // Assess
    expect(answer).toEqual({ value: { orderNo: '甲1' } });
  });

  it.each([
    ['text/plain', "Content-Type must be application/json, got 'text/plain'"],
    ['application/x-www-form-urlencoded', "Content-Type must be application/json, got 'application/x-www-form-urlencoded'"],
    ['application/jsonx', "Content-Type must be application/json, got 'application/jsonx'"],
    ['application/json charset=utf-8', "Content-Type must be application/json, got 'application/json charset=utf-8'"],
    ['application/json; charset=latin1', "Content-Type charset must be UTF-8 (or left out), got 'application/json; charset=latin1'"],
    ['application/json; charset=utf8', "Content-Type charset must be UTF-8 (or left out), got 'application/json; charset=utf8'"],
    ['application/json; charset=utf-16', "Content-Type charset must be UTF-8 (or left out), got 'application/json; charset=utf-16'"],
    [undefined, 'Content-Type must be application/json, got none'],
  ])('is refused with 415 when sent as %s', (contentType, message) => {
    // Act
    const answer = answerTo(event(contentType, '{}'));
    // Assess
    expect(answer).toEqual({ statusCode: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message });
  });

  it.each([
    ['bad bytes in base64', event('application/json', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]).toString('base64'), true)],
    ['a text body holding U+FFFD, what a gateway leaves of bad bytes', event('application/json', '{"a":"RAW-1\uFFFD"}')],
    ['a lone surrogate in base64 (CESU-8)', event('application/json', Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]).toString('base64'), true)],
  ])('is refused with 400 when it is not valid UTF-8: %s', (_case, request) => {
    // Act
    const answer = answerTo(request);
    // Assess
    expect(answer).toEqual({
      statusCode: 400,
      code: 'VALIDATION_FAILED',
      message: 'The request is not valid',
      details: [{ field: 'body', message: 'is not valid UTF-8' }],
    });
  });

  it.each([
    ['malformed JSON', '{"taxNum": '],
    ['an empty body', undefined],
    ['a byte order mark', '\uFEFF{}'],
  ])('is refused with 400 for %s', (_case, body) => {
    // Act
    const answer = answerTo(event('application/json', body));
    // Assess
    expect(answer).toMatchObject({ statusCode: 400, details: [{ field: 'body', message: 'must be a valid JSON document' }] });
  });

  it('may spell U+FFFD as a JSON escape', () => {
    expect(answerTo(event('application/json', '{"a":"\\ufffd"}'))).toEqual({ value: { a: '\uFFFD' } });
  });
});
