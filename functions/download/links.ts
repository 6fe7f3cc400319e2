import { createHmac, timingSafeEqual } from 'node:crypto';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { taxNumSchema } from '#shared/validation';
import * as z from '#shared/zod';

/**
 * The two kinds of link to a mirrored file: a presigned S3 URL made per request (short-lived: it dies with the
 * function's credentials anyway), and a durable link to GET /files/... that carries its own HMAC, so a browser or
 * the ERP can open it without AWS credentials for as long as the file exists.
 */

/** The part of a durable link that its signature covers. */
export const linkPath = (taxNum: string, invoiceNo: string, kind: string) =>
  `/files/${encodeURIComponent(taxNum)}/${encodeURIComponent(invoiceNo)}/${encodeURIComponent(kind)}`;

export function linkSignature(key: string, taxNum: string, invoiceNo: string, kind: string): string {
  return createHmac('sha256', key).update(`${taxNum}/${invoiceNo}/${kind}`, 'utf8').digest('base64url');
}

export function durableLink(baseUrl: string, key: string, taxNum: string, invoiceNo: string, kind: string): string {
  const signature = linkSignature(key, taxNum, invoiceNo, kind);
  return `${baseUrl.replace(/\/+$/, '')}${linkPath(taxNum, invoiceNo, kind)}?sig=${signature}`;
}

/**
 * A durable link as GET /files/{taxNum}/{invoiceNo}/{kind}?sig=... receives it. The tax number's check character is
 * not checked: the HMAC the link carries already vouches for the whole path. Built at the first such request
 * (z.lazy), not at import: most instances never answer one.
 */
export const fileLinkSchema = z.lazy(() =>
  z.object({
    taxNum: taxNumSchema(false),
    invoiceNo: z.string({ error: 'is required and must be a string' }).check(z.regex(/^(\d{20}|\d{8})$/, { error: 'must be 20 digits (数电) or 8 digits' })),
    kind: z.enum(['pdf', 'ofd', 'xml'], { error: "must be 'pdf', 'ofd' or 'xml'" }),
    sig: z.string({ error: 'is required: use the link from a download response' }).check(z.minLength(1)),
  }),
);

/** Constant-time check of a link's signature. */
export function isValidLinkSignature(key: string, taxNum: string, invoiceNo: string, kind: string, given: string): boolean {
  const expected = Buffer.from(linkSignature(key, taxNum, invoiceNo, kind));
  const actual = Buffer.from(given);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export interface PresignedLink {
  url: string;
  expiresAt: string;
}

export async function presignGet(s3: S3Client, bucket: string, key: string, expiresInSeconds: number): Promise<PresignedLink> {
  const expiresAt = new Date(Date.now() + expiresInSeconds * 1000).toISOString();
  const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: expiresInSeconds });
  return { url, expiresAt };
}
