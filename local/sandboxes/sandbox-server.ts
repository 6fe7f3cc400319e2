import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBody } from '../read-body.ts';

/** What every sandbox keeps of each request it received: the exact bytes, and the form fields they carry. */
export interface ReceivedRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  rawBody: string;
  fields: Record<string, string>;
}

export interface SandboxServer {
  /** http://127.0.0.1:PORT */
  origin: string;
  received: ReceivedRequest[];
  close(): Promise<void>;
}

/**
 * The HTTP plumbing the provider sandboxes share: 127.0.0.1 only, every request recorded before `handle` sees it,
 * and a close that does not wait for idle keep-alive connections.
 */
export async function startSandboxServer(
  handle: (request: ReceivedRequest, res: ServerResponse, req: IncomingMessage) => Promise<void>,
  port = 0,
): Promise<SandboxServer> {
  const received: ReceivedRequest[] = [];
  const server = createServer((req, res) => {
    (async () => {
      const path = new URL(req.url ?? '/', 'http://sandbox').pathname;
      const rawBody = (await readBody(req)).toString('utf8');
      const request: ReceivedRequest = {
        method: req.method ?? '',
        path,
        contentType: req.headers['content-type'],
        rawBody,
        fields: Object.fromEntries(new URLSearchParams(rawBody)),
      };
      received.push(request);
      await handle(request, res, req);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  // A port that is taken rejects (EADDRINUSE) rather than crashing the process with an unheard 'error'.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(res: ServerResponse, body: unknown, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8' }).end(JSON.stringify(body));
}

export const secondsNow = () => Math.floor(Date.now() / 1000);
