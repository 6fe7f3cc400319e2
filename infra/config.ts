import * as z from 'zod';
import { downloadRequestSchema } from '../functions/download/download-invoice.ts';
import { erpUpdateRequestSchema } from '../functions/erp-update/update-erp.ts';
import { retryRequestSchema } from '../functions/retry/retry-order.ts';
import { ValidationError } from '../shared/errors.ts';
import { parseRequest } from '../shared/validation.ts';
import { JOB_FUNCTIONS, type JobFunction } from '../shared/jobs.ts';
import { RETRY_DAILY_LIMIT, SWEEP_SETTINGS, type SweepSettings } from '../shared/schedule-settings.ts';
import { SWEEPS_BEFORE_MISSING } from './alarms.ts';
import { DEFAULT_AUDIT_EXPRESSION, SCHEDULE_EXPRESSION, type ScheduleConfig } from './schedules.ts';

/**
 * The stack's one configuration, validated with zod at synth: every field has a default, so `npx cdk deploy` works
 * as is. Set any part in cdk.json (`"context": {"config": {...}}`) or on the command line
 * (`npx cdk deploy -c config='{"alarmEmail": "it@example.com"}'`); a bad value stops the synth naming the field.
 */

/** Log retention periods CloudWatch Logs accepts, in days. */
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

const days = (minimum: number) => z.number({ error: 'must be a number of days' }).int({ error: 'must be a whole number of days' }).min(minimum, { error: `must be at least ${minimum} days` });

const wholeNumber = (minimum: number, maximum: number) =>
  z
    .number({ error: `must be a whole number from ${minimum} to ${maximum}` })
    .int({ error: `must be a whole number from ${minimum} to ${maximum}` })
    .min(minimum, { error: `must be a whole number from ${minimum} to ${maximum}` })
    .max(maximum, { error: `must be a whole number from ${minimum} to ${maximum}` });

const sweepOverrides = z
  .object({
    everyMinutes: wholeNumber(1, 1_440),
    batchSize: wholeNumber(1, 100),
    concurrency: wholeNumber(1, 50),
    callsPerMinute: wholeNumber(1, 6_000),
    maxAttempts: wholeNumber(1, 1_000),
    backoffBaseSeconds: wholeNumber(1, 86_400),
    backoffMaxSeconds: wholeNumber(1, 7 * 86_400),
  })
  .partial()
  .strict();


/** Each function's request schema: a fixed batch's jobs are the bodies its HTTP route takes. */
const requestSchemaOf = (fn: JobFunction, checkCreditCode: boolean) =>
  ({ retry: retryRequestSchema(checkCreditCode), 'erp-update': erpUpdateRequestSchema, download: downloadRequestSchema(checkCreditCode) })[fn];

