/**
 * What mirroring a new invoice loads, at the first invoice an instance mirrors and not at cold start: the attempt
 * (mirror-attempt.ts), Jumdata's client, the staging with the fetcher and the upload (archive-stage.ts), and the
 * XML reader. One module for all of it on purpose: esbuild puts each module the cold start shares with a module
 * behind import() into a chunk per set of such importers, and every file the cold start reads costs about 0.4 ms
 * (docs/measurements.md, "Cold start"). Few import() targets keep that to a few files.
 */
export { stageInvoice } from './archive-stage.ts';
export { readInvoiceXml } from './invoice-xml.ts';
export { mirrorOnce } from './mirror-attempt.ts';
export { createJumdataClient } from '#shared/providers/jumdata';
