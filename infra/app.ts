import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { InvoiceStack } from './invoice-stack.ts';

const app = new App();
const taxNumCheck = app.node.tryGetContext('taxNumCheck') ?? 'strict';
if (taxNumCheck !== 'strict' && taxNumCheck !== 'relaxed') {
  throw new Error(`Context taxNumCheck must be 'strict' or 'relaxed', got '${taxNumCheck}'`);
}
new InvoiceStack(app, 'EinvoiceBridge', {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  taxNumCheck,
});
// Every synth runs the AWS Solutions checks; an unacknowledged finding fails it.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
