import { describe, expect, it, vi } from 'vitest';
import { countStreamedBytes, RECLAIM_EVERY_BYTES } from '../../functions/download/reclaim.ts';

describe('reclaiming socket-read buffers while files stream', () => {
  it('collects once each time RECLAIM_EVERY_BYTES have streamed, counting across files', () => {
    const collect = vi.fn();
    const chunk = 64 * 1024;
    const chunksPerReclaim = RECLAIM_EVERY_BYTES / chunk;
    for (let i = 0; i < chunksPerReclaim - 1; i++) countStreamedBytes(chunk, collect);
    expect(collect).not.toHaveBeenCalled();
    countStreamedBytes(chunk, collect);
    expect(collect).toHaveBeenCalledTimes(1);
    for (let i = 0; i < 2 * chunksPerReclaim; i++) countStreamedBytes(chunk, collect);
    expect(collect).toHaveBeenCalledTimes(3);
  });

  it('does nothing when garbage collection is not exposed', () => {
    expect(() => countStreamedBytes(RECLAIM_EVERY_BYTES, undefined)).not.toThrow();
  });
});
