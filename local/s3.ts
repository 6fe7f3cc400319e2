import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';

/**
 * Local mode's S3: s3rver on 127.0.0.1 with its data in a folder, plus the one S3 feature s3rver lacks and the
 * product relies on: conditional writes (PutObject with If-None-Match: * or If-Match: etag), answered 412 as S3
 * does. Writes to one key are serialised here, so of concurrent conditional writes exactly one succeeds, as in S3.
 * s3rver accepts only the credentials S3RVER / S3RVER, and checks no signature.
 */

/** The part of s3rver's Koa context this layer uses. */
interface Context {
  method: string;
  path: string;
  querystring: string;
  get(header: string): string;
  status: number;
  type: string;
  body: unknown;
}
type Next = () => Promise<void>;

export const LOCAL_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface LocalS3 {
  endpoint: string;
  close(): Promise<void>;
}

export async function startLocalS3(options: { directory: string; buckets: string[]; port?: number }): Promise<LocalS3> {
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port ?? 0,
    directory: options.directory,
    silent: true,
    configureBuckets: options.buckets.map((name) => ({ name, configs: [] })),
  });
  const app = server as unknown as { middleware: Array<(ctx: Context, next: Next) => Promise<void>>; store: ObjectStore };
  app.middleware.unshift(conditionalWrites(app.store));
  const address = (await server.run()) as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    close: () => server.close() as unknown as Promise<void>,
  };
}

interface ObjectStore {
  getMetadata(bucket: string, key: string): Promise<Record<string, string>>;
}

function conditionalWrites(store: ObjectStore) {
  const queues = new Map<string, Promise<unknown>>();

  return async (ctx: Context, next: Next): Promise<void> => {
    const ifNoneMatch = ctx.get('if-none-match');
    const ifMatch = ctx.get('if-match');
    const isObjectPut = ctx.method === 'PUT' && !ctx.querystring.includes('partNumber');
    if (!isObjectPut || (!ifNoneMatch && !ifMatch)) return next();

    const [, bucket = '', ...keyParts] = ctx.path.split('/');
    const key = decodeURIComponent(keyParts.join('/'));
    const id = `${bucket}/${key}`;
    const previous = queues.get(id) ?? Promise.resolve();
    const turn = previous.then(async () => {
      const etag = await currentEtag(store, bucket, key);
      const holds = ifNoneMatch ? ifNoneMatch === '*' && etag === undefined : etag !== undefined && unquote(ifMatch) === etag;
      if (!holds) {
        ctx.status = 412;
        ctx.type = 'application/xml';
        ctx.body =
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
          '<Message>At least one of the pre-conditions you specified did not hold</Message>' +
          `<Condition>${ifNoneMatch ? 'If-None-Match' : 'If-Match'}</Condition></Error>`;
        return;
      }
      await next();
    });
    queues.set(id, turn.catch(() => undefined));
    await turn;
  };
}

async function currentEtag(store: ObjectStore, bucket: string, key: string): Promise<string | undefined> {
  try {
    return unquote((await store.getMetadata(bucket, key)).etag ?? '');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

const unquote = (etag: string) => etag.replace(/"/g, '');
