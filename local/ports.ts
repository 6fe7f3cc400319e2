import { randomInt } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { resolve } from 'node:path';

/**
 * The ports of local mode's sandboxes and embedded stores: picked on the first start and kept in
 * `<stateDir>/ports.json` for every later one. Their addresses end up in kept data: the Jumdata file links an
 * unfinished download paid for name the sandbox file host's port, and on a new port after a restart they would point
 * at nothing (and outside MIRROR_ALLOWED_HOSTS), so the download could never finish without paying again.
 *
 * A kept port that another program took is not swapped for a new one: the links would then name that program. Local
 * mode stops instead, naming the port and the file to delete to start over on new ports.
 */

export const KEPT_PORT_NAMES = ['fw199', 'wdt', 'jumdata', 's3', 'dynamodb'] as const;
export type KeptPortName = (typeof KEPT_PORT_NAMES)[number];
export type KeptPorts = Record<KeptPortName, number>;

const WHAT_LISTENS: Record<KeptPortName, string> = {
  fw199: 'fw199 sandbox',
  wdt: 'WDT sandbox',
  jumdata: 'Jumdata sandbox and its file host',
  s3: 'embedded S3',
  dynamodb: 'embedded DynamoDB',
};

/**
 * Picked below 32768, where Linux's ephemeral range starts: the ports the system hands out for outgoing connections
 * and for port 0, which another program could be holding just when local mode starts again.
 */
const PICK_FROM = 20_000;
const PICK_BELOW = 32_768;

export class KeptPortTakenError extends Error {
  constructor(name: KeptPortName, port: number, file: string) {
    super(
      `Port ${port}, kept in ${file} for the ${WHAT_LISTENS[name]}, is in use by another program (another local mode ` +
        `on the same state directory?). Stop that program, or delete ${file} to have local mode pick new ports: ` +
        'file links kept by unfinished downloads then name the old ones.',
    );
    this.name = 'KeptPortTakenError';
  }
}

/** The kept ports (picking and writing down those not kept yet), each of `needed` checked free. */
export async function keptPorts(stateDir: string, needed: readonly KeptPortName[] = KEPT_PORT_NAMES): Promise<KeptPorts> {
  const file = resolve(stateDir, 'ports.json');
  const kept = await readKeptPorts(file);
  const ports = { ...kept } as KeptPorts;
  const missing = KEPT_PORT_NAMES.filter((name) => kept[name] === undefined);
  for (const name of missing) ports[name] = await pickFreePort(Object.values(ports));
  if (missing.length > 0) await writeFile(file, `${JSON.stringify(ports, null, 2)}\n`);
  for (const name of needed) {
    if (!missing.includes(name) && !(await isFree(ports[name]))) throw new KeptPortTakenError(name, ports[name], file);
  }
  return ports;
}

async function readKeptPorts(file: string): Promise<Partial<KeptPorts>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${file} cannot be read as JSON: delete it to have local mode pick new ports`);
  }
  const isPort = (value: unknown): value is number => Number.isInteger(value) && (value as number) > 0 && (value as number) < 65_536;
  const entries = Object.entries(parsed as Record<string, unknown>).filter(
    ([name, port]) => (KEPT_PORT_NAMES as readonly string[]).includes(name) && isPort(port),
  );
  return Object.fromEntries(entries);
}

async function pickFreePort(taken: readonly number[]): Promise<number> {
  for (;;) {
    const port = randomInt(PICK_FROM, PICK_BELOW);
    if (!taken.includes(port) && (await isFree(port))) return port;
  }
}

/** Whether a server could listen on 127.0.0.1:`port` now. */
function isFree(port: number): Promise<boolean> {
  return new Promise((answer) => {
    const probe = createServer();
    probe.once('error', () => answer(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => answer(true)));
  });
}
