import type { LambdaClient } from '@aws-sdk/client-lambda';

/**
 * Asks the erp-update function to send an update now: an asynchronous invoke (`{"action": "update", "key"}`), which
 * Lambda queues and retries; the function's sweep sends it otherwise. The Lambda client is loaded at the first
 * chained update, not at cold start. Local mode answers the same Invoke API (AWS_ENDPOINT_URL_LAMBDA).
 */
export function erpUpdateInvoker(functionName: string | undefined): (key: string) => Promise<void> {
  let client: Promise<{ lambda: LambdaClient; InvokeCommand: typeof import('@aws-sdk/client-lambda').InvokeCommand }> | undefined;
  return async (key) => {
    if (!functionName) return;
    client ??= import('@aws-sdk/client-lambda').then(({ LambdaClient, InvokeCommand }) => ({ lambda: new LambdaClient({}), InvokeCommand }));
    const { lambda, InvokeCommand } = await client;
    await lambda.send(new InvokeCommand({ FunctionName: functionName, InvocationType: 'Event', Payload: Buffer.from(JSON.stringify({ action: 'update', key })) }));
  };
}
