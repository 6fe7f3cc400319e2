import diagnosticsChannel from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import type { ServiceName } from './spans.ts';

/**
 * Counts the HTTP requests this process sends (node:http: the AWS SDK's clients), by service and command, from
 * Node's diagnostics channels, so that the product's clients run unchanged. Unlike bench/spans.ts it keeps one
 * number per label, not one object per request: an audit of 10,000 invoices sends some 70,000 requests, whose
 * spans would grow with the invoices and show in the very peak RSS the bench measures.
 *
 * Labels: `{service} {command}`; for S3, the command then what the key is (`S3 HeadObject invoice.json`,
 * `S3 GetObject file`, `S3 PutObject audits/`), so that the audit's reads of invoices and of its own report are
 * told apart. A request is counted when it is sent (`http.client.request.start`, which Node 20 publishes too).
 */

export interface RequestCounter {
  /** Requests counted so far, by label. */
  counts(): Record<string, number>;
  /** Stops listening. */
  close(): void;
}

export function countRequests(services: readonly ServiceName[]): RequestCounter {
  const counts = new Map<string, number>();
  const onStart = (message: unknown) => {
    const request = (message as { request: ClientRequest }).request;
    const host = String(request.getHeader('host') ?? request.host);
    const target = request.getHeader('x-amz-target');
    const service = services.find((entry) => entry.host === host)?.name ?? host;
    const label = `${service} ${commandOf(request.method, request.path, typeof target === 'string' ? target : undefined)}`;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  };
  diagnosticsChannel.subscribe('http.client.request.start', onStart);
  return {
    counts: () => Object.fromEntries([...counts].sort(([a], [b]) => (a < b ? -1 : 1))),
    close: () => diagnosticsChannel.unsubscribe('http.client.request.start', onStart),
  };
}

/**
 * The API operation of a request: DynamoDB's from its X-Amz-Target header; S3's (path-style, `/{bucket}/{key}`) from
 * its method, path and query, followed by what its key is.
 */
export function commandOf(method: string, path: string, target: string | undefined): string {
  if (target) return target.slice(target.lastIndexOf('.') + 1);
  const [pathname = '', query = ''] = path.split('?');
  const parameters = new URLSearchParams(query);
  const key = decodeURIComponent(pathname.split('/').slice(2).join('/'));
  if (!key) return parameters.get('list-type') === '2' ? 'ListObjectsV2' : `${method} bucket`;
  const operation = s3ObjectOperation(method, parameters);
  return `${operation} ${kindOfKey(key)}`;
}

function s3ObjectOperation(method: string, parameters: URLSearchParams): string {
  if (parameters.has('retention')) return method === 'PUT' ? 'PutObjectRetention' : 'GetObjectRetention';
  const operations: Record<string, string> = { HEAD: 'HeadObject', GET: 'GetObject', PUT: 'PutObject', DELETE: 'DeleteObject' };
  return operations[method] ?? method;
}

/** `invoice.json`, `file` (an invoice's pdf, ofd or xml), `audits/` (a report), or the key's first folder. */
function kindOfKey(key: string): string {
  if (/^invoices\/[^/]+\/[^/]+\/invoice\.json$/.test(key)) return 'invoice.json';
  if (/^invoices\/[^/]+\/[^/]+\/[^/]+$/.test(key)) return 'file';
  return `${key.split('/')[0]}/`;
}
