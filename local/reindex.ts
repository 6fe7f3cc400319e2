import type { ReindexReport } from '../functions/download/reindex.ts';
import { startLocalMode } from './server.ts';

/**
 * `npm run reindex`: indexes local mode's invoices mirrored before the archive's index, from their stored files
 * (no Jumdata call), as `{"action": "reindex"}` does on AWS. It uses local mode's state, so stop `npm start` first
 * (the two cannot hold the same ports).
 */

const local = await startLocalMode({ port: 0, sweepEverySeconds: 0 });
try {
  const total = { indexed: 0, alreadyIndexed: 0, withProblems: 0 };
  let cursor: string | undefined;
  do {
    const report = (await local.invoke('download', { action: 'reindex', cursor })) as ReindexReport;
    total.indexed += report.indexed;
    total.alreadyIndexed += report.alreadyIndexed;
    total.withProblems += report.withProblems;
    cursor = report.cursor;
  } while (cursor);
  console.log(`reindexed: ${total.indexed} indexed, ${total.alreadyIndexed} already indexed, ${total.withProblems} with a problem in their XML (logged)`);
} finally {
  await local.close();
}
