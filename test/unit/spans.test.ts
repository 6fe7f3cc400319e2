import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criticalPath } from '../../bench/critical-path.ts';
import { recordSpans } from '../../bench/spans.ts';

/** The bench's span recorder against a server on 127.0.0.1: what Node's channels give on the Node running this. */

/** Whether this Node tells of a request when it is created (Node 24 does, Node 20 does not). */
const publishesCreated = (() => {
  let published = false;
  const listener = () => (published = true);
  diagnosticsChannel.subscribe('http.client.request.created', listener);
  const probe = request('http://127.0.0.1:9/').on('error', () => {});
  probe.destroy();
  diagnosticsChannel.unsubscribe('http.client.request.created', listener);
  return published;
})();

let server: Server;
let host: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.method === 'GET') {
      // A body in two parts, 20 ms apart: the span must last until the second one has been read.
      res.writeHead(200, { 'content-length': '8' }).write('abcd');
      setTimeout(() => res.end('efgh'), 20);
      return;
    }
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

const get = (path: string) =>
  new Promise<IncomingMessage>((resolve, reject) => request(`http://${host}${path}`, resolve).on('error', reject).end());

const put = (path: string, body: NodeJS.ReadableStream, headers: Record<string, string> = {}) =>
  new Promise<void>((resolve, reject) => {
    const req = request(`http://${host}${path}`, { method: 'PUT', headers }, (res) => res.resume().on('end', resolve));
    req.on('error', reject);
    body.pipe(req);
  });

describe.skipIf(!publishesCreated)('recordSpans', () => {
  it('records node:http and fetch requests of its window only, labelled by service', async () => {
    const recorder = recordSpans([
      { host, name: 'api' },
      { host, pathPrefix: '/files/', name: 'file' },
    ]);
    try {
      await fetch(`http://${host}/before`, { method: 'POST', body: 'x' }).then((r) => r.text());
      recorder.begin();
      await fetch(`http://${host}/invoice/download`, { method: 'POST', body: 'x' }).then((r) => r.text());
      await put('/bucket/a/b/invoice.json', new PassThrough().end('{}'), { 'x-amz-target': 'DynamoDB_20120810.PutItem' });
      const file = await get('/files/123/pdf.bin');
      file.resume();
      await new Promise((resolve) => file.on('end', resolve));
      const spans = recorder.end();
      expect(spans.map((span) => span.label)).toEqual(['api POST /invoice/download', 'api PutItem', 'file GET …/pdf.bin']);
      expect(criticalPath(spans).length).toBe(3);
      // The GET lasted until its body's second part had been read.
      expect(spans[2]!.end - spans[2]!.start).toBeGreaterThanOrEqual(15);
    } finally {
      recorder.close();
    }
  });

  it('starts a PUT when it is sent, and ties it to the GET whose body streams into it', async () => {
    const recorder = recordSpans([{ host, name: 'svc' }]);
    try {
      recorder.begin();
      const file = await get('/files/1/pdf.bin');
      const meter = new PassThrough();
      file.pipe(meter);
      await put('/bucket/invoices/1/pdf.pdf', meter);
      const spans = recorder.end();
      const [getSpan, putSpan] = spans;
      expect(spans.map((span) => span.label)).toEqual(['svc GET …/pdf.bin', 'svc PUT …/pdf.pdf']);
      // The PUT was sent before the GET's body was all in, not once its own body had gone out.
      expect(putSpan!.start).toBeLessThan(getSpan!.end);
      expect(putSpan!.streamedFrom).toBe(getSpan!.id);
      expect(criticalPath(spans).steps.map((step) => step.length)).toEqual([1]);
    } finally {
      recorder.close();
    }
  });

  it('ends a request that failed', async () => {
    // A port nothing listens on (fetch refuses some ports outright, such as 1, without sending anything).
    const closed = createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => closed.once('listening', resolve));
    const refusing = `127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const recorder = recordSpans([]);
    try {
      recorder.begin();
      await expect(fetch(`http://${refusing}/a`)).rejects.toThrow();
      await new Promise((resolve) => request(`http://${refusing}/b`).on('error', resolve).end());
      const spans = recorder.end();
      expect(spans.map((span) => span.label)).toEqual([`${refusing} GET /a`, `${refusing} GET /b`]);
    } finally {
      recorder.close();
    }
  });
});

describe.skipIf(publishesCreated)('recordSpans, on a Node that does not tell when a request is created', () => {
  it('refuses to count', async () => {
    const recorder = recordSpans([]);
    try {
      recorder.begin();
      const file = await get('/files/1/pdf.bin');
      file.resume();
      await new Promise((resolve) => file.on('end', resolve));
      expect(() => recorder.end()).toThrow(/publishes no http.client.request.created/);
    } finally {
      recorder.close();
    }
  });
});
