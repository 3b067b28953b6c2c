import { describe, expect, it } from 'vitest';
import { jumpHash, shardOf, shardSymbols } from './shard.ts';

const symbols = Array.from({ length: 2000 }, (_, i) => `S${i.toString(36).toUpperCase()}USDT`);

describe('shardOf', () => {
  it('is deterministic and within range', () => {
    for (const s of symbols.slice(0, 200)) {
      const a = shardOf(s, 7);
      expect(a).toBe(shardOf(s, 7));
      expect(a).toBe(shardOf(s.toLowerCase(), 7));
      expect(a).toBeGreaterThanOrEqual(0);
      expect(a).toBeLessThan(7);
    }
    expect(shardOf('BTCUSDT', 1)).toBe(0);
    // Pinned: a change of the hash would move the symbols of every running deployment.
    expect(['BTCUSDT', 'ETHUSDT', 'BNBUSDT', 'SOLUSDT', 'XRPUSDT', 'DOGEUSDT'].map((s) => shardOf(s, 4))).toEqual([3, 3, 0, 2, 1, 0]);
  });

  it('balances: every shard within 15% of the mean over 2000 symbols', () => {
    for (const n of [2, 3, 4, 8]) {
      const counts = new Array<number>(n).fill(0);
      for (const s of symbols) counts[shardOf(s, n)]!++;
      const mean = symbols.length / n;
      for (const c of counts) expect(Math.abs(c - mean) / mean).toBeLessThan(0.15);
    }
  });

  it('splits a list into disjoint shards that cover it', () => {
    const parts = [0, 1, 2].map((index) => shardSymbols(symbols, { index, count: 3 }));
    expect(parts.flat().sort()).toEqual([...symbols].sort());
    expect(new Set(parts.flat()).size).toBe(symbols.length);
  });

  it('is stable under a change of the list: listing or delisting moves no other symbol', () => {
    const before = new Map(symbols.map((s) => [s, shardOf(s, 4)]));
    const changed = [...symbols.slice(100), 'NEWCOINUSDT', 'OTHERUSDT'];
    const part = (list: string[], i: number) => new Set(shardSymbols(list, { index: i, count: 4 }));
    for (let i = 0; i < 4; i++) for (const s of part(changed, i)) if (before.has(s)) expect(before.get(s)).toBe(i);
  });

  it('moves about 1/(N+1) of the symbols when a shard is added', () => {
    const moved = symbols.filter((s) => shardOf(s, 4) !== shardOf(s, 5)).length / symbols.length;
    expect(moved).toBeGreaterThan(0.12);
    expect(moved).toBeLessThan(0.28);
    // Those that move go to the new shard.
    for (const s of symbols) if (shardOf(s, 4) !== shardOf(s, 5)) expect(shardOf(s, 5)).toBe(4);
  });

  it('jumpHash gives the values of other implementations of the paper', () => {
    // Test vectors of Microsoft's JumpConsistentHash (TypeScript) tests.
    expect(jumpHash(10863919174838991n, 11)).toBe(6);
    expect(jumpHash(2016238256797177309n, 11)).toBe(3);
    expect(jumpHash(0n, 10)).toBe(0);
  });
});
