import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseStackConfig, type StackConfig } from '../../infra/config.ts';
import { InvoiceStack } from '../../infra/invoice-stack.ts';
import { DEFAULT_SCHEDULES, type ScheduleConfig } from '../../infra/schedules.ts';
import { JOB_FUNCTIONS, type JobFunction } from '../../shared/jobs.ts';
import { RETRY_DAILY_LIMIT, SWEEP_SETTINGS, sweepEnvironment } from '../../shared/schedule-settings.ts';

let template: Template;

beforeAll(() => {
  // Bundling is skipped here (fast, stable hashes); test/bundle runs the real esbuild output.
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  template = Template.fromStack(new InvoiceStack(app, 'Test'));
});

const functionNamed = (name: string, from = template) => {
  const functions = from.findResources('AWS::Lambda::Function', {
    Properties: { Environment: { Variables: { POWERTOOLS_SERVICE_NAME: `einvoice-bridge-${name}` } } },
  });
  expect(Object.keys(functions)).toHaveLength(1);
  const [logicalId, resource] = Object.entries(functions)[0]!;
  return { logicalId, properties: resource.Properties };
};
const retryFunction = () => functionNamed('retry');

const secretIdNamed = (prefix: string) => {
  const ids = Object.keys(template.findResources('AWS::SecretsManager::Secret')).filter((id) => id.startsWith(prefix));
  expect(ids).toHaveLength(1);
  return ids[0]!;
};

/** Every statement of the policies attached to a function's role. */
const statementsOf = (name: string, from = template) => {
  const roleRef = functionNamed(name, from).properties.Role['Fn::GetAtt'][0];
  return Object.values(from.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleRef }] } })).flatMap(
    (policy) => policy.Properties.PolicyDocument.Statement,
  );
};
const secretStatementsOf = (name: string) =>
  statementsOf(name).filter((statement) => JSON.stringify(statement.Action).includes('secretsmanager'));

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

  it('has no route without IAM authorization but the durable file link', () => {
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route'));
    const anonymous = routes.filter((route) => route.Properties.AuthorizationType !== 'AWS_IAM');
    expect(routes.length).toBe(9);
    expect(anonymous.map((route) => [route.Properties.RouteKey, route.Properties.AuthorizationType])).toEqual([
      ['GET /files/{taxNum}/{invoiceNo}/{kind}', 'NONE'],
    ]);
  });

  it.each(['GET /jobs', 'GET /invoices', 'GET /invoices/ledger', 'POST /audits', 'GET /audits/latest'])('routes %s to the download function with IAM authorization', (routeKey) => {
    // Prepare
    const [downloadIntegration] = Object.entries(template.findResources('AWS::ApiGatewayV2::Integration')).find(([, integration]) =>
      JSON.stringify(integration.Properties.IntegrationUri).includes(functionNamed('download').logicalId),
    )!;

    // Assess
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: routeKey,
      AuthorizationType: 'AWS_IAM',
      Target: { 'Fn::Join': ['', ['integrations/', { Ref: downloadIntegration }]] },
    });
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
  it('runs nodejs24.x on arm64 with an explicit timeout, a lease that outlasts it, and explicit memory', () => {
    const { properties } = retryFunction();
    expect(properties.Runtime).toBe('nodejs24.x');
    expect(properties.Architectures).toEqual(['arm64']);
    // API requests are answered within 25 s by the code (API_BUDGET_MS); the timeout is the sweeps' and batches'.
    expect(properties.Timeout).toBe(60);
    expect(Number(properties.Environment.Variables.LEASE_SECONDS)).toBeGreaterThan(properties.Timeout);
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
    expect(retryFunction().properties.Environment.Variables.FW199_SECRET_ID).toEqual({ Ref: secretIdNamed('Fw199Secret') });
  });
});

