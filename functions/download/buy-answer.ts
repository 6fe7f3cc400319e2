import { LinksExpiredError, TimeBudgetExhausted } from '#shared/errors';
import { checkLink } from '#shared/file-fetch';
import type { FileFetchPolicy } from '#shared/fetch-policy';
import type { Attempt } from '#shared/job-lifecycle';
import { logger } from '#shared/logger';
import type { DownloadQuery, JumdataClient, JumdataInvoice } from '#shared/providers/jumdata';
import { LINK_LIFETIME_MS, type KeptAnswer } from './work.ts';

/**
 * The billing guard: Jumdata bills every call, so its answer for an invoice is bought once and kept in the job's
 * record, and every later attempt uses the kept links while they work. New links are bought only by an API request
 * (a person asked), never by a sweep, and only with the time left to keep the answer.
 */

export interface BuyingSettings {
  jumdata: JumdataClient;
  /** The longest a Jumdata call may take: no call is started with less time than this left. */
  jumdataTimeoutMs: number;
  policy: FileFetchPolicy;
}

/** The answer to mirror from, and the write that keeps it when it was just bought (the files need not wait for it). */
export async function answerOnce(
  query: DownloadQuery,
  job: Attempt<KeptAnswer>,
  settings: BuyingSettings,
): Promise<{ answer: JumdataInvoice; kept: Promise<void> }> {
  const kept = job.kept.jumdata;
  const unusable = kept && whyUnusable(kept, settings.policy);
  if (kept && !unusable) return { answer: kept, kept: Promise.resolve() };
  if (kept && job.mode === 'sweep') throw new LinksExpiredError(unusable!);
  // A billed call is made only with time to keep its answer: an invocation killed in between pays twice.
  if (job.deadline - Date.now() < settings.jumdataTimeoutMs) throw new TimeBudgetExhausted();
  const answer = await settings.jumdata.fetchInvoice(query);
  // If keeping it fails, the files are still worth storing; the next attempt would buy again, which is logged.
  const keeping = job
    .keep({ jumdata: { ...answer, fetchedAt: new Date().toISOString() } })
    .catch((error: unknown) => logger.warn('billed answer not kept', { error }));
  return { answer, kept: keeping };
}

/** Why kept links cannot be used any more, if they cannot: gone, too old, or refused by the fetch rules. */
function whyUnusable(kept: NonNullable<KeptAnswer['jumdata']>, policy: FileFetchPolicy): string | undefined {
  if (kept.linksGone) return 'the file links Jumdata was paid for are gone (the file host refused them)';
  if (Date.now() >= Date.parse(kept.fetchedAt) + LINK_LIFETIME_MS) return 'the file links Jumdata was paid for are over a month old';
  try {
    for (const link of Object.values(kept.files)) checkLink(link, policy);
  } catch (error) {
    // E.g. local mode's file host moved: the links name a host the fetch rules no longer allow.
    return `the file links Jumdata was paid for are refused by the fetch rules (${(error as Error).message})`;
  }
  return undefined;
}
