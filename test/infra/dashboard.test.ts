import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseStackConfig } from '../../infra/config.ts';
import { InvoiceStack } from '../../infra/invoice-stack.ts';
import { JOB_FUNCTIONS } from '../../shared/jobs.ts';

/**
 * The operations dashboard and the alarms on the product's own metrics, in the synthesised template: the metric
 * names, namespace and dimensions here are the ones docs/operations.md promises and shared/metrics.ts publishes.
 */

const NAMESPACE = 'EinvoiceBridge/Test';
const stackOf = (config: unknown = {}) =>
  Template.fromStack(new InvoiceStack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Test', { config: parseStackConfig(config) }));

let template: Template;
beforeAll(() => {
  template = stackOf();
});

interface Widget {
  type: string;
  properties: { title?: string; metrics?: unknown[][]; alarms?: string[]; annotations?: { horizontal?: Array<{ value: number }> } };
}

/** The dashboard's widgets, its body's CloudFormation references written as `<Ref:X>` / `<GetAtt:X.Y>`. */
function dashboardOf(stack: Template): { name: string; widgets: Widget[] } {
  const dashboards = Object.values(stack.findResources('AWS::CloudWatch::Dashboard'));
  expect(dashboards).toHaveLength(1);
  const { DashboardName, DashboardBody } = dashboards[0]!.Properties;
  const token = (part: Record<string, unknown>) =>
    'Ref' in part ? `<Ref:${part.Ref as string}>` : `<GetAtt:${(part['Fn::GetAtt'] as string[]).join('.')}>`;
  const body = (DashboardBody['Fn::Join'][1] as Array<string | Record<string, unknown>>).map((part) => (typeof part === 'string' ? part : token(part))).join('');
  return { name: DashboardName, widgets: (JSON.parse(body) as { widgets: Widget[] }).widgets };
}

/** Every metric line of every graph, as `namespace name dim=value ... stat`, the dimensions in name order. */
function graphedMetrics(widgets: Widget[]): string[] {
  return widgets.flatMap((widget) =>
    (widget.properties.metrics ?? []).map((line) => {
      const [namespace, name, ...rest] = line as [string, string, ...unknown[]];
      const options = rest.at(-1) as { stat: string };
      const pairs: string[] = [];
      for (let i = 0; i + 1 < rest.length; i += 2) pairs.push(`${String(rest[i])}=${String(rest[i + 1])}`);
      return [namespace, name, ...pairs.sort(), options.stat].join(' ');
    }),
  );
}

const logicalIdOf = (stack: Template, type: string, predicate: (properties: Record<string, any>) => boolean) => {
  const found = Object.entries(stack.findResources(type)).filter(([, resource]) => predicate(resource.Properties ?? {}));
  expect(found).toHaveLength(1);
  return found[0]![0];
};
const functionId = (stack: Template, name: string) =>
  logicalIdOf(stack, 'AWS::Lambda::Function', (p) => p.Environment.Variables.POWERTOOLS_SERVICE_NAME === `einvoice-bridge-${name}`);

describe('the operations dashboard', () => {
  it("graphs the product's metrics from the stack's namespace, with their dimensions", () => {
    // Act
    const { name, widgets } = dashboardOf(template);
    const graphed = graphedMetrics(widgets);
    // Assess
    expect(name).toBe('Test');
    const expected = [
      ...JOB_FUNCTIONS.map((fn) => `OldestDueJobAge function=${fn} Maximum`),
      ...JOB_FUNCTIONS.flatMap((fn) => ['JobsDone', 'JobsPending', 'JobsFailed'].map((metric) => `${metric} function=${fn} Sum`)),
      'JumdataBilledCalls function=download Sum',
      'InvoicesMirrored function=download Sum',
      'BytesMirrored function=download Sum',
      'ErpUpdatesSent function=erp-update Sum',
      'ArchiveProblems function=download Sum',
      ...['fw199', 'wdt', 'jumdata'].flatMap((provider) =>
        ['UPSTREAM_UNAVAILABLE', 'UPSTREAM_TEMPORARILY_UNAVAILABLE', 'UPSTREAM_TIMEOUT'].map((code) => `ProviderFailures code=${code} provider=${provider} Sum`),
      ),
    ];
    expect(graphed.filter((line) => line.startsWith(`${NAMESPACE} `)).sort()).toEqual(expected.map((line) => `${NAMESPACE} ${line}`).sort());
  });

  it("graphs the API's requests, 4xx, 5xx and p95 latency", () => {
    const apiId = logicalIdOf(template, 'AWS::ApiGatewayV2::Api', () => true);
    expect(graphedMetrics(dashboardOf(template).widgets).filter((line) => line.startsWith('AWS/ApiGateway')).sort()).toEqual(
      [`Count ApiId=<Ref:${apiId}> Sum`, `4xx ApiId=<Ref:${apiId}> Sum`, `5xx ApiId=<Ref:${apiId}> Sum`, `Latency ApiId=<Ref:${apiId}> p95`]
        .map((line) => `AWS/ApiGateway ${line}`)
        .sort(),
    );
  });

  it("graphs each function's errors, throttles and p95 duration, and each dead-letter queue's messages", () => {
    const graphed = graphedMetrics(dashboardOf(template).widgets);
    for (const name of JOB_FUNCTIONS) {
      const id = functionId(template, name);
      for (const line of [`Errors FunctionName=<Ref:${id}> Sum`, `Throttles FunctionName=<Ref:${id}> Sum`, `Duration FunctionName=<Ref:${id}> p95`]) {
        expect(graphed, `${name} ${line}`).toContain(`AWS/Lambda ${line}`);
      }
    }
    const queues = Object.keys(template.findResources('AWS::SQS::Queue')).filter((id) => id.includes('DeadLetters'));
    expect(queues).toHaveLength(JOB_FUNCTIONS.length);
    expect(graphed.filter((line) => line.startsWith('AWS/SQS')).sort()).toEqual(
      queues.map((id) => `AWS/SQS ApproximateNumberOfMessagesVisible QueueName=<GetAtt:${id}.QueueName> Maximum`).sort(),
    );
  });

  it('shows every alarm of the stack by state, and the stuck-work age on the oldest-due graph', () => {
    const { widgets } = dashboardOf(template);
    const shown = widgets.filter((widget) => widget.type === 'alarm').flatMap((widget) => widget.properties.alarms ?? []);
    expect(shown.sort()).toEqual(Object.keys(template.findResources('AWS::CloudWatch::Alarm')).map((id) => `<GetAtt:${id}.Arn>`).sort());
    const oldest = widgets.find((widget) => widget.properties.title?.startsWith('Oldest due job'));
    expect(oldest?.properties.annotations?.horizontal).toEqual([expect.objectContaining({ value: 3600 })]);
  });

  it('is named in the stack outputs', () => {
    expect(template.findOutputs('DashboardName').DashboardName!.Value).toEqual({ Ref: logicalIdOf(template, 'AWS::CloudWatch::Dashboard', () => true) });
  });
});

describe('the stuck-work alarm', () => {
  const stuckWorkAlarms = (stack: Template) =>
    Object.values(stack.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: 'OldestDueJobAge' } })).map((alarm) => alarm.Properties);

  it("goes off per function when its oldest due job is over an hour past due, or its sweeps report nothing: missing data breaches", () => {
    const alarms = stuckWorkAlarms(template);
    expect(alarms.map((alarm) => alarm.Dimensions)).toEqual(JOB_FUNCTIONS.map((fn) => [{ Name: 'function', Value: fn }]));
    // The retry sweep runs every 5 minutes, the others every minute: two sweeps' time, at least 5 minutes
    expect(alarms.map((alarm) => alarm.Period)).toEqual([600, 300, 300]);
    for (const alarm of alarms) {
      expect(alarm).toMatchObject({
        Namespace: NAMESPACE,
        Statistic: 'Maximum',
        Threshold: 3600,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'breaching',
      });
      expect(alarm.AlarmDescription).toContain(`GET /jobs?state=pending&function=${alarm.Dimensions[0].Value}`);
    }
  });

  it('takes its age from the configuration and its period from the sweeps, and mails the alarm topic', () => {
    // Act
    const configured = stackOf({ stuckWorkMinutes: 120, sweeps: { download: { everyMinutes: 30 } }, alarmEmail: 'it@example.com' });
    // Assess
    const topic = logicalIdOf(configured, 'AWS::SNS::Topic', () => true);
    const alarms = stuckWorkAlarms(configured);
    expect(alarms.map((alarm) => [alarm.Dimensions[0].Value, alarm.Threshold, alarm.Period])).toEqual([
      ['retry', 7200, 600],
      ['erp-update', 7200, 300],
      ['download', 7200, 3600],
    ]);
    expect(alarms.map((alarm) => alarm.AlarmActions)).toEqual(JOB_FUNCTIONS.map(() => [{ Ref: topic }]));
  });
});

describe('the archive problems alarm', () => {
  it('goes off when an audit publishes a problem, and not between audits', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: 'ArchiveProblems' } }));
    expect(alarms.map((alarm) => alarm.Properties)).toEqual([
      expect.objectContaining({
        Namespace: NAMESPACE,
        Dimensions: [{ Name: 'function', Value: 'download' }],
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      }),
    ]);
  });
});
