import { en } from 'zod/locales';
import { config } from 'zod/mini';

/**
 * The zod every bundled module validates with, imported as `import * as z from '#shared/zod'`: `zod/mini`, whose
 * schemas are plain functions that esbuild can tree-shake (classic `zod` puts every method on every schema: about
 * 90 KB more per bundle and 10 ms more per cold start). Its schemas are the same zod v4 core as classic zod's: same
 * checks, same issues, and toJSONSchema works on them (infra/openapi.ts).
 *
 * zod/mini loads no locale, so every message would read "Invalid input". English, which classic zod loads, keeps
 * the messages that 400 answers and configuration errors carry ("Invalid URL", "Too big: ...") as they were.
 *
 * Request, event and secret schemas are built at their first parse (z.lazy), not at import: a cold start builds
 * only the configuration's schema, which is parsed at import on purpose (a bad variable stops the function there,
 * shared/config.ts), and an instance never builds the schemas of requests it does not get.
 */
config(en());

export * from 'zod/mini';
