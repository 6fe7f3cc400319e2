/**
 * What the archive's other routes load, at the first of them and not at cold start: GET /invoices, the 台账 (its
 * job and writers), the reindex and the audit. One import() target for all, as mirroring.ts explains.
 */
export { auditAnswers } from './audit-answers.ts';
export { auditJobs } from './audit-job.ts';
export { ledgerJobs } from './ledger-job.ts';
export { listInvoices } from './list-invoices.ts';
export { reindex } from './reindex.ts';
