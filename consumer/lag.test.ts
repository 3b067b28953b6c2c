import { describe, expect, it } from 'vitest';
import { computeLag } from './lag.ts';

describe('computeLag', () => {
  it('counts messages between the high watermark and the next offset to write', () => {
    expect(computeLag({ highWatermark: 150n, nextOffset: 100n, newestSeenMs: 10_000, newestWrittenMs: 7_500 })).toEqual({
      messages: 50,
      seconds: 2.5,
    });
  });
  it('is zero when caught up, whatever the clocks say', () => {
    expect(computeLag({ highWatermark: 100n, nextOffset: 100n, newestSeenMs: 10_000, newestWrittenMs: 7_500 })).toEqual({
      messages: 0,
      seconds: 0,
    });
  });
  it('is unknown (zero) before the position is known', () => {
    expect(computeLag({ highWatermark: 100n, nextOffset: null, newestSeenMs: null, newestWrittenMs: null })).toEqual({ messages: 0, seconds: 0 });
  });
  it('never goes negative', () => {
    expect(computeLag({ highWatermark: 90n, nextOffset: 100n, newestSeenMs: 1, newestWrittenMs: 5 })).toEqual({ messages: 0, seconds: 0 });
    expect(computeLag({ highWatermark: 110n, nextOffset: 100n, newestSeenMs: 1, newestWrittenMs: 5 })).toEqual({ messages: 10, seconds: 0 });
  });
});
