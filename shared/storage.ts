import {
  GetObjectCommand,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';

/** The bucket: one S3 client for the function, and the small JSON documents kept beside the files. */

export function createS3Client(endpoint: string | undefined): S3Client {
  if (!endpoint) return new S3Client({});
  return new S3Client({
    endpoint,
    forcePathStyle: true,
    // S3-compatible local servers store SDK-added checksums of streamed bodies as part of the object.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export interface Stored<T> {
  value: T;
  etag: string;
}

export class JsonStore {
  constructor(
    readonly client: S3Client,
    readonly bucket: string,
  ) {}

  async get<T>(key: string): Promise<Stored<T> | undefined> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return { value: JSON.parse(await object.Body!.transformToString()) as T, etag: object.ETag ?? '' };
    } catch (error) {
      if (error instanceof NoSuchKey || statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  /**
   * Writes `value` as JSON; returns the new version id (undefined on an unversioned bucket). With `lockUntil`, the
   * version is written under Object Lock (compliance mode) until then: locked by the same request that stores it,
   * so there is no moment it exists unlocked.
   */
  async put(key: string, value: unknown, options: { lockUntil?: Date } = {}): Promise<string | undefined> {
    const lock = options.lockUntil ? { ObjectLockMode: 'COMPLIANCE' as const, ObjectLockRetainUntilDate: options.lockUntil } : {};
    const result = await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: JSON.stringify(value), ContentType: 'application/json', ...lock }),
    );
    return result.VersionId;
  }
}

function statusOf(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
}
