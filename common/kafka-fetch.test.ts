import { describe, expect, it } from 'vitest';
import { fetchedBatches, type FetchResponse } from './kafka-fetch.ts';
import { recordBatches, type BatchSpec } from './kafka-records.fixture.ts';

/** One batch of `n` records from `first`, of producer `pid`; each value `pid:offset`. */
const batch = (first: bigint, n: number, pid: bigint, kind: 'plain' | 'transactional' | 'control'): BatchSpec => ({
  first,
  producerId: pid,
  transactional: kind !== 'plain',
  control: kind === 'control',
  records: Array.from({ length: kind === 'control' ? 1 : n }, (_, i) => ({ value: Buffer.from(`${pid}:${first + BigInt(i)}`) })),
});

const response = (batches: BatchSpec[], abortedTransactions: { producerId: bigint; firstOffset: bigint }[]): FetchResponse => ({
  errorCode: 0,
  responses: [{ topicId: 'id', partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 100n, abortedTransactions, records: recordBatches(batches) }] }],
});

describe('fetchedBatches (read_committed)', () => {
  it('leaves out the batches of aborted transactions and every control batch, and keeps the committed ones', () => {
    const r = response(
      [
        batch(0n, 2, 7n, 'transactional'), // producer 7: aborted (marker at 4)
        batch(2n, 2, 8n, 'transactional'), // producer 8: committed (marker at 5)
        batch(4n, 1, 7n, 'control'),
        batch(5n, 1, 8n, 'control'),
        batch(6n, 2, 7n, 'transactional'), // producer 7's next transaction: committed (marker at 8)
        batch(8n, 1, 7n, 'control'),
        batch(9n, 1, 9n, 'plain'), // not transactional
      ],
      [{ producerId: 7n, firstOffset: 0n }],
    );
    const [b] = fetchedBatches(r, new Map([['id', 't']]), new Map([['t:0', { offset: 0n }]]));
    expect(Array.from({ length: b!.records.length }, (_, i) => b!.records.value(i)!.toString())).toEqual(['8:2', '8:3', '7:6', '7:7', '9:9']);
    expect(b!.lastOffset()).toBe('9');
  });

  it('a fetch of only control records hands out an empty batch whose last offset steps over them', () => {
    const [b] = fetchedBatches(response([batch(3n, 1, 7n, 'control')], []), new Map([['id', 't']]), new Map([['t:0', { offset: 3n }]]));
    expect([b!.records.length, b!.lastOffset()]).toEqual([0, '3']);
  });
});
