import * as z from 'zod';
import type { Fw199Client, RebillingOutcome } from '#shared/providers/fw199';
import { orderNoSchema, parseRequest, taxNumSchema } from '#shared/validation';

export function retryRequestSchema(checkCreditCode: boolean) {
  return z.object({ taxNum: taxNumSchema(checkCreditCode), orderNo: orderNoSchema });
}

export type RetryResult = { orderNo: string } & RebillingOutcome;

/**
 * Re-push one failed invoice order through fw199 to Nuonuo (开票重试).
 * Input: `{taxNum, orderNo}` as received · Output: the order's new state
 *  1. Validate the request; a bad one never reaches the gateway
 *  2. Send one signed re-push: Nuonuo caps re-pushes per order per day, so there is no retry loop here
 */
export function retryOrder(deps: { client: Fw199Client; checkCreditCode: boolean }) {
  const schema = retryRequestSchema(deps.checkCreditCode);
  return async (input: unknown): Promise<RetryResult> => {
    const request = parseRequest(schema, input);
    const outcome = await deps.client.rebill(request);
    return { orderNo: request.orderNo, ...outcome };
  };
}
