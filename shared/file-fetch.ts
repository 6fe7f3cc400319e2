import type { LookupAddress, LookupAllOptions } from 'node:dns';
import type { IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { FileFetchPolicy } from '#shared/fetch-policy';

/**
 * Opens a provider's file link without letting the link reach anything it should not: https only, public unicast
 * addresses only (checked on the address actually connected to, so DNS cannot swap it), redirects under the same
 * rules, a deadline and a size cap. Hosts named in `allowedHosts` (local mode's file host) may use http and private
 * addresses.
 */

export type FileFetchFailure =
  | 'refused_url'
  | 'refused_address'
  | 'http_status'
  | 'too_large'
  | 'truncated'
  | 'network'
  | 'timeout'
  | 'wrong_content';

/** A file could not be fetched; `retryable` says whether the same link may work later. */
export class FileFetchError extends Error {
  constructor(
    readonly reason: FileFetchFailure,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'FileFetchError';
  }
}

/**
 * The file host says the link is gone (403, 404 or 410: Jumdata's links expire). The same link will not work again
 * (not retryable), but new links from Jumdata would: the download's next attempt decides whether to buy them.
 */
export class LinkGoneError extends FileFetchError {
  constructor(readonly status: number) {
    super('http_status', `the file host answered HTTP ${status}`, false);
    this.name = 'LinkGoneError';
  }
}

const GONE_STATUSES = new Set([403, 404, 410]);

export interface OpenedFile {
  body: IncomingMessage;
  /** The declared length, when the server sent one. */
  contentLength?: number;
  url: URL;
}

/** Opens `link`, following redirects; the caller reads the body and must respect `signal` for the whole transfer. */
export async function openFile(link: string, policy: FileFetchPolicy, signal: AbortSignal): Promise<OpenedFile> {
  // The exemption of allowed hosts holds along a redirect chain only as long as it started on one: a public link
  // cannot redirect into them.
  let exempt = true;
  let url = parseLink(link);
  for (let redirects = 0; ; redirects++) {
    const response = await request(url, exempt && isAllowedHost(url, policy), signal);
    const status = response.statusCode ?? 0;
    if (status >= 300 && status < 400 && response.headers.location) {
      response.resume();
      if (redirects >= policy.maxRedirects) {
        throw new FileFetchError('refused_url', `more than ${policy.maxRedirects} redirects`, false);
      }
      url = parseLink(new URL(response.headers.location, url).href);
      continue;
    }
    if (status < 200 || status > 299) {
      response.resume();
      if (GONE_STATUSES.has(status)) throw new LinkGoneError(status);
      throw new FileFetchError('http_status', `the file host answered HTTP ${status}`, status >= 500 || status === 429);
    }
    const declared = response.headers['content-length'];
    const contentLength = declared === undefined ? undefined : Number(declared);
    if (contentLength !== undefined && contentLength > policy.maxBytes) {
      response.destroy();
      throw new FileFetchError('too_large', `the file is ${contentLength} bytes, over the ${policy.maxBytes}-byte cap`, false);
    }
    return { body: response, contentLength, url };
  }

  function parseLink(text: string): URL {
    const parsed = checkLink(text, policy, exempt);
    exempt &&= isAllowedHost(parsed, policy);
    return parsed;
  }
}

/**
 * The link as a URL if the fetch rules allow it (https, or http to an allowed host; no literal non-public address
 * unless the host is allowed); a `refused_url` or `refused_address` FileFetchError otherwise. No request is made.
 */
export function checkLink(text: string, policy: FileFetchPolicy, mayBeExempt = true): URL {
  if (!URL.canParse(text)) throw new FileFetchError('refused_url', 'the file link is not a URL', false);
  const parsed = new URL(text);
  const allowed = mayBeExempt && isAllowedHost(parsed, policy);
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && allowed)) {
    throw new FileFetchError('refused_url', `refused ${parsed.protocol} link to ${parsed.host}: https only`, false);
  }
  const literal = parsed.hostname.replace(/^\[|\]$/g, '');
  if (isIP(literal) && !allowed && !isPublicAddress(literal)) {
    throw new FileFetchError('refused_address', `refused link to the non-public address ${literal}`, false);
  }
  return parsed;
}

function isAllowedHost(url: URL, policy: FileFetchPolicy): boolean {
  return policy.allowedHosts.has(url.hostname.toLowerCase()) || policy.allowedHosts.has(url.host.toLowerCase());
}

/** Only ordinary public unicast addresses: no private, loopback, link-local, CGNAT, multicast or reserved ones. */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const parsed = ipaddr.process(address);
  // ::/96 (IPv4-compatible, deprecated) is "unicast" to ipaddr.js but can carry an IPv4 private address.
  if (parsed.kind() === 'ipv6' && parsed.toByteArray().slice(0, 12).every((byte) => byte === 0)) return false;
  return parsed.range() === 'unicast';
}

async function request(url: URL, exempt: boolean, signal: AbortSignal): Promise<IncomingMessage> {
  // node:http only for plain-http links (local mode's sandboxes): importing it makes Node load its fetch (undici),
  // 15 ms of every cold start (npm run bench:cold); Jumdata's links are https.
  const get = url.protocol === 'https:' ? httpsGet : (await import('node:http')).get;
  // node:dns at the first fetch, not at cold start (npm run bench:cold).
  const lookup = exempt ? undefined : publicOnlyLookup((await import('node:dns')).lookup);
  return new Promise((resolve, reject) => {
    const req = get(url, { signal, lookup, headers: { accept: '*/*', 'user-agent': 'einvoice-bridge' } }, resolve);
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error instanceof FileFetchError) reject(error);
      else if (signal.aborted) reject(signal.reason);
      else reject(new FileFetchError('network', `the file host could not be reached (${error.code ?? error.message})`, true));
    });
  });
}

/** A DNS lookup that refuses, at connect time, any name that resolves to a non-public address. */
const publicOnlyLookup = (dnsLookup: typeof import('node:dns').lookup): LookupFunction => (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true } as LookupAllOptions, (error, addresses: LookupAddress[]) => {
    if (error) return callback(error, '', 0);
    const refused = addresses.find((entry) => !isPublicAddress(entry.address));
    if (refused || addresses.length === 0) {
      const failure = new FileFetchError('refused_address', `refused ${hostname}: it resolves to ${refused?.address ?? 'nothing'}`, false);
      return callback(failure as unknown as NodeJS.ErrnoException, '', 0);
    }
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
    return callback(null, addresses[0]!.address, addresses[0]!.family);
  });
};
