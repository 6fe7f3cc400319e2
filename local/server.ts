import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { JobFunction } from '#shared/jobs';
import { FUNCTION_TIMEOUT_SECONDS } from '#shared/schedule-settings';
import type { SweepReport } from '#shared/sweep';
import { apiGateway, lambdaContext, sendError, type LambdaHandler } from './api-gateway.ts';
import { startLocalDynamo, type LocalDynamo } from './dynamodb.ts';
import { keptPorts, type KeptPortName } from './ports.ts';
import { startLocalLambda } from './lambda-invoke.ts';
import { startLocalS3, LOCAL_S3_CREDENTIALS, type LocalS3 } from './s3.ts';
import { FW199_SANDBOX_CREDENTIALS, startFw199Sandbox, type Fw199Sandbox, type Fw199SandboxOptions } from './sandboxes/fw199.ts';
import {
  JUMDATA_SANDBOX_CREDENTIALS,
  startJumdataSandbox,
  type JumdataSandbox,
  type JumdataSandboxOptions,
} from './sandboxes/jumdata.ts';
import { startWdtSandbox, WDT_SANDBOX_CREDENTIALS, type WdtSandbox, type WdtSandboxOptions } from './sandboxes/wdt.ts';

/**
 * Local mode: the API on 127.0.0.1 through the very handlers Lambda runs, with built-in provider sandboxes, an
 * embedded S3 and an embedded DynamoDB. Settings are handed to the handlers as environment variables, as the stack does on AWS, so they
 * must be in place before the handler modules are imported (each reads its configuration once, at import).
 */

export const LOCAL_BUCKET = 'einvoice-bridge-local';
export const LOCAL_JOBS_TABLE = 'einvoice-bridge-local-jobs';
export const LOCAL_INVOICES_TABLE = 'einvoice-bridge-local-invoices';

/** The functions' timeout on AWS: what a scheduled invocation's context reports. */
const SCHEDULED_BUDGET_MS = FUNCTION_TIMEOUT_SECONDS * 1000;

export interface LocalModeOptions {
  port?: number;
  /** Environment to read overrides from (FW199_BASE_URL, S3_ENDPOINT, ...); defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * Folder for local state: the sandbox credentials, the embedded S3's and DynamoDB's data, the kept ports
   * (ports.json). Default LOCAL_STATE_DIR, else `.local`.
   */
  stateDir?: string;
  /** How long the fw199 and WDT sandboxes' "slow" cases wait before answering (tests shorten it). */
  slowAnswerMs?: number;
  jumdata?: JumdataSandboxOptions;
  fw199?: Pick<Fw199SandboxOptions, 'port'>;
  wdt?: Pick<WdtSandboxOptions, 'callsPerMinute' | 'rateWindowMs'>;
  /** The time a request's Lambda context reports (API Gateway's 29 s; tests shorten it). */
  requestBudgetMs?: number;
  /**
   * How often each function's sweep runs, as the stack's schedules run them on AWS (LOCAL_SWEEP_SECONDS; default
   * 60; 0 runs none, tests call `sweep` themselves).
   */
  sweepEverySeconds?: number;
  /**
   * Runs once the API listens at `url` and before the handlers load: what a request gets meanwhile is the 503 of a
   * local mode still starting. Tests hold it to see that answer.
   */
  beforeHandlersLoad?: (url: string) => Promise<void>;
}

export interface LocalMode {
  url: string;
  /** The state folder in use, absolute. */
  stateDir: string;
  /** The sandboxes that were started (absent where a real provider URL was configured). */
  sandboxes: { fw199?: Fw199Sandbox; wdt?: WdtSandbox; jumdata?: JumdataSandbox };
  /** The embedded S3, unless S3_ENDPOINT pointed elsewhere. */
  s3?: LocalS3;
  bucket: string;
  /** The embedded DynamoDB holding the jobs table, unless AWS_ENDPOINT_URL_DYNAMODB pointed elsewhere. */
  dynamo?: LocalDynamo;
  jobsTable: string;
  /** The archive's index of mirrored invoices, in the same DynamoDB. */
  invoicesTable: string;
  /** Runs one function's sweep now, as its schedule would, with `budgetMs` as the invocation's time. */
  sweep(fn: JobFunction, budgetMs?: number): Promise<SweepReport>;
  /** Invokes a function with any event (a scheduled batch), as EventBridge Scheduler would. */
  invoke(fn: JobFunction, event: unknown, budgetMs?: number): Promise<unknown>;
  /** Resolves once the asynchronous invocations started so far (one function asking another) have ended. */
  asyncInvocationsSettled(): Promise<void>;
  close(): Promise<void>;
}

