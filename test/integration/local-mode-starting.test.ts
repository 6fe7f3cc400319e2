import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startLocalMode, type LocalMode } from '../../local/server.ts';

/** Local mode between taking its port and having its handlers loaded: it says so, in the error shape. */

let local: LocalMode | undefined;
afterAll(() => local?.close());

describe('local mode while it is still starting', () => {
  it('answers 503 SERVICE_UNAVAILABLE in the error shape with Retry-After 1 and a request id, then serves', async () => {
    // Prepare: the handlers' loading held until the request below is answered
    const stateDir = await mkdtemp(join(tmpdir(), 'local-mode-'));
    let answeredWhileStarting: Response | undefined;
    const starting = startLocalMode({
      port: 0,
      env: {},
      stateDir,
      sweepEverySeconds: 0,
      // Act: a request while the handlers are not loaded yet
      beforeHandlersLoad: async (url) => {
        answeredWhileStarting = await fetch(`${url}/retry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      },
    });
    local = await starting;
    // Assess
    expect(answeredWhileStarting!.status).toBe(503);
    expect(answeredWhileStarting!.headers.get('retry-after')).toBe('1');
    expect(answeredWhileStarting!.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(answeredWhileStarting!.headers.get('content-type')).toBe('application/json');
    const body = (await answeredWhileStarting!.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('SERVICE_UNAVAILABLE');
    expect(body.error.message).toContain('still starting');
    const afterStart = await fetch(`${local.url}/nothing`);
    expect(afterStart.status).toBe(404);
  });
});
