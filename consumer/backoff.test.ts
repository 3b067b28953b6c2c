import { describe, expect, it } from 'vitest';
import { retryDelayMs } from './backoff.ts';

describe('retryDelayMs', () => {
  it('doubles from the minimum and stays under the cap', () => {
    const noJitter = () => 0;
    expect([1, 2, 3, 4, 5, 6, 50].map((a) => retryDelayMs(a, 200, 2000, noJitter))).toEqual([200, 400, 800, 1600, 2000, 2000, 2000]);
  });
  it('jitters downwards by at most 20%', () => {
    expect(retryDelayMs(10, 100, 1000, () => 0.999)).toBeGreaterThanOrEqual(800);
    expect(retryDelayMs(10, 100, 1000, () => 0.999)).toBeLessThanOrEqual(1000);
  });
});
