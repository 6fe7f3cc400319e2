import { CfnOutput, Duration, Fn, RemovalPolicy, SecretValue, Stack, Token, Validations, type StackProps } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { HttpApi, HttpMethod, HttpNoneAuthorizer, HttpStage, LogGroupLogDestination } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DOWNLOAD_NODE_OPTIONS } from '../functions/download/runtime-options.ts';
import { BridgeFunction } from './bridge-function.ts';
import { EgressNetwork } from './egress-network.ts';
import { grantInvoiceArchive, invoiceBucket } from './invoice-bucket.ts';
import { grantErpTold, grantInvoiceIndex, invoicesTable } from './invoices-table.ts';
import { grantJobs, jobsTable } from './jobs-table.ts';
import { FunctionAlarms, mailAlarms, WorkAlarms } from './alarms.ts';
import { OperationsDashboard } from './dashboard.ts';
import { objectLockEnvironment, parseStackConfig, scheduleConfigOf, type StackConfig } from './config.ts';
import { JobSchedules, scheduleEnvironment, type ScheduleConfig } from './schedules.ts';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { JOB_FUNCTIONS, type JobFunction } from '../shared/jobs.ts';
import { FUNCTION_TIMEOUT_SECONDS, LEASE_SECONDS } from '../shared/schedule-settings.ts';

/**
 * API Gateway gives up on an integration after 29 s: a function answers an API request within 25 s (API_BUDGET_MS)
 * and gives a provider 10 s, so that it answers 504 itself, with the error shape, instead of API Gateway's bare 503.
 * Its timeout is longer, for the sweeps and batches, which fill the invocation with jobs and start none that could
 * not finish in the time left. A claim on a job (LEASE_SECONDS) must outlast the timeout.
 */
const FUNCTION_TIMEOUT = Duration.seconds(FUNCTION_TIMEOUT_SECONDS);
const UPSTREAM_TIMEOUT = Duration.seconds(10);
if (LEASE_SECONDS <= FUNCTION_TIMEOUT_SECONDS) throw new Error('LEASE_SECONDS must outlast the functions\' timeout');

export interface InvoiceStackProps extends StackProps {
  /** The stack's configuration (infra/config.ts); every field has a default. */
  config?: StackConfig;
}

export class InvoiceStack extends Stack {
  readonly api: HttpApi;
  readonly functions: { retry: LambdaFunction; erpUpdate: LambdaFunction; download: LambdaFunction };
  readonly bucket: Bucket;
  readonly jobs: TableV2;
  readonly invoices: TableV2;
  /** The VPC and its NAT gateways' Elastic IPs, with `egress.staticIps`. */
  readonly egress?: EgressNetwork;
  private readonly schedules: ScheduleConfig;
  private readonly config: StackConfig;
  private readonly tracing: boolean;

  constructor(scope: Construct, id: string, props: InvoiceStackProps = {}) {
    super(scope, id, props);
    this.config = props.config ?? parseStackConfig({});
    this.schedules = scheduleConfigOf(this.config);
    this.tracing = tracingOf(this.config, this.region);
    // Server access logs are delivered under a bucket policy, not ACLs (ACLs stay disabled on every bucket).
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);

    this.api = new HttpApi(this, 'Api', {
      description: 'einvoice-bridge: retry, ERP write-back and invoice file mirroring',
      // No anonymous route: callers sign with SigV4 (IAM).
      defaultAuthorizer: new HttpIamAuthorizer(),
      // The stage is created below, with access logs and throttling.
      createDefaultStage: false,
    });
    const accessLogs = new LogGroup(this, 'ApiAccessLogs', {
      retention: this.config.logRetentionDays as RetentionDays,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      autoDeploy: true,
      accessLogSettings: { destination: new LogGroupLogDestination(accessLogs), format: accessLogFormat() },
      // A runaway caller cannot run up provider bills: retries and downloads are billed per call upstream.
      throttle: { rateLimit: 20, burstLimit: 40 },
    });
    new CfnOutput(this, 'ApiUrl', { value: stage.url, description: 'Base URL of the API (IAM-signed calls)' });
    new CfnOutput(this, 'ApiAccessLogGroup', {
      value: accessLogs.logGroupName,
      description: 'One JSON line per API request (caller, route, status): aws logs tail <this> --follow',
    });
    if (this.config.egress.staticIps) {
      this.egress = new EgressNetwork(this, 'Egress', {
        zones: this.config.egress.zones,
        extraPorts: mirrorPorts(this.config.mirrorAllowedHosts),
        logRetention: this.config.logRetentionDays as RetentionDays,
      });
    }
    this.bucket = invoiceBucket(this, this.config.archive);
    this.jobs = jobsTable(this);
    this.invoices = invoicesTable(this);

