import { Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseStackConfig, stackNameOf } from './config.ts';
import { InvoiceStack } from './invoice-stack.ts';

/**
 * The app `cdk synth` and `cdk deploy` build (infra/app.ts), in a function so that the tests check the very wiring
 * that runs: the stack from the configuration, and the AWS Solutions checks on every synth.
 */
export function buildBridgeApp(app: App): InvoiceStack {
  // The configuration from cdk.json's context or `-c config='{...}'`; `-c taxNumCheck=relaxed` is kept as a shortcut,
  // applied before validation (fixed batches' jobs are checked with the tax number rule it sets).
  const shortcut: unknown = app.node.tryGetContext('taxNumCheck');
  const config = parseStackConfig(app.node.tryGetContext('config'), shortcut === undefined ? {} : { taxNumCheck: shortcut });
  const stack = new InvoiceStack(app, stackNameOf(config), {
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    config,
    tags: { 'einvoice-bridge:stage': config.stage },
  });
  // Every synth runs the AWS Solutions checks; an unacknowledged finding fails it.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
