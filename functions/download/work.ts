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
