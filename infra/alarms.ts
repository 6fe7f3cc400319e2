import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { JobFunction } from '../shared/jobs.ts';

/**
 * Per function, an alarm when it fails (an invocation that threw or timed out) and when Lambda throttles it; and,
 * when an e-mail address is configured, a topic that mails every alarm of the stack to it.
 */
export class FunctionAlarms extends Construct {
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, functions: Record<JobFunction, IFunction>) {
    super(scope, id);
    for (const [name, fn] of Object.entries(functions)) {
      this.alarms.push(
        new Alarm(this, `${name}-errors`, {
          alarmDescription:
            `The ${name} function failed (an exception or a timeout, not a provider's refusal, which it answers). ` +
            'Its log group has the error with the request id.',
          metric: fn.metricErrors({ statistic: 'Sum', period: Duration.minutes(5) }),
          threshold: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
        new Alarm(this, `${name}-throttles`, {
          alarmDescription: `Lambda throttled the ${name} function: the account's concurrency is spent. Requests were refused or delayed.`,
          metric: fn.metricThrottles({ statistic: 'Sum', period: Duration.minutes(5) }),
          threshold: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    }
  }
}

/** Mails every alarm to `email`. The topic is encrypted with a key of its own: CloudWatch cannot use AWS's SNS key. */
export function mailAlarms(scope: Construct, email: string, alarms: Alarm[]): Topic {
  const key = new Key(scope, 'AlarmTopicKey', { description: 'einvoice-bridge alarm topic', enableKeyRotation: true });
  key.grant(new ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
  const topic = new Topic(scope, 'AlarmTopic', { displayName: 'einvoice-bridge alarms', masterKey: key, enforceSSL: true });
  topic.addSubscription(new EmailSubscription(email));
  for (const alarm of alarms) alarm.addAlarmAction(new SnsAction(topic));
  return topic;
}
