import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditReportSchema } from '#shared/api-responses';
import { killAllLocalModeProcesses, startLocalModeProcess, type LocalModeProcess } from '../helpers/local-mode-process.ts';

/**
 * What a new user does with `npm start`: mirror invoices, change one object behind the bridge's back with any S3
 * client (local mode prints the embedded S3's endpoint, bucket and keys), ask for an audit, and see exactly that.
 */

const taxNum = '91310117568051222X';
const invoices = ['24312000000066660001', '24312000000066660002'];
/** The ready line's storage, as docs/api.md ("Local mode shows its storage") says it is printed. */
const STORAGE = /S3 (http:\/\/127\.0\.0\.1:\d+) bucket (\S+) key (\S+) secret (\S+)/;

let stateDir: string;
let local: LocalModeProcess;
beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'audit-local-'));
  local = await startLocalModeProcess({ LOCAL_STATE_DIR: stateDir, LOCAL_SWEEP_SECONDS: '0', POWERTOOLS_LOG_LEVEL: 'ERROR' });
}, 90_000);
afterAll(async () => {
  await killAllLocalModeProcesses();
  await rm(stateDir, { recursive: true, force: true });
});

const post = async (path: string, body: unknown) => {
  const response = await fetch(`${local.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as any };
};
const get = async (path: string) => {
  const response = await fetch(`${local.url}${path}`);
  return { status: response.status, body: (await response.json()) as any };
};

describe('the integrity audit in local mode', () => {
  it('answers 404 before any audit has run', async () => {
    const latest = await get('/audits/latest');
    expect(latest).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
  });

  it('reports a clean archive, then exactly the file changed with an S3 client, and shows it as the latest report', async () => {
    // Prepare: two invoices mirrored, and audited clean
    for (const invoiceNo of invoices) {
      expect((await post('/download', { taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales' })).status).toBe(200);
    }
    const clean = await post('/audits', { taxNum });
    expect(clean.status).toBe(200);
    expect(clean.body).toMatchObject({ scope: taxNum, finished: true, invoices: 2, files: 6, problems: [], orphans: [] });
    // Prepare: the first invoice's pdf written over by someone with the keys local mode printed
    const [, endpoint, bucket, accessKeyId, secretAccessKey] = local.stdout().match(STORAGE)!;
    const s3 = new S3Client({ endpoint, region: 'cn-north-1', forcePathStyle: true, credentials: { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey! } });
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `invoices/${taxNum}/${invoices[0]}/pdf.pdf`, Body: '%PDF-1.4 not the original' }));
    // Act
    const audit = await post('/audits', {});
    // Assess: that file, and nothing else (the embedded S3 keeps no versions nor checksums: the file was read)
    expect(audit.status).toBe(200);
    expect(audit.body.problems.map((p: any) => `${p.invoiceNo} ${p.kind} ${p.problem}`).sort()).toEqual([
      `${invoices[0]} pdf checksum`,
      `${invoices[0]} pdf size`,
    ]);
    expect(audit.body).toMatchObject({ scope: 'all', finished: true, invoices: 2, key: expect.stringMatching(/^audits\/\d{8}T\d{6}Z-all\.json$/) });
    expect(auditReportSchema.safeParse(audit.body).error?.issues ?? []).toEqual([]);
    const latest = await get('/audits/latest');
    expect(latest).toEqual({ status: 200, body: audit.body });
  });

  it.each([
    [{ taxNum: '123' }, 'taxNum'],
    [{ taxNum: taxNum, everything: true }, 'everything'],
    [[], 'body'],
  ])('refuses %j with a 400 naming %s', async (body, field) => {
    const answer = await post('/audits', body);
    expect(answer.status).toBe(400);
    expect(answer.body.error.details.map((detail: any) => detail.field)).toContain(field);
  });
});
