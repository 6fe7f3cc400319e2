import { Duration, Stack } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { Alarm, ComparisonOperator, TreatMissingData, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { FilterPattern, MetricFilter } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { PROVIDER_FAILED } from '../shared/errors.ts';
import type { JobFunction } from '../shared/jobs.ts';

/**
 * What tells a person that something needs them, per function and for the API:
 * - the function failed (an invocation that threw or timed out) or Lambda throttled it;
 * - the function logged an error. The functions answer every failure they can describe (a 500 for a missing secret
 *   value, a failed batch job, a file left orphaned) instead of throwing, so Lambda's Errors metric never counts
 *   them: their ERROR log lines do. A provider's failure is no error of ours: its WARN lines are counted apart, as
 *   ProviderFailures by provider;
 * - the API answered 5xx (a provider unreachable or failing, or the function itself).
 * And, when an e-mail address is configured, a topic that mails every alarm of the stack to it.
 */
export class FunctionAlarms extends Construct {
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: { functions: Record<JobFunction, LambdaFunction>; api: HttpApi }) {
    super(scope, id);
    const metricNamespace = `EinvoiceBridge/${Stack.of(this).stackName}`;
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
      // A provider down, too slow or asking to be tried later is logged at WARN (the sweeps retry it): counted per
      // provider to show an outage's length, with no alarm of its own (the API's 5xx alarm sees the answers).
      new MetricFilter(this, `${name}-provider-failures`, {
        logGroup: fn.logGroup,
        filterPattern: FilterPattern.all(
          FilterPattern.stringValue('$.level', '=', 'WARN'),
          FilterPattern.stringValue('$.message', '=', PROVIDER_FAILED),
        ),
        metricNamespace,
        metricName: 'ProviderFailures',
        metricValue: '1',
        dimensions: { provider: '$.provider' },
      });
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
