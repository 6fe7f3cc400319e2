import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Transform, type Readable } from 'node:stream';
import { DeleteObjectCommand, PutObjectCommand, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { FileFetchError, openFile } from '#shared/file-fetch';
import type { FileFetchPolicy } from '#shared/fetch-policy';
import { logger } from '#shared/logger';
import type { InvoiceFileLinks } from '#shared/providers/jumdata';
import { FILE_KINDS, FORMATS, objectNameOf, SLOT_FORMATS, type FileFormat, type FileKind, type MirroredFile, type S3Checksum } from './invoice-files.ts';
import { countStreamedBytes } from './reclaim.ts';

/**
 * Streams an invoice's three files from their links into S3, never holding a file whole in memory, and records
 * what was stored. A file whose length is declared goes up in one streamed PutObject; one without a declared
 * length goes through lib-storage's multipart Upload. A file is mirrored completely or not at all: on any failure every object of the attempt is
 * removed and multipart uploads are aborted.
 */

/** What the first bytes say the file is. Jumdata's pdf link ends in .PDF while the others are zips: trust bytes. */
export function sniffFormat(head: Buffer): FileFormat | undefined {
  if (head.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1'))) return 'zip';
  if (head.subarray(0, 5).toString('latin1') === '%PDF-') return 'pdf';
  return undefined;
}

/**
 * The content type and extension a file is stored under, if its first bytes are the format its slot must hold;
 * otherwise a `wrong_content` failure naming the slot, what it should be and what came instead.
 */
export function sniffContentType(kind: FileKind, head: Buffer): { contentType: string; extension: string } {
  const expected = SLOT_FORMATS[kind];
  const found = sniffFormat(head);
  if (found === expected) return FORMATS[expected];
  const start = head.subarray(0, 16).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
  const got = found ? `a ${found}` : head.length === 0 ? 'an empty body' : `content starting with "${start}"`;
  // Something unrecognised (an error page, an empty body) is retryable like any broken transfer: the file host may
  // serve the file next time. A well-formed file of the other format is what the link holds: asking again gets it
  // again, so the job fails at once for a person to look at, instead of using up every attempt.
  throw new FileFetchError('wrong_content', `the ${kind} link gave ${got}, not a ${expected}`, found === undefined);
}

const SNIFF_BYTES = 5;

/**
 * Multipart settings: S3's smallest part, one part in flight per file. Memory is then about 2 parts per file
 * (the one uploading and the one filling), whatever the file's size.
 */
export const UPLOAD_SETTINGS = { partSize: 5 * 1024 * 1024, queueSize: 1 } as const;

/** S3's limit for one PutObject. */
const MAX_SINGLE_PUT_BYTES = 5 * 1024 ** 3;

export interface MirrorOptions {
  s3: S3Client;
  bucket: string;
  /** Folder of the invoice's objects, e.g. `invoices/{taxNum}/{invoiceNo}`. */
  prefix: string;
  /** Used in the download file name the browser offers. */
  invoiceNo: string;
  policy: FileFetchPolicy;
  /** Per-file deadline for the whole transfer. */
  fileTimeoutMs: number;
  /** Aborts everything (the request's time budget). */
  signal: AbortSignal;
  /** One file's bytes kept in memory as they stream by, up to a cap (the XML, read once it is stored). */
  keep?: KeptBytes;
  /** Upload with a checksum S3 keeps (S3_CHECKSUMS); off for an S3-compatible server that cannot take it. */
  checksums?: boolean;
}

/**
 * A copy of one slot's bytes, taken as they stream into S3, so that reading the file costs no second transfer. Past
 * `maxBytes` the copy is dropped (`bytes` undefined, `overflowed` true): memory never grows with the file.
 */
export class KeptBytes {
  private chunks: Buffer[] = [];
  private length = 0;
  overflowed = false;

  constructor(
    readonly kind: FileKind,
    readonly maxBytes: number,
  ) {}

  /** A new transfer of the file starts (S3 failed the first): the copy starts over too. */
  reset(): void {
    this.chunks = [];
    this.length = 0;
    this.overflowed = false;
  }

  add(chunk: Buffer): void {
    if (this.overflowed) return;
    this.length += chunk.length;
    if (this.length > this.maxBytes) {
      this.overflowed = true;
      this.chunks = [];
      return;
    }
    this.chunks.push(chunk);
  }

  get bytes(): Buffer | undefined {
    return this.overflowed ? undefined : Buffer.concat(this.chunks);
  }
}

/** Mirrors all three files concurrently; either all are stored, or none are left behind. */
export async function mirrorInvoiceFiles(
  links: InvoiceFileLinks,
  options: MirrorOptions,
): Promise<Record<FileKind, MirroredFile>> {
  const attempt = new AbortController();
  const signal = AbortSignal.any([options.signal, attempt.signal]);
  const results = await Promise.allSettled(
    FILE_KINDS.map((kind) =>
      mirrorFile(kind, links[kind], { ...options, signal }).catch((error: unknown) => {
        attempt.abort(error); // one failure stops the siblings: the set is stored whole or not at all
        throw error;
      }),
    ),
  );
  const failure = results.find((result) => result.status === 'rejected');
  if (!failure) {
    const files = results.map((result) => (result as PromiseFulfilledResult<MirroredFile>).value);
    return Object.fromEntries(FILE_KINDS.map((kind, i) => [kind, files[i]!])) as Record<FileKind, MirroredFile>;
  }
  // Every upload has settled: it either failed before its last request, or stored the file, which goes now,
  // version and all.
  const stored = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  // A delete that fails does not replace the cause: it is named in the log, for someone to remove.
  await Promise.all(
    stored.map((file) =>
      deleteObject(options, file.key, file.versionId).catch((error: unknown) =>
        logger.error('orphaned file not removed', { key: file.key, versionId: file.versionId, error }),
      ),
    ),
  );
  // The first failure is the cause; the siblings' aborts are its consequence.
  throw (failure as PromiseRejectedResult).reason;
}

const deleteObject = (options: MirrorOptions, key: string, versionId?: string) =>
  options.s3.send(new DeleteObjectCommand({ Bucket: options.bucket, Key: key, VersionId: versionId }));

async function mirrorFile(kind: FileKind, link: string, options: MirrorOptions): Promise<MirroredFile> {
  const signal = AbortSignal.any([options.signal, AbortSignal.timeout(options.fileTimeoutMs)]);
  for (let attempt = 1; ; attempt++) {
    try {
      return await streamToS3(kind, link, options, signal);
    } catch (error) {
      const cause = asFetchError(error, kind, signal, options.fileTimeoutMs);
      // The SDK cannot retry a streamed body itself; S3 failing once (503 SlowDown, a reset) costs one more read
      // of the same link, which Jumdata does not bill.
      if (attempt < S3_ATTEMPTS && isRetryableS3Failure(cause, signal)) {
        logger.warn('file upload failed, trying again', { kind, reason: (cause as Error).message });
        continue;
      }
      logger.warn('file not mirrored', { kind, reason: (cause as Error).message });
      throw cause;
    }
  }
}

const S3_ATTEMPTS = 2;

function isRetryableS3Failure(error: unknown, signal: AbortSignal): boolean {
  if (signal.aborted || error instanceof FileFetchError) return false;
  if (error instanceof S3ServiceException) return (error.$metadata.httpStatusCode ?? 500) >= 500;
  return true; // a network error on the way to S3
}

async function streamToS3(kind: FileKind, link: string, options: MirrorOptions, signal: AbortSignal): Promise<MirroredFile> {
  const opened = await openFile(link, options.policy, signal);
  const head = await peek(opened.body, SNIFF_BYTES).catch((error: unknown) => {
    throw signal.aborted ? error : brokenOff(kind, error);
  });
  let sniffed: { contentType: string; extension: string };
  try {
    sniffed = sniffContentType(kind, head);
  } catch (error) {
    opened.body.destroy();
    throw error;
  }

  const hash = createHash('sha256');
  const keep = options.keep?.kind === kind ? options.keep : undefined;
  keep?.reset();
  let bytes = 0;
  // What went wrong on the way in (a broken body, too many bytes), as opposed to S3 failing the upload.
  let streamFailure: unknown;
  const failStream = (error: unknown) => {
    streamFailure ??= error;
    return error as Error;
  };
  const { maxBytes } = options.policy;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      if (bytes > maxBytes) return done(failStream(new FileFetchError('too_large', `the ${kind} file is over the ${maxBytes}-byte cap`, false)));
      hash.update(chunk);
      keep?.add(chunk);
      countStreamedBytes(chunk.length);
      done(null, chunk);
    },
    flush(done) {
      if (opened.contentLength !== undefined && bytes !== opened.contentLength) {
        return done(failStream(new FileFetchError('truncated', `the ${kind} file ended after ${bytes} of ${opened.contentLength} bytes`, true)));
      }
      done();
    },
  });
  // The HTTP client sending a body does not notice the body failing (pipe passes no errors on): the request is
  // aborted instead, before or while it is sent. Listening from the start, no failure can come too early.
  const bodyFailed = new AbortController();
  meter.once('error', (error) => bodyFailed.abort(error));
  // A body cut short ("aborted") reaches the meter as an error, which fails the upload.
  opened.body.on('error', (error) =>
    meter.destroy(signal.aborted ? (signal.reason as Error) : failStream(brokenOff(kind, error))),
  );
  opened.body.pipe(meter);

  const key = `${options.prefix}/${objectNameOf(kind)}`;
  const params = {
    Bucket: options.bucket,
    Key: key,
    Body: meter,
    ContentType: sniffed.contentType,
    ContentDisposition: `attachment; filename="${options.invoiceNo}.${kind}.${sniffed.extension}"`,
  };
  // An abort (time budget, a sibling's failure) destroys the download through `signal`, which fails the upload
  // while it still reads the body; an upload already past its last byte finishes, and is then removed with the
  // rest. Aborting the upload request itself instead could let it land after the cleanup.
  try {
    const result =
      opened.contentLength !== undefined && opened.contentLength <= MAX_SINGLE_PUT_BYTES
        ? // The length is declared: one PutObject streams the body through as it arrives, holding no part.
          await options.s3.send(
            new PutObjectCommand({ ...params, ContentLength: opened.contentLength, ...(options.checksums ? { ChecksumAlgorithm: 'SHA256' } : {}) }),
            { abortSignal: bodyFailed.signal },
          )
        : // No length: lib-storage cuts the stream into parts (multipart upload), a few parts in memory at most. A
          // multipart SHA-256 would be a checksum of checksums; a full-object CRC64NVME is one S3 keeps whole.
          await new Upload({
            client: options.s3,
            params: { ...params, ...(options.checksums ? { ChecksumAlgorithm: 'CRC64NVME', ChecksumType: 'FULL_OBJECT' } : {}) },
            ...UPLOAD_SETTINGS,
            leavePartsOnError: false,
          }).done();
    const sha256 = hash.digest();
    const checksum = options.checksums ? await storedChecksum(kind, result, sha256, () => deleteObject(options, key, result.VersionId)) : undefined;
    return { key, bytes, sha256: sha256.toString('hex'), contentType: sniffed.contentType, versionId: result.VersionId, ...(checksum ? { checksum } : {}) };
  } catch (error) {
    opened.body.destroy();
    // A broken or oversized body fails the upload through the meter; then that is the cause worth reporting.
    throw streamFailure ?? error;
  }
}

