import { Duration, Stack } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  AlarmStatusWidget,
  Dashboard,
  GraphWidget,
  Metric,
  TextWidget,
  type Alarm,
  type IMetric,
  type IWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { ProviderName } from '../shared/errors.ts';
import { JOB_FUNCTIONS, type JobFunction } from '../shared/jobs.ts';
import {
  ARCHIVE_AUDIT_FUNCTION,
  JOB_OUTCOME_METRICS,
  METRIC_NAMES,
  metricsNamespaceOf,
  PROVIDER_FAILURE_CODES,
  type JobOutcomeKind,
} from '../shared/metrics.ts';

export interface OperationsDashboardProps {
  functions: Record<JobFunction, LambdaFunction>;
  api: HttpApi;
  deadLetterQueues: Record<JobFunction, IQueue>;
  /** Every alarm of the stack, shown by state at the top. */
  alarms: Alarm[];
  /** The stuck-work threshold (minutes), drawn on the oldest-due-job graph. */
  stuckWorkMinutes: number;
}

const PERIOD = Duration.minutes(5);
const PROVIDERS: readonly ProviderName[] = ['fw199', 'wdt', 'jumdata'];
const OUTCOMES: readonly JobOutcomeKind[] = ['done', 'pending', 'failed'];

/**
 * One CloudWatch dashboard of the deployment (docs/operations.md "Metrics and the dashboard"), top to bottom: the
 * alarms; the work (each function's oldest due job and its jobs' outcomes); what was bought and kept (Jumdata's
 * billed calls, invoices and bytes mirrored, ERP updates, provider failures, archive problems); the API; the
 * functions and their dead-letter queues. Five-minute periods throughout.
 */
export class OperationsDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: OperationsDashboardProps) {
    super(scope, id);
    const { stackName } = Stack.of(this);
    const product = productMetrics(metricsNamespaceOf(stackName));
    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: stackName,
      defaultInterval: Duration.days(1),
      widgets: [
        [new TextWidget({ markdown: `# ${stackName}\nWhat each graph means: docs/operations.md, "Metrics and the dashboard".`, width: 24, height: 2 })],
        [new AlarmStatusWidget({ title: 'Alarms', alarms: props.alarms, width: 24, height: 4 })],
        workRow(product, props.stuckWorkMinutes),
        archiveRow(product),
        apiRow(props.api),
        functionsRow(props.functions, props.deadLetterQueues),
      ],
    });
  }
}

type ProductMetric = (name: string, dimensions: Record<string, string>, statistic: string, label: string) => IMetric;

const productMetrics =
  (namespace: string): ProductMetric =>
  (metricName, dimensionsMap, statistic, label) =>
    new Metric({ namespace, metricName, dimensionsMap, statistic, period: PERIOD, label });

const graph = (title: string, left: IMetric[], extra: Partial<ConstructorParameters<typeof GraphWidget>[0]> = {}) =>
  new GraphWidget({ title, left, width: 6, height: 6, ...extra });

/** How long due work has waited (the stuck-work alarm's metric, with its threshold), and each function's job outcomes. */
function workRow(metric: ProductMetric, stuckWorkMinutes: number): IWidget[] {
  const oldest = graph(
    'Oldest due job (seconds past due)',
    JOB_FUNCTIONS.map((fn) => metric(METRIC_NAMES.oldestDueJobAge, { function: fn }, 'Maximum', fn)),
    { leftAnnotations: [{ value: stuckWorkMinutes * 60, label: 'stuck' }] },
  );
  const outcomes = JOB_FUNCTIONS.map((fn) =>
    graph(
      `${fn} jobs: attempts' outcomes`,
      OUTCOMES.map((outcome) => metric(JOB_OUTCOME_METRICS[outcome], { function: fn }, 'Sum', outcome)),
    ),
  );
  return [oldest, ...outcomes];
}

/** What was paid for and kept: Jumdata's billed calls, the mirrored invoices, ERP updates, provider failures, the audit. */
function archiveRow(metric: ProductMetric): IWidget[] {
  const download = { function: 'download' };
  return [
    graph('Jumdata billed calls, ERP updates sent', [
      metric(METRIC_NAMES.jumdataBilledCalls, download, 'Sum', 'Jumdata billed calls'),
      metric(METRIC_NAMES.erpUpdatesSent, { function: 'erp-update' }, 'Sum', 'ERP updates sent'),
    ]),
    graph('Invoices mirrored', [metric(METRIC_NAMES.invoicesMirrored, download, 'Sum', 'invoices')], {
      right: [metric(METRIC_NAMES.bytesMirrored, download, 'Sum', 'bytes')],
    }),
    graph(
      'Provider failures',
      PROVIDERS.flatMap((provider) =>
        PROVIDER_FAILURE_CODES.map((code) => metric(METRIC_NAMES.providerFailures, { provider, code }, 'Sum', `${provider} ${code}`)),
      ),
    ),
    graph('Archive problems (integrity audit)', [
      metric(METRIC_NAMES.archiveProblems, { function: ARCHIVE_AUDIT_FUNCTION }, 'Sum', 'problems found'),
    ]),
  ];
}

function apiRow(api: HttpApi): IWidget[] {
  const sum = { statistic: 'Sum', period: PERIOD };
  return [
    graph('API requests', [api.metricCount({ ...sum, label: 'requests' })], { width: 8 }),
    graph('API 4xx and 5xx', [api.metricClientError({ ...sum, label: '4xx' }), api.metricServerError({ ...sum, label: '5xx' })], { width: 8 }),
    graph('API latency p95 (ms)', [api.metricLatency({ statistic: 'p95', period: PERIOD, label: 'p95' })], { width: 8 }),
  ];
}

function functionsRow(functions: Record<JobFunction, LambdaFunction>, deadLetters: Record<JobFunction, IQueue>): IWidget[] {
  const perFunction = (metricOf: (fn: LambdaFunction, name: JobFunction) => IMetric) =>
    JOB_FUNCTIONS.map((name) => metricOf(functions[name], name));
  const sum = (label: string) => ({ statistic: 'Sum', period: PERIOD, label });
  return [
    graph('Function errors', perFunction((fn, name) => fn.metricErrors(sum(name)))),
    graph('Function throttles', perFunction((fn, name) => fn.metricThrottles(sum(name)))),
    graph('Function duration p95 (ms)', perFunction((fn, name) => fn.metricDuration({ statistic: 'p95', period: PERIOD, label: name }))),
    graph(
      'Dead-letter queues (messages)',
      JOB_FUNCTIONS.map((name) => deadLetters[name].metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: PERIOD, label: name })),
    ),
  ];
}
