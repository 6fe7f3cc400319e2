/**
 * Frees finished socket-read buffers while large files stream. Each read of a socket gets a fresh buffer that lives
 * outside the JS heap; V8 frees it only when it collects the buffer's small JS wrapper, and it weighs that native
 * memory too lightly to collect soon. Streaming three 100 MB files at once, Node 24 let 70-80 MB of finished
 * buffers pile up (peak RSS 211-220 MB); one full collection per 16 MB streamed brought the peak to 161-173 MB in
 * three runs of `npm run bench`, at a few milliseconds per collection (the handler stayed faster than the baseline).
 *
 * Needs `--expose-gc` (the function's NODE_OPTIONS, runtime-options.ts); without it this does nothing.
 */

export const RECLAIM_EVERY_BYTES = 16 * 1024 * 1024;

let streamedSinceReclaim = 0;

/** Counts bytes streamed by any mirror in this process, collecting garbage each time RECLAIM_EVERY_BYTES pass. */
export function countStreamedBytes(bytes: number, collect: (() => void) | undefined = globalThis.gc): void {
  streamedSinceReclaim += bytes;
  if (streamedSinceReclaim < RECLAIM_EVERY_BYTES) return;
  streamedSinceReclaim = 0;
  collect?.();
}
