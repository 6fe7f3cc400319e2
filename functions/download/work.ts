import { ConditionFailedError, type JsonStore, type Stored } from '#shared/storage';
import type { DownloadQuery, JumdataInvoice } from '#shared/providers/jumdata';
import type { ErrorBody } from '#shared/errors';
import { FINISHED_WORK_TAG, workKey } from './archive.ts';

/**
 * The durable record of a download that is not finished, kept in the bucket beside the invoices. It is also the
 * lease that lets exactly one invocation work on an invoice at a time: it is created with If-None-Match and taken
 * over with If-Match, so of any number of concurrent claimants exactly one wins.
 */

export interface DownloadWork {
  request: DownloadQuery;
  /**
   * running: someone holds the lease · pending: to be finished later · failed: will not succeed as it is ·
   * done: invoice.json is written (the record stays a day, so that no late claimant can create it anew).
   */
  state: 'running' | 'pending' | 'failed' | 'done';
  /** While running: when the lease lapses and another invocation may take over. */
  leaseUntil?: string;
  attempts: number;
  /** Jumdata's billed answer, kept as soon as it arrives: finishing the work later costs no second call. */
  jumdata?: JumdataInvoice & { fetchedAt: string };
  /** The answer the attempt gave (status, error body, Retry-After), so that its waiters can give it too. */
  lastError?: ErrorBody['error'] & { statusCode: number; retryAfter?: string };
  nextAttemptAt?: string;
  updatedAt: string;
}

export class WorkStore {
  constructor(
    private readonly store: JsonStore,
    private readonly leaseSeconds: number,
  ) {}

  read(query: DownloadQuery): Promise<Stored<DownloadWork> | undefined> {
    return this.store.get<DownloadWork>(workKey(query.taxNum, query.invoiceNo));
  }

  /**
   * Takes the lease: creates the record if there was none, or replaces the one that was read. Returns the claimed
   * record and its ETag, or undefined if another invocation claimed it first.
   */
  async claim(query: DownloadQuery, current: Stored<DownloadWork> | undefined): Promise<Stored<DownloadWork> | undefined> {
    const now = Date.now();
    const value: DownloadWork = {
      ...current?.value,
      request: current?.value.request ?? query,
      state: 'running',
      leaseUntil: new Date(now + this.leaseSeconds * 1000).toISOString(),
      attempts: (current?.value.attempts ?? 0) + 1,
      updatedAt: new Date(now).toISOString(),
    };
    try {
      const etag = await this.store.put(
        workKey(query.taxNum, query.invoiceNo),
        value,
        current ? { ifMatch: current.etag } : { ifNoneMatch: true },
      );
      return { value, etag };
    } catch (error) {
      if (error instanceof ConditionFailedError) return undefined;
      throw error;
    }
  }

  /** Replaces the record this invocation holds; returns the new ETag. */
  async update(held: Stored<DownloadWork>, change: Partial<DownloadWork>): Promise<Stored<DownloadWork>> {
    const value = { ...held.value, ...change, updatedAt: new Date().toISOString() };
    const { taxNum, invoiceNo } = value.request;
    const etag = await this.store.put(workKey(taxNum, invoiceNo), value, { ifMatch: held.etag });
    return { value, etag };
  }

  /**
   * The work is done (invoice.json is written alongside). The record is kept rather than deleted: while it exists,
   * a request that looked before invoice.json appeared cannot create a fresh record and pay Jumdata again. The tag
   * lets the bucket's lifecycle rule delete it after a day (invoice-bucket.ts).
   */
  async finish(held: Stored<DownloadWork>): Promise<Stored<DownloadWork>> {
    const value: DownloadWork = {
      ...held.value,
      state: 'done',
      leaseUntil: undefined,
      lastError: undefined,
      nextAttemptAt: undefined,
      updatedAt: new Date().toISOString(),
    };
    const { taxNum, invoiceNo } = value.request;
    const etag = await this.store.put(workKey(taxNum, invoiceNo), value, { ifMatch: held.etag, tags: FINISHED_WORK_TAG });
    return { value, etag };
  }
}

export const isLeaseLive = (work: DownloadWork, now = Date.now()) =>
  work.state === 'running' && work.leaseUntil !== undefined && Date.parse(work.leaseUntil) > now;