    const retry = this.apiFunction({
      id: 'Retry',
      name: 'retry',
      description: 'Re-push a failed invoice order through fw199 to Nuonuo (开票重试)',
      routes: [{ method: HttpMethod.POST, path: '/retry' }],
      secret: { id: 'Fw199Secret', envName: 'FW199_SECRET_ID', label: 'fw199 (蜂巢) gateway credentials', fields: ['appId', 'appSecret'] },
      environment: {
        FW199_BASE_URL: 'https://kf.fw199.com',
        TAX_NUM_CHECK: this.config.taxNumCheck,
      },
    });
    const erpUpdate = this.apiFunction({
      id: 'ErpUpdate',
      name: 'erp-update',
      description: 'Write an invoicing result back to 旺店通 ERP (回传开发票结果)',
      routes: [{ method: HttpMethod.POST, path: '/erp-update' }],
      secret: { id: 'WdtSecret', envName: 'WDT_SECRET_ID', label: '旺店通 (WDT) openapi2 credentials', fields: ['sid', 'appKey', 'appSecret'] },
      // The archive's index: an update chained to a download marks the invoice told there (shared/invoice-erp.ts).
      environment: { WDT_BASE_URL: 'https://api.wangdian.cn/openapi2', INVOICES_TABLE: this.invoices.tableName },
    });
    grantErpTold(this.invoices, erpUpdate);

