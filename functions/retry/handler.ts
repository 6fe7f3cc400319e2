import { loadRetryConfig } from '#shared/config';
import { batchHandler, httpHandler, lambdaEntry, type HttpReply } from '#shared/middleware';
import { createFw199Client } from '#shared/providers/fw199';
import { fw199SecretSchema, loadProviderSecret } from '#shared/secrets';
import { retryOrder } from './retry-order.ts';

const config = loadRetryConfig();

const retry = retryOrder({
  checkCreditCode: config.TAX_NUM_CHECK === 'strict',
  client: createFw199Client({
    baseUrl: config.FW199_BASE_URL,
    timeoutMs: config.UPSTREAM_TIMEOUT_MS,
    credentials: () =>
      loadProviderSecret('fw199', fw199SecretSchema, {
        secretId: config.FW199_SECRET_ID,
        localFile: config.LOCAL_SECRETS_FILE,
        cacheSeconds: config.SECRETS_CACHE_SECONDS,
      }),
  }),
});

/** issued is final (200); retrying and in_progress mean the result comes later (202). */
async function answer(input: unknown): Promise<HttpReply> {
  const result = await retry(input);
  return { statusCode: result.status === 'issued' ? 200 : 202, body: result };
}

export const handler = lambdaEntry(
  httpHandler((event) => answer(event.body)),
  batchHandler(answer),
);
