import * as z from 'zod';
import { ConfigurationError } from '#shared/errors';

/**
 * Every environment variable the functions read, parsed once with zod. A bad or missing value stops the function
 * at cold start with the variable's name, instead of failing later inside a request.
 */

const milliseconds = (fallback: number) => z.coerce.number().int().min(100).max(60_000).default(fallback);

const commonShape = {
  /** Read provider secrets from this JSON file instead of Secrets Manager (local mode only). */
  LOCAL_SECRETS_FILE: z.string().min(1).optional(),
  /** How long a provider secret is kept in memory before Secrets Manager is asked again. */
  SECRETS_CACHE_SECONDS: z.coerce.number().int().min(0).max(86_400).default(300),
  /** How long a provider may take to answer one call. Keep it well below the function's timeout. */
  UPSTREAM_TIMEOUT_MS: milliseconds(10_000),
};

const retryShape = {
  ...commonShape,
  FW199_BASE_URL: z.url({ protocol: /^https?$/ }).default('https://kf.fw199.com'),
  /** ARN or name of the Secrets Manager secret holding {"appId","appSecret"} for fw199. */
  FW199_SECRET_ID: z.string().min(1).optional(),
  /**
   * `strict` checks the GB 32100-2015 check character of 18-character tax numbers; `relaxed` skips it for
   * sandbox accounts whose test numbers do not carry a valid one.
   */
  TAX_NUM_CHECK: z.enum(['strict', 'relaxed']).default('strict'),
};

export type RetryConfig = Readonly<z.infer<z.ZodObject<typeof retryShape>>>;

const erpUpdateShape = {
  ...commonShape,
  WDT_BASE_URL: z.url({ protocol: /^https?$/ }).default('https://api.wangdian.cn/openapi2'),
  /** ARN or name of the Secrets Manager secret holding {"sid","appKey","appSecret"} for 旺店通. */
  WDT_SECRET_ID: z.string().min(1).optional(),
};

export type ErpUpdateConfig = Readonly<z.infer<z.ZodObject<typeof erpUpdateShape>>>;

/** Parses `env` against `shape`; throws a ConfigurationError naming each bad variable. */
export function parseEnv<S extends z.ZodRawShape>(
  shape: S,
  env: NodeJS.ProcessEnv,
  requireOneOf: Array<[keyof S & string, keyof S & string]> = [],
): Readonly<z.infer<z.ZodObject<S>>> {
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
  return parseEnv(retryShape, env, [['FW199_SECRET_ID', 'LOCAL_SECRETS_FILE']]);
}

export function loadErpUpdateConfig(env: NodeJS.ProcessEnv = process.env): ErpUpdateConfig {
  return parseEnv(erpUpdateShape, env, [['WDT_SECRET_ID', 'LOCAL_SECRETS_FILE']]);
}
