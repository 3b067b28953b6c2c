import { describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { fetchSettings, planBatches } from './batching.ts';

describe('planBatches', () => {
  it('cuts by rows', () => {
    expect(planBatches([1, 1, 1, 1, 1], { rows: 2, bytes: 1e9 })).toEqual([
      [0, 2],
      [2, 4],
      [4, 5],
    ]);
  });
  it('cuts by bytes, never exceeding the bound except for a single oversized record', () => {
    expect(planBatches([4, 4, 4, 20, 1], { rows: 100, bytes: 10 })).toEqual([
      [0, 2],
      [2, 3],
      [3, 4],
      [4, 5],
    ]);
  });
  it('covers every item exactly once, in order', () => {
    const sizes = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 97);
    const runs = planBatches(sizes, { rows: 33, bytes: 500 });
    let next = 0;
    for (const [a, b] of runs) {
      expect(a).toBe(next);
      expect(b - a).toBeLessThanOrEqual(33);
      expect(b).toBeGreaterThan(a);
      next = b;
    }
    expect(next).toBe(1000);
  });
  it('returns nothing for nothing', () => {
    expect(planBatches([], { rows: 1, bytes: 1 })).toEqual([]);
  });
});

describe('fetchSettings', () => {
  it('maps the time bound onto the fetch wait and splits the fetch bound between the partitions', () => {
    const c = loadConfig({ BATCH_MAX_WAIT_MS: '100', WRITER_FETCH_MAX_BYTES: '2000000', WRITER_FETCH_MIN_BYTES: '65536' });
    expect(fetchSettings(c.writer, 3)).toEqual({ minBytes: 65536, maxBytes: 2000000, maxBytesPerPartition: 666667, maxWaitTimeInMs: 100 });
    expect(fetchSettings(c.writer, 1).maxBytesPerPartition).toBe(2000000);
  });
  it('never waits for more than one fetch can hold', () => {
    const c = loadConfig({ WRITER_FETCH_MAX_BYTES: '4096', WRITER_FETCH_MIN_BYTES: '65536' });
    expect(fetchSettings(c.writer, 3).minBytes).toBe(4096);
  });
});
