import { DailyLimitReachedError } from '#shared/errors';
import { jobLifecycle, type LifecycleSettings } from '#shared/job-lifecycle';
import type { Fw199Client, RebillingOutcome } from '#shared/providers/fw199';
import { orderNoSchema, parseRequest, taxNumSchema } from '#shared/validation';
import * as z from '#shared/zod';

export function retryRequestSchema(checkCreditCode: boolean) {
  return z.object({ taxNum: taxNumSchema(checkCreditCode), orderNo: orderNoSchema() });
}

type RetryRequest = z.output<ReturnType<typeof retryRequestSchema>>;

/** The order's new state as the gateway told it: issued, retrying or in progress. */
export type RetryResult = { orderNo: string } & RebillingOutcome;

/** A tax number has no '/', so the key splits back unambiguously. */
export const retryJobKey = ({ taxNum, orderNo }: RetryRequest) => `${taxNum}/${orderNo}`;

export interface RetryDeps {
  client: Fw199Client;
  checkCreditCode: boolean;
  /** Re-pushes of one order per China day, whoever asks. */
  dailyLimit: number;
  jobs: LifecycleSettings;
}

/**
 * Re-push one failed invoice order through fw199 to Nuonuo (开票重试).
 * Input: `{taxNum, orderNo}` as received · Output: the job's outcome, done with the order's new state
 *  1. Validate the request; a bad one never reaches the gateway and leaves no record
 *  2. Claim the order's job record, so that one order is never pushed twice at once
 *  3. Count the push against the order's daily limit (Nuonuo caps re-pushes per order per day: no loops here)
 *  4. Send one signed re-push; one that met a network failure, a timeout or a rate limit stays pending for the sweep
 */
export function retryOrder(deps: RetryDeps) {
  // Built at the first request (z.lazy), not at import: see shared/zod.ts.
  const schema = z.lazy(() => retryRequestSchema(deps.checkCreditCode));
  const parse = (input: unknown) => parseRequest(schema, input);

  async function push(request: RetryRequest): Promise<RetryResult> {
    const day = chinaDay(new Date());
    const counted = await deps.jobs.store.countUpTo('retry', `${retryJobKey(request)}#${day.date}`, deps.dailyLimit, day.forgetAt);
    if (!counted) {
      throw new DailyLimitReachedError(
        `Order ${request.orderNo} was re-pushed ${deps.dailyLimit} times today (China time), the daily limit; it can be pushed again after midnight`,
        day.secondsToMidnight,
      );
    }
    return { orderNo: request.orderNo, ...(await deps.client.rebill(request)) };
  }

  const jobs = jobLifecycle(deps.jobs, { fn: 'retry', keyOf: retryJobKey, attempt: push });
  return { ...jobs, parse };
}

export type RetryOrder = ReturnType<typeof retryOrder>;

const CHINA_OFFSET_MS = 8 * 3600 * 1000; // UTC+8 all year: China has no daylight saving time

/** Nuonuo counts re-pushes per calendar day in China. */
export function chinaDay(now: Date) {
  const local = new Date(now.getTime() + CHINA_OFFSET_MS);
  const midnight = Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate() + 1) - CHINA_OFFSET_MS;
  return {
    date: local.toISOString().slice(0, 10),
    secondsToMidnight: Math.max(1, Math.ceil((midnight - now.getTime()) / 1000)),
    /** The day's counter is kept a day longer than the day, then deleted by the table's TTL. */
    forgetAt: new Date(midnight + 24 * 3600 * 1000),
  };
}
