import { PutObjectRetentionCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { beforeEach, describe, expect, it } from 'vitest';
import { lockObjects, ObjectLockError } from '../../functions/download/retention.ts';

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

  it('locks the first object alone before the others, and returns the date', async () => {
    // Prepare: the first lock answers late; had the others been sent with it, they would arrive first
    const sent: string[] = [];
    s3mock.on(PutObjectRetentionCommand).callsFake(async (input: { Key: string }) => {
      if (input.Key === 'a') await new Promise((resolve) => setTimeout(resolve, 50));
      sent.push(input.Key);
      return {};
    });
    // Act
    const retainUntil = await lockObjects(s3(), 'archive', [{ key: 'a' }, { key: 'b' }, { key: 'c' }], 3, new Date('2026-02-28T00:00:00Z'));
    // Assess
    expect(sent[0]).toBe('a');
    expect(sent.slice(1).sort()).toEqual(['b', 'c']);
    expect(retainUntil).toEqual(new Date('2029-02-28T00:00:00Z'));
  });

  it('locks nothing more when S3 refuses the first object (a bucket without Object Lock refuses them all)', async () => {
    // Prepare
    s3mock.on(PutObjectRetentionCommand).rejects(new Error('InvalidRequest: Bucket is missing Object Lock Configuration'));
    // Act
    const locking = lockObjects(s3(), 'archive', [{ key: 'a', versionId: 'v1' }, { key: 'b', versionId: 'v2' }], 5);
    // Assess
    await expect(locking).rejects.toBeInstanceOf(ObjectLockError);
    await expect(locking).rejects.toMatchObject({ locked: [], message: expect.stringContaining('Object Lock Configuration') });
    expect(s3mock).toHaveReceivedCommandTimes(PutObjectRetentionCommand, 1);
  });

  it('says which versions are locked when S3 refuses one of the later objects', async () => {
    // Prepare
    s3mock.on(PutObjectRetentionCommand).callsFake((input: { Key: string }) => {
      if (input.Key === 'c') throw new Error('InternalError');
      return {};
    });
    const objects = [{ key: 'a', versionId: 'v1' }, { key: 'b', versionId: 'v2' }, { key: 'c', versionId: 'v3' }];
    // Act
    const failure = await lockObjects(s3(), 'archive', objects, 10, new Date('2026-11-23T05:00:00Z')).catch((error: unknown) => error);
    // Assess: a and b stay locked until the date, c is not locked
    expect(failure).toBeInstanceOf(ObjectLockError);
    expect(failure).toMatchObject({
      locked: [objects[0], objects[1]],
      retainUntil: new Date('2036-11-23T05:00:00Z'),
      cause: new Error('InternalError'),
    });
  });
});
