import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { parseStackConfig } from '../../infra/config.ts';
import { InvoiceStack } from '../../infra/invoice-stack.ts';

/**
 * The cdk-nag AWS Solutions checks as `cdk synth` runs them (infra/app.ts): the stack passes them, in its default
 * configuration and with every option on, and a construct that breaks a rule makes the synth fail.
 */

function synthWithNag(build: (app: App) => void) {
  const app = new App({ outdir: mkdtempSync(join(tmpdir(), 'nag-')), context: { 'aws:cdk:bundling-stacks': [] } });
  build(app);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return () => app.synth();
}

describe('the cdk-nag AWS Solutions checks', () => {
  it('pass on the stack as deployed by default', () => {
    expect(synthWithNag((app) => new InvoiceStack(app, 'Default'))).not.toThrow();
  });

  it('pass with an alarm e-mail, Object Lock and a fixed batch configured', () => {
    const config = parseStackConfig({
      alarmEmail: 'it@example.com',
      archive: { objectLockYears: 10 },
      fixedBatches: [{ name: 'morning', function: 'retry', expression: 'cron(0 9 * * ? *)', jobs: [{ taxNum: '91310117568051222X', orderNo: 'A' }] }],
    });
    expect(synthWithNag((app) => new InvoiceStack(app, 'Everything', { config }))).not.toThrow();
  });

  it('fail the synth when a finding is introduced, naming the rule', () => {
    // Prepare: the stack plus a bucket that does not require TLS
    const act = synthWithNag((app) => {
      const stack = new InvoiceStack(app, 'Broken');
      new Bucket(stack, 'CarelessBucket');
    });
    // Act, Assess
    expect(act).toThrow(/AwsSolutions-S10/); // the bucket does not require requests to use SSL
  });
});