describe('every function', () => {
  it.each(JOB_FUNCTIONS)('%s: logs JSON to its own log group, kept when the stack goes, and traces actively', (name) => {
    const { properties } = functionNamed(name);
    expect(properties.LoggingConfig).toMatchObject({ LogFormat: 'JSON' });
    expect(properties.TracingConfig).toEqual({ Mode: 'Active' });
    expect(properties.Environment.Variables.POWERTOOLS_SERVICE_NAME).toBe(`einvoice-bridge-${name}`);
    expect(template.toJSON().Resources[properties.LoggingConfig.LogGroup.Ref]).toMatchObject({
      Type: 'AWS::Logs::LogGroup',
      Properties: { RetentionInDays: 180 },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('has a role of its own, with no AWS managed policy', () => {
    const roles = JOB_FUNCTIONS.map((name) => functionNamed(name).properties.Role['Fn::GetAtt'][0] as string);
    expect(new Set(roles).size).toBe(JOB_FUNCTIONS.length);
    for (const role of roles) {
      expect(template.toJSON().Resources[role].Properties.ManagedPolicyArns).toBeUndefined();
      expect(template.toJSON().Resources[role].Properties.AssumeRolePolicyDocument.Statement).toEqual([
        expect.objectContaining({ Action: 'sts:AssumeRole', Principal: { Service: 'lambda.amazonaws.com' } }),
      ]);
    }
  });

  it('is granted no wildcard action', () => {
    for (const name of JOB_FUNCTIONS) {
      const actions = statementsOf(name).flatMap((statement) => [statement.Action].flat() as string[]);
      expect(actions.filter((action) => action.includes('*')), name).toEqual([]);
    }
  });
});

describe('the fw199 secret', () => {
  it('is created with empty fields, so the stack never holds the real credentials', () => {
    expect(template.toJSON().Resources[secretIdNamed('Fw199Secret')].Properties.SecretString).toBe(
      '{"appId":"","appSecret":""}',
    );
  });

  it('can be read by the retry function, and only that secret', () => {
    expect(secretStatementsOf('retry')).toEqual([
      {
        Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        Effect: 'Allow',
        Resource: { Ref: secretIdNamed('Fw199Secret') },
      },
    ]);
  });

  it('uses no AWS managed policy for the function role', () => {
    const roleRef = retryFunction().properties.Role['Fn::GetAtt'][0];
    expect(template.toJSON().Resources[roleRef].Properties.ManagedPolicyArns).toBeUndefined();
  });
});

describe('the erp-update function and its WDT secret', () => {
  it('serves POST /erp-update with IAM authorization', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /erp-update', AuthorizationType: 'AWS_IAM' });
    const integrations = JSON.stringify(template.findResources('AWS::ApiGatewayV2::Integration'));
    expect(integrations).toContain(functionNamed('erp-update').logicalId);
  });

  it('has the same runtime, architecture, timeout and memory as the other functions', () => {
    expect(functionNamed('erp-update').properties).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Timeout: 60,
      MemorySize: 256,
    });
  });

  it('is told where WDT is and which secret holds {"sid","appKey","appSecret"}', () => {
    const variables = functionNamed('erp-update').properties.Environment.Variables;
    expect(variables.WDT_BASE_URL).toBe('https://api.wangdian.cn/openapi2');
    expect(variables.WDT_SECRET_ID).toEqual({ Ref: secretIdNamed('WdtSecret') });
    expect(template.toJSON().Resources[secretIdNamed('WdtSecret')].Properties.SecretString).toBe(
      '{"sid":"","appKey":"","appSecret":""}',
    );
  });

  it('can read the WDT secret and no other; the retry function cannot read it', () => {
    expect(secretStatementsOf('erp-update')).toEqual([
      {
        Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        Effect: 'Allow',
        Resource: { Ref: secretIdNamed('WdtSecret') },
      },
    ]);
    expect(JSON.stringify(secretStatementsOf('retry'))).not.toContain(secretIdNamed('WdtSecret'));
  });
});

describe('the tax number check setting', () => {
  it('is strict unless the stack is told to relax it for sandbox numbers', () => {
    const relaxedApp = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const relaxed = Template.fromStack(new InvoiceStack(relaxedApp, 'Relaxed', { config: parseStackConfig({ taxNumCheck: 'relaxed' }) }));
    expect(retryFunction().properties.Environment.Variables.TAX_NUM_CHECK).toBe('strict');
    relaxed.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ TAX_NUM_CHECK: 'relaxed' }) },
    });
  });
});

describe('the archive bucket', () => {
  const archive = () => {
    const buckets = template.findResources('AWS::S3::Bucket', { Properties: { VersioningConfiguration: { Status: 'Enabled' } } });
    expect(Object.keys(buckets)).toHaveLength(1);
    const [logicalId, bucket] = Object.entries(buckets)[0]!;
    return { logicalId, bucket };
  };

  it('is private, encrypted, versioned, logged and kept when the stack goes', () => {
    const { bucket } = archive();
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.Properties).toMatchObject({
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      VersioningConfiguration: { Status: 'Enabled' },
      LoggingConfiguration: { DestinationBucketName: expect.anything() },
    });
  });

  it('refuses any request that is not over TLS', () => {
    const { logicalId } = archive();
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logicalId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('logs its access to a bucket as private, encrypted and TLS-only as itself, which S3 may write to by policy', () => {
    // Prepare
    const logBucketId = archive().bucket.Properties.LoggingConfiguration.DestinationBucketName.Ref as string;
    const logBucket = template.toJSON().Resources[logBucketId];
    // Assess
    expect(logBucket.DeletionPolicy).toBe('Retain');
    expect(logBucket.Properties).toMatchObject({
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      LifecycleConfiguration: { Rules: [expect.objectContaining({ ExpirationInDays: 365, Status: 'Enabled' })] },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logBucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({ Effect: 'Allow', Principal: { Service: 'logging.s3.amazonaws.com' }, Action: 's3:PutObject' }),
        ]),
      },
    });
  });

  it('aborts multipart uploads left incomplete for a day', () => {
    expect(archive().bucket.Properties.LifecycleConfiguration.Rules).toContainEqual(
      expect.objectContaining({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' }),
    );
  });
});

