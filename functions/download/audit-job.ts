import type { S3Client } from '@aws-sdk/client-s3';
import { TimeBudgetExhausted } from '#shared/errors';
import { jobLifecycle, type Attempt, type LifecycleSettings } from '#shared/job-lifecycle';
import { logger } from '#shared/logger';
import { recordArchiveProblems } from '#shared/metrics';
import { JsonStore } from '#shared/storage';
import { parseRequest, taxNumSchema } from '#shared/validation';
import * as z from '#shared/zod';
import { auditChecks, type AuditProblem, type OrphanFound, type RetentionExtended } from './audit-checks.ts';
import type { InvoiceEntry } from './invoice-entry.ts';
import type { InvoiceIndex } from './invoice-index.ts';
import type { RetentionRule } from './retention.ts';

/**
 * The integrity audit as a job (POST /audits, the monthly schedule, the sweep): it walks the index and checks every
 * mirrored invoice (audit-checks.ts), then walks the bucket's invoice folders for orphans. Its report, progress
 * included, is written to S3 under `audits/` after every page: a run cut by its time goes on from the last page
 * written, so that each invoice is reported once, however many runs the whole takes.
 */

export const auditRequestSchema = z.lazy(() => z.strictObject({ taxNum: z.optional(taxNumSchema(false)) }));
export type AuditRequest = z.output<typeof auditRequestSchema>;

export const auditJobKey = (request: AuditRequest) => `audit/${request.taxNum ?? 'all'}`;

export interface AuditReport {
  /** `all`, or the taxpayer audited. */
  scope: string;
  startedAt: string;
  finishedAt?: string;
  finished: boolean;
  invoices: number;
  files: number;
  problems: AuditProblem[];
  /** Locks lengthened to the retention rule. */
  extended: RetentionExtended[];
  /** Objects of no complete invoice, older than a day: removed, or kept by their lock. */
  orphans: OrphanFound[];
  /** Folders with an invoice.json but no index entry: mirrored before the index (`npm run reindex`). */
  unindexed: number;
  key: string;
  /** Where an unfinished run goes on from. */
  progress?: { phase: 'invoices' | 'orphans'; cursor?: string };
}

/** What the job record keeps: a finished run's outcome is its report's summary, the report itself is in S3. */
export type AuditSummary = Omit<AuditReport, 'problems' | 'extended' | 'orphans' | 'progress'> & { problemCount: number };

/** The last report started, whichever run (the schedule's, a request's, of any scope). */
export const LATEST_AUDIT_KEY = 'audits/latest.json';

/** Entries per index page, and invoices checked at once (four requests each). */
const PAGE_SIZE = 100;
const INVOICES_AT_ONCE = 8;
/** Time kept for the report's write, at the end of a run. */
const SAVE_MARGIN_MS = 1_500;
/** Files of no complete invoice younger than this may belong to a download in progress. */
const ORPHAN_AGE_MS = 24 * 3_600_000;

export interface AuditDeps {
  s3: S3Client;
  bucket: string;
  index: InvoiceIndex;
  jobs: LifecycleSettings;
  retention?: RetentionRule;
  /** The moment before which orphan files are removed (default: a day ago). */
  orphansBefore?: () => Date;
  /** Index entries per page (default 100): a run checks at least one page. */
  pageSize?: number;
}

