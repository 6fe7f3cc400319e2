import { ConfigurationError } from '#shared/errors';
import type { JobFunction } from '#shared/jobs';
import { LEASE_SECONDS, RETRY_DAILY_LIMIT, SWEEP_SETTINGS } from '#shared/schedule-settings';
import * as z from '#shared/zod';

/**
 * Every environment variable the functions read, parsed once with zod. A bad or missing value stops the function
 * at cold start with the variable's name, instead of failing later inside a request.
 *
 * Each function's variables are a function that builds its schemas: a bundle builds only the ones it reads, once.
 */

/** A number of the environment, from `min` to `max`, `fallback` when unset. */
const numberFrom = (min: number, max: number, fallback: number) =>
  z._default(z.coerce.number().check(z.gte(min), z.lte(max)), fallback);
/** A whole number of the environment, from `min` to `max`. */
const wholeNumberFrom = (min: number, max: number) => z.coerce.number().check(z.int(), z.gte(min), z.lte(max));
const wholeNumber = (min: number, max: number, fallback: number) => z._default(wholeNumberFrom(min, max), fallback);
const milliseconds = (fallback: number) => wholeNumber(100, 60_000, fallback);
const httpUrl = () => z.url({ protocol: /^https?$/ });
const stringOf = (minLength: number) => z.string().check(z.minLength(minLength));

const commonShape = () => ({
  /** Read provider secrets from this JSON file instead of Secrets Manager (local mode only). */
  LOCAL_SECRETS_FILE: z.optional(stringOf(1)),
  /** How long a provider secret is kept in memory before Secrets Manager is asked again. */
  SECRETS_CACHE_SECONDS: wholeNumber(0, 86_400, 300),
  /** How long a provider may take to answer one call. Keep it well below the function's timeout. */
  UPSTREAM_TIMEOUT_MS: milliseconds(10_000),
  /** The jobs table (DynamoDB): running, unfinished and failed jobs, and the leases that keep them single. */
  JOBS_TABLE: stringOf(3),
  /**
   * How long a claim on a job holds before another invocation may take the work over. It must outlast the
   * function's timeout (at most 900 s on Lambda), or two invocations could do one job (and pay for it) twice.
   */
  LEASE_SECONDS: wholeNumber(1, 3_600, LEASE_SECONDS),
  /**
   * How long a request waits for another invocation that holds the same job before answering 409 (or the
   * download's 202): a few seconds, so that waiting never keeps a Lambda busy for long.
   */
  JOB_WAIT_MS: wholeNumber(0, 20_000, 3_000),
});

/** The sweep's settings, with the function's defaults from shared/schedule-settings.ts. */
function sweepShape(fn: JobFunction) {
  const defaults = SWEEP_SETTINGS[fn];
  return {
    SWEEP_BATCH_SIZE: wholeNumber(1, 100, defaults.batchSize),
    SWEEP_CONCURRENCY: wholeNumber(1, 50, defaults.concurrency),
    SWEEP_CALLS_PER_MINUTE: wholeNumber(1, 1_000_000, defaults.callsPerMinute),
    JOB_MAX_ATTEMPTS: wholeNumber(1, 1_000, defaults.maxAttempts),
    BACKOFF_BASE_SECONDS: numberFrom(0, 86_400, defaults.backoffBaseSeconds),
    BACKOFF_MAX_SECONDS: numberFrom(0, 7 * 86_400, defaults.backoffMaxSeconds),
  };
}

/**
 * `strict` checks the GB 32100-2015 check character of 18-character tax numbers; `relaxed` skips it for
 * sandbox accounts whose test numbers do not carry a valid one.
 */
const taxNumCheck = () => z._default(z.enum(['strict', 'relaxed']), 'strict');

const retryShape = () => ({
  ...commonShape(),
  ...sweepShape('retry'),
  /** Re-pushes of one order per day (China time), from the API, batches and sweeps together. */
  RETRY_DAILY_LIMIT: wholeNumber(1, 20, RETRY_DAILY_LIMIT),
  FW199_BASE_URL: z._default(httpUrl(), 'https://kf.fw199.com'),
  /** ARN or name of the Secrets Manager secret holding {"appId","appSecret"} for fw199. */
  FW199_SECRET_ID: z.optional(stringOf(1)),
  TAX_NUM_CHECK: taxNumCheck(),
});

/** The configuration a shape's variables make. */
type ConfigOf<S extends (...args: never[]) => z.core.$ZodShape> = Readonly<z.output<z.ZodMiniObject<ReturnType<S>>>>;

export type RetryConfig = ConfigOf<typeof retryShape>;

const erpUpdateShape = () => ({
  ...commonShape(),
  ...sweepShape('erp-update'),
  WDT_BASE_URL: z._default(httpUrl(), 'https://api.wangdian.cn/openapi2'),
  /** ARN or name of the Secrets Manager secret holding {"sid","appKey","appSecret"} for 旺店通. */
  WDT_SECRET_ID: z.optional(stringOf(1)),
  /** The archive's index, where an update chained to a download marks the invoice as told (shared/invoice-erp.ts). */
  INVOICES_TABLE: z.optional(stringOf(3)),
});

