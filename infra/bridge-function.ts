import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, LoggingFormat, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';

/** Every default the three functions share, in one place. */

export interface BridgeFunctionProps {
  /** Folder under functions/ holding handler.ts. */
  name: string;
  description: string;
  /** Must stay below API Gateway's 30 s integration timeout for functions behind the API. */
  timeout: Duration;
  memorySize: number;
  logRetention: RetentionDays;
  environment?: Record<string, string>;
}

const projectRoot = fileURLToPath(new URL('..', import.meta.url));

/** How every function is bundled; `npm run bench` builds its bundles with these too, so it measures what is deployed. */
export const FUNCTION_BUNDLING = {
  format: OutputFormat.ESM,
  target: 'node24',
  platform: 'node',
  minify: true,
  sourceMap: true,
  // Stack traces keep their file:line; Node no longer reads megabytes of source text at every cold start (bench).
  sourcesContent: false,
  // Prefer the ESM builds of dependencies; some only tree-shake well that way.
  mainFields: ['module', 'main'],
  // Bundle everything, the AWS SDK included: the versions tested are the versions deployed.
  externalModules: [],
  // A few dependencies still call require(); give the ESM bundle one.
  banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  // Never fall back to Docker: the local esbuild is pinned in package.json.
  forceDockerBundling: false,
} satisfies BundlingOptions;

export class BridgeFunction extends Construct {
  readonly fn: NodejsFunction;

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
    this.fn = new NodejsFunction(this, 'Function', {
      role,
      entry: `${projectRoot}functions/${props.name}/handler.ts`,
      projectRoot,
      depsLockFilePath: `${projectRoot}package-lock.json`,
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      timeout: props.timeout,
      memorySize: props.memorySize,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      tracing: Tracing.ACTIVE,
      environment: {
        POWERTOOLS_SERVICE_NAME: `einvoice-bridge-${props.name}`,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      bundling: FUNCTION_BUNDLING,
    });
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) support no resource-level permissions.',
    });
  }
}
