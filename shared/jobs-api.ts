import { decodeCursorJson, decodeStartKey, InvalidCursorError, isStringRecord } from '#shared/job-cursor';
import { JOB_FUNCTIONS, type JobFunction, type JobQueue, type JobRecord, type JobStore } from '#shared/jobs';
import { ValidationError } from '#shared/errors';
import type { HttpReply } from '#shared/middleware';
import { parseRequest } from '#shared/validation';
import * as z from '#shared/zod';

/**
 * GET /jobs?state=pending|failed[&function=retry|erp-update|download][&limit=N][&cursor=...]: the unfinished jobs
 * (running or waiting for their next attempt) or the failed ones, oldest due first, with their last error.
 *
 * Its schemas are built at the first GET /jobs (z.lazy), not at import: most instances never answer one.
 */

export const listJobsSchema = z.lazy(() =>
  z.object({
    state: z.enum(['pending', 'failed'], { error: "is required: 'pending' or 'failed'" }),
    function: z.optional(z.enum(JOB_FUNCTIONS as [JobFunction, ...JobFunction[]], { error: "must be 'retry', 'erp-update' or 'download'" })),
    limit: z._default(
      z.coerce.number({ error: 'must be a number' }).check(
        z.int({ error: 'must be a whole number' }),
        z.gte(1, { error: 'must be 1 to 100' }),
        z.lte(100, { error: 'must be 1 to 100' }),
      ),
      50,
    ),
    cursor: z.optional(
      z.string({ error: 'must be the cursor of the previous answer' }).check(
        z.minLength(1, { error: 'must not be empty: leave it out for the first page' }),
      ),
    ),
  }),
);

export async function listJobs(store: JobStore, query: Record<string, string | undefined> | undefined): Promise<HttpReply> {
  const request = parseRequest(listJobsSchema, query ?? {});
  const queue = request.state === 'pending' ? 'open' : 'failed';
  const asked = request.function ? [request.function] : JOB_FUNCTIONS;
  const startAt = request.cursor === undefined ? undefined : readCursor(request.cursor, asked, queue);
  const functions = asked.filter((fn) => startAt === undefined || startAt[fn] !== undefined);
  const pages = await Promise.all(
    functions.map(async (fn) => ({ fn, page: await store.list(fn, queue, { limit: request.limit, cursor: startAt?.[fn] }) })),
  ).catch((error: unknown) => {
    // A cursor that was not made here cannot be read, or names no place in the index.
    if (startAt && (error instanceof InvalidCursorError || (error as Error).name === 'ValidationException')) {
      throw cursorRefused();
    }
    throw error;
  });
  const next = Object.fromEntries(pages.flatMap(({ fn, page }) => (page.cursor ? [[fn, page.cursor]] : [])));
  return {
    statusCode: 200,
    body: {
      state: request.state,
      jobs: pages.flatMap(({ page }) => page.jobs.map((held) => present(held.value))),
      ...(Object.keys(next).length > 0 ? { cursor: Buffer.from(JSON.stringify(next)).toString('base64url') } : {}),
    },
  };
}

/**
 * Where each asked function's listing stopped: `cursor` is base64url JSON of `{function: store cursor}`, as the
 * previous answer gave it for the same state and function. A function absent from it is finished.
 */
function readCursor(cursor: string, asked: readonly JobFunction[], queue: JobQueue): Partial<Record<JobFunction, string>> {
  const decoded = decodeCursorJson(cursor);
  const entries = isStringRecord(decoded) ? Object.entries(decoded) : [];
  // An answer with nothing left to list carries no cursor: an empty one was not made here either.
  if (entries.length === 0) throw cursorRefused();
  for (const [fn, storeCursor] of entries) {
    if (!asked.includes(fn as JobFunction) || !decodeStartKey(storeCursor, `${fn}#${queue}`)) throw cursorRefused();
  }
  return decoded as Partial<Record<JobFunction, string>>;
}

const cursorRefused = () => new ValidationError([{ field: 'cursor', message: new InvalidCursorError().message }]);

/** What a person needs to see of a job: never Jumdata's paid-for links (anyone holding them gets the files). */
function present(job: JobRecord) {
  return {
    function: job.fn,
    key: job.key,
    state: job.state,
    request: job.request,
    attempts: job.attempts,
    lastError: job.lastError,
    nextAttemptAt: job.nextAttemptAt,
    leaseUntil: job.leaseUntil,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
  };
}
