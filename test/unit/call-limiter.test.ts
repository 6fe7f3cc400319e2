import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { callLimiter } from '#shared/sweep';

/**
 * The sweep's limiter on fake timers: time moves only when the test advances it, so "at once" and "10 ms later"
 * are exact. 6000 calls per minute is one start every 10 ms.
 */

type Slot = { release: () => void };

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-11-22T08:00:00Z') });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Asks for a slot that starts, and keeps it in `granted` once given. */
function request(limiter: ReturnType<typeof callLimiter>, granted: Slot[]): Promise<Slot | undefined> {
  return limiter.slot(() => true).then((slot) => {
    if (slot) granted.push(slot);
    return slot;
  });
}

describe('the limit on concurrent jobs and on the call rate of a sweep', () => {
  it('never gives out more than `concurrency` slots at once', async () => {
    // Prepare
    const limiter = callLimiter({ concurrency: 2, callsPerMinute: 6000 });
    const granted: Slot[] = [];
    // Act
    for (let i = 0; i < 5; i++) void request(limiter, granted);
    await vi.advanceTimersByTimeAsync(1000);
    // Assess
    expect(granted).toHaveLength(2);
    granted[0]!.release();
    await vi.advanceTimersByTimeAsync(1000);
    expect(granted).toHaveLength(3);
    granted[1]!.release();
    granted[2]!.release();
    await vi.advanceTimersByTimeAsync(1000);
    expect(granted).toHaveLength(5);
  });

  it('spaces starts asked one after another by 60 s / callsPerMinute', async () => {
    // Prepare
    const limiter = callLimiter({ concurrency: 5, callsPerMinute: 6000 });
    const startedAt: number[] = [];
    // Act
    const starting = (async () => {
      for (let i = 0; i < 4; i++) {
        // The last ask of a slot (no wait left) is its start.
        await limiter.slot((delayMs) => {
          if (delayMs === 0) startedAt.push(Date.now());
          return true;
        });
      }
    })();
    await vi.advanceTimersByTimeAsync(1000);
    await starting;
    // Assess
    const t0 = startedAt[0]!;
    expect(startedAt).toEqual([t0, t0 + 10, t0 + 20, t0 + 30]);
  });

  it('spaces starts asked at the same time by 60 s / callsPerMinute', async () => {
    // Prepare
    const limiter = callLimiter({ concurrency: 3, callsPerMinute: 6000 });
    const startedAt: number[] = [];
    // Act
    const starting = Promise.all(
      [1, 2, 3].map(() =>
        limiter.slot((delayMs) => {
          if (delayMs === 0) startedAt.push(Date.now());
          return true;
        }),
      ),
    );
    await vi.advanceTimersByTimeAsync(1000);
    await starting;
    // Assess
    const t0 = startedAt[0]!;
    expect(startedAt).toEqual([t0, t0 + 10, t0 + 20]);
  });

  it('returns undefined when the job may not start, and gives its place to the next one waiting', async () => {
    // Prepare
    const limiter = callLimiter({ concurrency: 1, callsPerMinute: 6000 });
    const granted: Slot[] = [];
    (await request(limiter, granted))!.release(); // the next start is 10 ms away
    // Act
    const refused = limiter.slot(() => false);
    const next = request(limiter, granted); // waits for the refused one's place
    await vi.advanceTimersByTimeAsync(1000);
    // Assess
    await expect(refused).resolves.toBeUndefined();
    await expect(next).resolves.toEqual({ release: expect.any(Function) });
    expect(granted).toHaveLength(2);
  });

  it('frees one place only when a slot is released twice', async () => {
    // Prepare
    const limiter = callLimiter({ concurrency: 2, callsPerMinute: 6000 });
    const granted: Slot[] = [];
    for (let i = 0; i < 4; i++) void request(limiter, granted);
    await vi.advanceTimersByTimeAsync(1000);
    expect(granted).toHaveLength(2);
    // Act
    granted[0]!.release();
    granted[0]!.release();
    await vi.advanceTimersByTimeAsync(1000);
    // Assess
    expect(granted).toHaveLength(3);
    granted[1]!.release();
    await vi.advanceTimersByTimeAsync(1000);
    expect(granted).toHaveLength(4);
  });
});
