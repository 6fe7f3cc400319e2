/**
 * The rules a file link is fetched under (shared/file-fetch.ts applies them), as the configuration sets them. Apart
 * from the fetcher, so that a function reads its settings without loading the fetcher and its address checks.
 */
export interface FileFetchPolicy {
  /** `host` or `host:port`, lower case. */
  allowedHosts: ReadonlySet<string>;
  maxBytes: number;
  maxRedirects: number;
}

/** MIRROR_ALLOWED_HOSTS (comma-separated `host` or `host:port`) as the set the fetcher looks hosts up in. */
export function parseAllowedHosts(setting: string): Set<string> {
  return new Set(
    setting
      .split(',')
      .map((host) => host.trim().toLowerCase())
      .filter(Boolean),
  );
}
