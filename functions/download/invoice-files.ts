import type { InvoiceFileLinks } from '#shared/providers/jumdata';

/**
 * An invoice's three files as the archive names and records them: what every module that reads the archive needs,
 * apart from mirror.ts, which streams them (and is loaded only when an invoice is mirrored).
 */

export type FileKind = keyof InvoiceFileLinks;
export const FILE_KINDS: readonly FileKind[] = ['pdf', 'ofd', 'xml'];

export interface MirroredFile {
  key: string;
  bytes: number;
  sha256: string;
  contentType: string;
  versionId?: string;
  /** The checksum S3 keeps with the version (S3_CHECKSUMS on): the audit compares it without reading the file. */
  checksum?: S3Checksum;
}

/** As S3 gives it: base64. SHA-256 for one PutObject; CRC64NVME of the whole object for a multipart upload. */
export interface S3Checksum {
  algorithm: 'SHA256' | 'CRC64NVME';
  value: string;
}

/** The two formats Jumdata's links serve. */
export type FileFormat = 'pdf' | 'zip';

export const FORMATS: Record<FileFormat, { contentType: string; extension: string }> = {
  pdf: { contentType: 'application/pdf', extension: 'pdf' },
  zip: { contentType: 'application/zip', extension: 'zip' },
};

/**
 * What each slot must hold: Jumdata's pdfFile is a PDF, its ofdFile and xmlFile are zips (an OFD is itself a zip
 * container, and the XML comes zipped). A file of the other format in a slot is as wrong as an HTML error page:
 * stored, it would be served under a name and type that lie about it.
 */
export const SLOT_FORMATS: Readonly<Record<FileKind, FileFormat>> = { pdf: 'pdf', ofd: 'zip', xml: 'zip' };

/** The object name of a slot's file within its invoice's folder: what any attempt stores it under. */
export const objectNameOf = (kind: FileKind) => `${kind}.${FORMATS[SLOT_FORMATS[kind]].extension}`;
