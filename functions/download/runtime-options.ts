/**
 * NODE_OPTIONS of the download function, shared by the stack and `npm run bench` so that what is measured is what
 * is deployed. Streaming files allocates little on the JS heap but much outside it (one buffer per socket read),
 * and those buffers are freed only when V8 collects their small JS wrappers.
 * - `--max-semi-space-size=1`: a small young generation collects the wrappers sooner.
 * - `--expose-gc`: lets the mirror ask for a collection every so many streamed bytes (see reclaim.ts); Node 24
 *   otherwise lets about 80 MB of finished read buffers pile up while three 100 MB files stream.
 */
export const DOWNLOAD_NODE_OPTIONS = '--enable-source-maps --max-semi-space-size=1 --expose-gc';
