import type { JobRecord } from '#shared/jobs';
import type { DownloadQuery, JumdataInvoice } from '#shared/providers/jumdata';

/** What a download keeps in its job record between attempts (shared/job-lifecycle.ts writes it). */
export interface KeptAnswer {
  /** Jumdata's billed answer, kept as soon as it arrives: finishing the work later costs no second call. */
  jumdata?: JumdataInvoice & {
    fetchedAt: string;
    /** The file host refused the links (403/404/410): an API request buys new ones, a sweep records LINKS_EXPIRED. */
    linksGone?: boolean;
  };
}

/** The download's job record as stored. */
export interface DownloadWork extends JobRecord, KeptAnswer {
  fn: 'download';
  request: DownloadQuery;
}

export const downloadJobKey = (query: Pick<DownloadQuery, 'taxNum' | 'invoiceNo'>) => `${query.taxNum}/${query.invoiceNo}`;

/** Jumdata's links live about a month; an answer older than this is not used to fetch files. */
export const LINK_LIFETIME_MS = 29 * 24 * 3600 * 1000;
/** The last attempt with kept links is due at least this long before they are no longer used. */
const LINK_SAFETY_MS = 6 * 3600 * 1000;

/** When the last attempt with the kept links must be due. */
export const linksUsableUntil = (kept: NonNullable<KeptAnswer['jumdata']>) => Date.parse(kept.fetchedAt) + LINK_LIFETIME_MS - LINK_SAFETY_MS;
