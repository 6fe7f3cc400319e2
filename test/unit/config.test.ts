import { describe, expect, it } from 'vitest';
import { loadRetryConfig } from '#shared/config';
import { ConfigurationError } from '#shared/errors';

describe('the retry function configuration', () => {
  it('applies the documented defaults', () => {
    expect(loadRetryConfig({ FW199_SECRET_ID: 'arn:secret' })).toEqual({
      FW199_SECRET_ID: 'arn:secret',
      FW199_BASE_URL: 'https://kf.fw199.com',
      SECRETS_CACHE_SECONDS: 300,
      UPSTREAM_TIMEOUT_MS: 10_000,
      TAX_NUM_CHECK: 'strict',
    });
  });

  it('fails fast naming FW199_SECRET_ID when no secret source is set', () => {
    expect(() => loadRetryConfig({})).toThrow(ConfigurationError);
    expect(() => loadRetryConfig({})).toThrow('FW199_SECRET_ID is not set (or set LOCAL_SECRETS_FILE in local mode)');
  });

  it('names each malformed variable', () => {
    const act = () =>
      loadRetryConfig({ LOCAL_SECRETS_FILE: 'x.json', FW199_BASE_URL: 'ftp://x', UPSTREAM_TIMEOUT_MS: 'soon', TAX_NUM_CHECK: 'off' });
    expect(act).toThrow('FW199_BASE_URL: Invalid URL');
    expect(act).toThrow('UPSTREAM_TIMEOUT_MS: Invalid input: expected number');
    expect(act).toThrow('TAX_NUM_CHECK: Invalid option');
  });

  it('reads numbers from their text form', () => {
    expect(loadRetryConfig({ LOCAL_SECRETS_FILE: 'x.json', UPSTREAM_TIMEOUT_MS: '2500' }).UPSTREAM_TIMEOUT_MS).toBe(2500);
  });
});
