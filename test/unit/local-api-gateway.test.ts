import { connect } from 'node:net';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiGateway } from '../../local/api-gateway.ts';
import { listen } from '../helpers/servers.ts';

/**
 * The event local mode's API Gateway builds from a request, as API Gateway's HTTP API (payload format 2.0) builds
 * it: a query parameter or a header sent more than once reaches the handler as one value, joined with commas.
 */

const received: APIGatewayProxyEventV2[] = [];
let server: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  const handler = async (event: APIGatewayProxyEventV2) => {
    received.push(event);
    return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{}' };
  };
  server = await listen(apiGateway([{ method: 'GET', path: '/echo', functionName: 'echo', handler }]));
});

afterAll(() => server.close());

/** Sends a GET exactly as written, so that a header can be sent twice (fetch and node:http merge them first). */
function rawGet(path: string, headerLines: string[]): Promise<string> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.end([`GET ${path} HTTP/1.1`, `host: 127.0.0.1:${port}`, 'connection: close', ...headerLines, '', ''].join('\r\n'));
    });
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

const lastEvent = () => received.at(-1)!;

describe('the event local mode hands a handler', () => {
  it('joins the values of a query parameter sent twice with a comma, in the order sent', async () => {
    // Act
    const response = await fetch(`${server.url}/echo?sig=AAAA&sig=BBBB&one=1`);
    // Assess
    expect(response.status).toBe(200);
    expect(lastEvent().queryStringParameters).toEqual({ sig: 'AAAA,BBBB', one: '1' });
    expect(lastEvent().rawQueryString).toBe('sig=AAAA&sig=BBBB&one=1');
  });

  it('gives no query parameters to a request without a query', async () => {
    // Act
    await fetch(`${server.url}/echo`);
    // Assess
    expect(lastEvent().queryStringParameters).toBeUndefined();
  });

  it('joins the values of a header sent twice with a comma, as API Gateway does', async () => {
    // Act
    const answer = await rawGet('/echo', ['x-tag: a', 'x-tag: b', 'content-type: application/json', 'content-type: text/plain']);
    // Assess
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(lastEvent().headers['x-tag']).toBe('a,b');
    expect(lastEvent().headers['content-type']).toBe('application/json,text/plain');
  });
});
