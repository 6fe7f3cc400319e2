import { loadErpUpdateConfig, sweepSettingsOf } from '#shared/config';
import { createJobStore } from '#shared/jobs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { erpTold } from '#shared/invoice-erp';
import { actionHandler, batchHandler, httpHandler, lambdaEntry, sweepHandler } from '#shared/middleware';
import { createWdtClient } from '#shared/providers/wdt';
import { loadProviderSecret, wdtSecretSchema } from '#shared/secrets';
import { sweep } from '#shared/sweep';
import { answerErpUpdate } from './answer.ts';
import { updateErp } from './update-erp.ts';

const config = loadErpUpdateConfig();
const settings = sweepSettingsOf(config);
const store = createJobStore(config.JOBS_TABLE);

const erp = updateErp({
  jobs: { store, leaseSeconds: config.LEASE_SECONDS, policy: settings, waitMs: config.JOB_WAIT_MS },
  told: config.INVOICES_TABLE ? erpTold(new DynamoDBClient({}), config.INVOICES_TABLE) : undefined,
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

/** One update, start to end: the provider's timeout, and a second for the records around it. */
const jobTimeoutMs = config.UPSTREAM_TIMEOUT_MS + 1_000;

const answer = (input: unknown, runId?: string) => answerErpUpdate(erp, input, { timeoutMs: jobTimeoutMs, runId });

export const handler = lambdaEntry(
  httpHandler((event) => answer(event.body)),
  batchHandler((job, _context, runId) => answer(job, runId), {
    // A batch's job may first wait for another invocation holding it.
    jobTimeoutMs: jobTimeoutMs + config.JOB_WAIT_MS,
    callsPerMinute: settings.callsPerMinute,
    defer: (jobs, deadline) => erp.defer(jobs, deadline, erp.parse),
  }),
  sweepHandler((context) =>
    sweep({ store, fn: 'erp-update', settings, jobTimeoutMs, processJob: (job, deadline) => erp.resume(job, deadline, erp.parseJob) }, context),
  ),
  {
    // `{"action": "update", "key"}`: a download asks for the update it chained to be sent now (asynchronous invoke).
    update: actionHandler((event) => sendRecorded(typeof event.key === 'string' ? event.key : '')),
  },
);

/** A recorded update, if it is still due: one that is done, failed or held by another invocation is left as it is. */
async function sendRecorded(key: string) {
  const held = key ? await store.get('erp-update', key) : undefined;
  if (!held || held.value.state !== 'pending') return { key, state: held?.value.state ?? 'none' };
  // Waiting out a backoff (WDT's rate limit): its sweep sends it when it is due.
  if (held.value.nextAttemptAt && Date.parse(held.value.nextAttemptAt) > Date.now()) return { key, state: 'not due' };
  return { key, state: await erp.resume(held, Date.now() + jobTimeoutMs, erp.parseJob) };
}
