import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { clearCaches } from '@aws-lambda-powertools/parameters';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigurationError } from '#shared/errors';
import { fw199SecretSchema, loadProviderSecret } from '#shared/secrets';

const secretsManager = mockClient(SecretsManagerClient);
const source = { secretId: 'arn:aws:secretsmanager:cn-north-1:1:secret:fw199', cacheSeconds: 300 };
const value = { appId: 'app-1', appSecret: 's3cr3t-value' };

describe('provider secrets from Secrets Manager', () => {
  beforeEach(() => {
    secretsManager.reset();
    clearCaches();
  });
  afterEach(() => vi.useRealTimers());

  it('returns the cached secret without calling Secrets Manager twice', async () => {
    // Prepare
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(value) });
    // Act
    const first = await loadProviderSecret('fw199', fw199SecretSchema, source);
    const second = await loadProviderSecret('fw199', fw199SecretSchema, source);
    // Assess
    expect(first).toEqual(value);
    expect(second).toEqual(value);
    expect(secretsManager).toHaveReceivedCommandTimes(GetSecretValueCommand, 1);
    expect(secretsManager).toHaveReceivedCommandWith(GetSecretValueCommand, { SecretId: source.secretId });
  });

  it('asks Secrets Manager again once the cache time has passed, so a rotated secret is picked up', async () => {
    // Prepare
    vi.useFakeTimers({ toFake: ['Date'] });
    secretsManager
      .on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: JSON.stringify(value) })
      .resolves({ SecretString: JSON.stringify({ ...value, appSecret: 'rotated' }) });
    await loadProviderSecret('fw199', fw199SecretSchema, source);
    // Act
    vi.setSystemTime(Date.now() + 299_000);
    const beforeExpiry = await loadProviderSecret('fw199', fw199SecretSchema, source);
    vi.setSystemTime(Date.now() + 2_000);
    const afterExpiry = await loadProviderSecret('fw199', fw199SecretSchema, source);
    // Assess
    expect(beforeExpiry.appSecret).toBe('s3cr3t-value');
    expect(afterExpiry.appSecret).toBe('rotated');
    expect(secretsManager).toHaveReceivedCommandTimes(GetSecretValueCommand, 2);
  });

  it('says the secret is not set yet when the stack placeholder is still in place, naming fields only', async () => {
    // Prepare
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: '{"appId":"","appSecret":""}' });
    // Act
    const loading = loadProviderSecret('fw199', fw199SecretSchema, source);
    // Assess
    await expect(loading).rejects.toThrow(ConfigurationError);
    await expect(loading).rejects.toThrow(
      'The fw199 secret has no usable value (missing or empty: appId, appSecret); set it as docs/deploying.md shows',
    );
  });

  it('never quotes a secret that is not JSON in its error', async () => {
    // Prepare
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: 'plain-text-s3cr3t' });
    // Act
    const error = await loadProviderSecret('fw199', fw199SecretSchema, source).catch((e: Error) => e);
    // Assess
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toBe('The fw199 secret is not valid JSON; set it as docs/deploying.md shows');
    expect(JSON.stringify(error) + String((error as Error).stack)).not.toContain('plain-text-s3cr3t');
  });

  it('never quotes a wrongly typed value in its error', async () => {
    // Prepare
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: '{"appId":"app-1","appSecret":12345678}' });
    // Act
    const error = await loadProviderSecret('fw199', fw199SecretSchema, source).catch((e: Error) => e);
    // Assess
    expect((error as Error).message).toContain('missing or empty: appSecret');
    expect((error as Error).message).not.toContain('12345678');
  });
});

describe('provider secrets from LOCAL_SECRETS_FILE', () => {
  it('reads the provider entry of the local file and never calls Secrets Manager', async () => {
    // Prepare
    secretsManager.reset();
    const file = join(await mkdtemp(join(tmpdir(), 'secrets-')), 'secrets.json');
    await writeFile(file, JSON.stringify({ fw199: value, wdt: { sid: 'x' } }));
    // Act
    const secret = await loadProviderSecret('fw199', fw199SecretSchema, { localFile: file, cacheSeconds: 0 });
    // Assess
    expect(secret).toEqual(value);
    expect(secretsManager).toHaveReceivedCommandTimes(GetSecretValueCommand, 0);
  });

  it('names the provider whose entry is missing from the local file', async () => {
    // Prepare
    const file = join(await mkdtemp(join(tmpdir(), 'secrets-')), 'secrets.json');
    await writeFile(file, JSON.stringify({ wdt: {} }));
    // Act
    const loading = loadProviderSecret('fw199', fw199SecretSchema, { localFile: file, cacheSeconds: 0 });
    // Assess
    await expect(loading).rejects.toThrow('The fw199 secret has no usable value (missing or empty: the whole object)');
  });
});
