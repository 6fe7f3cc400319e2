import { loadRetryConfig, sweepSettingsOf } from '#shared/config';
import { createJobStore } from '#shared/jobs';
import { batchHandler, httpHandler, lambdaEntry, sweepHandler } from '#shared/middleware';
import { createFw199Client } from '#shared/providers/fw199';
import { fw199SecretSchema, loadProviderSecret } from '#shared/secrets';
import { sweep } from '#shared/sweep';
import { answerRetry } from './answer.ts';
import { retryOrder } from './retry-order.ts';

const config = loadRetryConfig();
const settings = sweepSettingsOf(config);
const store = createJobStore(config.JOBS_TABLE);

const retry = retryOrder({
  checkCreditCode: config.TAX_NUM_CHECK === 'strict',
  dailyLimit: config.RETRY_DAILY_LIMIT,
  jobs: { store, leaseSeconds: config.LEASE_SECONDS, policy: settings, waitMs: config.JOB_WAIT_MS },
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

/** One re-push, start to end: the provider's timeout, and a second for the records around it. */
const jobTimeoutMs = config.UPSTREAM_TIMEOUT_MS + 1_000;

const answer = (input: unknown, runId?: string) => answerRetry(retry, input, { timeoutMs: jobTimeoutMs, runId });

export const handler = lambdaEntry(
  httpHandler((event) => answer(event.body)),
  batchHandler((job, _context, runId) => answer(job, runId), {
    // A batch's job may first wait for another invocation holding it.
    jobTimeoutMs: jobTimeoutMs + config.JOB_WAIT_MS,
    callsPerMinute: settings.callsPerMinute,
    defer: (jobs, deadline) => retry.defer(jobs, deadline, retry.parse),
  }),
  sweepHandler((context) =>
    sweep({ store, fn: 'retry', settings, jobTimeoutMs, processJob: (job, deadline) => retry.resume(job, deadline, retry.parse) }, context),
  ),
);
