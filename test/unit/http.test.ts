import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamTimeoutError, UpstreamUnavailableError } from '#shared/errors';
import { postForm } from '#shared/http';
import { closedPort, listen } from '../helpers/servers.ts';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function upstream(handler: Parameters<typeof listen>[0]) {
  const server = await listen(handler);
  closers.push(server.close);
  return server.url;
}

const call = (url: string, timeoutMs = 2_000) =>
  postForm({ provider: 'fw199', url, fields: { a: '1 2', b: '&=+' }, timeoutMs });

describe('signed form POSTs to a provider', () => {
  it('sends the fields form-encoded and returns the parsed JSON answer', async () => {
    // Prepare
    let received = '';
    let contentType = '';
    const url = await upstream((req, res) => {
      contentType = req.headers['content-type'] ?? '';
      req.on('data', (chunk: Buffer) => (received += chunk.toString()));
      req.on('end', () => res.end('{"code":0}'));
    });
    // Act
    const answer = await call(url);
    // Assess
    expect(answer).toEqual({ status: 200, body: { code: 0 } });
    expect(received).toBe('a=1+2&b=%26%3D%2B');
    expect(contentType).toBe('application/x-www-form-urlencoded;charset=UTF-8');
  });

  it('maps a refused connection to UPSTREAM_UNAVAILABLE with the system reason', async () => {
    const error = await call(`http://127.0.0.1:${await closedPort()}/`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect((error as Error).message).toBe('fw199 could not be reached (ECONNREFUSED)');
  });

  it('maps a provider that never answers to UPSTREAM_TIMEOUT', async () => {
    const url = await upstream(() => undefined);
    const error = await call(url, 200).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamTimeoutError);
    expect((error as Error).message).toBe('fw199 did not answer within 200 ms');
  });

  it('maps a body that stalls half way to UPSTREAM_TIMEOUT', async () => {
    const url = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"code":');
    });
    await expect(call(url, 300)).rejects.toBeInstanceOf(UpstreamTimeoutError);
  });

  it('maps a connection cut in the middle of the body to UPSTREAM_UNAVAILABLE', async () => {
    const url = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"code":', () => res.destroy());
    });
    await expect(call(url)).rejects.toBeInstanceOf(UpstreamUnavailableError);
  });

  it('maps an answer that is not JSON to UPSTREAM_UNAVAILABLE', async () => {
    const url = await upstream((_req, res) => res.end('<html>502 Bad Gateway</html>'));
    const error = await call(url).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect((error as Error).message).toBe('fw199 answered something that is not JSON');
  });

  it('maps HTTP 500 to UPSTREAM_UNAVAILABLE without passing on the body', async () => {
    const url = await upstream((_req, res) => res.writeHead(500).end('{"stack":"at Gateway.java:42"}'));
    const error = await call(url).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect((error as Error).message).toBe('fw199 answered HTTP 500');
  });
});
