import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { parseStackConfig } from '../../infra/config.ts';
import { InvoiceStack } from '../../infra/invoice-stack.ts';

/**
 * cfn-lint on the synthesised templates, for the regions each is meant for: resource types and properties that
 * region's CloudFormation knows. It does not know Lambda runtimes or architectures by region (docs/deploying.md).
 * cfn-lint is a Python tool installed on the development machines, not a dependency: without it these are skipped.
 * W3005 (a DependsOn already implied by a GetAtt) is ignored: CDK writes it for every function's role.
 */
const hasCfnLint = spawnSync('cfn-lint', ['--version']).status === 0;

const EVERYTHING_ON = {
  egress: { staticIps: true, zones: 2 },
  alarmEmail: 'it@example.com',
  archive: { objectLockYears: 10 },
  publicBaseUrl: 'https://einvoice.example.com',
  mirrorAllowedHosts: ['files.example.com:8443'],
};

function lint(region: string | undefined, regions: string[], config: unknown) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new InvoiceStack(app, 'Linted', { env: region ? { region } : undefined, config: parseStackConfig(config) });
  const file = join(mkdtempSync(join(tmpdir(), 'lint-')), 'template.json');
  writeFileSync(file, JSON.stringify(Template.fromStack(stack).toJSON()));
  return spawnSync('cfn-lint', ['--regions', ...regions, '--ignore-checks', 'W3005', '--', file], { encoding: 'utf8' });
}

describe.skipIf(!hasCfnLint)('cfn-lint', () => {
  it.each([
    ['the default stack, in any region', undefined, ['us-east-1', 'ap-east-1'], {}],
    ['every option on, in any region', undefined, ['us-east-1', 'ap-east-1'], EVERYTHING_ON],
    ['every option on, for Beijing and Ningxia', 'cn-north-1', ['cn-north-1', 'cn-northwest-1'], EVERYTHING_ON],
    ['the default stack, for Ningxia', 'cn-northwest-1', ['cn-northwest-1'], {}],
  ])('finds nothing in %s', (_, region, regions, config) => {
    const result = lint(region, regions, config);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  }, 90_000);
});
