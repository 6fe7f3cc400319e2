import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileFetchError, isPublicAddress, openFile } from '#shared/file-fetch';
import { parseAllowedHosts, type FileFetchPolicy } from '#shared/fetch-policy';
import { listen } from '../helpers/servers.ts';

let host: Awaited<ReturnType<typeof listen>>;
let hostPort: string;

beforeAll(async () => {
  host = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/file') return res.writeHead(200, { 'content-length': '4' }).end('PK\x03\x04');
    if (url.pathname === '/big') return res.writeHead(200, { 'content-length': '2048' }).end(Buffer.alloc(2048));
    if (url.pathname === '/redirect') return res.writeHead(302, { location: url.searchParams.get('to')! }).end();
    if (url.pathname === '/loop') return res.writeHead(302, { location: '/loop' }).end();
    if (url.pathname === '/gone') return res.writeHead(404).end();
    if (url.pathname === '/busy') return res.writeHead(503).end();
    res.writeHead(500).end();
  });
  hostPort = new URL(host.url).host;
});
afterAll(() => host.close());

const policy = (allowed = ''): FileFetchPolicy => ({ allowedHosts: parseAllowedHosts(allowed), maxBytes: 1024, maxRedirects: 3 });
const open = (link: string, allowed?: string) => openFile(link, policy(allowed), AbortSignal.timeout(5_000));
const failure = async (link: string, allowed?: string) => {
  const error = await open(link, allowed).then(
    (file) => {
      file.body.destroy();
      throw new Error('expected a refusal');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FileFetchError);
  return error as FileFetchError;
};

describe('which addresses count as public', () => {
  it.each(['8.8.8.8', '223.5.5.5', '2001:4860:4860::8888'])('accepts %s', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });

  it.each([
    '10.0.0.1', '172.16.5.4', '192.168.1.1', '127.0.0.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1',
    '255.255.255.255', '::1', '::', 'fe80::1', 'fc00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::7f00:1',
    '::a00:1', 'not-an-ip',
  ])('refuses %s', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });
});

describe('opening a file link', () => {
  it('opens an http link on a host named in MIRROR_ALLOWED_HOSTS, even on a loopback address', async () => {
    const file = await open(`${host.url}/file`, hostPort);
    expect(file.contentLength).toBe(4);
    file.body.destroy();
  });

  it('refuses http to any host not named in MIRROR_ALLOWED_HOSTS, without connecting', async () => {
    expect((await failure(`${host.url}/file`)).reason).toBe('refused_url');
    expect((await failure('http://files.example.com/x.zip', '127.0.0.1:1')).reason).toBe('refused_url');
  });

  it('refuses https to a private or link-local address literal', async () => {
    expect((await failure('https://169.254.169.254/latest/meta-data/')).reason).toBe('refused_address');
    expect((await failure('https://[::1]:8443/x')).reason).toBe('refused_address');
    expect((await failure('https://10.1.2.3/x')).reason).toBe('refused_address');
  });

  it('refuses a name that resolves to a loopback address, checking the resolved address', async () => {
    const error = await failure(`https://localhost:${new URL(host.url).port}/file`);
    expect(error.reason).toBe('refused_address');
    expect(error.message).toMatch(/localhost: it resolves to (127\.0\.0\.1|::1)/);
  });

  it('follows a redirect only under the same rules', async () => {
    const toMetadata = encodeURIComponent('https://169.254.169.254/latest/meta-data/');
    expect((await failure(`${host.url}/redirect?to=${toMetadata}`, hostPort)).reason).toBe('refused_address');
    const toPlainHttp = encodeURIComponent('http://files.example.com/x.zip');
    expect((await failure(`${host.url}/redirect?to=${toPlainHttp}`, hostPort)).reason).toBe('refused_url');
    const file = await open(`${host.url}/redirect?to=${encodeURIComponent('/file')}`, hostPort);
    expect(file.url.pathname).toBe('/file');
    file.body.destroy();
  });

  it('stops after three redirects', async () => {
    expect((await failure(`${host.url}/loop`, hostPort)).message).toBe('more than 3 redirects');
  });

  it('refuses a file whose declared length is over the cap before reading it', async () => {
    const error = await failure(`${host.url}/big`, hostPort);
    expect(error.reason).toBe('too_large');
    expect(error.retryable).toBe(false);
  });

  it('reports HTTP errors, retryable only for 5xx', async () => {
    expect(await failure(`${host.url}/gone`, hostPort)).toMatchObject({ reason: 'http_status', retryable: false });
    expect(await failure(`${host.url}/busy`, hostPort)).toMatchObject({ reason: 'http_status', retryable: true });
  });

  it('refuses what is not a URL, and other schemes', async () => {
    expect((await failure('not a url')).reason).toBe('refused_url');
    expect((await failure('file:///etc/passwd')).reason).toBe('refused_url');
    expect((await failure('ftp://files.example.com/x.zip')).reason).toBe('refused_url');
  });
});
