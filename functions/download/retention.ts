import { PutObjectRetentionCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * Object Lock in compliance mode for a completely mirrored invoice's objects: until the date, no one (the root user
 * included) can delete or overwrite these versions. Applied per object once all are stored, rather than as the
 * bucket's default, so that the objects of an attempt that failed half way can still be removed.
 */
export async function lockObjects(
  s3: S3Client,
  bucket: string,
  objects: Array<{ key: string; versionId?: string }>,
  years: number,
  now = new Date(),
): Promise<void> {
  const retainUntil = new Date(now);
  retainUntil.setUTCFullYear(retainUntil.getUTCFullYear() + years);
  await Promise.all(
    objects.map((object) =>
      s3.send(
        new PutObjectRetentionCommand({
          Bucket: bucket,
          Key: object.key,
          VersionId: object.versionId,
          Retention: { Mode: 'COMPLIANCE', RetainUntilDate: retainUntil },
        }),
      ),
    ),
  );
}
