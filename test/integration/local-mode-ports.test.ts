import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startLocalMode, type LocalMode, type LocalModeOptions } from '../../local/server.ts';

/**
 * Local mode's sandboxes and embedded stores listen on the same ports from one start to the next on a state directory
 * (kept in ports.json): the Jumdata file links an unfinished download paid for name the sandbox file host's port.
 */

const running: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const server of running.splice(0).reverse()) await server.close();
});

async function start(options: LocalModeOptions): Promise<LocalMode> {
  const local = await startLocalMode({ port: 0, env: {}, sweepEverySeconds: 0, ...options });
  running.push(local);
  return local;
}

const addressesOf = (local: LocalMode) => ({
  fw199: local.sandboxes.fw199!.url,
  wdt: local.sandboxes.wdt!.url,
  jumdata: local.sandboxes.jumdata!.url,
  fileHost: local.sandboxes.jumdata!.fileHost,
  s3: local.s3!.endpoint,
  dynamodb: local.dynamo!.endpoint,
});

const portOf = (url: string) => Number(new URL(url).port);

describe("local mode's ports across restarts", () => {
  it('listens on the same sandbox and storage ports when started again on the same state directory', async () => {
    // Prepare
    const stateDir = await mkdtemp(join(tmpdir(), 'local-mode-'));
    const first = await start({ stateDir });
    const before = addressesOf(first);
    await running.pop()!.close();
    // Act
    const second = await start({ stateDir });
    // Assess
    expect(addressesOf(second)).toEqual(before);
    const kept = JSON.parse(await readFile(join(stateDir, 'ports.json'), 'utf8'));
    expect(kept).toEqual({
      fw199: portOf(before.fw199),
      wdt: portOf(before.wdt),
      jumdata: portOf(before.jumdata),
      s3: portOf(before.s3),
      dynamodb: portOf(before.dynamodb),
    });
  });

  it('takes its state directory from LOCAL_STATE_DIR when none is given', async () => {
    // Prepare
    const stateDir = await mkdtemp(join(tmpdir(), 'local-mode-'));
    // Act
    const local = await startLocalMode({ port: 0, env: { LOCAL_STATE_DIR: stateDir }, sweepEverySeconds: 0 });
    running.push(local);
    // Assess
    expect(local.stateDir).toBe(stateDir);
    expect(JSON.parse(await readFile(join(stateDir, 'ports.json'), 'utf8'))).toHaveProperty('jumdata', portOf(local.sandboxes.jumdata!.url));
  });

  it('refuses to start, naming the port and ports.json, when another program holds a kept port', async () => {
    // Prepare: the Jumdata sandbox's kept port taken by another server meanwhile
    const stateDir = await mkdtemp(join(tmpdir(), 'local-mode-'));
    const jumdataPort = portOf((await start({ stateDir })).sandboxes.jumdata!.url);
    await running.pop()!.close();
    const squatter = createServer();
    await new Promise<void>((ready) => squatter.listen(jumdataPort, '127.0.0.1', ready));
    running.push({ close: () => new Promise((closed) => squatter.close(() => closed())) });
    // Act
    const starting = start({ stateDir });
    // Assess
    await expect(starting).rejects.toThrow(`Port ${jumdataPort}, kept in ${join(stateDir, 'ports.json')} for the Jumdata sandbox`);
    await expect(starting).rejects.toThrow(`delete ${join(stateDir, 'ports.json')} to have local mode pick new ports`);
  });
});
