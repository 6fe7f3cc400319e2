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
 * Locks each version until the same day `years` later; returns that date. The first object is locked alone, the
 * others together after it: what usually refuses a lock (a bucket without Object Lock, a role without
 * s3:PutObjectRetention) refuses the first, and then nothing is locked and the attempt can be removed whole. Only a
 * refusal after that can leave some versions locked; the ObjectLockError says which.
 */
export async function lockObjects(
  s3: S3Client,
  bucket: string,
  objects: readonly LockableObject[],
  years: number,
  now = new Date(),
): Promise<Date> {
  const retainUntil = new Date(now);
  retainUntil.setUTCFullYear(retainUntil.getUTCFullYear() + years);
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