const downloadShape = () => ({
  ...commonShape(),
  ...sweepShape('download'),
  JUMDATA_BASE_URL: z._default(httpUrl(), 'https://api.jumdata.com'),
  /** `/invoice/download` is billed per call; `/invoice/download/year` is the yearly plan. */
  JUMDATA_DOWNLOAD_PATH: z._default(z.string().check(z.regex(/^\/[\w/-]*$/)), '/invoice/download'),
  /** ARN or name of the Secrets Manager secret holding {"appId","appSecret"} for Jumdata. */
  JUMDATA_SECRET_ID: z.optional(stringOf(1)),
  /** ARN or name of the secret holding {"key"}: the HMAC key of durable file links (generated by the stack). */
  LINK_KEY_SECRET_ID: z.optional(stringOf(1)),
  BUCKET_NAME: stringOf(3),
  /** The archive's index (DynamoDB): one entry per mirrored invoice, listed by GET /invoices. */
  INVOICES_TABLE: stringOf(3),
  /** An S3-compatible endpoint instead of AWS S3 (local mode). */
  S3_ENDPOINT: z.optional(httpUrl()),
  /** Comma-separated `host` or `host:port` that file links may use over http and on private addresses. */
  MIRROR_ALLOWED_HOSTS: z._default(z.string(), ''),
  MIRROR_MAX_FILE_BYTES: z._default(z.coerce.number().check(z.int(), z.gte(1024)), 64 * 1024 * 1024),
  /** The longest one file may take to arrive, start to end. */
  MIRROR_FILE_TIMEOUT_MS: wholeNumber(100, 900_000, 20_000),
  /** Lifetime of the presigned URLs in a response; S3 links made by a Lambda role die within hours anyway. */
  PRESIGNED_URL_SECONDS: wholeNumber(60, 900, 600),
  /** Base of durable links, e.g. the API's URL; defaults to the host the request came to. */
  PUBLIC_BASE_URL: z.optional(httpUrl()),
  /** The erp-update function, asked (asynchronously) to send an update a download chained (`erp`); else its sweep does. */
  ERP_UPDATE_FUNCTION: z.optional(stringOf(1)),
  TAX_NUM_CHECK: taxNumCheck(),
  /**
   * Object Lock (compliance mode) years for each mirrored invoice; the bucket must have Object Lock (the stack's
   * archive.objectLockYears, or archive.retention). Counted from OBJECT_LOCK_FROM: `mirrored` (the day it is
   * mirrored) or `fiscal-year-end` (31 December of its issue year, plus OBJECT_LOCK_GRACE_YEARS).
   */
  OBJECT_LOCK_YEARS: z.optional(wholeNumberFrom(1, 50)),
  OBJECT_LOCK_FROM: z._default(z.enum(['mirrored', 'fiscal-year-end']), 'mirrored'),
  OBJECT_LOCK_GRACE_YEARS: wholeNumber(0, 5, 0),
  /**
   * `on`: every file is uploaded with a checksum S3 keeps (SHA-256, or a full-object CRC64NVME for a multipart
   * upload), which the audit compares without reading the file. `off` for an S3-compatible server that cannot take
   * checksummed streamed uploads (local mode's): the audit then reads each file.
   */
  S3_CHECKSUMS: z._default(z.enum(['on', 'off']), 'on'),
});

export type DownloadConfig = ConfigOf<typeof downloadShape>;

export function loadDownloadConfig(env: NodeJS.ProcessEnv = process.env): DownloadConfig {
  return parseEnv(downloadShape(), env, [
    ['JUMDATA_SECRET_ID', 'LOCAL_SECRETS_FILE'],
    ['LINK_KEY_SECRET_ID', 'LOCAL_SECRETS_FILE'],
  ]);
}

/** A function's sweep settings, as read from its configuration. */
export function sweepSettingsOf(config: ConfigOf<typeof sweepShape>) {
  return {
    batchSize: config.SWEEP_BATCH_SIZE,
    concurrency: config.SWEEP_CONCURRENCY,
    callsPerMinute: config.SWEEP_CALLS_PER_MINUTE,
    maxAttempts: config.JOB_MAX_ATTEMPTS,
    backoffBaseSeconds: config.BACKOFF_BASE_SECONDS,
    backoffMaxSeconds: config.BACKOFF_MAX_SECONDS,
  };
}

export type ErpUpdateConfig = ConfigOf<typeof erpUpdateShape>;

/** Parses `env` against `shape`; throws a ConfigurationError naming each bad variable. */
export function parseEnv<S extends z.core.$ZodShape>(
  shape: S,
  env: NodeJS.ProcessEnv,
  requireOneOf: Array<[keyof S & string, keyof S & string]> = [],
): Readonly<z.output<z.ZodMiniObject<S>>> {
  const result = z.object(shape).safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigurationError(`Invalid configuration: ${problems.join('; ')}`);
  }
  const values = result.data as Record<string, unknown>;
  for (const [name, alternative] of requireOneOf) {
    if (values[name] === undefined && values[alternative] === undefined) {
      throw new ConfigurationError(`Invalid configuration: ${name} is not set (or set ${alternative} in local mode)`);
    }
  }
  return Object.freeze(result.data);
}

export function loadRetryConfig(env: NodeJS.ProcessEnv = process.env): RetryConfig {
  return parseEnv(retryShape(), env, [['FW199_SECRET_ID', 'LOCAL_SECRETS_FILE']]);
}

export function loadErpUpdateConfig(env: NodeJS.ProcessEnv = process.env): ErpUpdateConfig {
  return parseEnv(erpUpdateShape(), env, [['WDT_SECRET_ID', 'LOCAL_SECRETS_FILE']]);
}
