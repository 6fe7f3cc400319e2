import type { IncomingMessage } from 'node:http';

/** API Gateway's and Lambda's limit on a request: 6 MB. */
export const BODY_LIMIT_BYTES = 6 * 1024 * 1024;

export class BodyTooLargeError extends Error {
  constructor(limitBytes: number) {
    super(`The request body is over ${limitBytes} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/**
 * Reads a request body whole; local mode and the sandboxes only see small JSON and form bodies. A body over the
 * limit is refused as soon as that is known (from its Content-Length, or once that many bytes came), and reading
 * stops there. The request is left open, never destroyed: destroying it would reset the connection, and the client
 * would never see the 413.
 */
export function readBody(req: IncomingMessage, limitBytes = BODY_LIMIT_BYTES): Promise<Buffer> {
  if (Number(req.headers['content-length']) > limitBytes) return Promise.reject(new BodyTooLargeError(limitBytes));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
    const fail = (error: Error) => {
      stop();
      req.pause();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) fail(new BodyTooLargeError(limitBytes));
      else chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks));
    };
    const onError = (error: Error) => fail(error);
    const onClose = () => fail(new Error('The client closed the connection before the body was sent'));
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}
