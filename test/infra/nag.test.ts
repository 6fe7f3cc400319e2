import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { describe, expect, it } from 'vitest';
import { buildBridgeApp } from '../../infra/bridge-app.ts';

/**
 * The cdk-nag AWS Solutions checks as `cdk synth` runs them: the app of infra/app.ts (buildBridgeApp) passes them,
 * in its default configuration and with every option on, and a construct that breaks a rule makes the synth fail.
 */

function synthBridgeApp(context: Record<string, unknown> = {}, addToStack?: (stack: ReturnType<typeof buildBridgeApp>) => void) {
  const app = new App({ outdir: mkdtempSync(join(tmpdir(), 'nag-')), context: { 'aws:cdk:bundling-stacks': [], ...context } });
  const stack = buildBridgeApp(app);
  addToStack?.(stack);
  return () => app.synth();
}

describe('the cdk-nag AWS Solutions checks', () => {
  it('pass on the stack as deployed by default', () => {
    expect(synthBridgeApp()).not.toThrow();
  });

  it('pass with an alarm e-mail, Object Lock, a custom domain and a fixed batch configured', () => {
    const config = {
      alarmEmail: 'it@example.com',
      archive: { objectLockYears: 10 },
      publicBaseUrl: 'https://einvoice.example.com',
      fixedBatches: [{ name: 'morning', function: 'retry', expression: 'cron(0 9 * * ? *)', jobs: [{ taxNum: '91310117568051222X', orderNo: 'A' }] }],
    };
    expect(synthBridgeApp({ config })).not.toThrow();
  });

  it.each([1, 2])('pass with fixed egress IPs in %i zone(s): the VPC, its NAT gateways and the functions in it', (zones) => {
    expect(synthBridgeApp({ config: { egress: { staticIps: true, zones } } })).not.toThrow();
  });

  it('pass with tracing off, with no acknowledgement left for X-Ray', () => {
    expect(synthBridgeApp({ config: { tracing: false } })).not.toThrow();
  });

  it('pass with the -c taxNumCheck=relaxed shortcut and a fixed batch of sandbox tax numbers, which it lets through', () => {
    const fixedBatches = [{ name: 'sandbox', function: 'retry', expression: 'rate(1 day)', jobs: [{ taxNum: '91310117568051222A', orderNo: 'A' }] }];
    expect(() => synthBridgeApp({ config: { fixedBatches } })()).toThrow('config.fixedBatches.0.jobs.0.taxNum');
    expect(() => synthBridgeApp({ config: { fixedBatches }, taxNumCheck: 'relaxed' })()).not.toThrow();
  });

  it('fail the synth when a finding is introduced, naming the rule', () => {
    // Prepare: the stack plus a bucket that does not require TLS
    const act = synthBridgeApp({}, (stack) => new Bucket(stack, 'CarelessBucket'));
    // Act, Assess
    expect(act).toThrow(/AwsSolutions-S10/); // the bucket does not require requests to use SSL
  });
});
