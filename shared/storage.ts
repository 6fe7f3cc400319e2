import {
  GetObjectCommand,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';

/**
 * The bucket: one S3 client for the function, and small JSON documents read and written with S3's conditional
 * writes (If-None-Match / If-Match), which is what makes "exactly one caller wins" possible without a database.
 */

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

/** Another writer got there first: the object exists (If-None-Match) or has changed (If-Match). */
export class ConditionFailedError extends Error {
  constructor(key: string) {
    super(`${key} was changed by another writer`);
    this.name = 'ConditionFailedError';
  }
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
   * Writes `value`; with `ifNoneMatch` only if the key does not exist, with `ifMatch` only if it still has that
   * ETag. `tags` become the object's tags (for lifecycle rules). Returns the new ETag, or throws
   * ConditionFailedError when another writer won.
   */
  async put(
    key: string,
    value: unknown,
    options: { ifNoneMatch?: true; ifMatch?: string; tags?: Record<string, string> } = {},
  ): Promise<string> {
    try {
      const result = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: JSON.stringify(value),
          ContentType: 'application/json',
          IfNoneMatch: options.ifNoneMatch ? '*' : undefined,
          IfMatch: options.ifMatch,
          Tagging: options.tags ? new URLSearchParams(options.tags).toString() : undefined,
        }),
      );
      return result.ETag ?? '';
    } catch (error) {
      // 412 PreconditionFailed; 409 ConditionalRequestConflict when two conditional writes race.
      if (statusOf(error) === 412 || statusOf(error) === 409) throw new ConditionFailedError(key);
      throw error;
    }
  }
}

function statusOf(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
}
