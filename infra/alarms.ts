import { Duration, Stack } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { Alarm, ComparisonOperator, Metric, TreatMissingData, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { FilterPattern, MetricFilter } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { JobFunction } from '../shared/jobs.ts';
import { ARCHIVE_AUDIT_FUNCTION, METRIC_NAMES, metricsNamespaceOf } from '../shared/metrics.ts';

/**
 * What tells a person that something needs them, per function and for the API:
 * - the function failed (an invocation that threw or timed out) or Lambda throttled it;
 * - the function logged an error. The functions answer every failure they can describe (a 500 for a missing secret
 *   value, a failed batch job, a file left orphaned) instead of throwing, so Lambda's Errors metric never counts
 *   them: their ERROR log lines do. A provider's failure is no error of ours: the functions count it in the metric
 *   ProviderFailures (shared/metrics.ts), graphed on the dashboard with no alarm of its own (a long outage leaves
 *   work due, which the stuck-work alarm sees);
 * - the API answered 5xx (a provider unreachable or failing, or the function itself).
 * And, when an e-mail address is configured, a topic that mails every alarm of the stack to it.
 */
export class FunctionAlarms extends Construct {
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: { functions: Record<JobFunction, LambdaFunction>; api: HttpApi }) {
    super(scope, id);
    const metricNamespace = metricsNamespaceOf(Stack.of(this).stackName);
    for (const [name, fn] of Object.entries(props.functions)) {
      const loggedErrors = new MetricFilter(this, `${name}-error-logs`, {
        logGroup: fn.logGroup,
        // Powertools' JSON lines and the Node.js runtime's own line for an uncaught error both carry "level": "ERROR"
        // (a timeout is a platform record without a level: the Errors alarm counts it).
        filterPattern: FilterPattern.stringValue('$.level', '=', 'ERROR'),
        metricNamespace,
        metricName: `${name}-logged-errors`,
        metricValue: '1',
      }).metric({ statistic: 'Sum', period: Duration.minutes(5) });
      this.alarms.push(
        this.alarmOn(`${name}-errors`, fn.metricErrors({ statistic: 'Sum', period: Duration.minutes(5) }),
          `The ${name} function failed (an exception or a timeout, not a provider's refusal, which it answers). ` +
            'Its log group has the error with the request id.'),
        this.alarmOn(`${name}-throttles`, fn.metricThrottles({ statistic: 'Sum', period: Duration.minutes(5) }),
          `Lambda throttled the ${name} function: the account's concurrency is spent. Requests were refused or delayed.`),
        this.alarmOn(`${name}-logged-errors`, loggedErrors,
          `The ${name} function logged an error (level ERROR): an answer 500, a batch job that failed, or a file left ` +
            'behind. Search its log group for "level":"ERROR"; each line has the request id.'),
      );
    }
    this.alarms.push(
      this.alarmOn('api-5xx', props.api.metricServerError({ statistic: 'Sum', period: Duration.minutes(5) }),
        'The API answered 5xx: a provider was unreachable or failing (502/503/504 name it), or a function failed (500). ' +
          'The API access log and the functions\' logs have the request ids.'),
    );
  }

  private alarmOn(id: string, metric: IMetric, description: string): Alarm {
    return new Alarm(this, id, {
      alarmDescription: description,
      metric,
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }
}

/** Sweeps a stuck-work alarm waits for, at least 5 minutes: a period with no OldestDueJobAge at all is breaching. */
export const SWEEPS_BEFORE_MISSING = 2;

export interface WorkAlarmsProps {
  /** How often each function's sweep runs (minutes): each run publishes OldestDueJobAge. */
  sweepEveryMinutes: Record<JobFunction, number>;
  /** Work due for longer than this is stuck (the configuration's `stuckWorkMinutes`). */
  stuckWorkMinutes: number;
}

/**
 * The alarms on the product's own metrics (shared/metrics.ts):
 * - per function, work stuck: its oldest due job has waited past its due time longer than `stuckWorkMinutes`, or its
 *   sweeps published no OldestDueJobAge for SWEEPS_BEFORE_MISSING runs (no sweep ran, or each failed before it looked:
 *   missing data is breaching);
 * - the integrity audit found a problem in the archive (ArchiveProblems, published by the audit).
 */
export class WorkAlarms extends Construct {
  readonly stuckWork = {} as Record<JobFunction, Alarm>;
  readonly archiveProblems: Alarm;

  constructor(scope: Construct, id: string, props: WorkAlarmsProps) {
    super(scope, id);
    const namespace = metricsNamespaceOf(Stack.of(this).stackName);
    for (const [fn, everyMinutes] of Object.entries(props.sweepEveryMinutes) as Array<[JobFunction, number]>) {
      const period = Duration.minutes(Math.max(5, SWEEPS_BEFORE_MISSING * everyMinutes));
      this.stuckWork[fn] = new Alarm(this, `${fn}-stuck-work`, {
        alarmDescription:
          `The ${fn} function has work due for over ${props.stuckWorkMinutes} minutes, or no sweep of it reported in ` +
          `${period.toMinutes()} minutes (none ran, or each failed). GET /jobs?state=pending&function=${fn} lists its jobs and their last ` +
          'error; its log group has the sweeps\' "sweep finished" lines and any error.',
        metric: new Metric({ namespace, metricName: METRIC_NAMES.oldestDueJobAge, dimensionsMap: { function: fn }, statistic: 'Maximum', period }),
        threshold: props.stuckWorkMinutes * 60,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.BREACHING,
      });
    }
    this.archiveProblems = new Alarm(this, 'archive-problems', {
      alarmDescription:
        'The integrity audit found a problem in the archive (a file changed, missing, or not as recorded). ' +
        'GET /audits/latest has the report, naming each invoice and problem.',
      metric: new Metric({
        namespace,
        metricName: METRIC_NAMES.archiveProblems,
        dimensionsMap: { function: ARCHIVE_AUDIT_FUNCTION },
        statistic: 'Sum',
        period: Duration.minutes(5),
      }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      // The audit runs monthly (and on request): no data between runs is no problem.
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }

  get alarms(): Alarm[] {
    return [...Object.values(this.stuckWork), this.archiveProblems];
  }
}

/**
 * Mails every alarm to `email`. The topic is encrypted with a key of its own (CloudWatch cannot use AWS's SNS key),
 * and its policy, which also refuses requests without TLS, replaces SNS's default one: CloudWatch may publish to it
 * and use the key only for this account's alarms in this region.
 */
export function mailAlarms(scope: Construct, email: string, alarms: Alarm[]): Topic {
  const { account, region, partition } = Stack.of(scope);
  const cloudWatch = new ServicePrincipal('cloudwatch.amazonaws.com');
  const fromOurAlarms = {
    StringEquals: { 'aws:SourceAccount': account },
    ArnLike: { 'aws:SourceArn': `arn:${partition}:cloudwatch:${region}:${account}:alarm:*` },
  };
  const key = new Key(scope, 'AlarmTopicKey', { description: 'einvoice-bridge alarm topic', enableKeyRotation: true });
  key.addToResourcePolicy(
    new PolicyStatement({ principals: [cloudWatch], actions: ['kms:Decrypt', 'kms:GenerateDataKey*'], resources: ['*'], conditions: fromOurAlarms }),
  );
  const topic = new Topic(scope, 'AlarmTopic', { displayName: 'einvoice-bridge alarms', masterKey: key, enforceSSL: true });
  topic.addToResourcePolicy(
    new PolicyStatement({ principals: [cloudWatch], actions: ['sns:Publish'], resources: [topic.topicArn], conditions: fromOurAlarms }),
  );
  topic.addSubscription(new EmailSubscription(email));
  for (const alarm of alarms) alarm.addAlarmAction(new SnsAction(topic));
  return topic;
}
