import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { apiGateway, type LambdaHandler } from './api-gateway.ts';
import { FW199_SANDBOX_CREDENTIALS, startFw199Sandbox, type Fw199Sandbox } from './sandboxes/fw199.ts';
import { startWdtSandbox, WDT_SANDBOX_CREDENTIALS, type WdtSandbox } from './sandboxes/wdt.ts';

/**
 * Local mode: the API on 127.0.0.1 through the very handlers Lambda runs, with built-in provider sandboxes.
 * Settings are handed to the handlers as environment variables, as the stack does on AWS, so they must be in place
 * before the handler modules are imported (each reads its configuration once, at import).
 */

export interface LocalModeOptions {
  port?: number;
  /** Environment to read overrides from (FW199_BASE_URL, LOCAL_SECRETS_FILE, ...); defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Folder for local state: the sandbox credentials file and, later, the embedded storage. */
  stateDir?: string;
  /** How long the sandboxes' "slow" cases wait before answering (tests shorten it). */
  slowAnswerMs?: number;
}

export interface LocalMode {
  url: string;
  /** The sandboxes that were started (absent where a real provider URL was configured). */
  sandboxes: { fw199?: Fw199Sandbox; wdt?: WdtSandbox };
  close(): Promise<void>;
}

export async function startLocalMode(options: LocalModeOptions = {}): Promise<LocalMode> {
  const env = options.env ?? process.env;
  const stateDir = resolve(options.stateDir ?? '.local');
  await mkdir(stateDir, { recursive: true });

  const { slowAnswerMs } = options;
  const fw199 = env.FW199_BASE_URL ? undefined : await startFw199Sandbox({ slowAnswerMs });
  const wdt = env.WDT_BASE_URL ? undefined : await startWdtSandbox({ slowAnswerMs });

  let secretsFile = env.LOCAL_SECRETS_FILE;
  if (!secretsFile) {
    secretsFile = resolve(stateDir, 'sandbox-secrets.json');
    const sandboxSecrets = { fw199: FW199_SANDBOX_CREDENTIALS, wdt: WDT_SANDBOX_CREDENTIALS };
    await writeFile(secretsFile, `${JSON.stringify(sandboxSecrets, null, 2)}\n`);
  }

  Object.assign(process.env, {
    AWS_REGION: env.AWS_REGION ?? 'cn-north-1',
    POWERTOOLS_SERVICE_NAME: env.POWERTOOLS_SERVICE_NAME ?? 'einvoice-bridge-local',
    FW199_BASE_URL: env.FW199_BASE_URL ?? fw199?.url,
    WDT_BASE_URL: env.WDT_BASE_URL ?? wdt?.url,
    LOCAL_SECRETS_FILE: secretsFile,
  });

  const retry = (await import('../functions/retry/handler.ts')).handler as LambdaHandler;
  const erpUpdate = (await import('../functions/erp-update/handler.ts')).handler as LambdaHandler;
  const server = createServer(
    apiGateway([
      { method: 'POST', path: '/retry', functionName: 'retry', handler: retry },
      { method: 'POST', path: '/erp-update', functionName: 'erp-update', handler: erpUpdate },
    ]),
  );
  const port = options.port ?? Number(env.PORT ?? 3000);
  await new Promise<void>((ready, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', ready);
  });

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sandboxes: { fw199, wdt },
    close: async () => {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
      await Promise.all([fw199?.close(), wdt?.close()]);
    },
  };
}