describe('the download function', () => {
  const archiveId = () =>
    Object.keys(template.findResources('AWS::S3::Bucket', { Properties: { VersioningConfiguration: { Status: 'Enabled' } } }))[0]!;
  const prefixArn = (prefix: string) => ({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [archiveId(), 'Arn'] }, `/${prefix}*`]] });

  it('serves POST /download with IAM authorization and GET /files/... without', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /download', AuthorizationType: 'AWS_IAM' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'GET /files/{taxNum}/{invoiceNo}/{kind}',
      AuthorizationType: 'NONE',
    });
    const integrations = Object.values(template.findResources('AWS::ApiGatewayV2::Integration')).filter((i) =>
      JSON.stringify(i.Properties.IntegrationUri).includes(functionNamed('download').logicalId),
    );
    expect(integrations).toHaveLength(1);
  });

  it('runs nodejs24.x on arm64 with 512 MB and a timeout below the API timeout', () => {
    expect(functionNamed('download').properties).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['arm64'], Timeout: 60, MemorySize: 512 });
  });

  it('is told its bucket, Jumdata, its secrets and the public base URL of durable links', () => {
    const variables = functionNamed('download').properties.Environment.Variables;
    expect(variables).toMatchObject({
      BUCKET_NAME: { Ref: archiveId() },
      JUMDATA_BASE_URL: 'https://api.jumdata.com',
      JUMDATA_DOWNLOAD_PATH: '/invoice/download',
      JUMDATA_SECRET_ID: { Ref: secretIdNamed('JumdataSecret') },
      LINK_KEY_SECRET_ID: { Ref: secretIdNamed('LinkKeySecret') },
      PRESIGNED_URL_SECONDS: '600',
    });
    expect(variables.NODE_OPTIONS).toBe('--enable-source-maps --max-semi-space-size=1 --expose-gc');
    // On AWS no file host is exempt: https and public addresses only.
    expect(variables.MIRROR_ALLOWED_HOSTS).toBeUndefined();
    expect(variables).toMatchObject({ MIRROR_MAX_FILE_BYTES: String(64 * 1024 * 1024), MIRROR_FILE_TIMEOUT_MS: '20000' });
    expect(JSON.stringify(variables.PUBLIC_BASE_URL)).toContain('execute-api');
  });

  it('takes the file limits and a custom domain for durable links from the configuration', () => {
    // Act
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const config = parseStackConfig({ publicBaseUrl: 'https://einvoice.example.com', mirror: { maxFileMegabytes: 8, fileTimeoutSeconds: 10 } });
    const custom = Template.fromStack(new InvoiceStack(app, 'CustomDomain', { config }));
    // Assess
    expect(functionNamed('download', custom).properties.Environment.Variables).toMatchObject({
      PUBLIC_BASE_URL: 'https://einvoice.example.com',
      MIRROR_MAX_FILE_BYTES: String(8 * 1024 * 1024),
      MIRROR_FILE_TIMEOUT_MS: '10000',
    });
  });

  it('reads its Jumdata secret and the link key, and no other secret', () => {
    expect(secretStatementsOf('download').map((s) => s.Resource)).toEqual([
      { Ref: secretIdNamed('JumdataSecret') },
      { Ref: secretIdNamed('LinkKeySecret') },
    ]);
  });

  it('gets exactly the object actions it uses, on the prefixes it uses', () => {
    const s3Statements = statementsOf('download').filter((s) => JSON.stringify(s.Action).includes('s3:'));
    expect(s3Statements).toEqual([
      { Action: 's3:ListBucket', Effect: 'Allow', Resource: { 'Fn::GetAtt': [archiveId(), 'Arn'] } },
      {
        // Deletes go by version only: no s3:DeleteObject, which would let the function hide invoices behind delete markers.
        Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObjectVersion', 's3:AbortMultipartUpload'],
        Effect: 'Allow',
        Resource: prefixArn('invoices/'),
      },
      // The 台账 files: written in parts, opened through presigned URLs, an aborted one removed by version.
      {
        Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObjectVersion', 's3:AbortMultipartUpload'],
        Effect: 'Allow',
        Resource: prefixArn('ledgers/'),
      },
      // The audit: recorded versions and their locks read; its reports written and read.
      { Action: ['s3:GetObjectVersion', 's3:GetObjectRetention'], Effect: 'Allow', Resource: prefixArn('invoices/') },
      { Action: ['s3:GetObject', 's3:PutObject'], Effect: 'Allow', Resource: prefixArn('audits/') },
    ]);
  });

  it('is the only function with access to the bucket', () => {
    expect(JSON.stringify(statementsOf('retry'))).not.toContain('s3:');
    expect(JSON.stringify(statementsOf('erp-update'))).not.toContain('s3:');
  });

  it('signs durable links with a key the stack generates, and keeps if the stack goes', () => {
    expect(template.toJSON().Resources[secretIdNamed('LinkKeySecret')]).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    expect(template.toJSON().Resources[secretIdNamed('LinkKeySecret')].Properties.GenerateSecretString).toMatchObject({
      GenerateStringKey: 'key',
      PasswordLength: 64,
      SecretStringTemplate: '{}',
    });
  });
});

