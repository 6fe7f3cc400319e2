import type { IncomingMessage } from 'node:http';

/** API Gateway's and Lambda's limit on a request: 6 MB. */
export class BodyTooLargeError extends Error {
  constructor(limitBytes: number) {
    super(`The request body is over ${limitBytes} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/** Reads a request body whole; local mode and the sandboxes only see small JSON and form bodies. */
export async function readBody(req: IncomingMessage, limitBytes = 6 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limitBytes) throw new BodyTooLargeError(limitBytes);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
