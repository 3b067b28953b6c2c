import { describe, expect, it } from 'vitest';
import { bucketStart, nextWakeMs, planRefresh } from './schedule.ts';

const T0 = Date.UTC(2024, 7, 8, 23, 55);
const M = 60_000;

describe('planRefresh', () => {
  it('refreshes nothing before a minute has closed past the lateness', () => {
    const p = planRefresh([T0, T0 + M], T0 + M - 1, 10_000, 0); // cutoff = now - lateness
    expect(p.minutes).toEqual([]);
    expect(p.doneBuckets).toEqual([]);
  });

  it('refreshes a minute once its end plus lateness has passed, and leaves the open minute listed', () => {
    const p = planRefresh([T0, T0 + M], T0 + M, 10_000, 0);
    expect(p.minutes).toEqual([{ fromMs: T0, toMs: T0 + M }]);
    expect(p.doneBuckets).toEqual([T0]);
  });

  it('merges contiguous touched minutes (a backfill) and keeps separate ones apart (late ticks)', () => {
    const p = planRefresh([T0 + 5 * M, T0, T0 + M, T0 + M, T0 + 2 * M], T0 + 10 * M, 10_000, 0);
    expect(p.minutes).toEqual([
      { fromMs: T0, toMs: T0 + 3 * M },
      { fromMs: T0 + 5 * M, toMs: T0 + 6 * M },
    ]);
    expect(p.doneBuckets).toEqual([T0, T0 + M, T0 + 2 * M, T0 + 5 * M]);
  });

  it('refreshes the short buckets of the open minute as they close, once each', () => {
    const p1 = planRefresh([], T0 + 25_000, 10_000, 0);
    expect(p1.short).toEqual({ fromMs: T0, toMs: T0 + 20_000 });
    const p2 = planRefresh([], T0 + 29_000, 10_000, T0 + 20_000);
    expect(p2.short).toBeNull();
    const p3 = planRefresh([], T0 + 31_000, 10_000, T0 + 20_000);
    expect(p3.short).toEqual({ fromMs: T0 + 20_000, toMs: T0 + 30_000 });
    // At the minute boundary the short buckets come with the minute window instead.
    expect(planRefresh([T0], T0 + M, 10_000, T0 + 50_000).short).toBeNull();
  });

  it('aligns buckets on the time_bucket origin, also for widths that do not divide a minute', () => {
    expect(bucketStart(T0 + 59_999, M)).toBe(T0);
    expect((bucketStart(T0, 7_000) - Date.UTC(2000, 0, 3)) % 7_000).toBe(0);
  });

  it('wakes at the next short close plus lateness', () => {
    expect(nextWakeMs(T0 + 3_000, 2_000, 10_000)).toBe(T0 + 12_000);
  });
});
