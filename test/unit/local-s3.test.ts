import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, paginateListObjectsV2, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_S3_CREDENTIALS, startLocalS3, type LocalS3 } from '../../local/s3.ts';

/**
 * Local mode's S3 lists past its first page, as the audit and reindex walk the bucket: s3rver alone answered every
 * truncated ListObjectsV2 page with a 500 on Node 17 and later (its continuation token is made with DES).
 */

const BUCKET = 'listing';
const keys = ['invoices/A/1/pdf.pdf', 'invoices/A/1/xml.zip', 'invoices/A/2/pdf.pdf', 'invoices/A/2/xml.zip', 'invoices/A/3/pdf.pdf'];

let directory: string;
let local: LocalS3;
let s3: S3Client;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'local-s3-'));
  local = await startLocalS3({ directory, buckets: [BUCKET] });
  s3 = new S3Client({ endpoint: local.endpoint, region: 'cn-north-1', forcePathStyle: true, credentials: LOCAL_S3_CREDENTIALS });
  for (const key of [...keys, 'invoices/B/9/pdf.pdf']) await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: key }));
});
afterAll(async () => {
  s3.destroy();
  await local.close();
  await rm(directory, { recursive: true, force: true });
});

const list = (input: { StartAfter?: string; ContinuationToken?: string }) =>
  s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'invoices/A/', MaxKeys: 2, ...input }));
const keysOf = (page: { Contents?: Array<{ Key?: string }> }) => (page.Contents ?? []).map((object) => object.Key);

describe('ListObjectsV2 in local mode', () => {
  it('pages with continuation tokens to the last page', async () => {
    const first = await list({});
    expect({ keys: keysOf(first), truncated: first.IsTruncated }).toEqual({ keys: keys.slice(0, 2), truncated: true });
    const second = await list({ ContinuationToken: first.NextContinuationToken });
    expect({ keys: keysOf(second), truncated: second.IsTruncated }).toEqual({ keys: keys.slice(2, 4), truncated: true });
    const last = await list({ ContinuationToken: second.NextContinuationToken });
    expect({ keys: keysOf(last), truncated: last.IsTruncated, token: last.NextContinuationToken }).toEqual({ keys: keys.slice(4), truncated: false, token: undefined });
  });

  it('pages from a StartAfter, as the audit goes on from its cursor', async () => {
    const page = await list({ StartAfter: keys[1] });
    expect({ keys: keysOf(page), truncated: page.IsTruncated }).toEqual({ keys: keys.slice(2, 4), truncated: true });
  });

  it("lists every key once through the SDK's paginator", async () => {
    const listed: Array<string | undefined> = [];
    for await (const page of paginateListObjectsV2({ client: s3, pageSize: 2 }, { Bucket: BUCKET, Prefix: 'invoices/' })) listed.push(...keysOf(page));
    expect(listed).toEqual([...keys, 'invoices/B/9/pdf.pdf']);
  });
});
