import type { S3Client } from '@aws-sdk/client-s3';
import type { DownloadQuery } from '#shared/providers/jumdata';
import type { StoredInvoice } from './archive.ts';
import { durableLink, presignGet } from './links.ts';
import { FILE_KINDS } from './invoice-files.ts';

export interface LinkSettings {
  s3: S3Client;
  bucket: string;
  linkKey: string;
  /** Base URL of the API, for durable links. */
  baseUrl: string;
  presignSeconds: number;
}

/**
 * The 200 body of POST /download: the invoice, and for each file fresh presigned URLs and its durable link. An
 * invoice stored earlier under another issue date or direction than `asked` says so in `notice`: the stored one is
 * the invoice (Jumdata was not asked again).
 */
export async function presentInvoice(record: StoredInvoice, fromCache: boolean, links: LinkSettings, asked?: DownloadQuery) {
  const files = await Promise.all(
    FILE_KINDS.map(async (kind) => {
      const file = record.files[kind];
      const presigned = await presignGet(links.s3, links.bucket, file.key, links.presignSeconds);
      return [
        kind,
        {
          ...presigned,
          link: durableLink(links.baseUrl, links.linkKey, record.taxNum, record.invoiceNo, kind),
          bytes: file.bytes,
          sha256: file.sha256,
          contentType: file.contentType,
        },
      ] as const;
    }),
  );
  return {
    taxNum: record.taxNum,
    invoiceNo: record.invoiceNo,
    issueDate: record.issueDate,
    direction: record.direction,
    fromCache,
    mirroredAt: record.mirroredAt,
    invoice: record.invoice,
    ...(record.checks ? { checks: record.checks } : {}),
    files: Object.fromEntries(files),
    ...noticeOf(record, asked),
  };
}

function noticeOf(record: StoredInvoice, asked: DownloadQuery | undefined): { notice?: string } {
  const differ = (['issueDate', 'direction'] as const).filter((field) => asked && asked[field] !== record[field]);
  if (differ.length === 0) return {};
  const stored = differ.map((field) => `${field} ${record[field]}`).join(', ');
  return { notice: `this invoice is stored with ${stored}, not as asked; the stored invoice is answered` };
}