export const stackConfigSchema = z
  .object({
    /** Names the deployment: the stack is `EinvoiceBridge` for `prod`, `EinvoiceBridge-{stage}` otherwise. */
    stage: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,19}$/, { error: 'must be 1 to 20 lower-case letters, digits or -, starting with a letter' })
      .default('prod'),
    /** `relaxed` accepts 18-character tax numbers without a valid check character (sandbox accounts). */
    taxNumCheck: z.enum(['strict', 'relaxed'], { error: "must be 'strict' or 'relaxed'" }).default('strict'),
    /** How long the functions' and the API's logs are kept. */
    logRetentionDays: z
      .number()
      .refine((value) => (LOG_RETENTION_DAYS as readonly number[]).includes(value), {
        error: `must be one of ${LOG_RETENTION_DAYS.join(', ')}`,
      })
      .default(180),
    /** Who is e-mailed when an alarm fires (errors, throttles, dead letters, stuck work); none when absent. */
    alarmEmail: z.email({ error: 'must be an e-mail address' }).optional(),
    /**
     * Work is stuck when a function's oldest due job has waited past its due time longer than this (minutes): the
     * stuck-work alarm. At least twice every sweep's interval, which a due job may wait on a healthy day.
     */
    stuckWorkMinutes: wholeNumber(5, 1_440).default(60),
    /** Hosts Jumdata's file links may use over http or on private addresses; none in production. */
    mirrorAllowedHosts: z
      .array(z.string().regex(/^[a-z0-9.-]+(:\d{1,5})?$/, { error: 'must be host or host:port, lower case' }))
      .default([]),
    archive: z
      .object({
        /** Current invoice files move to S3 Standard-IA after this many days (they are rarely read once mirrored). */
        filesToInfrequentAccessDays: days(30).default(90),
        /** ... and to Glacier Instant Retrieval after this many (still opened at once through a presigned link). */
        filesToGlacierDays: days(90).default(365),
        /** Replaced or deleted versions move to Glacier Instant Retrieval after this many days. */
        oldVersionsToGlacierDays: days(1).default(30),
        /**
         * Object Lock in compliance mode for this many years: no one, the root user included, can delete or
         * overwrite a mirrored invoice until then. Invoices mirrored from then on are locked; absent: no lock.
         */
        objectLockYears: z.number().int().min(1, { error: 'must be 1 to 30 years' }).max(30, { error: 'must be 1 to 30 years' }).optional(),
        /**
         * Retention by law (会计档案管理办法: accounting vouchers 30 years from the end of the fiscal year): each invoice
         * locked (compliance mode) until 31 December of its issue year plus `years` plus `graceYears` (an invoice
         * booked in the next fiscal year). The audit extends invoices locked for less, or not at all, before.
         */
        retention: z
          .object({
            years: z.number().int().min(1, { error: 'must be 1 to 50 years' }).max(50, { error: 'must be 1 to 50 years' }).default(30),
            from: z.literal('fiscal-year-end', { error: "must be 'fiscal-year-end' (China's fiscal year is the calendar year)" }).default('fiscal-year-end'),
            graceYears: z.number().int().min(0, { error: 'must be 0 to 5 years' }).max(5, { error: 'must be 0 to 5 years' }).default(1),
          })
          .strict()
          .optional(),
        /**
         * Object Lock enabled on the bucket (without a default retention, which locks nothing by itself), so that
         * setting objectLockYears later is an ordinary update. `false` only for a stack deployed before this
         * setting existed: CloudFormation would replace its bucket to enable it.
         */
        bucketObjectLock: z.boolean({ error: 'must be true or false' }).default(true),
      })
      .strict()
      .refine((archive) => archive.objectLockYears === undefined || archive.bucketObjectLock, {
        path: ['objectLockYears'],
        error: 'needs bucketObjectLock: true (a bucket without Object Lock cannot lock invoices)',
      })
      .refine((archive) => archive.retention === undefined || archive.bucketObjectLock, {
        path: ['retention'],
        error: 'needs bucketObjectLock: true (a bucket without Object Lock cannot lock invoices)',
      })
      .refine((archive) => archive.retention === undefined || archive.objectLockYears === undefined, {
        path: ['retention'],
        error: 'set either retention (by law, from the fiscal year\'s end) or objectLockYears (from the day mirrored), not both',
      })
      .refine((archive) => archive.filesToGlacierDays >= archive.filesToInfrequentAccessDays + 30, {
        path: ['filesToGlacierDays'],
        error: 'must be at least 30 days after filesToInfrequentAccessDays (S3 keeps objects in Standard-IA 30 days)',
      })
      .default({ filesToInfrequentAccessDays: 90, filesToGlacierDays: 365, oldVersionsToGlacierDays: 30, bucketObjectLock: true }),
    /**
     * Where durable file links point: the API's own URL by default. Set it to a custom domain mapped to the API so
     * that links handed to the ERP survive the API being replaced.
     */
    publicBaseUrl: z
      .url({ protocol: /^https$/, error: 'must be an https:// URL' })
      .refine((url) => !/[?#]/.test(url), { error: 'must have no query or fragment' })
      .optional(),
    /** Limits on each file fetched from Jumdata's links. */
    mirror: z
      .object({
        /** A larger file is refused and nothing of it is kept. */
        maxFileMegabytes: wholeNumber(1, 1_024).default(64),
        /**
         * The whole transfer of one file, at most. A download has 25 s in all (the API's budget, a sweep's too),
         * so a longer limit would never be reached.
         */
        fileTimeoutSeconds: wholeNumber(1, 22).default(20),
      })
      .strict()
      .default({ maxFileMegabytes: 64, fileTimeoutSeconds: 20 }),
    /**
     * Fixed egress IPs for the providers' IP whitelists (Jumdata's code 607 `ip不在白名单`): the functions run in a VPC
     * whose traffic to the internet leaves through one NAT gateway with an Elastic IP per zone. Off by default: the
     * NAT gateways are billed by the hour (docs/deploying.md).
     */
    egress: z
      .object({
        staticIps: z.boolean({ error: 'must be true or false' }).default(false),
        /** Availability zones, each with a NAT gateway and its Elastic IP: 2 keep working when one zone fails. */
        zones: z.union([z.literal(1), z.literal(2)], { error: 'must be 1 or 2' }).default(2),
      })
      .strict()
      .default({ staticIps: false, zones: 2 }),
    /**
     * Active X-Ray tracing of the functions. Absent: on, except in the China regions, where Lambda has no X-Ray
     * integration (the stack refuses `true` there).
     */
    tracing: z.boolean({ error: 'must be true or false' }).optional(),
    /** Each function's sweep, over the defaults of shared/schedule-settings.ts. */
    sweeps: z.partialRecord(z.enum(JOB_FUNCTIONS as [JobFunction, ...JobFunction[]]), sweepOverrides).default({}),
    /** The integrity audit of the whole archive (POST /audits runs one at any time). */
    audit: z
      .object({
        /** cron(...) in China time, or rate(...); monthly by default. */
        schedule: z
          .string()
          .regex(SCHEDULE_EXPRESSION, { error: 'must be cron(minutes hours day-of-month month day-of-week year) or rate(N minutes|hours|days)' })
          .default(DEFAULT_AUDIT_EXPRESSION),
      })
      .strict()
      .default({ schedule: DEFAULT_AUDIT_EXPRESSION }),
    /** Re-pushes of one order per China day. */
    retryDailyLimit: z.number().int().min(1).max(20, { error: "must be at most 20 (Nuonuo's own cap)" }).default(RETRY_DAILY_LIMIT),
    /** Batches of jobs handed to a function on a fixed schedule. */
    fixedBatches: z
      .array(
        z
          .object({
            name: z.string().regex(/^[A-Za-z0-9-]{1,40}$/, { error: 'must be 1 to 40 letters, digits or -' }),
            function: z.enum(JOB_FUNCTIONS as [JobFunction, ...JobFunction[]]),
            expression: z.string().regex(SCHEDULE_EXPRESSION, {
              error: 'must be cron(minutes hours day-of-month month day-of-week year) or rate(N minutes|hours|days)',
            }),
            jobs: z.array(z.unknown()).min(1).max(1_000),
          })
          .strict(),
      )
      .default([]),
  })
  .strict()
  .superRefine((config, context) => {
    for (const message of stuckWorkProblems(config)) context.addIssue({ code: 'custom', path: ['stuckWorkMinutes'], message });
    for (const [fn, overrides] of Object.entries(config.sweeps)) {
      const base = overrides.backoffBaseSeconds ?? SWEEP_SETTINGS[fn as JobFunction].backoffBaseSeconds;
      const max = overrides.backoffMaxSeconds ?? SWEEP_SETTINGS[fn as JobFunction].backoffMaxSeconds;
      if (max < base) {
        context.addIssue({ code: 'custom', path: ['sweeps', fn, 'backoffMaxSeconds'], message: `must be at least backoffBaseSeconds (${base})` });
      }
    }
    const names = new Set<string>();
    for (const [index, batch] of config.fixedBatches.entries()) {
      if (names.has(batch.name)) context.addIssue({ code: 'custom', path: ['fixedBatches', index, 'name'], message: `'${batch.name}' is used twice` });
      names.add(batch.name);
      // A bad job would only show at run time, as a 400 in a report nobody reads: refuse it at synth.
      const schema = requestSchemaOf(batch.function, config.taxNumCheck === 'strict');
      for (const [jobIndex, job] of batch.jobs.entries()) {
        for (const problem of requestProblems(schema, job)) {
          // 'body' is how the API names a request that is not an object; here the job itself is.
          const field = problem.field === 'body' ? [] : [problem.field];
          context.addIssue({ code: 'custom', path: ['fixedBatches', index, 'jobs', jobIndex, ...field], message: problem.message });
        }
      }
    }
  });

