import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { BodyTooLargeError, readBody } from './read-body.ts';

/**
 * Plays API Gateway (HTTP API, payload format 2.0) in front of the real handlers: turns a Node HTTP request into
 * the event Lambda would receive, and the handler's result back into an HTTP answer.
 */

export type LambdaHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<unknown>;

export interface LocalRoute {
  method: string;
  /** API Gateway route syntax: `/files/{taxNum}/{invoiceNo}/{kind}`. */
  path: string;
  functionName: string;
  handler: LambdaHandler;
}

/** What a request's Lambda context reports here: the 25 s an API request has (API Gateway gives up at 29 s). */
const API_BUDGET_MS = 25_000;

const TEXT_BODY = /^(application\/(.+\+)?json|application\/x-www-form-urlencoded|text\/)/i;

export function apiGateway(routes: LocalRoute[], budgetMs = API_BUDGET_MS) {
  const matchers = routes.map((route) => ({ route, pattern: routePattern(route.path) }));

  /** Never lets a request take the process down: what API Gateway itself would refuse is answered in the error shape. */
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      await route(req, res);
    } catch (error) {
      // A request whose body was read is over (req.destroyed is true): only the connection says if the client left.
      if (res.headersSent || req.socket.destroyed) {
        res.destroy(); // the client went away, or the answer had begun
        return;
      }
      refuse(req, res, error);
    }
  };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const found = matchers
      .map(({ route, pattern }) => ({ route, match: route.method === method ? pattern.exec(url.pathname) : null }))
      .find(({ match }) => match !== null);
    const requestId = randomUUID();
    if (!found?.match) {
      sendError(res, 404, 'NOT_FOUND', `No route ${method} ${url.pathname}`, { 'x-request-id': requestId });
      return;
    }
    const { route, match } = found;
    const body = await readBody(req);
    const headers: Record<string, string> = {
      ...joinRepeated(Object.entries(req.headersDistinct)),
      // As API Gateway adds it; local mode speaks plain http.
      'x-forwarded-proto': 'http',
    };
    // A body that is not valid UTF-8 goes base64-encoded, as API Gateway hands over a body it does not pass as text:
    // decoding it here would turn its bad bytes into U+FFFD, and the handler could not tell.
    const isText = TEXT_BODY.test(headers['content-type'] ?? '') && isUtf8(body);
    const event: APIGatewayProxyEventV2 = {
      version: '2.0',
      routeKey: `${route.method} ${route.path}`,
      rawPath: url.pathname,
      rawQueryString: url.search.slice(1),
      headers,
      queryStringParameters: url.search ? joinRepeated(queryValues(url.searchParams)) : undefined,
      pathParameters: match.groups ? decodeParams(match.groups) : undefined,
      requestContext: {
        accountId: 'local',
        apiId: 'local',
        domainName: headers.host ?? '127.0.0.1',
        domainPrefix: 'local',
        http: {
          method,
          path: url.pathname,
          protocol: `HTTP/${req.httpVersion}`,
          sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
          userAgent: headers['user-agent'] ?? '',
        },
        requestId,
        routeKey: `${route.method} ${route.path}`,
        stage: '$default',
        time: new Date().toISOString(),
        timeEpoch: Date.now(),
      },
      body: body.length === 0 ? undefined : isText ? body.toString('utf8') : body.toString('base64'),
      isBase64Encoded: body.length > 0 && !isText,
    };
    const result = (await route.handler(event, lambdaContext(route.functionName, budgetMs))) as APIGatewayProxyStructuredResultV2;
    res.writeHead(result.statusCode ?? 200, result.headers as Record<string, string>);
    res.end(result.isBase64Encoded ? Buffer.from(result.body ?? '', 'base64') : (result.body ?? ''));
  }
}

/**
 * What API Gateway answers itself, before any Lambda runs, here in the product's error shape with a request id: a
 * path it cannot decode, and a body over 6 MB (on AWS, API Gateway and Lambda refuse it in their own shape).
 */
function refuse(req: IncomingMessage, res: ServerResponse, error: unknown): void {
  if (error instanceof URIError) {
    sendError(res, 400, 'VALIDATION_FAILED', 'The path holds a malformed %-escape');
  } else if (error instanceof BodyTooLargeError) {
    // The rest of the body is not read, so the connection cannot carry another request: Node closes it once the
    // answer is out. What still arrives meanwhile is thrown away, so that the client, still sending, is neither
    // stalled nor reset before it reads the answer.
    sendError(res, 413, 'PAYLOAD_TOO_LARGE', error.message, { connection: 'close' });
    req.resume();
  } else {
    sendError(res, 500, 'INTERNAL', 'Internal error in local mode');
  }
}

/** An answer in the product's error shape, `{"error": {"code", "message"}}`, with a request id as every answer has. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}) {
  res
    .writeHead(status, { 'content-type': 'application/json', 'x-request-id': randomUUID(), ...headers })
    .end(JSON.stringify({ error: { code, message } }));
}

/** Each name once, its values joined with commas: how API Gateway (payload 2.0) hands on repeated headers and query parameters. */
function joinRepeated(entries: Array<[string, string[] | undefined]>): Record<string, string> {
  return Object.fromEntries(entries.map(([name, values = []]) => [name, values.join(',')]));
}

function queryValues(params: URLSearchParams): Array<[string, string[]]> {
  return [...new Set(params.keys())].map((name) => [name, params.getAll(name)]);
}

export function lambdaContext(functionName: string, budgetMs = API_BUDGET_MS): Context {
  const deadline = Date.now() + budgetMs;
  const awsRequestId = randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function decodeParams(groups: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(groups).map(([name, value]) => [name, decodeURIComponent(value)]));
}

function routePattern(path: string): RegExp {
  const source = path
    .split('/')
    .map((segment) => {
      const param = /^\{(\w+)\}$/.exec(segment);
      return param ? `(?<${param[1]}>[^/]+)` : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return new RegExp(`^${source}$`);
}
