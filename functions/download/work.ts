import { JobConflictError, type Held, type JobRecord, type JobStore } from '#shared/jobs';
import type { DownloadQuery, JumdataInvoice } from '#shared/providers/jumdata';

/**
 * The download's job record (shared/jobs.ts). It is also the lease that lets exactly one invocation work on an
 * invoice at a time: created only if absent, taken over only at the version that was read.
 */

export interface DownloadWork extends JobRecord {
  fn: 'download';
  request: DownloadQuery;
  /** Jumdata's billed answer, kept as soon as it arrives: finishing the work later costs no second call. */
  jumdata?: JumdataInvoice & {
    fetchedAt: string;
    /** The file host refused the links (403/404/410): an API request buys new ones, a sweep records LINKS_EXPIRED. */
    linksGone?: boolean;
  };
}

export const downloadJobKey = (query: Pick<DownloadQuery, 'taxNum' | 'invoiceNo'>) => `${query.taxNum}/${query.invoiceNo}`;

export class WorkStore {
  constructor(
    private readonly jobs: JobStore,
    private readonly leaseSeconds: number,
  ) {}

  read(query: DownloadQuery): Promise<Held<DownloadWork> | undefined> {
    return this.jobs.get<DownloadWork>('download', downloadJobKey(query));
  }

  /**
   * Takes the lease: creates the record if there was none, or replaces the one that was read. Returns the claimed
   * record, or undefined if another invocation claimed it first.
   */
  async claim(query: DownloadQuery, current: Held<DownloadWork> | undefined): Promise<Held<DownloadWork> | undefined> {
    const now = new Date();
    // A download that failed for good and is asked for again starts over (its kept answer stays usable).
    const unfinished = current !== undefined && current.value.state !== 'failed';
    const value: DownloadWork = {
      ...current?.value,
      fn: 'download',
      key: downloadJobKey(query),
      // The latest request wins: a corrected issue date or direction is what the next attempt sends.
      request: query,
      state: 'running',
      leaseUntil: new Date(now.getTime() + this.leaseSeconds * 1000).toISOString(),
      attempts: unfinished ? current.value.attempts + 1 : 1,
      createdAt: unfinished ? current.value.createdAt : now.toISOString(),
      updatedAt: now.toISOString(),
    };
    if (!current) return this.jobs.create(value);
    try {
      return await this.jobs.replace(current, value);
    } catch (error) {
      if (error instanceof JobConflictError) return undefined;
      throw error;
    }
  }

  /** Replaces the record this invocation holds; `at` is the update's time, when the change was computed from it. */
  update(held: Held<DownloadWork>, change: Partial<DownloadWork>, at = new Date()): Promise<Held<DownloadWork>> {
    return this.jobs.replace(held, { ...held.value, ...change, updatedAt: at.toISOString() });
  }

  /**
   * The work is done (invoice.json is written alongside). The record is kept for a day rather than deleted: while
   * it exists, a request that looked before invoice.json appeared cannot create a fresh record and pay Jumdata
   * again. The table's TTL deletes it.
   */
  finish(held: Held<DownloadWork>): Promise<Held<DownloadWork>> {
    return this.update(held, { state: 'done', leaseUntil: undefined, lastError: undefined, nextAttemptAt: undefined });
  }
}
