import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildFunction, coldStartFiles, functionEntry } from '../../infra/function-build.ts';

/**
 * What a function's cold start reads: index.mjs and the chunks it imports statically. The archive's XML reader and
 * ledger writers (and their libraries), and the work of mirroring a new invoice, must stay behind import(), read at
 * their first use only.
 */
describe("the download function's cold-start graph", async () => {
  const metafile = buildFunction(functionEntry('download'), await mkdtemp(join(tmpdir(), 'graph-')));
  const loadedAtColdStart = coldStartFiles(metafile);
  const inputsOf = (files: Iterable<string>) => [...files].flatMap((file) => Object.keys(metafile.outputs[file]!.inputs));

  it.each([
    'functions/download/invoice-xml.ts',
    // The archive's routes: GET /invoices, the 台账, the reindex.
    'functions/download/list-invoices.ts',
    'functions/download/ledger-job.ts',
    'functions/download/reindex.ts',
    'functions/download/ledger.ts',
    'functions/download/xlsx-sheet.ts',
    'node_modules/fast-xml-parser/',
    'node_modules/fflate/',
    'node_modules/csv-stringify/',
    // Only a download that tells the ERP invokes the erp-update function.
    'node_modules/@aws-sdk/client-lambda/',
    // Only the audit's routes, schedule and sweep.
    'functions/download/audit-job.ts',
    'functions/download/audit-checks.ts',
    // Mirroring a new invoice: Jumdata's answer bought or reused, the fetcher and its address checks, the upload and
    // the lock. A cold start that answers a link, a mirrored invoice or a sweep with nothing due does without them.
    'functions/download/mirror-attempt.ts',
    'functions/download/buy-answer.ts',
    'functions/download/archive-stage.ts',
    'functions/download/mirror.ts',
    'functions/download/retention.ts',
    'shared/file-fetch.ts',
    'shared/providers/jumdata.ts',
    'node_modules/ipaddr.js/',
    'node_modules/@aws-sdk/lib-storage/',
  ])('leaves %s out of it', (input) => {
    const everywhere = inputsOf(Object.keys(metafile.outputs));
    expect(everywhere.some((name) => name.includes(input))).toBe(true);
    expect(inputsOf(loadedAtColdStart).filter((name) => name.includes(input))).toEqual([]);
  });

  it('reads at most 15 files: each costs about 0.4 ms, so what is loaded at once is one import() target (mirroring.ts)', () => {
    // 15 today: index.mjs, the chunks it shares with mirroring.ts and archive-routes.ts, and those the AWS SDK's own
    // import() targets (its credential providers) split off, as in the bare SDK build.
    expect(loadedAtColdStart.length).toBeLessThanOrEqual(15);
  });

  it('imports node:http only at first use (its ESM facade makes Node load undici: 15 ms of every cold start)', () => {
    const staticImports = loadedAtColdStart.flatMap((file) => metafile.outputs[file]!.imports.filter((i) => i.kind === 'import-statement'));
    expect(staticImports.map((imported) => imported.path)).not.toContain('node:http');
    expect(staticImports.map((imported) => imported.path)).toContain('node:https');
  });

  it("never loads node:stream/web: @middy/core's ReadableStream is Node's global (infra/stream-web-shim.ts)", () => {
    const everyImport = Object.values(metafile.outputs).flatMap((output) => output.imports.map((imported) => imported.path));
    expect(everyImport).not.toContain('node:stream/web');
    expect(inputsOf(loadedAtColdStart)).toContain('infra/stream-web-shim.ts');
  });
});
