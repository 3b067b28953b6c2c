import { describe, expect, it } from 'vitest';
import { createLogger } from './log.ts';
import { backoffDelay, retryUntilReady } from './backoff.ts';

describe('backoffDelay', () => {
  it('doubles from the minimum and is capped', () => {
    const noJitter = () => 0;
    expect([0, 1, 2, 3, 4, 5, 50].map((r) => backoffDelay(r, 200, 2000, 0.5, noJitter))).toEqual([200, 400, 800, 1600, 2000, 2000, 2000]);
  });
  it('jitters downwards by at most the given share', () => {
    expect(backoffDelay(0, 500, 30_000, 0.5, () => 1)).toBe(250);
    expect(backoffDelay(20, 500, 30_000, 0.5, () => 1)).toBe(15_000);
    expect(backoffDelay(10, 100, 1000, 0.2, () => 0.999)).toBeGreaterThanOrEqual(800);
    expect(backoffDelay(10, 100, 1000, 0.2, () => 0.999)).toBeLessThanOrEqual(1000);
  });
});

describe('retryUntilReady', () => {
  it('retries a failing start-up step, counting each failure, until it succeeds', async () => {
    let calls = 0;
    const failures: string[] = [];
    const value = await retryUntilReady(
      'connecting',
      async () => {
        calls++;
        if (calls < 3) throw new Error(`refused ${calls}`);
        return 'up';
      },
      { minMs: 1, maxMs: 2, log: createLogger('silent', 'test'), onRetry: (e) => failures.push((e as Error).message) },
    );
    expect(value).toBe('up');
    expect(failures).toEqual(['refused 1', 'refused 2']);
  });
});
