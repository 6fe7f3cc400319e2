import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JUMDATA_SANDBOX_INVOICES } from '../../local/sandboxes/jumdata.ts';
import { killAllLocalModeProcesses, startLocalModeProcess, type LocalModeProcess } from '../helpers/local-mode-process.ts';

/**
 * A download cut off by a crash of local mode (kill -9 while the pdf trickles in), finished by local mode started
 * again on the same state directory: from the Jumdata answer the first run paid for, with no second billed call.
 */

const invoiceNo = JUMDATA_SANDBOX_INVOICES.slowOnceFile;
const request = { taxNum: '91310117568051222X', invoiceNo, issueDate: '2024-04-25', direction: 'sales' };
const billedLine = new RegExp(`jumdata sandbox: billed call \\d+ \\(invoice ${invoiceNo}\\)`);
const billedCallsIn = (stdout: string) => stdout.match(new RegExp(billedLine.source, 'g'))?.length ?? 0;
/** How long a request holding a live lease may keep the invoice: a few seconds, so the test need not wait long. */
const LEASE_SECONDS = '5';
/** The longest the restarted local mode may take to finish the download, waits for the dead run's lease included. */
const FINISH_DEADLINE_MS = 90_000;
/** The longest wait between two requests, whatever Retry-After says. */
const MAX_WAIT_MS = 2_000;

let stateDir: string | undefined;
afterAll(async () => {
  await killAllLocalModeProcesses();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

const startOn = (dir: string) =>
  startLocalModeProcess({ LOCAL_STATE_DIR: dir, LOCAL_SWEEP_SECONDS: '0', LEASE_SECONDS, POWERTOOLS_LOG_LEVEL: 'ERROR' });

const postDownload = (local: LocalModeProcess) =>
  fetch(`${local.url}/download`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });

/** Asks again while the invoice is held (202 pending, 409) until another answer comes, honouring Retry-After. */
async function downloadUntilDone(local: LocalModeProcess): Promise<{ status: number; body: any; statuses: number[] }> {
  const statuses: number[] = [];
  const deadline = Date.now() + FINISH_DEADLINE_MS;
  for (;;) {
    const response = await postDownload(local);
    statuses.push(response.status);
    const body = await response.json();
    if (![202, 409].includes(response.status) || Date.now() > deadline) return { status: response.status, body, statuses };
    const retryAfterMs = Number(response.headers.get('retry-after') ?? 1) * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.min(Math.max(retryAfterMs, 200), MAX_WAIT_MS)));
  }
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('a download cut off by a crash of local mode', () => {
  it('is finished by local mode started again on the same state, with the one billed Jumdata call', async () => {
    // Prepare: a download under way, killed (SIGKILL) once Jumdata billed it and while its pdf trickles in
    stateDir = await mkdtemp(join(tmpdir(), 'kill-restart-'));
    const first = await startOn(stateDir);
    const cutOff = postDownload(first).then(
      (response) => `answered ${response.status}`,
      () => 'cut off',
    );
    await first.waitForStdout(billedLine, 30_000);
    // Time for the billed answer to be kept (milliseconds); the pdf goes on trickling for 10 s.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await first.kill();
    expect(await cutOff).toBe('cut off');
    // Act
    const second = await startOn(stateDir);
    const answer = await downloadUntilDone(second);
    // Assess: mirrored by the second run, from the kept answer
    expect(answer.status, `answers: ${answer.statuses.join(', ')}; last: ${JSON.stringify(answer.body)}`).toBe(200);
    expect(answer.body).toMatchObject({ invoiceNo, fromCache: false });
    for (const kind of ['pdf', 'ofd', 'xml'] as const) {
      const file = answer.body.files[kind];
      const stored = Buffer.from(await (await fetch(file.url)).arrayBuffer());
      expect(stored.length).toBe(file.bytes);
      expect(sha256(stored)).toBe(file.sha256);
    }
    // Assess: one billed call across both runs
    expect(billedCallsIn(first.stdout()) + billedCallsIn(second.stdout())).toBe(1);
    await second.kill();
  }, 180_000);
});
