import { describe, expect, it } from 'vitest';
import { objectLockEnvironment, parseStackConfig, scheduleConfigOf, stackNameOf } from '../../infra/config.ts';
import { RETRY_DAILY_LIMIT, SWEEP_SETTINGS } from '#shared/schedule-settings';

describe('the stack configuration', () => {
  it('has a default for everything, so that `npx cdk deploy` works as is', () => {
    // Act
    const config = parseStackConfig(undefined);
    // Assess
    expect(config).toEqual({
      stage: 'prod',
      taxNumCheck: 'strict',
      logRetentionDays: 180,
      mirrorAllowedHosts: [],
      archive: { filesToInfrequentAccessDays: 90, filesToGlacierDays: 365, oldVersionsToGlacierDays: 30, bucketObjectLock: true },
      mirror: { maxFileMegabytes: 64, fileTimeoutSeconds: 20 },
      egress: { staticIps: false, zones: 2 },
      sweeps: {},
      retryDailyLimit: RETRY_DAILY_LIMIT,
      fixedBatches: [],
      audit: { schedule: 'cron(0 3 1 * ? *)' },
      stuckWorkMinutes: 60,
    });
    expect(stackNameOf(config)).toBe('EinvoiceBridge');
    expect(scheduleConfigOf(config).sweeps).toEqual(SWEEP_SETTINGS);
  });

  it('reads a JSON string as given with -c config=...', () => {
    const config = parseStackConfig('{"stage": "test", "alarmEmail": "it@example.com", "sweeps": {"download": {"callsPerMinute": 5}}}');
    expect(stackNameOf(config)).toBe('EinvoiceBridge-test');
    expect(config.alarmEmail).toBe('it@example.com');
    expect(scheduleConfigOf(config).sweeps.download).toEqual({ ...SWEEP_SETTINGS.download, callsPerMinute: 5 });
  });

  it('names every bad field in one message', () => {
    // Act
    const act = () =>
      parseStackConfig({
        stage: 'Prod Stage',
        logRetentionDays: 100,
        alarmEmail: 'not-an-address',
        mirrorAllowedHosts: ['Files.Example.com'],
        archive: { filesToInfrequentAccessDays: 90, filesToGlacierDays: 100, objectLockYears: 50 },
        publicBaseUrl: 'http://files.example.com',
        mirror: { maxFileMegabytes: 0, fileTimeoutSeconds: 30 },
        egress: { staticIps: 'yes', zones: 3 },
        tracing: 'off',
        sweeps: { download: { callsPerMinute: 0 } },
        retryDailyLimit: 25,
        fixedBatches: [{ name: 'x', function: 'invoice', expression: '0 9 * * *', jobs: [] }],
        colour: 'blue',
      });
    // Assess
    expect(act).toThrow(/^Invalid stack configuration/);
    for (const field of [
      'config.stage: must be 1 to 20 lower-case letters',
      'config.logRetentionDays: must be one of 1, 3, 5',
      'config.alarmEmail: must be an e-mail address',
      'config.mirrorAllowedHosts.0: must be host or host:port',
      'config.archive.objectLockYears: must be 1 to 30 years',
      'config.publicBaseUrl: must be an https:// URL',
      'config.mirror.maxFileMegabytes: must be a whole number from 1 to 1024',
      'config.mirror.fileTimeoutSeconds: must be a whole number from 1 to 22',
      'config.egress.staticIps: must be true or false',
      'config.egress.zones: must be 1 or 2',
      'config.tracing: must be true or false',
      'config.sweeps.download.callsPerMinute: must be a whole number from 1 to 6000',
      "config.retryDailyLimit: must be at most 20 (Nuonuo's own cap)",
      'config.fixedBatches.0.function',
      'config.fixedBatches.0.expression: must be cron(minutes hours day-of-month month day-of-week year) or rate(N minutes|hours|days)',
      'config.fixedBatches.0.jobs',
      'config.(root): Unrecognized key: "colour"',
    ]) {
      expect(act, field).toThrow(field);
    }
  });

  it('refuses archive classes out of order: Glacier at least 30 days after Standard-IA', () => {
    expect(() => parseStackConfig({ archive: { filesToInfrequentAccessDays: 90, filesToGlacierDays: 100 } })).toThrow(
      'config.archive.filesToGlacierDays: must be at least 30 days after filesToInfrequentAccessDays',
    );
  });

  it('refuses fixed batches that could only fail later: a malformed schedule, a name used twice, a job its function would refuse', () => {
    // Prepare
    const job = { taxNum: '91310117568051222X', orderNo: 'A-1' };
    const batch = (name: string, expression: string, jobs: unknown[]) => ({ name, function: 'retry', expression, jobs });
    // Act
    const act = () =>
      parseStackConfig({
        fixedBatches: [
          batch('morning', 'cron(banana)', [job]),
          batch('morning', 'rate(5 fortnights)', [job, { taxNum: '123', orderNo: 'A-2' }, 'not an object']),
        ],
      });
    // Assess
    for (const field of [
      'config.fixedBatches.0.expression: must be cron(',
      'config.fixedBatches.1.expression: must be cron(',
      "config.fixedBatches.1.name: 'morning' is used twice",
      'config.fixedBatches.1.jobs.1.taxNum: ',
      'config.fixedBatches.1.jobs.2: must be a JSON object',
    ]) {
      expect(act, field).toThrow(field);
    }
    expect(act).not.toThrow('config.fixedBatches.1.jobs.0');
    // A well-formed batch passes, with each function's own request shape
    expect(() =>
      parseStackConfig({
        fixedBatches: [
          batch('every-morning', 'cron(0 9 * * ? *)', [job]),
          { name: 'hourly-files', function: 'download', expression: 'rate(1 hour)', jobs: [{ taxNum: job.taxNum, invoiceNo: '24312000000000000001', issueDate: '2024-04-25', direction: 'sales' }] },
        ],
      }),
    ).not.toThrow();
  });

  it('checks fixed batch jobs with the tax number rule in force, the -c taxNumCheck shortcut included', () => {
    // Prepare: a sandbox tax number whose check character is not valid
    const sandboxJob = { taxNum: '91310117568051222A', orderNo: 'A-1' };
    const config = { fixedBatches: [{ name: 'sandbox', function: 'retry', expression: 'rate(1 day)', jobs: [sandboxJob] }] };
    // Act, Assess
    expect(() => parseStackConfig(config)).toThrow('config.fixedBatches.0.jobs.0.taxNum: ');
    expect(parseStackConfig(config, { taxNumCheck: 'relaxed' }).taxNumCheck).toBe('relaxed');
    expect(parseStackConfig(JSON.stringify({ ...config, taxNumCheck: 'relaxed' })).fixedBatches[0]!.jobs).toEqual([sandboxJob]);
  });

  it('keeps Object Lock off the bucket only when asked, and then refuses to lock invoices', () => {
    expect(parseStackConfig({ archive: { bucketObjectLock: false } }).archive.bucketObjectLock).toBe(false);
    expect(() => parseStackConfig({ archive: { bucketObjectLock: false, objectLockYears: 10 } })).toThrow(
      'config.archive.objectLockYears: needs bucketObjectLock: true',
    );
  });

  it('refuses a sweep backoff whose cap is below its base, counting the defaults', () => {
    expect(() => parseStackConfig({ sweeps: { retry: { backoffBaseSeconds: 600, backoffMaxSeconds: 300 } } })).toThrow(
      'config.sweeps.retry.backoffMaxSeconds: must be at least backoffBaseSeconds (600)',
    );
    expect(() => parseStackConfig({ sweeps: { retry: { backoffMaxSeconds: 1 } } })).toThrow(
      `config.sweeps.retry.backoffMaxSeconds: must be at least backoffBaseSeconds (${SWEEP_SETTINGS.retry.backoffBaseSeconds})`,
    );
  });

  it('takes the stuck-work age in minutes, refusing one a healthy sweep could reach (under twice its interval)', () => {
    expect(parseStackConfig({ stuckWorkMinutes: 90 }).stuckWorkMinutes).toBe(90);
    expect(() => parseStackConfig({ stuckWorkMinutes: 4 })).toThrow('config.stuckWorkMinutes: must be a whole number from 5 to 1440');
    // The retry sweep runs every 5 minutes by default
    expect(() => parseStackConfig({ stuckWorkMinutes: 9 })).toThrow("config.stuckWorkMinutes: must be at least 10: 2 × the retry sweep's everyMinutes (5)");
    expect(() => parseStackConfig({ sweeps: { download: { everyMinutes: 45 } } })).toThrow(
      "config.stuckWorkMinutes: must be at least 90: 2 × the download sweep's everyMinutes (45)",
    );
    expect(parseStackConfig({ stuckWorkMinutes: 90, sweeps: { download: { everyMinutes: 45 } } }).stuckWorkMinutes).toBe(90);
  });

  it('refuses text that is not JSON', () => {
    expect(() => parseStackConfig('{stage: test}')).toThrow('-c config=... must be a JSON object');
  });
});

