import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buffer } from 'node:stream/consumers';

/**
 * Lambda's Invoke API (`POST /2015-03-31/functions/{name}/invocations`) for local mode, on 127.0.0.1, so that a
 * function asking another to run (the download asking erp-update to send a chained update) goes through the real AWS
 * SDK client, as on AWS (AWS_ENDPOINT_URL_LAMBDA). `Event` invocations are answered 202 at once and run in the
 * background, as Lambda queues them; anything else runs and answers the handler's result. Signatures are not checked.
 */

export interface LocalLambda {
  endpoint: string;
  /** Resolves once every invocation started so far has ended. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

export async function startLocalLambda(run: (functionName: string, event: unknown) => Promise<unknown>): Promise<LocalLambda> {
  const running = new Set<Promise<unknown>>();
  const server: Server = createServer(async (req, res) => {
    const name = INVOKE_PATH.exec(decodeURIComponent(req.url?.split('?')[0] ?? ''))?.[1];
    if (req.method !== 'POST' || !name) return res.writeHead(404).end();
    const body = (await buffer(req)).toString('utf8');
    const event: unknown = body ? JSON.parse(body) : {};
    const invocation = run(name, event);
    if (req.headers['x-amz-invocation-type'] === 'Event') {
      const background = invocation.catch((error: unknown) => console.error(`local async invocation of ${name} failed`, error));
      running.add(background);
      void background.finally(() => running.delete(background));
      return res.writeHead(202).end();
    }
    try {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify((await invocation) ?? null));
    } catch (error) {
      res.writeHead(200, { 'x-amz-function-error': 'Unhandled' }).end(JSON.stringify({ errorMessage: (error as Error).message }));
    }
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    settled: async () => {
      while (running.size > 0) await Promise.all([...running]);
    },
    close: () => new Promise((done) => server.close(() => done())),
  };
}
