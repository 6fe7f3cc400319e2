import { UpstreamTimeoutError, UpstreamUnavailableError, type ProviderName } from '#shared/errors';

/**
 * The one way the functions call a provider: a form POST with a deadline that covers the whole exchange
 * (connect, headers and body), whose failures become the product's upstream errors.
 */

export interface FormPostOptions {
  provider: ProviderName;
  url: string;
  /** Field values exactly as they were signed; encoded here with URLSearchParams. */
  fields: Record<string, string>;
  timeoutMs: number;
}

export interface JsonAnswer {
  status: number;
  body: unknown;
}

export async function postForm({ provider, url, fields, timeoutMs }: FormPostOptions): Promise<JsonAnswer> {
  const signal = AbortSignal.timeout(timeoutMs);
  let text: string;
  let status: number;
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8', accept: 'application/json' },
      body: new URLSearchParams(fields).toString(),
      signal,
      redirect: 'error',
    });
    status = response.status;
    text = await response.text();
  } catch (error) {
    if (signal.aborted) throw new UpstreamTimeoutError(provider, timeoutMs);
    throw new UpstreamUnavailableError(provider, `${provider} could not be reached (${networkReason(error)})`);
  }
  if (status < 200 || status > 299) {
    throw new UpstreamUnavailableError(provider, `${provider} answered HTTP ${status}`);
  }
  try {
    return { status, body: JSON.parse(text) };
  } catch {
    throw new UpstreamUnavailableError(provider, `${provider} answered something that is not JSON`);
  }
}

/** A short, safe reason for a failed exchange: the system error code when there is one (ECONNREFUSED, ...). */
function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  return error instanceof Error && error.message ? error.message : 'network error';
}
