import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * A comment that sends the reader to a document must send them somewhere: the product's contract and the provider
 * notes live outside this repository, so the code points at what it holds (README.md, docs/, openapi.json).
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const FOLDERS = ['infra', 'functions', 'shared', 'local', 'bench', 'test'];

function sourceFiles(folder: string): string[] {
  return readdirSync(join(root, folder), { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mjs)$/.test(entry.name) ? [path] : [];
  });
}

describe('the documents the code cites', () => {
  it('are Markdown files the repository holds', () => {
    // Prepare
    const files = FOLDERS.filter((folder) => existsSync(join(root, folder))).flatMap(sourceFiles);
    // Act
    const missing = files.flatMap((file) =>
      [...readFileSync(join(root, file), 'utf8').matchAll(/\b[\w./-]+\.md\b/g)]
        .map(([cited]) => cited)
        .filter((cited) => !existsSync(join(root, cited)))
        .map((cited) => `${relative(root, join(root, file))} cites ${cited}`),
    );
    // Assess
    expect(missing).toEqual([]);
  });
});
