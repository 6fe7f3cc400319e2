import { JOB_FUNCTIONS, type JobFunction, type JobRecord, type JobStore } from '#shared/jobs';
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
    cursor: z.optional(z.string()),
  }),
);

/** A decoded cursor: where each function's listing stopped; absent functions are finished. */
const cursorSchema = z.lazy(() =>
  z.object({ cursor: z.partialRecord(z.enum(JOB_FUNCTIONS as [JobFunction, ...JobFunction[]]), z.string()) }),
);

export async function listJobs(store: JobStore, query: Record<string, string | undefined> | undefined): Promise<HttpReply> {
  const request = parseRequest(listJobsSchema, query ?? {});
  const startAt =
    request.cursor === undefined ? undefined : parseRequest(cursorSchema, { cursor: decodeCursor(request.cursor) }).cursor;
  const functions = request.function ? [request.function] : JOB_FUNCTIONS.filter((fn) => startAt === undefined || startAt[fn] !== undefined);
  const queue = request.state === 'pending' ? 'open' : 'failed';
  const pages = await Promise.all(
    functions.map(async (fn) => ({ fn, page: await store.list(fn, queue, { limit: request.limit, cursor: startAt?.[fn] }) })),
  ).catch((error: unknown) => {
    // A cursor that was not made here cannot be read, or names no place in the index.
    if (startAt && (error instanceof SyntaxError || (error as Error).name === 'ValidationException')) {
      throw new ValidationError([{ field: 'cursor', message: 'is not a cursor from an earlier answer' }]);
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

function decodeCursor(cursor: string): unknown {
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

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
