import { describe, expect, it } from 'vitest';
import { IdTable } from './id-table.ts';

/** A small deterministic generator (mulberry32), so a failure repeats. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

describe('IdTable', () => {
  it('answers as a Set does through a long run of adds and deletes, ids small, near 2^32 and near 2^53', () => {
    const rnd = random(7);
    const bases = [0, 4_294_967_000, 50_093_239_219, Number.MAX_SAFE_INTEGER - 5_000];
    const table = new IdTable(256);
    const set = new Set<number>();
    const ring: number[] = [];
    for (let step = 0; step < 200_000; step++) {
      // Mostly ids running up (as update ids do), some random ones, deletes of the oldest as the ring is full.
      const base = bases[step % 4 === 0 ? Math.floor(rnd() * 4) : 2]!;
      const id = base + Math.floor(rnd() * 4_000);
      if (id > Number.MAX_SAFE_INTEGER) continue;
      expect(table.has(id)).toBe(set.has(id));
      if (set.has(id)) continue;
      if (ring.length === 256) {
        const old = ring.shift()!;
        table.delete(old);
        set.delete(old);
      }
      table.add(id);
      set.add(id);
      ring.push(id);
      expect(table.size).toBe(set.size);
    }
    for (const id of set) expect(table.has(id)).toBe(true);
    for (let i = 0; i < 10_000; i++) {
      const id = 50_093_239_219 + 10_000 + i;
      expect(table.has(id)).toBe(false);
    }
  });

  it('refuses what is not an id and an add beyond its capacity', () => {
    const table = new IdTable(2);
    expect(table.has(-1)).toBe(false);
    table.delete(-1);
    expect(table.size).toBe(0);
    expect(() => table.add(-1)).toThrow(/not an id/);
    expect(() => table.add(1.5)).toThrow(/not an id/);
    table.add(1);
    table.add(2);
    table.add(2);
    expect(() => table.add(3)).toThrow(/full/);
    table.delete(5);
    table.delete(1);
    table.add(3);
    expect([table.has(1), table.has(2), table.has(3)]).toEqual([false, true, true]);
  });
});