/** The DynamoDB table of the stack whose logical id starts with `prefix` (Jobs, Invoices). */
const tableNamed = (prefix: string) => {
  const tables = Object.entries(template.findResources('AWS::DynamoDB::GlobalTable')).filter(([id]) => id.startsWith(prefix));
  expect(tables).toHaveLength(1);
  const [logicalId, resource] = tables[0]!;
  return { logicalId, resource, properties: resource.Properties };
};

describe('the jobs table', () => {
  const table = () => tableNamed('Jobs');
  const tableArn = () => ({ 'Fn::GetAtt': [table().logicalId, 'Arn'] });
  const indexArn = () => ({ 'Fn::Join': ['', [tableArn(), '/index/byQueue']] });

  it('is keyed by job, indexed by queue and due time, expires done records, and outlives the stack', () => {
    const { resource, properties } = table();
    expect(resource.DeletionPolicy).toBe('Retain');
    expect(properties.KeySchema).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }]);
    expect(properties.GlobalSecondaryIndexes).toEqual([
      expect.objectContaining({
        IndexName: 'byQueue',
        KeySchema: [
          { AttributeName: 'queue', KeyType: 'HASH' },
          { AttributeName: 'dueAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      }),
    ]);
    expect(properties.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(properties.BillingMode).toBe('PAY_PER_REQUEST');
    expect(properties.SSESpecification).toEqual({ SSEEnabled: true, SSEType: 'KMS' });
    expect(properties.Replicas[0].PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
  });

  const jobStatementsOf = (name: string) =>
    statementsOf(name).filter((s) => JSON.stringify(s.Action).includes('dynamodb:') && JSON.stringify(s.Resource).includes(table().logicalId));
  const ownJobs = (name: JobFunction) => ({
    Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
    Effect: 'Allow',
    Resource: [tableArn(), indexArn()],
    Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${name}#*`] } },
  });

  it.each(['retry', 'erp-update'] as const)('lets the %s function read, write and update only its own jobs', (name) => {
    expect(jobStatementsOf(name)).toEqual([ownJobs(name)]);
  });

  it('lets the download function read, write and update its own jobs, and read every function\'s queues for GET /jobs', () => {
    expect(jobStatementsOf('download')).toEqual([
      ownJobs('download'),
      { Action: 'dynamodb:Query', Effect: 'Allow', Resource: indexArn() },
      // The ERP told by itself: erp-update's jobs read and recorded (never updated, never queried), to be sent by it.
      {
        Action: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        Effect: 'Allow',
        Resource: tableArn(),
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['erp-update#*'] } },
      },
    ]);
  });

  it('lets the download function ask the erp-update function, and only it, to send a chained update now', () => {
    const invokes = statementsOf('download').filter((statement) => JSON.stringify(statement.Action).includes('lambda:'));
    expect(invokes).toEqual([{ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { 'Fn::GetAtt': [functionNamed('erp-update').logicalId, 'Arn'] } }]);
    expect(functionNamed('download').properties.Environment.Variables.ERP_UPDATE_FUNCTION).toEqual({ Ref: functionNamed('erp-update').logicalId });
  });

  it.each(JOB_FUNCTIONS)('tells the %s function the table\'s name', (name) => {
    expect(functionNamed(name).properties.Environment.Variables.JOBS_TABLE).toEqual({ Ref: table().logicalId });
  });
});

describe("the archive's index of invoices", () => {
  const table = () => tableNamed('Invoices');

  it('is keyed by invoice, indexed by taxpayer and issue date, never expires, and outlives the stack', () => {
    const { resource, properties } = table();
    expect(resource.DeletionPolicy).toBe('Retain');
    expect(properties.Replicas[0].DeletionProtectionEnabled).toBe(true);
    expect(properties.KeySchema).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }]);
    expect(properties.GlobalSecondaryIndexes).toEqual([
      expect.objectContaining({
        IndexName: 'byIssueDate',
        KeySchema: [
          { AttributeName: 'taxNum', KeyType: 'HASH' },
          { AttributeName: 'issueSort', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      }),
    ]);
    expect(properties.TimeToLiveSpecification).toBeUndefined();
    expect(properties.Replicas[0].PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
  });

  it('lets the download function read, add, query and (for the audit) scan entries, and no other function touch it', () => {
    const tableArn = { 'Fn::GetAtt': [table().logicalId, 'Arn'] };
    const indexStatements = (name: JobFunction) => statementsOf(name).filter((s) => JSON.stringify(s.Resource).includes(table().logicalId));
    expect(indexStatements('download')).toEqual([
      {
        // Never DeleteItem nor UpdateItem: an entry, once written, stays as it was.
        Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:Scan', 'dynamodb:BatchGetItem'],
        Effect: 'Allow',
        Resource: [tableArn, { 'Fn::Join': ['', [tableArn, '/index/byIssueDate']] }],
      },
    ]);
    expect(indexStatements('retry')).toEqual([]);
    expect(functionNamed('download').properties.Environment.Variables.INVOICES_TABLE).toEqual({ Ref: table().logicalId });
  });

  it('lets the erp-update function read and add to the erpTold attribute of an entry, and nothing else of the index', () => {
    const tableArn = { 'Fn::GetAtt': [table().logicalId, 'Arn'] };
    const indexStatements = statementsOf('erp-update').filter((s) => JSON.stringify(s.Resource).includes(table().logicalId));
    expect(indexStatements).toEqual([
      {
        Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        Effect: 'Allow',
        Resource: tableArn,
        Condition: {
          'ForAllValues:StringEquals': { 'dynamodb:Attributes': ['pk', 'erpTold'] },
          StringEqualsIfExists: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES', 'dynamodb:ReturnValues': ['NONE', 'UPDATED_OLD', 'UPDATED_NEW'] },
        },
      },
    ]);
    expect(functionNamed('erp-update').properties.Environment.Variables.INVOICES_TABLE).toEqual({ Ref: table().logicalId });
  });
});

const SCHEDULED_TIME = '<aws.scheduler.scheduled-time>';
const functionArn = (name: JobFunction, from = template) => ({ 'Fn::GetAtt': [functionNamed(name, from).logicalId, 'Arn'] });

/** The queue a function's failed asynchronous invocations are sent to. */
const deadLettersOf = (name: JobFunction, from = template) => {
  const configs = Object.values(
    from.findResources('AWS::Lambda::EventInvokeConfig', { Properties: { FunctionName: { Ref: functionNamed(name, from).logicalId } } }),
  );
  expect(configs).toHaveLength(1);
  const logicalId: string = configs[0]!.Properties.DestinationConfig.OnFailure.Destination['Fn::GetAtt'][0];
  expect(from.toJSON().Resources[logicalId].Type).toBe('AWS::SQS::Queue');
  return logicalId;
};

/** The schedules that invoke a function, with their input parsed. */
const schedulesOf = (name: JobFunction, from = template) =>
  Object.values(from.findResources('AWS::Scheduler::Schedule', { Properties: { Target: { Arn: functionArn(name, from) } } })).map(
    (schedule) => ({ ...schedule.Properties, input: JSON.parse(schedule.Properties.Target.Input) }),
  );

const sweepExpression = (name: JobFunction) => {
  const minutes = SWEEP_SETTINGS[name].everyMinutes;
  return `rate(${minutes} ${minutes === 1 ? 'minute' : 'minutes'})`;
};

describe('the sweep settings', () => {
  it.each(JOB_FUNCTIONS)('are passed to the %s function as its environment', (name) => {
    expect(functionNamed(name).properties.Environment.Variables).toMatchObject(sweepEnvironment(SWEEP_SETTINGS[name]));
  });

  it('give only the retry function the daily re-push limit', () => {
    expect(retryFunction().properties.Environment.Variables.RETRY_DAILY_LIMIT).toBe(String(RETRY_DAILY_LIMIT));
    expect(functionNamed('erp-update').properties.Environment.Variables.RETRY_DAILY_LIMIT).toBeUndefined();
    expect(functionNamed('download').properties.Environment.Variables.RETRY_DAILY_LIMIT).toBeUndefined();
  });
});

describe('the sweep schedules', () => {
  it('are, with the monthly audit, the only schedules of a stack without fixed batches', () => {
    expect(DEFAULT_SCHEDULES.fixedBatches).toEqual([]);
    template.resourceCountIs('AWS::Scheduler::Schedule', JOB_FUNCTIONS.length + 1);
  });

  it('audit the whole archive on the 1st of each month at 03:00 China time, through the download function', () => {
    const audits = schedulesOf('download').filter((schedule) => schedule.input.action === 'audit');
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ ScheduleExpression: 'cron(0 3 1 * ? *)', ScheduleExpressionTimezone: 'Asia/Shanghai', State: 'ENABLED' });
    expect(audits[0]!.input).toEqual({ action: 'audit', scheduledTime: SCHEDULED_TIME });
    expect(audits[0]!.Target).toMatchObject({ DeadLetterConfig: { Arn: { 'Fn::GetAtt': [deadLettersOf('download'), 'Arn'] } } });
  });

  it.each(JOB_FUNCTIONS)('invoke the %s function as often as its settings say, to sweep, with the scheduled time', (name) => {
    // Act
    const schedules = schedulesOf(name).filter((schedule) => schedule.input.action === 'sweep');

    // Assess
    expect(schedules).toHaveLength(1);
    expect(schedules[0]).toMatchObject({ ScheduleExpression: sweepExpression(name), State: 'ENABLED' });
    expect(schedules[0]!.input).toEqual({ action: 'sweep', scheduledTime: SCHEDULED_TIME });
  });

  it.each(JOB_FUNCTIONS)('retry handing an invocation to the %s function twice within an hour, then park it in its dead-letter queue', (name) => {
    expect(schedulesOf(name)[0]!.Target).toMatchObject({
      RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 },
      DeadLetterConfig: { Arn: { 'Fn::GetAtt': [deadLettersOf(name), 'Arn'] } },
    });
  });

  it.each(JOB_FUNCTIONS)('run as a role that may invoke only the %s function and write only to its dead-letter queue', (name) => {
    // Prepare
    const roleId: string = schedulesOf(name)[0]!.Target.RoleArn['Fn::GetAtt'][0];
    const role = template.toJSON().Resources[roleId];
    const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } });

    // Assess
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      expect.objectContaining({
        Principal: { Service: 'scheduler.amazonaws.com' },
        Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' }, 'aws:SourceArn': expect.anything() } },
      }),
    ]);
    expect(Object.values(policies).flatMap((policy) => policy.Properties.PolicyDocument.Statement)).toEqual([
      {
        Action: 'lambda:InvokeFunction',
        Effect: 'Allow',
        Resource: [functionArn(name), { 'Fn::Join': ['', [functionArn(name), ':*']] }],
      },
      { Action: 'sqs:SendMessage', Effect: 'Allow', Resource: { 'Fn::GetAtt': [deadLettersOf(name), 'Arn'] } },
    ]);
  });
});

