import { AssetHashType, DockerImage } from 'aws-cdk-lib';
import { Code } from 'aws-cdk-lib/aws-lambda';
import { buildSync, type BuildOptions, type Metafile } from 'esbuild';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * How every function is built, in one place: the stack deploys these bytes, and `npm run bench` and the bundle test
 * build and run the very same. esbuild splits the bundle so that a module a function loads with `import()` (the
 * archive's XML reader and ledger writers, the AWS SDK's rarely used credential providers) becomes a file of its own,
 * read only at its first use, not at every cold start. CDK's NodejsFunction cannot split: it names one output file.
 */

const projectRoot = fileURLToPath(new URL('..', import.meta.url));

export const FUNCTION_BUILD = {
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  minify: true,
  sourcemap: true,
  // Stack traces keep their file:line; Node no longer reads megabytes of source text at every cold start (bench).
  sourcesContent: false,
  // Prefer the ESM builds of dependencies; some only tree-shake well that way.
  mainFields: ['module', 'main'],
  // Bundle everything, the AWS SDK included: the versions tested are the versions deployed.
  external: [],
  // Node's global web streams instead of loading node:stream/web at cold start (stream-web-shim.ts says why).
  alias: { 'node:stream/web': join(projectRoot, 'infra', 'stream-web-shim.ts') },
  // A few dependencies still call require(); give every ESM file one.
  banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  // index.mjs is the handler's file (`index.handler`); .mjs tells Node the files are ES modules.
  entryNames: 'index',
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  // Modules outside the project (the bench's bare bundles) still resolve the project's dependencies.
  nodePaths: [join(projectRoot, 'node_modules')],
  absWorkingDir: projectRoot,
  logLevel: 'warning',
  metafile: true,
} as const satisfies BuildOptions;

export const functionEntry = (name: string) => join(projectRoot, 'functions', name, 'handler.ts');

/** Builds one entry into `outdir` (index.mjs and its chunks); the metafile says which file imports which. */
export function buildFunction(entry: string, outdir: string): Metafile {
  return buildSync({ ...FUNCTION_BUILD, entryPoints: [entry], outdir }).metafile;
}

/** The files Node reads at cold start: index.mjs and every chunk it imports statically, not those behind import(). */
export function coldStartFiles(metafile: Metafile): string[] {
  // Chunks are named [name]-[hash]: the only index.mjs is the entry's.
  return staticallyImported(metafile, [Object.keys(metafile.outputs).find((file) => basename(file) === 'index.mjs')!]);
}

/** `roots` and every output file they import statically, transitively. */
export function staticallyImported(metafile: Metafile, roots: string[]): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const imported of metafile.outputs[file]!.imports) if (imported.kind === 'import-statement' && !imported.external) visit(imported.path);
  };
  roots.forEach(visit);
  return [...seen];
}

/** The chunk esbuild made for a module the function loads with import(), e.g. `functions/download/mirroring.ts`. */
export const chunkOf = (metafile: Metafile, module: string) =>
  Object.keys(metafile.outputs).find((file) => metafile.outputs[file]!.entryPoint === module && file.endsWith('.mjs'))!;

export const coldStartBytes = (metafile: Metafile) =>
  coldStartFiles(metafile).reduce((sum, file) => sum + metafile.outputs[file]!.bytes, 0);

/** A function's code asset, built locally with the pinned esbuild (a devDependency), never in Docker. */
export function functionCode(name: string): Code {
  // The function's own folder: CDK caches bundles by source path, so each function needs its own.
  return Code.fromAsset(join(projectRoot, 'functions', name), {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Required by CDK, never pulled: tryBundle builds or throws.
      image: DockerImage.fromRegistry('public.ecr.aws/sam/build-nodejs24.x'),
      local: {
        tryBundle(outputDir) {
          buildFunction(functionEntry(name), outputDir);
          return true;
        },
      },
    },
  });
}
