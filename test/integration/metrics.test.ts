import { PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { FW199_SANDBOX_ORDERS } from '../../local/sandboxes/fw199.ts';
import { JUMDATA_SANDBOX_INVOICES } from '../../local/sandboxes/jumdata.ts';
import { WDT_SANDBOX_INVOICES } from '../../local/sandboxes/wdt.ts';
import { JOB_FUNCTIONS } from '#shared/jobs';
import { publishedMetrics, sumOf } from '../helpers/emf.ts';
import { localS3Client, useLocalMode } from '../helpers/local-mode.ts';

/**
 * The metrics the handlers publish for what users do, end to end: real requests to local mode (its metrics turned
 * on), the sandboxes and the embedded storage; the EMF documents read from what the handlers wrote to stdout.
 */

const { state, post } = useLocalMode({ env: { POWERTOOLS_METRICS_DISABLED: 'false' } });
const taxNum = '91310117568051222X';

/** What the handlers publish while `act` runs. */
async function metricsOf<T>(act: () => Promise<T>) {
  const from = state.logged.length;
  const result = await act();
  return { result, metrics: publishedMetrics(state.logged.slice(from)) };
}

describe('the metrics of local mode', () => {
  it('count a download once: the call Jumdata billed, the invoice and bytes mirrored, the job done; the cached answer adds none', async () => {
    // Prepare
    const jumdata = state.local.sandboxes.jumdata!;
    const billedBefore = jumdata.billedCalls();
    const request = { taxNum, invoiceNo: JUMDATA_SANDBOX_INVOICES.success, issueDate: '2024-04-25', direction: 'sales' };
    // Act
    const first = await metricsOf(() => post('/download', request));
    const again = await metricsOf(() => post('/download', request));
    // Assess
    expect(first.result.status).toBe(200);
    expect(again.result.body.fromCache).toBe(true);
    const download = { function: 'download' };
    expect(sumOf(first.metrics, 'JumdataBilledCalls', download)).toBe(jumdata.billedCalls() - billedBefore);
    expect(sumOf(first.metrics, 'JumdataBilledCalls', download)).toBe(1);
    expect(sumOf(first.metrics, 'InvoicesMirrored', download)).toBe(1);
    const files = Object.values(first.result.body.files as Record<string, { bytes: number }>);
    expect(sumOf(first.metrics, 'BytesMirrored', download)).toBe(files.reduce((total, file) => total + file.bytes, 0));
    expect(first.metrics.find((metric) => metric.name === 'BytesMirrored')).toMatchObject({ namespace: 'EinvoiceBridge/local', unit: 'Bytes' });
    expect(sumOf(first.metrics, 'JobsDone', download)).toBe(1);
    expect(again.metrics).toEqual([]);
  });

  it("publish the problems an audit run found when it finishes: 0 for a clean archive, then a file changed behind the bridge's back", async () => {
    // Act: the invoice mirrored above, audited as it is
    const clean = await metricsOf(() => post('/audits', { taxNum }));
    // Prepare: its pdf written over with an S3 client
    await localS3Client(state.local).send(
      new PutObjectCommand({ Bucket: state.local.bucket, Key: `invoices/${taxNum}/${JUMDATA_SANDBOX_INVOICES.success}/pdf.pdf`, Body: '%PDF-1.4 not the original' }),
    );
    // Act
    const changed = await metricsOf(() => post('/audits', { taxNum }));
    // Assess
    expect(clean.result.body).toMatchObject({ finished: true, invoices: 1, problems: [] });
    expect(clean.metrics.filter((metric) => metric.name === 'ArchiveProblems')).toEqual([
      { namespace: 'EinvoiceBridge/local', name: 'ArchiveProblems', unit: 'Count', dimensions: { function: 'download' }, value: 0 },
    ]);
    expect(changed.result.body).toMatchObject({ finished: true, invoices: 1 });
    expect(changed.result.body.problems.length).toBeGreaterThan(0);
    expect(sumOf(changed.metrics, 'ArchiveProblems', { function: 'download' })).toBe(changed.result.body.problems.length);
  });

  it('count a Jumdata answer asking to try later as a provider failure and a pending job, not as a billed call', async () => {
    // Act
    const { result, metrics } = await metricsOf(() =>
      post('/download', { taxNum, invoiceNo: JUMDATA_SANDBOX_INVOICES.flakyOnce, issueDate: '2024-04-25', direction: 'sales' }),
    );
    // Assess
    expect(result.status).toBe(503);
    expect(sumOf(metrics, 'ProviderFailures', { provider: 'jumdata', code: 'UPSTREAM_TEMPORARILY_UNAVAILABLE' })).toBe(1);
    expect(sumOf(metrics, 'JobsPending', { function: 'download' })).toBe(1);
    expect(metrics.map((metric) => metric.name)).not.toContain('JumdataBilledCalls');
  });

  it('count an ERP update WDT accepted', async () => {
    // Act
    const { result, metrics } = await metricsOf(() =>
      post('/erp-update', { invoiceNo: WDT_SANDBOX_INVOICES.known[0], status: 75, errorInfo: '购方税号错误' }),
    );
    // Assess
    expect(result.status).toBe(200);
    expect(sumOf(metrics, 'ErpUpdatesSent', { function: 'erp-update' })).toBe(1);
    expect(sumOf(metrics, 'JobsDone', { function: 'erp-update' })).toBe(1);
  });

  it('count a re-push that met fw199 failing as a provider failure by provider and code, and its job pending', async () => {
    // Act
    const { result, metrics } = await metricsOf(() => post('/retry', { taxNum, orderNo: FW199_SANDBOX_ORDERS.serverError }));
    // Assess
    expect(result.status).toBe(502);
    expect(metrics.filter((metric) => metric.name === 'ProviderFailures')).toEqual([
      { namespace: 'EinvoiceBridge/local', name: 'ProviderFailures', unit: 'Count', dimensions: { provider: 'fw199', code: 'UPSTREAM_UNAVAILABLE' }, value: 1 },
    ]);
    expect(sumOf(metrics, 'JobsPending', { function: 'retry' })).toBe(1);
  });

  it.each(JOB_FUNCTIONS)('publish the oldest due age on each %s sweep, 0 with nothing due', async (fn) => {
    // Act: the jobs left pending above are due after their backoff, not yet
    const { result, metrics } = await metricsOf(() => state.local.sweep(fn));
    // Assess
    expect(result.oldestDueSeconds).toBe(0);
    expect(metrics.filter((metric) => metric.name === 'OldestDueJobAge')).toEqual([
      { namespace: 'EinvoiceBridge/local', name: 'OldestDueJobAge', unit: 'Seconds', dimensions: { function: fn }, value: 0 },
    ]);
  });
});
