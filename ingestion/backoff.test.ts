import { describe, expect, it } from 'vitest';
import { AttemptLimiter } from './backoff.ts';

describe('backoff', () => {
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