describe('retention by law in the stack configuration', () => {
  it('defaults to 30 years from the end of the fiscal year, plus a year of grace, and tells the download function so', () => {
    const config = parseStackConfig({ archive: { retention: {} } });
    expect(config.archive.retention).toEqual({ years: 30, from: 'fiscal-year-end', graceYears: 1 });
    expect(objectLockEnvironment(config.archive)).toEqual({ OBJECT_LOCK_YEARS: '30', OBJECT_LOCK_FROM: 'fiscal-year-end', OBJECT_LOCK_GRACE_YEARS: '1' });
  });

  it('keeps objectLockYears as the simple form, counted from the day mirrored', () => {
    expect(objectLockEnvironment(parseStackConfig({ archive: { objectLockYears: 10 } }).archive)).toEqual({ OBJECT_LOCK_YEARS: '10', OBJECT_LOCK_FROM: 'mirrored' });
    expect(objectLockEnvironment(parseStackConfig({}).archive)).toEqual({});
  });

  it.each([
    [{ retention: { years: 30 }, objectLockYears: 10 }, 'config.archive.retention: set either retention'],
    [{ retention: { years: 30 }, bucketObjectLock: false }, 'config.archive.retention: needs bucketObjectLock: true'],
    [{ retention: { years: 0 } }, 'config.archive.retention.years: must be 1 to 50 years'],
    [{ retention: { graceYears: 9 } }, 'config.archive.retention.graceYears: must be 0 to 5 years'],
    [{ retention: { from: 'mirrored' } }, "config.archive.retention.from: must be 'fiscal-year-end'"],
  ])('refuses %j, naming the field', (archive, message) => {
    expect(() => parseStackConfig({ archive })).toThrow(message);
  });
});
