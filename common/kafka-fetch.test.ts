import { IS_CONTROL, IS_TRANSACTIONAL } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { fetchedBatches, type FetchResponse } from './kafka-fetch.ts';

/** One batch of `n` records from `first`, of producer `pid`. */
const batch = (first: bigint, n: number, pid: bigint, attributes: number) => ({
  firstOffset: first, lastOffsetDelta: n - 1, producerId: pid, attributes,
  records: Array.from({ length: attributes & IS_CONTROL ? 1 : n }, (_, i) => ({ offsetDelta: i, key: null, value: Buffer.from(`${pid}:${first + BigInt(i)}`), headers: [] })),
});

const response = (records: ReturnType<typeof batch>[], abortedTransactions: { producerId: bigint; firstOffset: bigint }[]) =>
  ({ responses: [{ topicId: 'id', partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 100n, abortedTransactions, records }] }] }) as unknown as FetchResponse;

describe('fetchedBatches (read_committed)', () => {
  it('leaves out the batches of aborted transactions and every control batch, and keeps the committed ones', () => {
    const T = IS_TRANSACTIONAL;
    const r = response(
      [
        batch(0n, 2, 7n, T), // producer 7: aborted (marker at 4)
        batch(2n, 2, 8n, T), // producer 8: committed (marker at 5)
        batch(4n, 1, 7n, T | IS_CONTROL),
        batch(5n, 1, 8n, T | IS_CONTROL),
        batch(6n, 2, 7n, T), // producer 7's next transaction: committed (marker at 8)
        batch(8n, 1, 7n, T | IS_CONTROL),
        batch(9n, 1, 9n, 0), // not transactional
      ],
      [{ producerId: 7n, firstOffset: 0n }],
    );
    const [b] = fetchedBatches(r, new Map([['id', 't']]), new Map([['t:0', { offset: 0n }]]));
    expect(b!.messages.map((m) => m.value!.toString())).toEqual(['8:2', '8:3', '7:6', '7:7', '9:9']);
    expect(b!.lastOffset()).toBe('9');
  });
});
