/**
 * NODE_OPTIONS of the download function, shared by the stack and `npm run bench` so that what is measured is what
 * is deployed. Streaming files allocates little on the JS heap but much outside it (one buffer per socket read),
 * and those buffers are freed only when V8 collects their small JS wrappers in the young generation. A 1 MB
 * semi-space collects them sooner: the peak RSS of three concurrent 100 MB files drops by about 40 MB.
 */
export const DOWNLOAD_NODE_OPTIONS = '--enable-source-maps --max-semi-space-size=1';