/**
 * A due job waits up to a sweep's interval on a healthy day, and the alarm waits SWEEPS_BEFORE_MISSING intervals
 * for a sweep's report: a shorter stuckWorkMinutes would alarm on every slow sweep.
 */
function stuckWorkProblems(config: { stuckWorkMinutes: number; sweeps: Partial<Record<JobFunction, { everyMinutes?: number }>> }): string[] {
  return JOB_FUNCTIONS.flatMap((fn) => {
    const everyMinutes = config.sweeps[fn]?.everyMinutes ?? SWEEP_SETTINGS[fn].everyMinutes;
    const least = SWEEPS_BEFORE_MISSING * everyMinutes;
    return config.stuckWorkMinutes < least ? [`must be at least ${least}: ${SWEEPS_BEFORE_MISSING} × the ${fn} sweep's everyMinutes (${everyMinutes})`] : [];
  });
}

function requestProblems(schema: Parameters<typeof parseRequest>[0], job: unknown) {
  try {
    parseRequest(schema, job);
    return [];
  } catch (error) {
    if (error instanceof ValidationError) return error.details;
    throw error;
  }
}

export type StackConfig = z.infer<typeof stackConfigSchema>;

/** Parses the configuration (with `overrides` over it), or throws one error naming every bad field. */
export function parseStackConfig(input: unknown, overrides: Record<string, unknown> = {}): StackConfig {
  const given = typeof input === 'string' ? parseJson(input) : (input ?? {});
  const merged = Object.keys(overrides).length > 0 && typeof given === 'object' && given !== null ? { ...given, ...overrides } : given;
  const parsed = stackConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  config.${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new Error(`Invalid stack configuration (cdk.json "context.config" or -c config=...):\n${problems.join('\n')}`);
  }
  return parsed.data;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error('Invalid stack configuration: -c config=... must be a JSON object');
  }
}

