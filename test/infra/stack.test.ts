import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { InvoiceStack } from '../../infra/invoice-stack.ts';

let template: Template;

beforeAll(() => {
  // Bundling is skipped here (fast, stable hashes); test/bundle runs the real esbuild output.
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  template = Template.fromStack(new InvoiceStack(app, 'Test'));
});

const retryFunction = () => {
  const functions = template.findResources('AWS::Lambda::Function', {
    Properties: { Environment: { Variables: { POWERTOOLS_SERVICE_NAME: 'einvoice-bridge-retry' } } },
  });
  expect(Object.keys(functions)).toHaveLength(1);
  const [logicalId, resource] = Object.entries(functions)[0]!;
  return { logicalId, properties: resource.Properties };
};

describe('the HTTP API', () => {
  it('routes POST /retry to the retry function with IAM authorization', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'POST /retry',
      AuthorizationType: 'AWS_IAM',
      Target: Match.anyValue(),
    });
    const integrations = template.findResources('AWS::ApiGatewayV2::Integration');
    const uris = JSON.stringify(Object.values(integrations).map((i) => i.Properties.IntegrationUri));
    expect(uris).toContain(retryFunction().logicalId);
  });

  it('has no route without authorization', () => {
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route'));
    expect(routes.length).toBeGreaterThan(0);
    for (const route of routes) expect(route.Properties.AuthorizationType).toBe('AWS_IAM');
  });

  it('logs every request and throttles callers on its default stage', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('\\$context.requestId') },
      DefaultRouteSettings: { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 },
    });
  });
});

describe('the retry function', () => {
  it('runs nodejs24.x on arm64 with an explicit timeout below the API timeout and explicit memory', () => {
    const { properties } = retryFunction();
    expect(properties.Runtime).toBe('nodejs24.x');
    expect(properties.Architectures).toEqual(['arm64']);
    expect(properties.Timeout).toBe(25);
    expect(properties.Timeout).toBeLessThan(29);
    expect(properties.MemorySize).toBe(256);
    expect(properties.TracingConfig).toEqual({ Mode: 'Active' });
  });

  it('gives the provider less time than the function has, so the function answers 504 itself', () => {
    const { properties } = retryFunction();
    expect(Number(properties.Environment.Variables.UPSTREAM_TIMEOUT_MS)).toBeLessThan(properties.Timeout * 1000);
  });

  it('logs to its own log group with a retention period', () => {
    const { properties } = retryFunction();
    const logGroupId = properties.LoggingConfig.LogGroup.Ref;
    expect(template.toJSON().Resources[logGroupId]).toMatchObject({
      Type: 'AWS::Logs::LogGroup',
      Properties: { RetentionInDays: 180 },
    });
  });

  it('is told which secret holds the fw199 credentials', () => {
    const { properties } = retryFunction();
    const secretId = Object.keys(template.findResources('AWS::SecretsManager::Secret'))[0];
    expect(properties.Environment.Variables.FW199_SECRET_ID).toEqual({ Ref: secretId });
  });
});

describe('the fw199 secret', () => {
  it('is created with empty fields, so the stack never holds the real credentials', () => {
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      SecretString: '{"appId":"","appSecret":""}',
    });
  });

  it('can be read by the retry function, and only that secret', () => {
    const secretId = Object.keys(template.findResources('AWS::SecretsManager::Secret'))[0];
    const roleRef = retryFunction().properties.Role['Fn::GetAtt'][0];
    const policies = Object.values(
      template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleRef }] } }),
    );
    const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement);
    const secretStatements = statements.filter((s) => JSON.stringify(s.Action).includes('secretsmanager'));
    expect(secretStatements).toEqual([
      {
        Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        Effect: 'Allow',
        Resource: { Ref: secretId },
      },
    ]);
  });

  it('uses no AWS managed policy for the function role', () => {
    const roleRef = retryFunction().properties.Role['Fn::GetAtt'][0];
    expect(template.toJSON().Resources[roleRef].Properties.ManagedPolicyArns).toBeUndefined();
  });
});

describe('the tax number check setting', () => {
  it('is strict unless the stack is told to relax it for sandbox numbers', () => {
    const relaxedApp = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const relaxed = Template.fromStack(new InvoiceStack(relaxedApp, 'Relaxed', { taxNumCheck: 'relaxed' }));
    expect(retryFunction().properties.Environment.Variables.TAX_NUM_CHECK).toBe('strict');
    relaxed.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ TAX_NUM_CHECK: 'relaxed' }) },
    });
  });
});