describe('the asynchronous invocations', () => {
  it.each(JOB_FUNCTIONS)('of the %s function are retried twice within an hour, then parked in its own dead-letter queue', (name) => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: functionNamed(name).logicalId },
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [deadLettersOf(name), 'Arn'] } } },
    });
  });
});

describe('the dead-letter queue', () => {
  it('is one per function', () => {
    template.resourceCountIs('AWS::SQS::Queue', JOB_FUNCTIONS.length);
    expect(new Set(JOB_FUNCTIONS.map((name) => deadLettersOf(name))).size).toBe(JOB_FUNCTIONS.length);
  });

  it.each(JOB_FUNCTIONS)('of the %s function is encrypted by SQS, refuses requests not over TLS, and keeps messages 14 days', (name) => {
    // Prepare
    const queueId = deadLettersOf(name);

    // Assess
    expect(template.toJSON().Resources[queueId].Properties).toEqual({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId }],
      PolicyDocument: {
        Statement: [
          Match.objectLike({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ],
      },
    });
  });

  it.each(JOB_FUNCTIONS)('of the %s function raises an alarm as soon as it holds a message, saying what to do', (name) => {
    // Prepare
    const alarms = Object.values(
      template.findResources('AWS::CloudWatch::Alarm', {
        Properties: { Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [deadLettersOf(name), 'QueueName'] } }] },
      }),
    );

    // Assess
    expect(alarms).toHaveLength(1);
    expect(alarms[0]!.Properties).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Statistic: 'Maximum',
      Period: 300,
      EvaluationPeriods: 1,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    expect(alarms[0]!.Properties.AlarmDescription).toMatch(/Read the messages.*GET \/jobs/);
    expect(alarms[0]!.Properties.AlarmActions).toBeUndefined();
  });
});

