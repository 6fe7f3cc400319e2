import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { countRequests } from '../../bench/request-counts.ts';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb.ts';
import { LOCAL_S3_CREDENTIALS, startLocalS3, type LocalS3 } from '../../local/s3.ts';

/** The audit bench's request counter, with the real SDK clients against local mode's S3 and DynamoDB. */

let directory: string;
let local: LocalS3;
let dynamo: LocalDynamo;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'request-counts-'));
  local = await startLocalS3({ directory, buckets: ['counted'] });
  dynamo = await startLocalDynamo({ tables: ['jobs'] });
});
afterAll(async () => {
  await local.close();
  await dynamo.close();
  await rm(directory, { recursive: true, force: true });
});

it('counts each request by service, command and kind of key, from the moment it starts counting', async () => {
  const s3 = new S3Client({ endpoint: local.endpoint, region: 'cn-north-1', forcePathStyle: true, credentials: LOCAL_S3_CREDENTIALS });
  const db = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'cn-north-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const file = 'invoices/91310117568051222X/24312000000000000001/pdf.pdf';
  const record = 'invoices/91310117568051222X/24312000000000000001/invoice.json';
  await s3.send(new PutObjectCommand({ Bucket: 'counted', Key: file, Body: '%PDF-1.4' }));
  const counter = countRequests([
    { host: new URL(local.endpoint).host, name: 'S3' },
    { host: new URL(dynamo.endpoint).host, name: 'DynamoDB' },
  ]);
  try {
    await s3.send(new PutObjectCommand({ Bucket: 'counted', Key: record, Body: '{}' }));
    await s3.send(new PutObjectCommand({ Bucket: 'counted', Key: 'audits/latest.json', Body: '{}' }));
    await s3.send(new HeadObjectCommand({ Bucket: 'counted', Key: file }));
    await s3.send(new HeadObjectCommand({ Bucket: 'counted', Key: record }));
    await s3.send(new GetObjectCommand({ Bucket: 'counted', Key: file })).then((object) => object.Body!.transformToString());
    await s3.send(new HeadObjectCommand({ Bucket: 'counted', Key: file }));
    await s3.send(new ListObjectsV2Command({ Bucket: 'counted', Prefix: 'invoices/' }));
    await db.send(new GetItemCommand({ TableName: 'jobs', Key: { pk: { S: 'x' } } }));
    expect(counter.counts()).toEqual({
      'DynamoDB GetItem': 1,
      'S3 GetObject file': 1,
      'S3 HeadObject file': 2,
      'S3 HeadObject invoice.json': 1,
      'S3 ListObjectsV2': 1,
      'S3 PutObject audits/': 1,
      'S3 PutObject invoice.json': 1,
    });
  } finally {
    counter.close();
    s3.destroy();
    db.destroy();
  }
});
