import { readFile } from 'node:fs/promises';
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { ConfigurationError, type ProviderName } from '#shared/errors';
import * as z from '#shared/zod';

/**
 * Provider credentials. On AWS they come from Secrets Manager through Powertools Parameters, which keeps each one in
 * memory for `cacheSeconds`; in local mode they come from the JSON file named by LOCAL_SECRETS_FILE, which holds
 * the same shapes under the provider's name. Errors name the secret and the missing fields, never a value.
 *
 * Each schema is built when its secret is first read (z.lazy), not at import: a function reads one or two of them.
 */

const nonEmpty = () => z.string().check(z.minLength(1));

export const fw199SecretSchema = z.lazy(() =>
  z.object({
    appId: nonEmpty(),
    appSecret: nonEmpty(),
  }),
);
export type Fw199Secret = z.output<typeof fw199SecretSchema>;

export const wdtSecretSchema = z.lazy(() =>
  z.object({
    sid: nonEmpty(),
    appKey: nonEmpty(),
    appSecret: nonEmpty(),
  }),
);
export type WdtSecret = z.output<typeof wdtSecretSchema>;

export const jumdataSecretSchema = z.lazy(() =>
  z.object({
    appId: nonEmpty(),
    appSecret: nonEmpty(),
  }),
);
export type JumdataSecret = z.output<typeof jumdataSecretSchema>;

/** The key that signs durable file links; the stack generates it. */
export const linkKeySecretSchema = z.lazy(() => z.object({ key: z.string().check(z.minLength(32)) }));

/** The secrets a function may load, by the name they have in LOCAL_SECRETS_FILE. */
export type SecretName = ProviderName | 'linkKey';

export interface SecretSource {
  /** Secrets Manager secret id (ARN or name); used when no local file is configured. */
  secretId?: string;
  /** Local mode: a JSON file `{"fw199": {...}, "wdt": {...}, "jumdata": {...}}`. */
  localFile?: string;
  cacheSeconds: number;
}

export async function loadProviderSecret<S extends z.ZodMiniType>(
  provider: SecretName,
  schema: S,
  source: SecretSource,
): Promise<z.output<S>> {
  const raw = source.localFile
    ? await readLocalSecret(provider, source.localFile)
    : await readSecretsManager(provider, source);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    // Only the field names are reported: zod's messages could quote a value.
    const fields = [...new Set(parsed.error.issues.map((issue) => issue.path.join('.') || 'the whole object'))];
    throw new ConfigurationError(
      `The ${provider} secret has no usable value (missing or empty: ${fields.join(', ')}); set it as docs/deploying.md shows`,
    );
  }
  return parsed.data;
}

async function readSecretsManager(provider: SecretName, source: SecretSource): Promise<unknown> {
  if (!source.secretId) throw new ConfigurationError(`No secret id is configured for ${provider}`);
  // Fetched as text and parsed here: a JSON error from Powertools' own transform quotes the secret's text.
  const text = await getSecret(source.secretId, { maxAge: source.cacheSeconds });
  if (typeof text !== 'string') {
    throw new ConfigurationError(`The ${provider} secret has no string value; set it as docs/deploying.md shows`);
  }
  return parseJsonQuietly(text, `The ${provider} secret is not valid JSON; set it as docs/deploying.md shows`);
}

const localFiles = new Map<string, Promise<unknown>>();

async function readLocalSecret(provider: SecretName, file: string): Promise<unknown> {
  let contents = localFiles.get(file);
  if (!contents) {
    contents = readFile(file, 'utf8').then(
      (text) => parseJsonQuietly(text, `LOCAL_SECRETS_FILE ${file} is not valid JSON`),
      () => {
        throw new ConfigurationError(`LOCAL_SECRETS_FILE ${file} cannot be read`);
      },
    );
    localFiles.set(file, contents);
    // A file that could not be read or parsed is read again next time, once it has been fixed.
    contents.catch(() => localFiles.delete(file));
  }
  const all = await contents;
  return typeof all === 'object' && all !== null ? (all as Record<string, unknown>)[provider] : undefined;
}

function parseJsonQuietly(text: string, complaint: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ConfigurationError(complaint);
  }
}
