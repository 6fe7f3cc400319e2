import { loadErpUpdateConfig } from '#shared/config';
import { batchHandler, httpHandler, lambdaEntry, type HttpReply } from '#shared/middleware';
import { createWdtClient } from '#shared/providers/wdt';
import { loadProviderSecret, wdtSecretSchema } from '#shared/secrets';
import { updateErp } from './update-erp.ts';

const config = loadErpUpdateConfig();

const update = updateErp({
  client: createWdtClient({
    baseUrl: config.WDT_BASE_URL,
    timeoutMs: config.UPSTREAM_TIMEOUT_MS,
    credentials: () =>
      loadProviderSecret('wdt', wdtSecretSchema, {
        secretId: config.WDT_SECRET_ID,
        localFile: config.LOCAL_SECRETS_FILE,
        cacheSeconds: config.SECRETS_CACHE_SECONDS,
      }),
  }),
});

async function answer(input: unknown): Promise<HttpReply> {
  return { statusCode: 200, body: await update(input) };
}

export const handler = lambdaEntry(
  httpHandler((event) => answer(event.body)),
  batchHandler(answer),
);
