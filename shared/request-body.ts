import { UnsupportedMediaTypeError, ValidationError } from '#shared/errors';

/**
 * A request body as the API takes it (docs/api.md): declared `application/json` (or a `+json` type, which is
 * JSON too: RFC 6839), in UTF-8, holding one JSON document. The media type is parsed as RFC 9110 says: type and
 * subtype and parameter names case-insensitive, whitespace allowed around `;`, values a token or a quoted string.
 */

export interface MediaType {
  type: string;
  subtype: string;
  /** By lower-cased name; values as sent, unquoted. */
  parameters: Record<string, string>;
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED_STRING = '"(?:[\\t !#-\\[\\]-~\\x80-\\xff]|\\\\[\\t -~\\x80-\\xff])*"';
const TYPE_AND_SUBTYPE = new RegExp(`^(${TOKEN})/(${TOKEN})`);
/** One `OWS ";" OWS [ parameter ]` of RFC 9110's `parameters`, read from where the last one ended. */
const PARAMETER = new RegExp(`[ \\t]*;[ \\t]*(?:(${TOKEN})=(${TOKEN}|${QUOTED_STRING}))?`, 'y');

/** A Content-Type value's parts, or undefined if it is not a media type (a parameter given twice is ambiguous). */
export function parseMediaType(header: string): MediaType | undefined {
  const text = header.replace(/^[ \t]+|[ \t]+$/g, '');
  const head = TYPE_AND_SUBTYPE.exec(text);
  if (!head) return undefined;
  const parameters: Record<string, string> = {};
  for (let at = head[0].length; at < text.length; at = PARAMETER.lastIndex) {
    PARAMETER.lastIndex = at;
    const match = PARAMETER.exec(text);
    if (!match) return undefined;
    const [, name, value] = match;
    if (name === undefined || value === undefined) continue;
    if (Object.hasOwn(parameters, name.toLowerCase())) return undefined;
    parameters[name.toLowerCase()] = value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
  }
  return { type: head[1]!.toLowerCase(), subtype: head[2]!.toLowerCase(), parameters };
}

export interface BodyEvent {
  headers?: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded?: boolean;
}

/**
 * The JSON value a request carries. 415 (UnsupportedMediaTypeError) unless it is declared JSON in UTF-8; 400
 * (ValidationError on `body`) if its bytes are not UTF-8 or its text is not one JSON document.
 */
export function readJsonBody(event: BodyEvent): unknown {
  checkMediaType(headerOf(event.headers, 'content-type'));
  try {
    return JSON.parse(bodyText(event));
  } catch (error) {
    if (error instanceof ValidationError) throw error;
    throw new ValidationError([{ field: 'body', message: 'must be a valid JSON document' }]);
  }
}

function checkMediaType(header: string | undefined): void {
  const mediaType = header === undefined ? undefined : parseMediaType(header);
  const isJson = mediaType?.type === 'application' && /^(.+\+)?json$/.test(mediaType.subtype);
  if (!mediaType || !isJson) throw new UnsupportedMediaTypeError(header);
  // UTF-8 is JSON's only encoding on the wire (RFC 8259 §8.1): any other charset would be read wrongly.
  const charset = mediaType.parameters.charset;
  if (charset !== undefined && charset.toLowerCase() !== 'utf-8') {
    throw new UnsupportedMediaTypeError(header, 'charset must be UTF-8 (or left out)');
  }
}

/** Fatal: bad bytes throw instead of becoming U+FFFD. A byte order mark is kept, so it fails as JSON, as in a text body. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The body's text. API Gateway hands over a body it does not pass as text base64-encoded; those bytes must be UTF-8.
 * A text body holding U+FFFD is refused too: that is what a gateway leaves of bytes that are not UTF-8, and no
 * request can be told apart from one that really meant it (a caller who does writes it as the JSON escape \ufffd).
 */
function bodyText({ body, isBase64Encoded }: BodyEvent): string {
  if (body === undefined) return '';
  let text = body;
  if (isBase64Encoded) {
    try {
      text = UTF8.decode(Buffer.from(body, 'base64'));
    } catch {
      throw notUtf8();
    }
  }
  if (text.includes('\uFFFD')) throw notUtf8();
  return text;
}

const notUtf8 = () => new ValidationError([{ field: 'body', message: 'is not valid UTF-8' }]);

function headerOf(headers: BodyEvent['headers'], name: string): string | undefined {
  const found = Object.keys(headers ?? {}).find((key) => key.toLowerCase() === name);
  return found === undefined ? undefined : headers?.[found];
}