    const linkKey = new Secret(this, 'LinkKeySecret', {
      description: 'HMAC key of the durable file links (generated; rotating it invalidates every link handed out)',
      generateSecretString: {
        secretStringTemplate: '{}',
        generateStringKey: 'key',
        passwordLength: 64,
        excludePunctuation: true,
      },
      // Kept if the stack is deleted, like the bucket: put its value into a new stack's key, and every durable link
      // handed out works again.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(linkKey).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'Durable file links handed to the ERP and to people must stay valid for years; rotating the key would break them all.',
    });
    const download = this.apiFunction({
      id: 'Download',
      name: 'download',
      description: 'Mirror an invoice\'s pdf/ofd/xml from Jumdata into S3, and serve durable links to them',
      memorySize: 512,
      routes: [
        { method: HttpMethod.POST, path: '/download' },
        // The durable link carries its own HMAC: a browser or the ERP opens it without AWS credentials.
        { method: HttpMethod.GET, path: '/files/{taxNum}/{invoiceNo}/{kind}', anonymous: true },
        { method: HttpMethod.GET, path: '/jobs' },
        { method: HttpMethod.GET, path: '/invoices' },
        { method: HttpMethod.GET, path: '/invoices/ledger' },
        { method: HttpMethod.POST, path: '/audits' },
        { method: HttpMethod.GET, path: '/audits/latest' },
      ],
      // GET /jobs lists every function's open and failed jobs, not only the download's.
      readAllJobs: true,
      secret: { id: 'JumdataSecret', envName: 'JUMDATA_SECRET_ID', label: 'Jumdata (聚美智数) credentials', fields: ['appId', 'appSecret'] },
      environment: {
        JUMDATA_BASE_URL: 'https://api.jumdata.com',
        JUMDATA_DOWNLOAD_PATH: '/invoice/download',
        LINK_KEY_SECRET_ID: linkKey.secretArn,
        BUCKET_NAME: this.bucket.bucketName,
        INVOICES_TABLE: this.invoices.tableName,
        // Asked to send an update a download chained (`erp`): an asynchronous invoke.
        ERP_UPDATE_FUNCTION: erpUpdate.functionName,
        // Durable links outlive the API's own address when a custom domain is configured in front of it.
        PUBLIC_BASE_URL: this.config.publicBaseUrl ?? stage.url,
        ...(this.config.mirrorAllowedHosts.length > 0 ? { MIRROR_ALLOWED_HOSTS: this.config.mirrorAllowedHosts.join(',') } : {}),
        MIRROR_MAX_FILE_BYTES: String(this.config.mirror.maxFileMegabytes * 1024 * 1024),
        MIRROR_FILE_TIMEOUT_MS: String(this.config.mirror.fileTimeoutSeconds * 1000),
        PRESIGNED_URL_SECONDS: '600',
        ...objectLockEnvironment(this.config.archive),
        NODE_OPTIONS: DOWNLOAD_NODE_OPTIONS,
        TAX_NUM_CHECK: this.config.taxNumCheck,
      },
    });
    linkKey.grantRead(download);
    grantInvoiceIndex(this.invoices, download);
    // The ERP told by itself: the download records the chained update as an erp-update job, and asks for it now.
    grantJobs(this.jobs, download, 'erp-update', { recordOnly: true });
    download.addToRolePolicy(new PolicyStatement({ effect: Effect.ALLOW, actions: ['lambda:InvokeFunction'], resources: [erpUpdate.functionArn] }));
    grantInvoiceArchive(this.bucket, download, { objectLock: this.config.archive.objectLockYears !== undefined || this.config.archive.retention !== undefined });
    this.functions = { retry, erpUpdate, download };
    const functions = { retry, 'erp-update': erpUpdate, download };
    const schedules = new JobSchedules(this, 'Schedules', { functions, config: this.schedules });
    const work = new WorkAlarms(this, 'WorkAlarms', {
      sweepEveryMinutes: Object.fromEntries(JOB_FUNCTIONS.map((fn) => [fn, this.schedules.sweeps[fn].everyMinutes])) as Record<JobFunction, number>,
      stuckWorkMinutes: this.config.stuckWorkMinutes,
    });
    const alarms = [...new FunctionAlarms(this, 'Alarms', { functions, api: this.api }).alarms, ...schedules.alarms, ...work.alarms];
    if (this.config.alarmEmail) mailAlarms(this, this.config.alarmEmail, alarms);
    const { dashboard } = new OperationsDashboard(this, 'Operations', {
      functions,
      api: this.api,
      deadLetterQueues: schedules.deadLetterQueues,
      alarms,
      stuckWorkMinutes: this.config.stuckWorkMinutes,
    });
    new CfnOutput(this, 'DashboardName', { value: dashboard.dashboardName, description: 'The CloudWatch dashboard of this deployment (docs/operations.md)' });
  }

  /**
   * The zones a VPC spreads over, without a lookup: CloudFormation's own list (Fn::GetAZs) for the region deployed
   * to, so that `cdk synth` needs no account and no credentials, whatever region it is given.
   */
  override get availabilityZones(): string[] {
    return [0, 1].map((index) => Fn.select(index, Fn.getAzs()));
  }

  /**
   * A function behind its API routes, with its own provider secret that only it may read, and its own jobs
   * (`readAllJobs`: every function's, read only).
   */
  private apiFunction(spec: {
    id: string;
    name: JobFunction;
    description: string;
    routes: Array<{ method: HttpMethod; path: string; anonymous?: boolean }>;
    secret: { id: string; envName: string; label: string; fields: string[] };
    environment: Record<string, string>;
    memorySize?: number;
    readAllJobs?: boolean;
  }): LambdaFunction {
    const secret = providerSecret(this, spec.secret.id, spec.secret.label, spec.secret.fields);
    const { fn } = new BridgeFunction(this, spec.id, {
      name: spec.name,
      description: spec.description,
      timeout: FUNCTION_TIMEOUT,
      memorySize: spec.memorySize ?? 256,
      logRetention: this.config.logRetentionDays as RetentionDays,
      tracing: this.tracing,
      network: this.egress?.network,
      environment: {
        ...spec.environment,
        [spec.secret.envName]: secret.secretArn,
        UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT.toMilliseconds()),
        JOBS_TABLE: this.jobs.tableName,
        LEASE_SECONDS: String(LEASE_SECONDS),
        ...scheduleEnvironment(this.schedules, spec.name),
      },
    });
    secret.grantRead(fn);
    grantJobs(this.jobs, fn, spec.name, { readAll: spec.readAllJobs });
    new CfnOutput(this, `${spec.id}LogGroup`, {
      value: fn.logGroup.logGroupName,
      description: `The ${spec.name} function's logs: aws logs tail <this> --follow`,
    });
    new CfnOutput(this, `${spec.secret.id}Arn`, {
      value: secret.secretArn,
      description: `Put ${JSON.stringify(Object.fromEntries(spec.secret.fields.map((f) => [f, '...'])))} here`,
    });
    const integration = new HttpLambdaIntegration(`${spec.id}Integration`, fn);
    for (const route of spec.routes) {
      const [added] = this.api.addRoutes({
        path: route.path,
        methods: [route.method],
        integration,
        authorizer: route.anonymous ? new HttpNoneAuthorizer() : undefined,
      });
      if (route.anonymous) {
        Validations.of(added!).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason: 'A durable file link is authorised by the HMAC signature it carries, checked by the function.',
        });
      }
    }
    return fn;
  }
}