/**
 * The checksum S3 answered for the stored version. A SHA-256 other than the one of the bytes streamed means S3 holds
 * other bytes: the upload fails (and is tried again, like any S3 failure).
 */
async function storedChecksum(
  kind: FileKind,
  answer: { ChecksumSHA256?: string; ChecksumCRC64NVME?: string },
  sha256: Buffer,
  removeStored: () => Promise<unknown>,
): Promise<S3Checksum> {
  if (answer.ChecksumSHA256 !== undefined) {
    if (answer.ChecksumSHA256 === sha256.toString('base64')) return { algorithm: 'SHA256', value: answer.ChecksumSHA256 };
    // The version is not this file: it goes before anything else is tried.
    await removeStored().catch((error: unknown) => logger.error('file stored with another checksum not removed', { kind, error }));
    throw new Error(`S3 stored the ${kind} file with another SHA-256 than the bytes sent`);
  }
  if (answer.ChecksumCRC64NVME !== undefined) return { algorithm: 'CRC64NVME', value: answer.ChecksumCRC64NVME };
  throw new Error(`S3 answered no checksum for the ${kind} file it stored`);
}

/** Reads at least `count` bytes (fewer if the body is shorter) and puts them back, so the body is untouched. */
async function peek(body: Readable, count: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < count && !body.readableEnded) {
    const chunk = body.read() as Buffer | null;
    if (chunk) {
      chunks.push(chunk);
      length += chunk.length;
      continue;
    }
    await Promise.race([once(body, 'readable'), once(body, 'end')]);
  }
  const head = Buffer.concat(chunks);
  if (head.length > 0) body.unshift(head);
  return head;
}

/**
 * Anything that broke the transfer, in FileFetchError's terms. An abort from outside (the request's time budget, or
 * a sibling file's failure) passes through as its own reason.
 */
function asFetchError(error: unknown, kind: FileKind, signal: AbortSignal, timeoutMs: number): unknown {
  if (error instanceof FileFetchError) return error;
  if (signal.aborted) {
    const reason = signal.reason as unknown;
    if (reason instanceof DOMException && reason.name === 'TimeoutError') {
      return new FileFetchError('timeout', `the ${kind} file did not arrive within ${timeoutMs} ms`, true);
    }
    return reason ?? error;
  }
  return error; // S3's own failure
}

const brokenOff = (kind: FileKind, error: unknown) =>
  new FileFetchError('truncated', `the ${kind} transfer broke off (${(error as Error).message})`, true);
