import { PutObjectRetentionCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { beforeEach, describe, expect, it } from 'vitest';
import { lockObjects, ObjectLockError, retainUntilOf } from '../../functions/download/retention.ts';

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
    await lockObjects(s3(), 'archive', objects, retainUntilOf({ years: 10, from: 'mirrored', graceYears: 0 }, '2026-01-05', new Date('2026-11-23T05:00:00Z')));
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
    const retainUntil = await lockObjects(s3(), 'archive', [{ key: 'a' }, { key: 'b' }, { key: 'c' }], new Date('2029-02-28T00:00:00Z'));
    // Assess
    expect(sent[0]).toBe('a');
    expect(sent.slice(1).sort()).toEqual(['b', 'c']);
    expect(retainUntil).toEqual(new Date('2029-02-28T00:00:00Z'));
  });

  it('locks nothing more when S3 refuses the first object (a bucket without Object Lock refuses them all)', async () => {
    // Prepare
    s3mock.on(PutObjectRetentionCommand).rejects(new Error('InvalidRequest: Bucket is missing Object Lock Configuration'));
    // Act
    const locking = lockObjects(s3(), 'archive', [{ key: 'a', versionId: 'v1' }, { key: 'b', versionId: 'v2' }], new Date('2031-01-01T00:00:00Z'));
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
    const failure = await lockObjects(s3(), 'archive', objects, new Date('2036-11-23T05:00:00Z')).catch((error: unknown) => error);
    // Assess: a and b stay locked until the date, c is not locked
    expect(failure).toBeInstanceOf(ObjectLockError);
    expect(failure).toMatchObject({
      locked: [objects[0], objects[1]],
      retainUntil: new Date('2036-11-23T05:00:00Z'),
      cause: new Error('InternalError'),
    });
  });
});

describe('how long an invoice is kept locked', () => {
  it('counts years from the day it is mirrored in the simple form (objectLockYears)', () => {
    const rule = { years: 10, from: 'mirrored', graceYears: 0 } as const;
    expect(retainUntilOf(rule, '2024-04-25', new Date('2026-11-23T05:00:00Z'))).toEqual(new Date('2036-11-23T05:00:00Z'));
  });

  it.each([
    // 30 years from the end of the issue year, plus a year's grace: to the end of 31 December 2055, China time
    ['2024-04-25', 30, 1, '2055-12-31T16:00:00.000Z'],
    ['2024-01-01', 30, 1, '2055-12-31T16:00:00.000Z'],
    ['2024-12-31', 30, 1, '2055-12-31T16:00:00.000Z'],
    ['2025-01-01', 30, 1, '2056-12-31T16:00:00.000Z'],
    ['2024-06-30', 10, 0, '2034-12-31T16:00:00.000Z'],
  ])('keeps an invoice issued on %s for %i years after its fiscal year, %i of grace: until %s', (issueDate, years, graceYears, until) => {
    const rule = { years, from: 'fiscal-year-end', graceYears } as const;
    // Whenever it is mirrored: by law the count starts at the end of the issue year.
    expect(retainUntilOf(rule, issueDate, new Date('2026-11-23T05:00:00Z')).toISOString()).toBe(until);
    expect(retainUntilOf(rule, issueDate, new Date('2040-01-01T00:00:00Z')).toISOString()).toBe(until);
  });
});
