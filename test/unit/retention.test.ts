import { PutObjectRetentionCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { beforeEach, describe, expect, it } from 'vitest';
import { lockObjects } from '../../functions/download/retention.ts';

const s3mock = mockClient(S3Client);
beforeEach(() => s3mock.reset());
const s3 = () => new S3Client({ region: 'cn-north-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });

describe('locking a mirrored invoice (Object Lock, compliance mode)', () => {
  it('locks each stored version until the same day the given number of years later', async () => {
    // Prepare
    s3mock.on(PutObjectRetentionCommand).resolves({});
    const objects = [
      { key: 'invoices/T/N/pdf.pdf', versionId: 'v1' },
      { key: 'invoices/T/N/ofd.zip', versionId: 'v2' },
    ];
    // Act
    await lockObjects(s3(), 'archive', objects, 10, new Date('2026-11-23T05:00:00Z'));
    // Assess
    expect(s3mock).toHaveReceivedCommandTimes(PutObjectRetentionCommand, 2);
    for (const object of objects) {
      expect(s3mock).toHaveReceivedCommandWith(PutObjectRetentionCommand, {
        Bucket: 'archive',
        Key: object.key,
        VersionId: object.versionId,
        Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date('2036-11-23T05:00:00Z') },
      });
    }
  });

  it('fails when S3 refuses, so that the invoice is not recorded as complete', async () => {
    // Prepare
    s3mock.on(PutObjectRetentionCommand).rejects(new Error('InvalidRequest: Bucket is missing Object Lock Configuration'));
    // Act, Assess
    await expect(lockObjects(s3(), 'archive', [{ key: 'k', versionId: 'v' }], 5)).rejects.toThrow('Object Lock Configuration');
  });
});
