// The producer's record queue: values come back byte for byte (UTF-8, records larger than a chunk), in order, across
// acknowledgements that free chunks and compact the per-record arrays; bytes are counted exactly.
import { describe, expect, it } from 'vitest';
import { RecordQueue } from './record-queue.ts';

const text = (i: number) => JSON.stringify({ type: 'trade', i, symbol: i % 7 === 0 ? 'ÉTH€USDT' : 'BTCUSDT', pad: 'x'.repeat(i % 300) });

describe('RecordQueue', () => {
  it('hands back every record in order, byte for byte, through acknowledgements of any size', () => {
    const q = new RecordQueue();
    const keys = [Buffer.from('binance:spot:BTCUSDT'), Buffer.from('binance:spot:ETHUSDT')];
    let produced = 0;
    let acked = 0;
    let expectedBytes = 0;
    const sizes = [1, 2_000, 7, 30_000, 3, 12_345];
    for (let round = 0; round < 6; round++) {
      for (let j = 0; j < 20_000; j++, produced++) {
        const t = text(produced);
        q.push(produced % 2 ? 'aggtrades' : 'trades', keys[produced % 2]!, t, produced);
        expectedBytes += keys[produced % 2]!.length + Buffer.byteLength(t);
      }
      const n = Math.min(sizes[round]!, q.length);
      const ms = q.messages(n);
      ms.forEach((m, k) => {
        const i = acked + k;
        expect(m.value.toString()).toBe(text(i));
        expect(m.topic).toBe(i % 2 ? 'aggtrades' : 'trades');
        expect(m.key).toBe(keys[i % 2]);
      });
      const seen: number[] = [];
      const freed = q.acknowledge(n, (_t, us) => seen.push(us));
      expect(seen).toEqual(Array.from({ length: n }, (_, k) => acked + k));
      expect(freed).toBe(ms.reduce((s, m) => s + m.key.length + m.value.length, 0));
      expectedBytes -= freed;
      acked += n;
      expect(q.length).toBe(produced - acked);
      expect(q.bytes).toBe(expectedBytes);
    }
    // Drain: the rest comes back in order, then the queue is empty and its bytes zero.
    while (q.length > 0) {
      const n = Math.min(5_000, q.length);
      q.messages(n).forEach((m, k) => expect(m.value.toString()).toBe(text(acked + k)));
      q.acknowledge(n, () => {});
      acked += n;
    }
    expect(q.bytes).toBe(0);
    // Reused after being emptied.
    q.push('trades', keys[0]!, text(1), 1);
    expect(q.messages(1)[0]!.value.toString()).toBe(text(1));
  });

  it('keeps a record larger than a chunk whole', () => {
    const q = new RecordQueue();
    const big = JSON.stringify({ raw: 'é'.repeat(400_000) });
    q.push('deadletter', Buffer.from('k'), 'small', 0);
    q.push('deadletter', Buffer.from('k'), big, 0);
    const [a, b] = q.messages(2);
    expect(a!.value.toString()).toBe('small');
    expect(b!.value.toString()).toBe(big);
  });
});
