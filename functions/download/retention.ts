import { PutObjectRetentionCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * Object Lock in compliance mode for a completely mirrored invoice's objects: until the date, no one (the root user
 * included) can delete or overwrite these versions. Applied per object once all are stored, rather than as the
 * bucket's default, so that the objects of an attempt that failed half way can still be removed.
 */

export interface LockableObject {
  key: string;
  versionId?: string;
}

/**
 * Locking stopped part way. `locked` are the versions that were locked before S3 refused: they cannot be removed
 * before `retainUntil`, whatever becomes of the attempt. Its `cause` is S3's refusal.
 */
export class ObjectLockError extends Error {
  constructor(
    readonly locked: readonly LockableObject[],
    readonly retainUntil: Date,
    cause: unknown,
  ) {
    super(`Object Lock refused after ${locked.length} version(s) were locked: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = 'ObjectLockError';
  }
}

/**
 * How long an invoice's objects are kept locked. `mirrored`: `years` from the day it is mirrored (the stack's
 * archive.objectLockYears). `fiscal-year-end`: by law (会计档案管理办法: accounting vouchers 30 years, counted from
 * the end of the fiscal year, which in China is the calendar year), until the end of 31 December of its issue year
 * plus `years` plus `graceYears` (an invoice booked in the next fiscal year), China time.
 */
export interface RetentionRule {
  years: number;
  from: 'mirrored' | 'fiscal-year-end';
  graceYears: number;
}

const CHINA_OFFSET_MS = 8 * 3_600_000;

/** The date an invoice issued on `issueDate` (YYYY-MM-DD) is locked until, under `rule`. */
export function retainUntilOf(rule: RetentionRule, issueDate: string, now = new Date()): Date {
  if (rule.from === 'mirrored') {
    const until = new Date(now);
    until.setUTCFullYear(until.getUTCFullYear() + rule.years);
    return until;
  }
  const lastYear = Number(issueDate.slice(0, 4)) + rule.years + rule.graceYears;
  // 1 January of the year after, 00:00 in China: the end of 31 December.
  return new Date(Date.UTC(lastYear + 1, 0, 1) - CHINA_OFFSET_MS);
}

/**
 * Locks each version until `retainUntil`. The first object is locked alone, the others together after it: what
 * usually refuses a lock (a bucket without Object Lock, a role without s3:PutObjectRetention) refuses the first, and
 * then nothing is locked and the attempt can be removed whole. Only a refusal after that can leave some versions
 * locked; the ObjectLockError says which.
 */
export async function lockObjects(s3: S3Client, bucket: string, objects: readonly LockableObject[], retainUntil: Date): Promise<Date> {
  const lock = (object: LockableObject) =>
    s3.send(
      new PutObjectRetentionCommand({
        Bucket: bucket,
        Key: object.key,
        VersionId: object.versionId,
        Retention: { Mode: 'COMPLIANCE', RetainUntilDate: retainUntil },
      }),
    );
  const [first, ...rest] = objects;
  if (!first) return retainUntil;
  try {
    await lock(first);
  } catch (error) {
    throw new ObjectLockError([], retainUntil, error);
  }
  const results = await Promise.allSettled(rest.map(lock));
  const refused = results.find((result) => result.status === 'rejected');
  if (refused) {
    const locked = [first, ...rest.filter((_object, i) => results[i]!.status === 'fulfilled')];
    throw new ObjectLockError(locked, retainUntil, refused.reason);
  }
  return retainUntil;
}
