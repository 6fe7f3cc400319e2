import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, vi } from 'vitest';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { LOCAL_S3_CREDENTIALS } from '../../local/s3.ts';
import { startLocalMode, type LocalMode, type LocalModeOptions } from '../../local/server.ts';

/**
 * Starts local mode (API, sandboxes) once for a test file, with a 1 s upstream timeout and the sandboxes' slow
 * answers at 3 s, and keeps every log line the handlers write so tests can inspect them.
 */
export function useLocalMode(
  options: Pick<LocalModeOptions, 'jumdata' | 'wdt' | 'requestBudgetMs' | 'env'> = {},
  env: Record<string, string> = {},
) {
  const state = { local: undefined as unknown as LocalMode, logged: [] as string[] };

  beforeAll(async () => {
    process.env.UPSTREAM_TIMEOUT_MS = '1000';
    process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
    Object.assign(process.env, env);
    // The handlers' log lines are kept for inspection, and kept out of the test output.
    for (const stream of [process.stdout, process.stderr]) {
      vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
        state.logged.push(String(chunk));
        return true;
      });
    }
    const stateDir = await mkdtemp(join(tmpdir(), 'local-mode-'));
    // Sweeps run when a test says so, not on local mode's timer.
    state.local = await startLocalMode({ port: 0, env: {}, stateDir, slowAnswerMs: 3_000, sweepEverySeconds: 0, ...options });
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    await state.local?.close();
  });

  /** POSTs `body` (JSON unless a string or bytes are given) to local mode and returns the status, request id and JSON answer. */
  async function post(path: string, body: unknown, contentType = 'application/json') {
    const response = await fetch(`${state.local.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
    });
    // The tests read arbitrary JSON answers.
    const answer = (await response.json()) as any;
    return { status: response.status, headers: response.headers, body: answer };
  }

  /** GETs `path` from local mode and returns the status and JSON answer. */
  async function get(path: string) {
    const response = await fetch(`${state.local.url}${path}`);
    return { status: response.status, headers: response.headers, body: (await response.json()) as any };
  }

  return { state, post, get };
}

/** The real S3 client, pointed at local mode's embedded S3 (whose streamed bodies need checksums off). */
export function localS3Client(local: LocalMode): S3Client {
  return new S3Client({
    endpoint: local.s3!.endpoint,
    region: 'cn-north-1',
    forcePathStyle: true,
    credentials: LOCAL_S3_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The real DynamoDB client, pointed at local mode's embedded DynamoDB. */
export function localDynamoClient(local: LocalMode): DynamoDBClient {
  return new DynamoDBClient({ endpoint: local.dynamo!.endpoint, region: 'cn-north-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
}
