import type { HttpReply } from '#shared/middleware';
import { replyOf } from '#shared/outcomes';
import type { ErpUpdate } from './update-erp.ts';

/** POST /erp-update (and a batch's job) at the edge: 200 with WDT's answer. */
export async function answerErpUpdate(erp: ErpUpdate, input: unknown, options: { timeoutMs: number; runId?: string }): Promise<HttpReply> {
  const outcome = await erp.run(erp.parse(input), { deadline: Date.now() + options.timeoutMs, mode: 'request', runId: options.runId });
  return replyOf(outcome, { done: (result) => ({ statusCode: 200, body: result }) });
}
