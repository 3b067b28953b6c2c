import { describe, expect, it } from 'vitest';
import { AttemptLimiter, backoffDelay } from './backoff.ts';

describe('backoff', () => {
  it('doubles from the minimum, stays within [ceiling/2, ceiling] and is capped', () => {
    expect(backoffDelay(0, 500, 30_000, () => 0)).toBe(250);
    expect(backoffDelay(0, 500, 30_000, () => 1)).toBe(500);
    expect(backoffDelay(3, 500, 30_000, () => 1)).toBe(4000);
    expect(backoffDelay(20, 500, 30_000, () => 1)).toBe(30_000);
    expect(backoffDelay(20, 500, 30_000, () => 0)).toBe(15_000);
  });

  it('limits connection attempts per sliding window', () => {
    const l = new AttemptLimiter(3, 1000);
    for (const t of [0, 10, 20]) {
      expect(l.waitMs(t)).toBe(0);
      l.record(t);
    }
    expect(l.waitMs(30)).toBe(970);
    expect(l.waitMs(1000)).toBe(0);
  });
});
