import { compatibilityPartitioner } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { cachedKeyPartitioner } from './kafka.ts';

// Partitions kafkajs 2.2.4's DefaultPartitioner (Java's murmur2 partitioner) gave these keys with 3, 7 and 12
// partitions, recorded from kafkajs before it was removed: existing topics must keep every key where it was.
const KAFKAJS_PLACEMENT: Record<string, [number, number, number]> = {
  'binance:spot:BTCUSDT': [0, 5, 6],
  'binance:spot:ETHUSDT': [2, 4, 5],
  'binance:spot:SOLUSDT': [0, 1, 0],
  'binance:usdm:BTCUSDT': [1, 4, 10],
  'coinbase:spot:BTC-USD': [1, 1, 7],
  'gemini:spot:BTCUSD': [0, 0, 9],
  writer: [2, 5, 2],
  k0: [2, 2, 5],
  k1: [2, 0, 5],
  'binance:spot:SYM0USDT': [1, 6, 4],
  'binance:spot:SYM499USDT': [0, 1, 6],
  'é-ünïcode': [2, 3, 5],
};

/** What the client does with a partitioner's answer: modulo the topic's partition count. */
const place = (hash: number, partitions: number) => hash % partitions;
const message = { topic: 't' };

describe('cachedKeyPartitioner', () => {
  it('places every key exactly where kafkajs default partitioner did', () => {
    const cached = cachedKeyPartitioner();
    for (const [k, expected] of Object.entries(KAFKAJS_PLACEMENT)) {
      const key = Buffer.from(k);
      expect([3, 7, 12].map((n) => place(cached(message, key), n)), k).toEqual(expected);
      // Asked again with the same Buffer: the remembered hash, the same placement.
      expect([3, 7, 12].map((n) => place(cached(message, key), n)), k).toEqual(expected);
    }
  });

  it("agrees with the client's Java-compatible partitioner on many keys, and spreads them", () => {
    const cached = cachedKeyPartitioner();
    const placed = new Set<number>();
    for (let i = 0; i < 2_000; i++) {
      const key = Buffer.from(`binance:spot:SYM${i}USDT`);
      const h = cached(message, key);
      expect(h).toBe(compatibilityPartitioner(message, key));
      expect(h).toBeGreaterThanOrEqual(0);
      placed.add(place(h, 12));
    }
    expect(placed.size).toBe(12); // the keys spread: not one constant partition
  });

  it('gives keyless records partition 0 (every product record has a key)', () => {
    expect(cachedKeyPartitioner()(message, undefined)).toBe(0);
  });
});
