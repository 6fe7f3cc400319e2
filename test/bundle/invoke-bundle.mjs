// Runs a bundled function the way the Lambda Node.js runtime does: import the ESM handler once, then invoke it
// with each event in turn. Prints each result after a marker line; everything else on stdout is the function's logs.
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const [, , bundleFile, eventsJson] = process.argv;
const { handler } = await import(pathToFileURL(bundleFile).href);
for (const event of JSON.parse(eventsJson)) {
  const deadline = Date.now() + 20_000;
  const context = {
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:cn-north-1:000000000000:function:${process.env.AWS_LAMBDA_FUNCTION_NAME}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: randomUUID(),
    logGroupName: 'bundle-test',
    logStreamName: 'bundle-test',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
  const result = await handler(event, context);
  process.stdout.write(`\n@@RESULT@@${JSON.stringify(result)}\n`);
}