describe('a stack built with its own schedule configuration', () => {
  const morningRepush = [{ taxNum: '91310117568051222X', orderNo: '20240122150518179381' }];
  const config = parseStackConfig({
    sweeps: { 'erp-update': { everyMinutes: 2, batchSize: 7 } },
    retryDailyLimit: 3,
    fixedBatches: [{ name: 'morning-repush', function: 'retry', expression: 'cron(0 9 * * ? *)', jobs: morningRepush }],
  });
  const build = (id: string, stackConfig: StackConfig) =>
    Template.fromStack(new InvoiceStack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), id, { config: stackConfig }));
  let configured: Template;

  beforeAll(() => {
    configured = build('Configured', config);
  });

  it('passes its sweep settings and daily limit to the functions', () => {
    expect(functionNamed('erp-update', configured).properties.Environment.Variables).toMatchObject({ SWEEP_BATCH_SIZE: '7' });
    expect(functionNamed('retry', configured).properties.Environment.Variables.RETRY_DAILY_LIMIT).toBe('3');
    expect(schedulesOf('erp-update', configured)[0]).toMatchObject({ ScheduleExpression: 'rate(2 minutes)' });
  });

  it('audits the whole archive at the configured expression, in China time', () => {
    const custom = build('Audited', parseStackConfig({ audit: { schedule: 'cron(30 2 ? * SUN *)' } }));
    const audits = schedulesOf('download', custom).filter((schedule) => schedule.input.action === 'audit');
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ ScheduleExpression: 'cron(30 2 ? * SUN *)', ScheduleExpressionTimezone: 'Asia/Shanghai' });
  });

  it('invokes a fixed batch\'s function with its jobs and the scheduled time, at its cron expression in China time', () => {
    // Act
    const batches = schedulesOf('retry', configured).filter((schedule) => 'jobs' in schedule.input);

    // Assess
    expect(batches).toHaveLength(1);
    expect(batches[0]).toMatchObject({ ScheduleExpression: 'cron(0 9 * * ? *)', ScheduleExpressionTimezone: 'Asia/Shanghai' });
    expect(batches[0]!.input).toEqual({ jobs: morningRepush, scheduledTime: SCHEDULED_TIME });
    expect(batches[0]!.Target).toMatchObject({
      RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 },
      DeadLetterConfig: { Arn: { 'Fn::GetAtt': [deadLettersOf('retry', configured), 'Arn'] } },
    });
    configured.resourceCountIs('AWS::Scheduler::Schedule', JOB_FUNCTIONS.length + 2);
  });

  it('is refused when a fixed batch\'s expression is neither cron(...) nor rate(...)', () => {
    // Prepare
    const batch = { ...config.fixedBatches[0]!, expression: '0 9 * * *' };

    // Act
    const act = () => build('BadExpression', { ...config, fixedBatches: [batch] });

    // Assess
    expect(act).toThrow("Fixed batch 'morning-repush': expression must be cron(...) or rate(...), got '0 9 * * *'");
  });
});

