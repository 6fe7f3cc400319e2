import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JUMDATA_SANDBOX_INVOICES as INVOICES, startJumdataSandbox, type JumdataSandbox } from '../../local/sandboxes/jumdata.ts';

/** The Jumdata sandbox's slow-once invoice: its pdf trickles the first time it is ever served, and only then. */

const started: JumdataSandbox[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((sandbox) => sandbox.close()));
});

async function startSandbox(stateDir?: string): Promise<JumdataSandbox> {
  const sandbox = await startJumdataSandbox({ slowOnceFileMs: 1_500, stateDir });
  started.push(sandbox);
  return sandbox;
}

/** Milliseconds to fetch the slow-once invoice's pdf whole. */
async function pdfMs(sandbox: JumdataSandbox): Promise<number> {
  const begun = Date.now();
  const response = await fetch(`${sandbox.url}/files/${INVOICES.slowOnceFile}/pdf.PDF?answer=1`);
  expect(response.status).toBe(200);
  expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(0);
  return Date.now() - begun;
}

describe('the Jumdata sandbox serving the slow-once pdf', () => {
  it('trickles it the first time and sends it at once the second time', async () => {
    // Prepare
    const sandbox = await startSandbox();
    // Act
    const first = await pdfMs(sandbox);
    const second = await pdfMs(sandbox);
    // Assess
    expect(first).toBeGreaterThanOrEqual(1_200);
    expect(second).toBeLessThan(500);
  });

  it('sends it at once after a restart on the same state directory, when it was begun before', async () => {
    // Prepare: a first sandbox cut off while the pdf trickles
    const stateDir = await mkdtemp(join(tmpdir(), 'jumdata-sandbox-'));
    const before = await startSandbox(stateDir);
    const cut = new AbortController();
    const response = await fetch(`${before.url}/files/${INVOICES.slowOnceFile}/pdf.PDF?answer=1`, { signal: cut.signal });
    expect(response.status).toBe(200);
    cut.abort();
    await before.close();
    // Act
    const afterRestart = await pdfMs(await startSandbox(stateDir));
    // Assess
    expect(afterRestart).toBeLessThan(500);
  });

  it('trickles it again for a sandbox on another state directory', async () => {
    // Prepare
    await pdfMs(await startSandbox(await mkdtemp(join(tmpdir(), 'jumdata-sandbox-'))));
    // Act
    const elsewhere = await pdfMs(await startSandbox(await mkdtemp(join(tmpdir(), 'jumdata-sandbox-'))));
    // Assess
    expect(elsewhere).toBeGreaterThanOrEqual(1_200);
  });
});
