import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Function as LambdaFunction, LoggingFormat, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { metricsNamespaceOf } from '../shared/metrics.ts';
import { grantNetworkInterfaces, NETWORK_INTERFACE_WILDCARD, type FunctionNetwork } from './egress-network.ts';
import { functionCode } from './function-build.ts';

/** Every default the three functions share, in one place. */

export interface BridgeFunctionProps {
  /** Folder under functions/ holding handler.ts. */
  name: string;
  description: string;
  /** Must stay below API Gateway's 30 s integration timeout for functions behind the API. */
  timeout: Duration;
  memorySize: number;
  logRetention: RetentionDays;
  /** Active X-Ray tracing (not offered for Lambda in the China regions). */
  tracing: boolean;
  /** The VPC whose NAT gateways give the function fixed egress IPs; none: Lambda's own, changing, addresses. */
  network?: FunctionNetwork;
  environment?: Record<string, string>;
}

export class BridgeFunction extends Construct {
  readonly fn: LambdaFunction;

  constructor(scope: Construct, id: string, props: BridgeFunctionProps) {
    super(scope, id);
    const logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      // Logs are an audit trail of billed calls; keep them if the stack goes.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // Its own role, allowed to write to its own log group only (not the managed AWSLambdaBasicExecutionRole).
    const role = new Role(this, 'Role', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    logGroup.grantWrite(role);
    // Before the function: it depends on its role's policies, so Lambda may create its network interfaces.
    if (props.network) grantNetworkInterfaces(role, props.network);
    this.fn = new LambdaFunction(this, 'Function', {
      role,
      code: functionCode(props.name),
      handler: 'index.handler',
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      timeout: props.timeout,
      memorySize: props.memorySize,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      tracing: props.tracing ? Tracing.ACTIVE : Tracing.DISABLED,
      ...(props.network && {
        vpc: props.network.vpc,
        vpcSubnets: { subnets: props.network.subnets },
        securityGroups: [props.network.securityGroup],
      }),
      environment: {
        POWERTOOLS_SERVICE_NAME: `einvoice-bridge-${props.name}`,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        // The deployment's one namespace of metrics (shared/metrics.ts).
        POWERTOOLS_METRICS_NAMESPACE: metricsNamespaceOf(Stack.of(this).stackName),
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
    });
    acknowledgeWildcards(role, props);
  }
}

/** The findings the design requires on the role: each only when the feature that needs it is on. */
function acknowledgeWildcards(role: Role, props: BridgeFunctionProps): void {
  const anyResource = [
    ...(props.tracing ? ['X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) support no resource-level permissions.'] : []),
    ...(props.network ? ['ec2:DescribeNetworkInterfaces/DescribeSubnets (Lambda attaching the function to its VPC) take no resource.'] : []),
  ];
  if (anyResource.length > 0) Validations.of(role).acknowledge({ id: 'AwsSolutions-IAM5[Resource::*]', reason: anyResource.join(' ') });
  if (props.network) Validations.of(role).acknowledge(NETWORK_INTERFACE_WILDCARD);
}