/** The sweeps and batches the schedules and the functions get from this configuration. */
export function scheduleConfigOf(config: StackConfig): ScheduleConfig {
  const sweeps = Object.fromEntries(
    JOB_FUNCTIONS.map((fn) => [fn, { ...SWEEP_SETTINGS[fn], ...config.sweeps[fn] } satisfies SweepSettings]),
  ) as Record<JobFunction, SweepSettings>;
  return { sweeps, retryDailyLimit: config.retryDailyLimit, fixedBatches: config.fixedBatches, auditExpression: config.audit.schedule };
}

export const stackNameOf = (config: StackConfig) => (config.stage === 'prod' ? 'EinvoiceBridge' : `EinvoiceBridge-${config.stage}`);

/** The download function's Object Lock variables: retention by law, or the simple objectLockYears; none without. */
export function objectLockEnvironment(archive: StackConfig['archive']): Record<string, string> {
  if (archive.retention) {
    const { years, from, graceYears } = archive.retention;
    return { OBJECT_LOCK_YEARS: String(years), OBJECT_LOCK_FROM: from, OBJECT_LOCK_GRACE_YEARS: String(graceYears) };
  }
  return archive.objectLockYears ? { OBJECT_LOCK_YEARS: String(archive.objectLockYears), OBJECT_LOCK_FROM: 'mirrored' } : {};
}
