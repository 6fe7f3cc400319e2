import { describe, expect, it } from 'vitest';
import { parseStackConfig, scheduleConfigOf, stackNameOf } from '../../infra/config.ts';
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
      archive: { filesToInfrequentAccessDays: 90, filesToGlacierDays: 365, oldVersionsToGlacierDays: 30 },
      sweeps: {},
      retryDailyLimit: RETRY_DAILY_LIMIT,
      fixedBatches: [],
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
      'config.sweeps.download.callsPerMinute',
      "config.retryDailyLimit: must be at most 20 (Nuonuo's own cap)",
      'config.fixedBatches.0.function',
      'config.fixedBatches.0.expression: must be cron(...) or rate(...)',
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

  it('refuses text that is not JSON', () => {
    expect(() => parseStackConfig('{stage: test}')).toThrow('-c config=... must be a JSON object');
  });
});