describe('the production settings of the configuration', () => {
  const configuredStack = (id: string, given: unknown) =>
    Template.fromStack(new InvoiceStack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), id, { config: parseStackConfig(given) }));

  it('moves invoices to cheaper storage classes that still open at once, after the configured days', () => {
    // Act
    const custom = configuredStack('Lifecycle', { archive: { filesToInfrequentAccessDays: 60, filesToGlacierDays: 200, oldVersionsToGlacierDays: 7 } });
    // Assess
    for (const [stack, ia, glacier, old] of [
      [template, 90, 365, 30],
      [custom, 60, 200, 7],
    ] as const) {
      stack.hasResourceProperties('AWS::S3::Bucket', {
        VersioningConfiguration: { Status: 'Enabled' },
        LifecycleConfiguration: {
          Rules: Match.arrayWith([
            Match.objectLike({ Id: 'abort-incomplete-uploads', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }),
            Match.objectLike({
              Id: 'invoices-to-cheaper-storage',
              Prefix: 'invoices/',
              Transitions: [
                { StorageClass: 'STANDARD_IA', TransitionInDays: ia },
                { StorageClass: 'GLACIER_IR', TransitionInDays: glacier },
              ],
              NoncurrentVersionTransitions: [{ StorageClass: 'GLACIER_IR', TransitionInDays: old }],
            }),
          ]),
        },
      });
    }
  });

  it('locks nothing by default, and locks mirrored invoices in compliance mode when configured, on the same bucket', () => {
    // Act
    const locked = configuredStack('Locked', { archive: { objectLockYears: 10 } });
    // Assess: both buckets have Object Lock (changing it would replace the bucket) and no default retention (an
    // attempt that failed half way can be removed)
    const archiveOf = (stack: Template) =>
      Object.entries(stack.findResources('AWS::S3::Bucket', { Properties: { VersioningConfiguration: { Status: 'Enabled' } } }))[0]!;
    for (const stack of [template, locked]) {
      expect(archiveOf(stack)[1].Properties.ObjectLockEnabled).toBe(true);
      expect(archiveOf(stack)[1].Properties.ObjectLockConfiguration).toBeUndefined();
    }
    // The same logical id: turning the lock on is an update of the bucket, not a new one
    expect(archiveOf(locked)[0]).toBe(archiveOf(template)[0]);
    // A stack deployed before the bucket had Object Lock keeps its bucket as it is
    expect(archiveOf(configuredStack('Legacy', { archive: { bucketObjectLock: false } }))[1].Properties.ObjectLockEnabled).toBeUndefined();
    expect(functionNamed('download', locked).properties.Environment.Variables.OBJECT_LOCK_YEARS).toBe('10');
    expect(functionNamed('download').properties.Environment.Variables.OBJECT_LOCK_YEARS).toBeUndefined();
    const retentionGrants = (stack: Template) =>
      statementsOf('download', stack).filter((statement) => JSON.stringify(statement.Action).includes('PutObjectRetention'));
    expect(retentionGrants(template)).toEqual([]);
    expect(retentionGrants(locked)).toEqual([
      expect.objectContaining({ Effect: 'Allow', Action: 's3:PutObjectRetention', Resource: { 'Fn::Join': ['', [expect.anything(), '/invoices/*']] } }),
    ]);
  });

  it('alarms when a function fails, is throttled or logs an error, and when the API answers 5xx', () => {
    for (const name of JOB_FUNCTIONS) {
      const { logicalId, properties } = functionNamed(name);
      for (const metric of ['Errors', 'Throttles']) {
        const alarms = template.findResources('AWS::CloudWatch::Alarm', {
          Properties: { MetricName: metric, Namespace: 'AWS/Lambda', Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId } }] },
        });
        expect(Object.values(alarms).map((alarm) => alarm.Properties), `${name} ${metric}`).toEqual([
          expect.objectContaining({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', Statistic: 'Sum', Period: 300, TreatMissingData: 'notBreaching' }),
        ]);
      }
      // Errors the function answers or logs (a 500, a failed batch job) never reach Lambda's Errors metric: its
      // ERROR log lines are counted from its own log group, and alarmed on
      const filters = Object.values(
        template.findResources('AWS::Logs::MetricFilter', { Properties: { LogGroupName: { Ref: properties.LoggingConfig.LogGroup.Ref } } }),
      );
      expect(filters.map((filter) => filter.Properties), name).toContainEqual(
        expect.objectContaining({
          FilterPattern: '{ $.level = "ERROR" }',
          MetricTransformations: [{ MetricNamespace: 'EinvoiceBridge/Test', MetricName: `${name}-logged-errors`, MetricValue: '1' }],
        }),
      );
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'EinvoiceBridge/Test',
        MetricName: `${name}-logged-errors`,
        Statistic: 'Sum',
        Threshold: 1,
        AlarmDescription: Match.stringLikeRegexp('"level":"ERROR"'),
      });
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/ApiGateway',
      MetricName: '5xx',
      Dimensions: [{ Name: 'ApiId', Value: { Ref: Object.keys(template.findResources('AWS::ApiGatewayV2::Api'))[0] } }],
      Statistic: 'Sum',
      Threshold: 1,
    });
  });

  it("counts provider failures as a metric the functions publish, not by reading their logs, with no alarm", () => {
    for (const name of JOB_FUNCTIONS) {
      // Prepare
      const { properties } = functionNamed(name);
      // Act
      const filters = Object.values(
        template.findResources('AWS::Logs::MetricFilter', { Properties: { LogGroupName: { Ref: properties.LoggingConfig.LogGroup.Ref } } }),
      ).map((filter) => filter.Properties);
      // Assess: the ERROR lines' filter is the only one left; the metrics' namespace is the stack's
      expect(filters.map((filter) => filter.MetricTransformations[0].MetricName), name).toEqual([`${name}-logged-errors`]);
      expect(properties.Environment.Variables.POWERTOOLS_METRICS_NAMESPACE, name).toBe('EinvoiceBridge/Test');
    }
    expect(template.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: 'ProviderFailures' } })).toEqual({});
  });

  it('mails every alarm only when an address is configured, through a topic CloudWatch may publish to', () => {
    // Assess: no topic and no action by default
    template.resourceCountIs('AWS::SNS::Topic', 0);
    expect(Object.values(template.findResources('AWS::CloudWatch::Alarm')).every((alarm) => alarm.Properties.AlarmActions === undefined)).toBe(true);

    // Act
    const mailed = configuredStack('Mailed', { alarmEmail: 'it@example.com' });
    // Assess: one encrypted topic, TLS only, the address subscribed
    const topics = mailed.findResources('AWS::SNS::Topic');
    expect(Object.keys(topics)).toHaveLength(1);
    const [topicId, topic] = Object.entries(topics)[0]!;
    expect(topic.Properties.KmsMasterKeyId).toBeDefined();
    mailed.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'it@example.com', TopicArn: { Ref: topicId } });
    // The topic's policy replaces SNS's default one: without an Allow for CloudWatch no alarm would ever arrive.
    // CloudWatch may publish and use the key only for this account's alarms.
    const fromOurAlarms = {
      StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
      ArnLike: { 'aws:SourceArn': { 'Fn::Join': ['', Match.arrayWith([':cloudwatch:', ':alarm:*'])] } },
    };
    mailed.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topicId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: 'sns:Publish',
            Resource: { Ref: topicId },
            Condition: fromOurAlarms,
          }),
        ]),
      },
    });
    mailed.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Condition: fromOurAlarms,
          }),
        ]),
      },
    });
    // Every alarm sends to it: three per function, one per dead-letter queue, one per function's stuck work, the
    // API's and the archive audit's
    const alarms = Object.values(mailed.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms).toHaveLength(JOB_FUNCTIONS.length * 5 + 2);
    expect(alarms.every((alarm) => JSON.stringify(alarm.Properties.AlarmActions) === JSON.stringify([{ Ref: topicId }]))).toBe(true);
  });

  it('passes the allowed file hosts and the log retention on', () => {
    // Act
    const custom = configuredStack('Custom', { mirrorAllowedHosts: ['files.example.com', 'cdn.example.com:8443'], logRetentionDays: 365 });
    // Assess
    expect(functionNamed('download', custom).properties.Environment.Variables.MIRROR_ALLOWED_HOSTS).toBe('files.example.com,cdn.example.com:8443');
    expect(functionNamed('download').properties.Environment.Variables.MIRROR_ALLOWED_HOSTS).toBeUndefined();
    expect(Object.values(custom.findResources('AWS::Logs::LogGroup')).map((group) => group.Properties.RetentionInDays)).toEqual([365, 365, 365, 365]);
  });
});

describe('the stack outputs', () => {
  it('name the API, each secret to set and each function\'s log group', () => {
    const outputs = template.findOutputs('*');
    expect(Object.keys(outputs)).toEqual(
      expect.arrayContaining(['ApiUrl', 'ApiAccessLogGroup', 'Fw199SecretArn', 'WdtSecretArn', 'JumdataSecretArn', 'RetryLogGroup', 'ErpUpdateLogGroup', 'DownloadLogGroup']),
    );
    const logGroups = Object.keys(template.findResources('AWS::Logs::LogGroup'));
    for (const name of ['ApiAccessLogGroup', 'RetryLogGroup', 'ErpUpdateLogGroup', 'DownloadLogGroup']) {
      expect(logGroups).toContain(outputs[name]!.Value.Ref);
    }
  });
});
