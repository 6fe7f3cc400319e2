import type { HttpReply } from '#shared/middleware';
import { replyOf } from '#shared/outcomes';
import type { RetryOrder, RetryResult } from './retry-order.ts';

/** POST /retry (and a batch's job) at the edge: 200 when the order turned out issued; 202 while Nuonuo issues it. */
export async function answerRetry(retry: RetryOrder, input: unknown, options: { timeoutMs: number; runId?: string }): Promise<HttpReply> {
  const outcome = await retry.run(retry.parse(input), { deadline: Date.now() + options.timeoutMs, mode: 'request', runId: options.runId });
  return replyOf(outcome, { done: (result: RetryResult) => ({ statusCode: result.status === 'issued' ? 200 : 202, body: result }) });
}
