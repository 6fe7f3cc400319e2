import { Duration, Stack, TimeZone, Validations } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { CfnFunction, IFunction } from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { ContextAttribute, Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { JOB_FUNCTIONS, type JobFunction } from '../shared/jobs.ts';
import { RETRY_DAILY_LIMIT, SWEEP_SETTINGS, sweepEnvironment, type SweepSettings } from '../shared/schedule-settings.ts';

/** A batch of jobs the stack hands a function on a fixed schedule, e.g. the same re-pushes every morning. */
export interface FixedBatch {
  /** Tells the schedule apart from the others, in its construct id and description. */
  name: string;
  function: JobFunction;
  /** A `cron(...)` or `rate(...)` expression; a cron expression is read in China time (Asia/Shanghai). */
  expression: string;
  /** The jobs, each as the function's HTTP API takes it. */
  jobs: unknown[];
}

/** Everything the stack schedules, and the settings the functions' sweeps read from their environment. */
export interface ScheduleConfig {
  sweeps: Record<JobFunction, SweepSettings>;
  /** Re-pushes of one order per day (RETRY_DAILY_LIMIT). */
  retryDailyLimit: number;
  fixedBatches: FixedBatch[];
  /** When the download function audits the whole archive: a cron(...) or rate(...) expression, cron in China time. */
  auditExpression: string;
}

/** The 1st of each month, 03:00 China time. */
export const DEFAULT_AUDIT_EXPRESSION = 'cron(0 3 1 * ? *)';

export const DEFAULT_SCHEDULES: ScheduleConfig = {
  sweeps: SWEEP_SETTINGS,
  retryDailyLimit: RETRY_DAILY_LIMIT,
  fixedBatches: [],
  auditExpression: DEFAULT_AUDIT_EXPRESSION,
};

/** The environment variables that carry `config` to the function `fn`. */
export function scheduleEnvironment(config: ScheduleConfig, fn: JobFunction): Record<string, string> {
  return {
    ...sweepEnvironment(config.sweeps[fn]),
    ...(fn === 'retry' ? { RETRY_DAILY_LIMIT: String(config.retryDailyLimit) } : {}),
  };
}

/**
 * How often Scheduler tries to hand an invocation to Lambda (Lambda refused it: throttled, or the function being
 * updated), and how long it keeps trying. A sweep comes round again within minutes, so an hour is plenty.
 */
const SCHEDULER_RETRY_ATTEMPTS = 2;
const SCHEDULER_MAX_EVENT_AGE = Duration.hours(1);

export interface JobSchedulesProps {
  functions: Record<JobFunction, IFunction>;
  config: ScheduleConfig;
}

/** EventBridge Scheduler's recurring expressions: cron with its six fields, or rate with a unit. */
export const SCHEDULE_EXPRESSION = /^(cron\(\S+( \S+){5}\)|rate\([1-9]\d* (minute|minutes|hour|hours|day|days)\))$/;

/**
 * Per function: the sweep that finishes its unfinished jobs, its fixed batches, and one dead-letter queue, with an
 * alarm, for every invocation of it that neither Scheduler nor Lambda could bring to an end.
 */
export class JobSchedules extends Construct {
  /** One per dead-letter queue: it holds a message. */
  readonly alarms: Alarm[] = [];
  /** Each function's dead-letter queue (the dashboard shows them). */
  readonly deadLetterQueues = {} as Record<JobFunction, Queue>;

  constructor(scope: Construct, id: string, props: JobSchedulesProps) {
    super(scope, id);
    for (const batch of props.config.fixedBatches) {
      if (!SCHEDULE_EXPRESSION.test(batch.expression)) {
        throw new Error(`Fixed batch '${batch.name}': expression must be cron(...) or rate(...), got '${batch.expression}'`);
      }
    }
    for (const name of JOB_FUNCTIONS) {
      const group = new Construct(this, pascalCase(name));
      const fn = props.functions[name];
      const deadLetters = deadLetterQueue(group, name, this.alarms);
      this.deadLetterQueues[name] = deadLetters;
      // Scheduler invokes Lambda asynchronously: an invocation that throws is retried by Lambda, then parked here.
      fn.configureAsyncInvoke({ retryAttempts: 2, maxEventAge: Duration.hours(1), onFailure: new SqsDestination(deadLetters) });

      const role = schedulerRole(group, fn);
      const target = (input: Record<string, unknown>) =>
        new LambdaInvoke(fn, {
          role,
          input: ScheduleTargetInput.fromObject({ ...input, scheduledTime: ContextAttribute.scheduledTime }),
          retryAttempts: SCHEDULER_RETRY_ATTEMPTS,
          maxEventAge: SCHEDULER_MAX_EVENT_AGE,
          deadLetterQueue: deadLetters,
        });
      new Schedule(group, 'Sweep', {
        description: `einvoice-bridge: ${name} works through its due unfinished jobs`,
        schedule: ScheduleExpression.rate(Duration.minutes(props.config.sweeps[name].everyMinutes)),
        target: target({ action: 'sweep' }),
      });
      if (name === 'download') {
        // An unfinished audit is resumed by the download sweep; this starts the next (or resumes one still open).
        new Schedule(group, 'Audit', {
          description: 'einvoice-bridge: the integrity audit of the whole archive',
          schedule: ScheduleExpression.expression(props.config.auditExpression, TimeZone.ASIA_SHANGHAI),
          target: target({ action: 'audit' }),
        });
      }
      for (const batch of props.config.fixedBatches.filter((b) => b.function === name)) {
        new Schedule(group, `Batch${pascalCase(batch.name)}`, {
          description: `einvoice-bridge: fixed batch '${batch.name}' of ${name}`,
          // The company and the providers' daily limits run on China time; a rate ignores the zone.
          schedule: ScheduleExpression.expression(batch.expression, TimeZone.ASIA_SHANGHAI),
          target: target({ jobs: batch.jobs }),
        });
      }
    }
  }
}

function deadLetterQueue(scope: Construct, name: JobFunction, alarms: Alarm[]): Queue {
  const queue = new Queue(scope, 'DeadLetters', {
    // SQS-managed keys need no key policy for Scheduler or Lambda to send with.
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    // The longest SQS keeps a message: time to read what failed and put it right.
    retentionPeriod: Duration.days(14),
  });
  Validations.of(queue).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason: `This queue is the dead-letter queue of the ${name} function and its schedules; nothing consumes it to fail again.`,
  });
  const alarm = new Alarm(scope, 'DeadLettersAlarm', {
    alarmDescription:
      `The ${name} function has invocations that failed after every retry (scheduled sweeps or batches). ` +
      'Read the messages of its dead-letter queue for their input and error, and see GET /jobs for the jobs still open or failed.',
    metric: queue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: Duration.minutes(5) }),
    threshold: 1,
    comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    // SQS sends no data point for an idle queue: an empty queue is not a failure.
    treatMissingData: TreatMissingData.NOT_BREACHING,
  });
  alarms.push(alarm);
  return queue;
}

/** The role Scheduler assumes to invoke `fn` (and to park what it could not deliver), for this account's schedules only. */
function schedulerRole(scope: Construct, fn: IFunction): Role {
  const stack = Stack.of(scope);
  const role = new Role(scope, 'SchedulerRole', {
    assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
      // Confused deputy: only schedules in this account's default group may use the role.
      conditions: {
        StringEquals: {
          'aws:SourceAccount': stack.account,
          'aws:SourceArn': stack.formatArn({ service: 'scheduler', resource: 'schedule-group', resourceName: 'default' }),
        },
      },
    }),
  });
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(fn.node.defaultChild as CfnFunction)}.Arn>:*]`,
    reason: 'lambda:InvokeFunction on the versions and aliases of this one function, as grantInvoke writes it.',
  });
  return role;
}

const pascalCase = (name: string) => name.replace(/(^|[^A-Za-z0-9]+)([A-Za-z0-9])/g, (_, __, c: string) => c.toUpperCase());
