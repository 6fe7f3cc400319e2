import { lambdaContext } from '../../local/api-gateway.ts';

/**
 * One sweep invocation of a function in a process of its own, configured by the environment it inherits (the
 * test's local mode): `node --import tsx sweep-once.ts <function> <budgetMs>`. Prints the report. Tests kill it
 * half way to play an invocation that dies.
 */
const [fn = 'retry', budgetMs = '25000'] = process.argv.slice(2);
const { handler } = (await import(`../../functions/${fn}/handler.ts`)) as { handler: (event: unknown, context: unknown) => Promise<unknown> };
const report = await handler({ action: 'sweep', scheduledTime: new Date().toISOString() }, lambdaContext(fn, Number(budgetMs)));
process.stdout.write(`${JSON.stringify(report)}\n`);
