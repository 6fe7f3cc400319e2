/**
 * `node:stream/web` as the functions' bundles see it (infra/function-build.ts aliases it here): Node's global
 * ReadableStream, the very class that module exports. @middy/core imports it only to recognise a streamed
 * response, and loading the module itself also loads Node's stream adapters, compression and encoding streams:
 * about 2 ms of every cold start (docs/measurements.md, "Cold start"). A name not exported here fails the build.
 */
export const { ReadableStream } = globalThis;
