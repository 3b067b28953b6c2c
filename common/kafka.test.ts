import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { cachedKeyPartitioner } from './kafka.ts';

const meta = (n: number): PartitionMetadata[] =>
  Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: i === 1 ? -1 : 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));

describe('cachedKeyPartitioner', () => {
  it('places every key exactly where the default partitioner does, also after the partition count changes', () => {
    const reference = Partitioners.DefaultPartitioner();
    const cached = cachedKeyPartitioner();
    const keys = Array.from({ length: 500 }, (_, i) => Buffer.from(`binance:spot:SYM${i}USDT`));
    const placed = new Set<number>();
    for (const n of [3, 3, 7, 1, 12]) {
      for (const key of keys) {
        const args = { topic: 't', partitionMetadata: meta(n), message: { key, value: null } };
        const p = cached(args);
        expect(p).toBe(reference(args));
        placed.add(p);
      }
    }
    expect(placed.size).toBe(12); // the keys spread: not one constant partition
  });

  it('honours an explicit partition', () => {
    const cached = cachedKeyPartitioner();
    const key = Buffer.from('binance:spot:BTCUSDT');
    expect(cached({ topic: 't', partitionMetadata: meta(8), message: { key, value: null, partition: 5 } })).toBe(5);
  });
});
