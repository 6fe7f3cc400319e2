import { describe, expect, it } from 'vitest';
import { loadDownloadConfig, loadErpUpdateConfig, loadRetryConfig, sweepSettingsOf } from '#shared/config';
import { ConfigurationError } from '#shared/errors';
import { RETRY_DAILY_LIMIT, SWEEP_SETTINGS } from '#shared/schedule-settings';

describe('the retry function configuration', () => {
  it('applies the documented defaults', () => {
    expect(loadRetryConfig({ FW199_SECRET_ID: 'arn:secret', JOBS_TABLE: 'jobs' })).toEqual({
      FW199_SECRET_ID: 'arn:secret',
      FW199_BASE_URL: 'https://kf.fw199.com',
      SECRETS_CACHE_SECONDS: 300,
      UPSTREAM_TIMEOUT_MS: 10_000,
      TAX_NUM_CHECK: 'strict',
      JOBS_TABLE: 'jobs',
      LEASE_SECONDS: 90,
      JOB_WAIT_MS: 3_000,
      RETRY_DAILY_LIMIT: 5,
      SWEEP_BATCH_SIZE: 50,
      SWEEP_CONCURRENCY: 2,
      SWEEP_CALLS_PER_MINUTE: 30,
      JOB_MAX_ATTEMPTS: 10,
      BACKOFF_BASE_SECONDS: 60,
      BACKOFF_MAX_SECONDS: 3_600,
    });
  });

  it('fails fast naming FW199_SECRET_ID when no secret source is set', () => {
    expect(() => loadRetryConfig({ JOBS_TABLE: 'jobs' })).toThrow(ConfigurationError);
    expect(() => loadRetryConfig({ JOBS_TABLE: 'jobs' })).toThrow('FW199_SECRET_ID is not set (or set LOCAL_SECRETS_FILE in local mode)');
  });

  it('fails fast naming JOBS_TABLE when it is not set', () => {
    expect(() => loadRetryConfig({ FW199_SECRET_ID: 'arn:secret' })).toThrow('JOBS_TABLE: Invalid input');
  });

  it('names each malformed variable', () => {
    const act = () =>
      loadRetryConfig({
        LOCAL_SECRETS_FILE: 'x.json',
        JOBS_TABLE: 'jobs',
        FW199_BASE_URL: 'ftp://x',
        UPSTREAM_TIMEOUT_MS: 'soon',
        TAX_NUM_CHECK: 'off',
        RETRY_DAILY_LIMIT: '25',
      });
    expect(act).toThrow('FW199_BASE_URL: Invalid URL');
    expect(act).toThrow('UPSTREAM_TIMEOUT_MS: Invalid input: expected number');
    expect(act).toThrow('TAX_NUM_CHECK: Invalid option');
    // Nuonuo itself refuses beyond about 20 re-pushes a day: a limit above that protects nothing.
    expect(act).toThrow('RETRY_DAILY_LIMIT: Too big');
  });

  it('reads numbers from their text form', () => {
    expect(loadRetryConfig({ LOCAL_SECRETS_FILE: 'x.json', JOBS_TABLE: 'jobs', UPSTREAM_TIMEOUT_MS: '2500' }).UPSTREAM_TIMEOUT_MS).toBe(2500);
  });
});

describe('the sweep settings', () => {
  it('default to the typed schedule settings of each function', () => {
    const retry = loadRetryConfig({ LOCAL_SECRETS_FILE: 'x.json', JOBS_TABLE: 'jobs' });
    const erp = loadErpUpdateConfig({ LOCAL_SECRETS_FILE: 'x.json', JOBS_TABLE: 'jobs' });
    const download = loadDownloadConfig({ LOCAL_SECRETS_FILE: 'x.json', JOBS_TABLE: 'jobs', BUCKET_NAME: 'bucket', INVOICES_TABLE: 'invoices' });
    const { everyMinutes: _r, ...retrySettings } = SWEEP_SETTINGS.retry;
    const { everyMinutes: _e, ...erpSettings } = SWEEP_SETTINGS['erp-update'];
    const { everyMinutes: _d, ...downloadSettings } = SWEEP_SETTINGS.download;
    expect(sweepSettingsOf(retry)).toEqual(retrySettings);
    expect(sweepSettingsOf(erp)).toEqual(erpSettings);
    expect(sweepSettingsOf(download)).toEqual(downloadSettings);
    expect(retry.RETRY_DAILY_LIMIT).toBe(RETRY_DAILY_LIMIT);
  });

  it('take the stack values from the environment', () => {
    const erp = loadErpUpdateConfig({
      LOCAL_SECRETS_FILE: 'x.json',
      JOBS_TABLE: 'jobs',
      SWEEP_CALLS_PER_MINUTE: '12',
      JOB_MAX_ATTEMPTS: '3',
      BACKOFF_BASE_SECONDS: '0.5',
    });
    expect(sweepSettingsOf(erp)).toMatchObject({ callsPerMinute: 12, maxAttempts: 3, backoffBaseSeconds: 0.5 });
  });
});
