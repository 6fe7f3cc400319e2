import { CfnOutput, Duration, RemovalPolicy, SecretValue, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { HttpApi, HttpMethod, HttpStage, LogGroupLogDestination } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { BridgeFunction } from './bridge-function.ts';

/** API Gateway answers 503 after this long; every function behind it must give up earlier. */
const API_TIMEOUT = Duration.seconds(29);

export interface InvoiceStackProps extends StackProps {
  /** `relaxed` accepts 18-character tax numbers without a valid GB 32100 check character (sandbox accounts). */
  taxNumCheck?: 'strict' | 'relaxed';
}

export class InvoiceStack extends Stack {
  readonly api: HttpApi;

  constructor(scope: Construct, id: string, props: InvoiceStackProps = {}) {
    super(scope, id, props);

    this.api = new HttpApi(this, 'Api', {
      description: 'einvoice-bridge: retry, ERP write-back and invoice file mirroring',
      // No anonymous route: callers sign with SigV4 (IAM).
      defaultAuthorizer: new HttpIamAuthorizer(),
      // The stage is created below, with access logs and throttling.
      createDefaultStage: false,
    });
    const accessLogs = new LogGroup(this, 'ApiAccessLogs', {
      retention: RetentionDays.SIX_MONTHS,
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

    const fw199Secret = providerSecret(this, 'Fw199Secret', 'fw199 (蜂巢) gateway credentials', {
      appId: '',
      appSecret: '',
    });

    const retry = new BridgeFunction(this, 'Retry', {
      name: 'retry',
      description: 'Re-push a failed invoice order through fw199 to Nuonuo (开票重试)',
      timeout: Duration.seconds(25),
      memorySize: 256,
      logRetention: RetentionDays.SIX_MONTHS,
      environment: {
        FW199_SECRET_ID: fw199Secret.secretArn,
        FW199_BASE_URL: 'https://kf.fw199.com',
        // Leaves the function time to answer 504 itself before its own 25 s timeout.
        UPSTREAM_TIMEOUT_MS: '10000',
        TAX_NUM_CHECK: props.taxNumCheck ?? 'strict',
      },
    });
    fw199Secret.grantRead(retry.fn);
    new CfnOutput(this, 'Fw199SecretArn', {
      value: fw199Secret.secretArn,
      description: 'Put {"appId","appSecret"} of the fw199 gateway here',
    });
    if (retry.fn.timeout && retry.fn.timeout.toSeconds() >= API_TIMEOUT.toSeconds()) {
      throw new Error('The retry function must time out before API Gateway does');
    }

    this.api.addRoutes({
      path: '/retry',
      methods: [HttpMethod.POST],
      integration: new HttpLambdaIntegration('RetryIntegration', retry.fn),
    });
  }
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
 * once with `aws secretsmanager put-secret-value` (README); the function refuses to call the provider until then.
 */
function providerSecret(scope: Construct, id: string, description: string, shape: Record<string, string>): Secret {
  const secret = new Secret(scope, id, {
    description: `${description}; set its value as README.md shows`,
    secretObjectValue: Object.fromEntries(
      Object.entries(shape).map(([key, value]) => [key, SecretValue.unsafePlainText(value)]),
    ),
  });
  Validations.of(secret).acknowledge({
    id: 'AwsSolutions-SMG4',
    reason: 'A third-party app secret is issued by the provider and cannot be rotated by a Lambda; rotate it at the provider and put the new value.',
  });
  return secret;
}