/** Tracing as configured; by default on, except in the China regions, where Lambda has no X-Ray integration. */
function tracingOf(config: StackConfig, region: string): boolean {
  const china = !Token.isUnresolved(region) && RegionInfo.get(region).partition === 'aws-cn';
  if (china && config.tracing) {
    throw new Error(`Invalid stack configuration:\n  config.tracing: X-Ray tracing for Lambda is not offered in the China regions (${region})`);
  }
  return config.tracing ?? !china;
}

/** The ports `mirrorAllowedHosts` names (80 for a host without one: it may be fetched over http). */
function mirrorPorts(hosts: string[]): number[] {
  const ports = hosts.map((host) => Number(host.split(':')[1] ?? 80)).filter((port) => port !== 443);
  return [...new Set(ports)].sort((a, b) => a - b);
}

/** One JSON line per request: who called which route, the answer, and any integration error. */
function accessLogFormat(): AccessLogFormat {
  return AccessLogFormat.custom(
    JSON.stringify({
      requestId: '$context.requestId',
      time: '$context.requestTime',
      ip: '$context.identity.sourceIp',
      caller: '$context.identity.userArn',
      route: '$context.routeKey',
      status: '$context.status',
      latencyMs: '$context.responseLatency',
      responseLength: '$context.responseLength',
      integrationError: '$context.integrationErrorMessage',
    }),
  );
}

/**
 * A provider's app secret, created with empty fields: the stack never holds the real value. The operator sets it
 * once with `aws secretsmanager put-secret-value` (docs/deploying.md); the function refuses to call the provider until then.
 */
function providerSecret(scope: Construct, id: string, description: string, fields: string[]): Secret {
  const secret = new Secret(scope, id, {
    description: `${description}; set its value as docs/deploying.md shows`,
    // Empty strings, not secrets: the template carries only the JSON shape the function expects.
    secretObjectValue: Object.fromEntries(fields.map((field) => [field, SecretValue.unsafePlainText('')])),
  });
  Validations.of(secret).acknowledge({
    id: 'AwsSolutions-SMG4',
    reason: 'A third-party app secret is issued by the provider and cannot be rotated by a Lambda; rotate it at the provider and put the new value.',
  });
  return secret;
}
