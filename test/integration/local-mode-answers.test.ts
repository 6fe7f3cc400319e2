import { describe, expect, it } from 'vitest';
import { JUMDATA_SANDBOX_INVOICES as INVOICES } from '../../local/sandboxes/jumdata.ts';
import { useLocalMode } from '../helpers/local-mode.ts';

/**
 * What local mode answers itself, as API Gateway would before any handler runs (an over-size body, a path it cannot
 * decode, a route it does not have), and a query parameter sent twice read as API Gateway reads it.
 */

const { state, post } = useLocalMode();
const taxNum = '91310117568051222X';
const SEVEN_MB = 7 * 1024 * 1024;

interface ErrorAnswer {
  error: { code: string; message: string };
}

/** A 7 MB body sent as a stream, with no Content-Length: only counting what arrives finds it too large. */
function streamedBody(totalBytes: number): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(64 * 1024).fill(0x20);
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= totalBytes) return controller.close();
      controller.enqueue(chunk);
      sent += chunk.length;
    },
  });
}

describe('local mode answering what API Gateway itself refuses', () => {
  it('answers 413 PAYLOAD_TOO_LARGE in the error shape to a 7 MB body, with a request id', async () => {
    // Act
    const response = await fetch(`${state.local.url}/download`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.alloc(SEVEN_MB, 0x20),
    });
    // Assess
    expect(response.status).toBe(413);
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const answer = (await response.json()) as ErrorAnswer;
    expect(answer.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(answer.error.message).toContain('6291456 bytes');
  });

  it('answers 413 to a 7 MB body streamed without a length, and local mode goes on answering', async () => {
    // Act
    const response = await fetch(`${state.local.url}/retry`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: streamedBody(SEVEN_MB),
      duplex: 'half',
    } as RequestInit);
    const after = await post('/retry', { taxNum, orderNo: '' });
    // Assess
    expect(response.status).toBe(413);
    expect(response.headers.get('x-request-id')).toBeTruthy();
    expect(((await response.json()) as ErrorAnswer).error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(after.status).toBe(400);
  });

  it('answers 400 VALIDATION_FAILED in the error shape to a path with a malformed %-escape', async () => {
    // Act
    const response = await fetch(`${state.local.url}/files/%E0%A4%A/x/pdf`);
    // Assess
    expect(response.status).toBe(400);
    expect(response.headers.get('x-request-id')).toBeTruthy();
    expect(((await response.json()) as ErrorAnswer).error).toEqual({
      code: 'VALIDATION_FAILED',
      message: 'The path holds a malformed %-escape',
    });
  });

  it('answers 404 NOT_FOUND in the error shape to a route it does not have, with a request id', async () => {
    // Act
    const response = await fetch(`${state.local.url}/nothing?x=1`);
    // Assess
    expect(response.status).toBe(404);
    expect(response.headers.get('x-request-id')).toBeTruthy();
    expect(await response.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'No route GET /nothing' } });
  });
});

describe('local mode joining what is sent more than once, as API Gateway does', () => {
  it('refuses a durable link whose sig is sent twice, a bad one first, as API Gateway joins them with a comma', async () => {
    // Prepare: a real durable link, from a download in local mode
    const answer = await post('/download', { taxNum, invoiceNo: INVOICES.success, issueDate: '2024-04-25', direction: 'sales' });
    expect(answer.status).toBe(200);
    const link = new URL(answer.body.files.pdf.link as string);
    const validSig = link.searchParams.get('sig')!;
    // Act
    const valid = await fetch(link, { redirect: 'manual' });
    const twice = await fetch(`${state.local.url}${link.pathname}?sig=AAAA&sig=${validSig}`, { redirect: 'manual' });
    // Assess
    expect(valid.status).toBe(302);
    expect(twice.status).toBe(403);
    expect(((await twice.json()) as ErrorAnswer).error.code).toBe('FORBIDDEN');
  });
});