export function auditJobs(deps: AuditDeps) {
  const checks = auditChecks(deps);
  const reports = new JsonStore(deps.s3, deps.bucket);
  const save = (report: AuditReport) => reports.put(report.key, report);

  async function attempt(request: AuditRequest, job: Attempt<{ reportKey: string }>): Promise<AuditSummary> {
    let report = await resumeOrStart(request, job);
    // At least one page a run, whatever the time: every run moves the audit on.
    while (report.progress) {
      report = report.progress.phase === 'invoices' ? await invoicePage(report, job.deadline) : await orphanPage(report);
      await save(report);
      if (report.progress && Date.now() > job.deadline - SAVE_MARGIN_MS) {
        throw new TimeBudgetExhausted('the audit ran out of time; it goes on from where it stopped (GET /audits/latest shows it)');
      }
    }
    logger.info('audit finished', { scope: report.scope, invoices: report.invoices, problems: report.problems.length, key: report.key });
    // Once per run, when it finishes (0 for a clean archive): the archive problems alarm reads it.
    recordArchiveProblems(report.problems.length);
    return summaryOf(report);
  }

  /** An unfinished run's report (kept by an earlier attempt of the same run), or a new run's. */
  async function resumeOrStart(request: AuditRequest, job: Attempt<{ reportKey: string }>): Promise<AuditReport> {
    const kept = job.attempts > 1 && job.kept.reportKey ? (await reports.get<AuditReport>(job.kept.reportKey))?.value : undefined;
    if (kept) return kept;
    const startedAt = new Date().toISOString();
    const scope = request.taxNum ?? 'all';
    const key = `audits/${startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${scope}.json`;
    const report: AuditReport = { scope, startedAt, finished: false, invoices: 0, files: 0, problems: [], extended: [], orphans: [], unindexed: 0, key, progress: { phase: 'invoices' } };
    await save(report);
    await Promise.all([reports.put(LATEST_AUDIT_KEY, { key }), job.keep({ reportKey: key })]);
    return report;
  }

  /** One page of the index: each invoice checked, a few at a time; stops between them when the time is up. */
  async function invoicePage(report: AuditReport, deadline: number): Promise<AuditReport> {
    const scope = report.scope === 'all' ? undefined : report.scope;
    const page = await deps.index.walk(scope, report.progress!.cursor, deps.pageSize ?? PAGE_SIZE);
    for (let start = 0; start < page.entries.length; start += INVOICES_AT_ONCE) {
      const batch = page.entries.slice(start, start + INVOICES_AT_ONCE);
      await auditBatch(report, batch);
      const rest = page.entries.length - start - batch.length;
      if (rest > 0 && Date.now() > deadline - SAVE_MARGIN_MS) return { ...report, progress: { phase: 'invoices', cursor: deps.index.cursorAfter(batch.at(-1)!, scope) } };
    }
    return { ...report, progress: page.cursor ? { phase: 'invoices', cursor: page.cursor } : { phase: 'orphans' } };
  }

  async function auditBatch(report: AuditReport, entries: readonly InvoiceEntry[]) {
    for (const findings of await Promise.all(entries.map((entry) => checks.auditInvoice(entry)))) {
      report.problems.push(...findings.problems);
      report.extended.push(...findings.extended);
    }
    report.invoices += entries.length;
    report.files += entries.length * 3;
  }

  /** One page of the bucket's invoice folders: those with no index entry nor invoice.json are an attempt that died. */
  async function orphanPage(report: AuditReport): Promise<AuditReport> {
    const scope = report.scope === 'all' ? undefined : report.scope;
    const page = await checks.listFolders(scope, report.progress!.cursor);
    const indexed = await deps.index.existing(page.folders);
    const before = deps.orphansBefore?.() ?? new Date(Date.now() - ORPHAN_AGE_MS);
    for (const folder of page.folders) {
      if (indexed.has(deps.index.pkOf(folder.taxNum, folder.invoiceNo))) continue;
      if (folder.objects.some((object) => object.name === 'invoice.json')) report.unindexed += 1;
      else report.orphans.push(...(await checks.removeOrphans(folder, before)));
    }
    if (page.cursor) return { ...report, progress: { phase: 'orphans', cursor: page.cursor } };
    const { progress: _done, ...finished } = report;
    return { ...finished, finished: true, finishedAt: new Date().toISOString() };
  }

  const jobs = jobLifecycle<AuditRequest, AuditSummary, { reportKey: string }>(deps.jobs, {
    fn: 'download',
    keyOf: auditJobKey,
    attempt,
    resumable: true,
  });

  /** The report a summary names, or the last one started; undefined when there is none. */
  async function report(key?: string): Promise<AuditReport | undefined> {
    const reportKey = key ?? (await reports.get<{ key: string }>(LATEST_AUDIT_KEY))?.value.key;
    return reportKey ? (await reports.get<AuditReport>(reportKey))?.value : undefined;
  }

  return { ...jobs, report, parse: (input: unknown) => parseRequest(auditRequestSchema, input) };
}

function summaryOf(report: AuditReport): AuditSummary {
  const { problems, extended: _extended, orphans: _orphans, progress: _progress, ...summary } = report;
  return { ...summary, problemCount: problems.length };
}