export async function startLocalMode(options: LocalModeOptions = {}): Promise<LocalMode> {
  const env = options.env ?? process.env;
  const stateDir = resolve(options.stateDir ?? (env.LOCAL_STATE_DIR || '.local'));
  await mkdir(stateDir, { recursive: true });

  // An override left empty counts as not set.
  const replaced: Record<KeptPortName, string | undefined> = {
    fw199: env.FW199_BASE_URL,
    wdt: env.WDT_BASE_URL,
    jumdata: env.JUMDATA_BASE_URL,
    s3: env.S3_ENDPOINT,
    dynamodb: env.AWS_ENDPOINT_URL_DYNAMODB,
  };
  const ports = await keptPorts(stateDir, (Object.keys(replaced) as KeptPortName[]).filter((name) => !replaced[name]));
  const { slowAnswerMs } = options;
  const fw199 = replaced.fw199 ? undefined : await startFw199Sandbox({ slowAnswerMs, port: ports.fw199, ...options.fw199 });
  const wdt = replaced.wdt ? undefined : await startWdtSandbox({ slowAnswerMs, port: ports.wdt, ...options.wdt });
  const jumdata = replaced.jumdata ? undefined : await startJumdataSandbox({ port: ports.jumdata, stateDir, ...options.jumdata });
  const bucket = env.BUCKET_NAME || LOCAL_BUCKET;
  const s3 = replaced.s3 ? undefined : await startLocalS3({ directory: resolve(stateDir, 's3'), buckets: [bucket], port: ports.s3 });
  const jobsTable = env.JOBS_TABLE || LOCAL_JOBS_TABLE;
  const invoicesTable = env.INVOICES_TABLE || LOCAL_INVOICES_TABLE;
  const dynamo = replaced.dynamodb
    ? undefined
    : await startLocalDynamo({ directory: resolve(stateDir, 'dynamodb'), tables: [jobsTable], invoiceTables: [invoicesTable], port: ports.dynamodb });

  // Requests are taken only once the handlers are loaded; the port is known first, for the durable links.
  let routes: RequestListener = stillStarting;
  const server = createServer((req, res) => routes(req, res));
  const port = options.port ?? Number(env.PORT ?? 3000);
  await new Promise<void>((ready, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', ready);
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Lambda's Invoke API, for one function asking another to run (bound to the handlers once they are loaded).
  let invokeByName: (name: string, event: unknown) => Promise<unknown> = async () => {
    throw new Error('local mode is still starting');
  };
  const lambda = await startLocalLambda((name, event) => invokeByName(name, event));

  Object.assign(process.env, {
    AWS_REGION: env.AWS_REGION || 'cn-north-1',
    POWERTOOLS_SERVICE_NAME: env.POWERTOOLS_SERVICE_NAME || 'einvoice-bridge-local',
    // The metrics' EMF lines (one JSON document per invocation, the sweeps' every minute) would bury the log
    // lines: off unless asked for with POWERTOOLS_METRICS_DISABLED=false (docs/operations.md).
    POWERTOOLS_METRICS_DISABLED: env.POWERTOOLS_METRICS_DISABLED || 'true',
    LOCAL_SECRETS_FILE: await localSecretsFile(stateDir, env.LOCAL_SECRETS_FILE),
    FW199_BASE_URL: env.FW199_BASE_URL || fw199?.url,
    WDT_BASE_URL: env.WDT_BASE_URL || wdt?.url,
    JUMDATA_BASE_URL: env.JUMDATA_BASE_URL || jumdata?.url,
    MIRROR_ALLOWED_HOSTS: env.MIRROR_ALLOWED_HOSTS || jumdata?.fileHost || '',
    BUCKET_NAME: bucket,
    S3_ENDPOINT: env.S3_ENDPOINT || s3?.endpoint,
    // The embedded S3 stores a checksummed streamed upload's aws-chunked bytes as they are: no checksums there.
    S3_CHECKSUMS: env.S3_CHECKSUMS || (s3 ? 'off' : 'on'),
    JOBS_TABLE: jobsTable,
    INVOICES_TABLE: invoicesTable,
    // The AWS SDK's own setting for a DynamoDB endpoint.
    AWS_ENDPOINT_URL_DYNAMODB: env.AWS_ENDPOINT_URL_DYNAMODB || dynamo?.endpoint,
    PUBLIC_BASE_URL: env.PUBLIC_BASE_URL || url,
    // The download asks the erp-update function to send a chained update now, through Lambda's Invoke API.
    ERP_UPDATE_FUNCTION: 'erp-update',
    AWS_ENDPOINT_URL_LAMBDA: lambda.endpoint,
    // The embedded S3 accepts only its own fixed keys; a real endpoint uses the caller's AWS credentials.
    ...(s3 ? { AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey } : {}),
  });

  await options.beforeHandlersLoad?.(url);
  const handlerOf = async (name: string) =>
    (await import(`../functions/${name}/handler.ts`)).handler as LambdaHandler;
  const [retry, erpUpdate, download] = await Promise.all(['retry', 'erp-update', 'download'].map(handlerOf));
  const handlers: Record<JobFunction, LambdaHandler> = { retry: retry!, 'erp-update': erpUpdate!, download: download! };
  routes = apiGateway(
    [
      { method: 'POST', path: '/retry', functionName: 'retry', handler: retry! },
      { method: 'POST', path: '/erp-update', functionName: 'erp-update', handler: erpUpdate! },
      { method: 'POST', path: '/download', functionName: 'download', handler: download! },
      { method: 'GET', path: '/files/{taxNum}/{invoiceNo}/{kind}', functionName: 'download', handler: download! },
      { method: 'GET', path: '/jobs', functionName: 'download', handler: download! },
      { method: 'GET', path: '/invoices', functionName: 'download', handler: download! },
      { method: 'GET', path: '/invoices/ledger', functionName: 'download', handler: download! },
      { method: 'POST', path: '/audits', functionName: 'download', handler: download! },
      { method: 'GET', path: '/audits/latest', functionName: 'download', handler: download! },
    ],
    options.requestBudgetMs,
  );

  const invoke = (fn: JobFunction, event: unknown, budgetMs = SCHEDULED_BUDGET_MS) =>
    handlers[fn](event as never, lambdaContext(fn, budgetMs));
  invokeByName = async (name, event) => {
    if (!Object.hasOwn(handlers, name)) throw new Error(`no function ${name} in local mode`);
    return invoke(name as JobFunction, event);
  };
  const sweep = (fn: JobFunction, budgetMs?: number) =>
    invoke(fn, { action: 'sweep', scheduledTime: new Date().toISOString() }, budgetMs) as Promise<SweepReport>;
  // The stack's schedules, played here: each function's sweep on a timer, never two of one function at once.
  const sweepEverySeconds = options.sweepEverySeconds ?? Number(env.LOCAL_SWEEP_SECONDS ?? 60);
  const sweeping = new Set<JobFunction>();
  const timer =
    sweepEverySeconds > 0
      ? setInterval(() => {
          for (const fn of Object.keys(handlers) as JobFunction[]) {
            if (sweeping.has(fn)) continue;
            sweeping.add(fn);
            sweep(fn)
              .catch((error: unknown) => console.error(`local sweep of ${fn} failed`, error))
              .finally(() => sweeping.delete(fn));
          }
        }, sweepEverySeconds * 1000)
      : undefined;
  timer?.unref();

  return {
    url,
    stateDir,
    sandboxes: { fw199, wdt, jumdata },
    s3,
    bucket,
    dynamo,
    jobsTable,
    invoicesTable,
    sweep,
    invoke,
    asyncInvocationsSettled: lambda.settled,
    close: async () => {
      clearInterval(timer);
      await lambda.settled();
      await lambda.close();
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
      await Promise.all([fw199?.close(), wdt?.close(), jumdata?.close(), s3?.close(), dynamo?.close()]);
    },
  };
}

/** The answer until the handlers are loaded (importing them takes a few seconds): try again in a second. */
const stillStarting: RequestListener = (_req, res) =>
  sendError(res, 503, 'SERVICE_UNAVAILABLE', 'Local mode is still starting: its handlers are loading. Try again in a second.', {
    'retry-after': '1',
  });

/**
 * The secrets local mode hands the handlers: the sandboxes' credentials, overridden by whatever the user's
 * LOCAL_SECRETS_FILE holds (real providers' credentials), and a link-signing key made once and kept in the state
 * folder, so that durable links stay valid across restarts. Written to the (git-ignored) state folder.
 */
async function localSecretsFile(stateDir: string, userFile: string | undefined): Promise<string> {
  const file = resolve(stateDir, 'local-secrets.json');
  const readJson = async (path: string) => JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  const previous = await readJson(file).catch(() => ({}) as Record<string, unknown>);
  const user = userFile
    ? await readJson(userFile).catch(() => {
        throw new Error(`LOCAL_SECRETS_FILE ${userFile} cannot be read as JSON`);
      })
    : {};
  const secrets = {
    fw199: FW199_SANDBOX_CREDENTIALS,
    wdt: WDT_SANDBOX_CREDENTIALS,
    jumdata: JUMDATA_SANDBOX_CREDENTIALS,
    linkKey: previous.linkKey ?? { key: randomBytes(32).toString('base64url') },
    ...user,
  };
  await writeFile(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  return file;
}
