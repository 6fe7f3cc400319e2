import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildBridgeApp } from '../../infra/bridge-app.ts';
import { JOB_FUNCTIONS } from '../../shared/jobs.ts';

/**
 * The stack in the AWS China regions (the aws-cn partition), built as `AWS_REGION=cn-north-1 npx cdk synth` builds
 * it: the CLI passes the region as CDK_DEFAULT_REGION, with no account when there are no credentials. Every synth
 * here runs the cdk-nag AWS Solutions checks, as `cdk synth` does.
 */

const CHINA_REGIONS = ['cn-north-1', 'cn-northwest-1'] as const;
/** Every option that adds resources: egress, alarm mail (SNS, KMS), Object Lock, a custom domain, a fixed batch. */
const EVERYTHING_ON = {
  egress: { staticIps: true, zones: 2 },
  alarmEmail: 'it@example.com',
  archive: { objectLockYears: 10 },
  publicBaseUrl: 'https://einvoice.example.cn',
  fixedBatches: [{ name: 'morning', function: 'retry', expression: 'cron(0 9 * * ? *)', jobs: [{ taxNum: '91310117568051222X', orderNo: 'A' }] }],
};

function synthIn(region: string, config: unknown) {
  vi.stubEnv('CDK_DEFAULT_REGION', region);
  vi.stubEnv('CDK_DEFAULT_ACCOUNT', undefined);
  const app = new App({ outdir: mkdtempSync(join(tmpdir(), 'cn-')), context: { 'aws:cdk:bundling-stacks': [], config } });
  const stack = buildBridgeApp(app);
  app.synth(); // throws on any unacknowledged nag finding
  return { stack, template: Template.fromStack(stack) };
}

/** The reason a nag finding is acknowledged for on a construct (recorded in its metadata), if it is. */
const reasonFor = (construct: IConstruct, rule: string): string | undefined =>
  construct.node.metadata
    .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
    .flatMap((entry) => Object.entries(entry.data as Record<string, string>))
    .find(([id]) => id.endsWith(rule))?.[1];
const ANY_RESOURCE = 'AwsSolutions-IAM5[Resource::*]';

afterEach(() => {
  vi.unstubAllEnvs();
});

describe.each(CHINA_REGIONS)('the stack synthesised for %s', (region) => {
  it.each([
    ['as deployed by default', {}],
    ['with every option on', EVERYTHING_ON],
  ])('%s: passes the nag checks and builds every ARN from the partition', (_, config) => {
    // Act
    const { template } = synthIn(region, config);
    // Assess
    const text = JSON.stringify(template.toJSON());
    expect(text).not.toContain('arn:aws:');
    expect(text).toContain('{"Ref":"AWS::Partition"}');
    // The region given is the one synthesised for (the scheduler role's source ARN names it)
    expect(text).toContain(`:scheduler:${region}:`);
    // Endpoints from the region's own DNS suffix (amazonaws.com.cn there), never written out
    expect(text).not.toContain('amazonaws.com/');
    expect(text).not.toMatch(/execute-api\.[a-z0-9-]+\.amazonaws\.com/);
  });

  it('traces nothing with X-Ray (not offered for Lambda there), and grants no X-Ray action', () => {
    // Act
    const { stack, template } = synthIn(region, EVERYTHING_ON);
    // Assess
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function'))) expect(fn.Properties.TracingConfig).toBeUndefined();
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).not.toContain('xray:');
    // The X-Ray wildcard is not acknowledged where there is none; the VPC's network interfaces' one is
    for (const fn of Object.values(stack.functions)) {
      expect(reasonFor(fn.role!, ANY_RESOURCE)).toMatch(/^ec2:DescribeNetworkInterfaces[^.]*\.$/);
    }
  });

  it('refuses X-Ray tracing when it is asked for, naming the field', () => {
    expect(() => synthIn(region, { tracing: true })).toThrow(`config.tracing: X-Ray tracing for Lambda is not offered in the China regions (${region})`);
  });
});

describe('tracing outside China', () => {
  it('is on by default, with the X-Ray wildcard acknowledged for that reason only', () => {
    // Act
    const { stack, template } = synthIn('ap-east-1', {});
    // Assess
    for (const name of JOB_FUNCTIONS) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Environment: { Variables: { POWERTOOLS_SERVICE_NAME: `einvoice-bridge-${name}` } },
        TracingConfig: { Mode: 'Active' },
      });
    }
    for (const fn of Object.values(stack.functions)) {
      expect(reasonFor(fn.role!, ANY_RESOURCE)).toMatch(/^X-Ray [^.]*\.$/);
    }
  });

  it('can be turned off, and then no wildcard is granted or acknowledged', () => {
    // Act
    const { stack, template } = synthIn('ap-east-1', { tracing: false });
    // Assess
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function'))) expect(fn.Properties.TracingConfig).toBeUndefined();
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).not.toContain('"Resource":"*"');
    for (const fn of Object.values(stack.functions)) expect(reasonFor(fn.role!, ANY_RESOURCE)).toBeUndefined();
  });
});
