import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import S3rver from 's3rver';

/**
 * Local mode's S3: s3rver on 127.0.0.1 with its data in a folder, plus what s3rver lacks and the product relies on:
 * conditional writes (PutObject with If-None-Match: * or If-Match: etag, answered 412 as S3 does) and atomic
 * objects, so that of concurrent conditional writes exactly one succeeds, no reader sees half a record, and an
 * upload cut off half way stores nothing; and ListObjectsV2 past its first page (the audit's and reindex's walks).
 * s3rver accepts only the credentials S3RVER / S3RVER, and checks no signature.
 */

/** The part of s3rver's Koa context this layer uses. */
interface Context {
  req: { complete: boolean };
  query: Record<string, string | string[] | undefined>;
  store: ObjectStore;
  length: number | undefined;
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
  app.middleware.unshift(perKeyAtomicity(app.store), listingPages(app.store));
  const address = (await server.run()) as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    close: () => server.close() as unknown as Promise<void>,
  };
}

interface ObjectStore {
  getMetadata(bucket: string, key: string): Promise<Record<string, string>>;
  listObjects(bucket: string, options: object): Promise<{ objects: Array<{ key: string }>; isTruncated?: boolean }>;
}

/** Objects up to this size are read whole while their key is locked (the work and invoice records are tiny). */
const ATOMIC_READ_BYTES = 1024 * 1024;

/**
 * Per-key atomicity that S3 has and s3rver lacks. s3rver overwrites an object's file in place, so a concurrent
 * reader can see half a JSON record; and it ignores If-None-Match / If-Match. Here every request on one key waits
 * for the one before, a conditional write is checked against the current ETag (412 if it does not hold), and a
 * small object is read whole before its key is released.
 */
function perKeyAtomicity(store: ObjectStore) {
  const queues = new Map<string, Promise<unknown>>();

  return async (ctx: Context, next: Next): Promise<void> => {
    const [, bucket = '', ...keyParts] = ctx.path.split('/');
    const key = decodeURIComponent(keyParts.join('/'));
    const isPartUpload = ctx.method === 'PUT' && ctx.querystring.includes('partNumber');
    if (!key || isPartUpload) return next();

    const id = `${bucket}/${key}`;
    const turn = (queues.get(id) ?? Promise.resolve()).then(async () => {
      if (ctx.method === 'PUT' && !(await preconditionHolds(ctx, store, bucket, key))) {
        ctx.status = 412;
        ctx.type = 'application/xml';
        ctx.body =
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
          '<Message>At least one of the pre-conditions you specified did not hold</Message></Error>';
        return;
      }
      if (ctx.method === 'PUT' && !ctx.querystring.includes('uploadId')) {
        // S3 stores an object only when its whole body arrived; s3rver writes as bytes come and keeps what came
        // before a cut. The body is taken whole first, and s3rver is given it only if it all arrived.
        const body = await buffer(ctx.req as unknown as Readable).catch(() => undefined);
        if (!body || !ctx.req.complete) {
          ctx.status = 400;
          return;
        }
        ctx.req = body as unknown as Context['req'];
      }
      await next();
      if (ctx.method === 'GET' && ctx.body instanceof Readable && Number(ctx.length) <= ATOMIC_READ_BYTES) {
        ctx.body = await buffer(ctx.body);
      }
    });
    queues.set(id, turn.catch(() => undefined));
    await turn;
  };
}

async function preconditionHolds(ctx: Context, store: ObjectStore, bucket: string, key: string): Promise<boolean> {
  const ifNoneMatch = ctx.get('if-none-match');
  const ifMatch = ctx.get('if-match');
  if (!ifNoneMatch && !ifMatch) return true;
  const etag = await currentEtag(store, bucket, key);
  return ifNoneMatch ? ifNoneMatch === '*' && etag === undefined : etag !== undefined && unquote(ifMatch) === etag;
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

/**
 * ListObjectsV2 past its first page. s3rver makes its continuation token with DES, which OpenSSL 3 (Node 17 and
 * later) refuses: every truncated page answered 500 (jamhall/s3rver#818), so an audit of more than 250 invoices
 * failed in local mode. Here s3rver is told its page is the last, and the answer is given back its truncation with
 * a token of this layer's (the page's last key, base64url), which a next request's `continuation-token` turns back
 * into `start-after`. Everything else (authentication, the listing, its XML) stays s3rver's.
 */
function listingPages(store: ObjectStore) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const isListV2 = ctx.method === 'GET' && ctx.path.split('/').filter(Boolean).length === 1 && ctx.query['list-type'] === '2';
    if (!isListV2) return next();
    const token = ctx.query['continuation-token'];
    if (typeof token === 'string') {
      const { 'continuation-token': _token, ...query } = ctx.query;
      ctx.query = { ...query, 'start-after': Buffer.from(token, 'base64url').toString('utf8') };
    }
    let lastKey: string | undefined;
    ctx.store = Object.create(store, {
      listObjects: {
        value: async (bucket: string, options: object) => {
          const page = await store.listObjects(bucket, options);
          lastKey = page.isTruncated ? page.objects.at(-1)?.key : undefined;
          return { ...page, isTruncated: false };
        },
      },
    }) as ObjectStore;
    await next();
    if (lastKey !== undefined && typeof ctx.body === 'string') {
      const nextToken = Buffer.from(lastKey, 'utf8').toString('base64url');
      ctx.body = ctx.body.replace('<IsTruncated>false</IsTruncated>', `<IsTruncated>true</IsTruncated><NextContinuationToken>${nextToken}</NextContinuationToken>`);
    }
  };
}
