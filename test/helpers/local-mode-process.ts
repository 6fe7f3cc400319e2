import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

/**
 * Local mode as `npm start` runs it (`tsx local/main.ts`), in a process group of its own so that a test can kill it
 * the way a crash would (SIGKILL to tsx, its node child and esbuild at once) and start it again on the same state.
 */

const PROJECT_DIR = resolve(import.meta.dirname, '../..');
const TSX = resolve(PROJECT_DIR, 'node_modules/.bin/tsx');
const READY = /local mode ready on (http:\/\/127\.0\.0\.1:\d+)/;

/** Settings a developer's shell might carry that would point local mode away from its own sandboxes and stores. */
const OVERRIDES_CLEARED = Object.fromEntries(
  [
    'FW199_BASE_URL',
    'WDT_BASE_URL',
    'JUMDATA_BASE_URL',
    'S3_ENDPOINT',
    'AWS_ENDPOINT_URL_DYNAMODB',
    'MIRROR_ALLOWED_HOSTS',
    'PUBLIC_BASE_URL',
    'BUCKET_NAME',
    'JOBS_TABLE',
    'INVOICES_TABLE',
    'LOCAL_SECRETS_FILE',
  ].map((name) => [name, '']),
);

export interface LocalModeProcess {
  url: string;
  /** Everything it wrote to stdout so far. */
  stdout(): string;
  /** Resolves once stdout matches `pattern`; rejects after `timeoutMs`, or if the process ends first. */
  waitForStdout(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGKILL to the whole process group, as a crash; resolves once tsx has exited. */
  kill(): Promise<void>;
}

/** Starts local mode with `env` over a cleared environment, on any free API port; resolves at its ready line. */
export async function startLocalModeProcess(env: Record<string, string>, readyTimeoutMs = 60_000): Promise<LocalModeProcess> {
  const child = spawn(TSX, ['local/main.ts'], {
    cwd: PROJECT_DIR,
    env: { ...process.env, ...OVERRIDES_CLEARED, PORT: '0', ...env },
    detached: true, // its own process group: a kill reaches the node process tsx starts, too
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const handle = processHandle(child);
  running.add(handle);
  try {
    const [, url] = await handle.waitForStdout(READY, readyTimeoutMs);
    return { ...handle, url: url! };
  } catch (error) {
    await handle.kill();
    throw error;
  }
}

const running = new Set<Omit<LocalModeProcess, 'url'>>();

/** Kills every local mode process still running: for afterAll, so that a failed test leaves none behind. */
export async function killAllLocalModeProcesses(): Promise<void> {
  await Promise.all([...running].map((handle) => handle.kill()));
}

function processHandle(child: ChildProcess): Omit<LocalModeProcess, 'url'> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  let alive = true;
  void exited.then(() => (alive = false));

  const handle = {
    stdout: () => stdout,
    waitForStdout: (pattern: RegExp, timeoutMs: number) =>
      new Promise<RegExpMatchArray>((found, fail) => {
        const deadline = Date.now() + timeoutMs;
        const once = new RegExp(pattern.source, pattern.flags.replace('g', '')); // exec on a /g one would move on
        const look = () => {
          const match = once.exec(stdout);
          if (match) return found(match);
          const why = !alive ? 'local mode exited' : Date.now() > deadline ? `no ${pattern} in ${timeoutMs} ms` : undefined;
          if (why) return fail(new Error(`${why}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`));
          setTimeout(look, 50);
        };
        look();
      }),
    kill: async () => {
      running.delete(handle);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // the whole group is gone already
      }
      await exited;
    },
  };
  return handle;
}
