// The producer's record queue: values come back byte for byte (UTF-8, records larger than a chunk), in order, across
// acknowledgements that free chunks and compact the per-record arrays; bytes are counted exactly.
import { describe, expect, it } from 'vitest';
import { Reader, readRecord } from '@platformatic/kafka';
import { KEYS_MAX, RecordQueue } from './record-queue.ts';

/** The first n queued records as the client's reader decodes the encoded batches: topic, key and value per record. */
function decoded(q: RecordQueue, n: number, partitions = 1): { topic: string; partition: number; key: Buffer; value: Buffer }[] {
  const out: { topic: string; partition: number; key: Buffer; value: Buffer }[] = [];
  for (const e of q.encode(n, (_t, key) => key[key.length - 1]! % partitions)) {
    const reader = Reader.from(e.records);
    for (let i = 0; i < e.count; i++) {
      const r = readRecord(reader);
      expect(r.offsetDelta).toBe(i);
      expect(r.timestampDelta).toBe(0n);
      expect(r.headers).toEqual([]);
      out.push({ topic: e.topic, partition: e.partition, key: r.key!, value: r.value! });
    }
    expect(reader.remaining).toBe(0);
  }
  return out;
}
const ofTopic = (topic: string) => (m: { topic: string }) => m.topic === topic;

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
      const ms = decoded(q, n);
      // One batch per topic (one partition here), each in queue order.
      const want = Array.from({ length: n }, (_, k) => acked + k);
      for (const [topic, parity] of [['trades', 0], ['aggtrades', 1]] as const) {
        const got = ms.filter(ofTopic(topic));
        const expected = want.filter((i) => i % 2 === parity);
        expect(got.map((m) => m.value.toString())).toEqual(expected.map(text));
        for (const m of got) expect(m.key.equals(keys[parity]!)).toBe(true);
      }
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
      const want = Array.from({ length: n }, (_, k) => acked + k);
      const ms = decoded(q, n);
      expect(ms.filter(ofTopic('trades')).map((m) => m.value.toString())).toEqual(want.filter((i) => i % 2 === 0).map(text));
      expect(ms.filter(ofTopic('aggtrades')).map((m) => m.value.toString())).toEqual(want.filter((i) => i % 2 === 1).map(text));
      q.acknowledge(n, () => {});
      acked += n;
    }
    expect(q.bytes).toBe(0);
    // Reused after being emptied.
    q.push('trades', keys[0]!, text(1), 1);
    expect(decoded(q, 1)[0]!.value.toString()).toBe(text(1));
  });

  it('wraps around its ring, grows while wrapped and shrinks once empty, records and receive times in order', () => {
    const q = new RecordQueue();
    const key = Buffer.from('binance:spot:BTCUSDT');
    const slots = () => (q as unknown as { topicOf: Int32Array }).topicOf.length;
    let produced = 0;
    let acked = 0;
    const ack = (n: number) => {
      const values = decoded(q, n).map((m) => m.value.toString());
      expect(values).toEqual(Array.from({ length: n }, (_, k) => text(acked + k)));
      const times: number[] = [];
      q.acknowledge(n, (_t, us) => times.push(us));
      expect(times).toEqual(Array.from({ length: n }, (_, k) => 1.7e15 + acked + k));
      acked += n;
    };
    const push = (n: number) => {
      for (let i = 0; i < n; i++, produced++) q.push('trades', key, text(produced), 1.7e15 + produced);
    };
    // About 3,000 queued at any time: the ring of 4,096 wraps over and over without growing.
    push(3_000);
    for (let round = 0; round < 20; round++) {
      push(1_000);
      ack(1_000);
    }
    expect(slots()).toBe(4_096);
    // Then 10,000 more while wrapped: it grows, the oldest first.
    push(10_000);
    expect(slots()).toBe(16_384);
    ack(7_000);
    push(5_000);
    ack(q.length);
    expect(acked).toBe(produced);
    expect(q.bytes).toBe(0);
    expect(slots()).toBe(4_096);
  });

  it('keeps a record larger than a chunk whole', () => {
    const q = new RecordQueue();
    const big = JSON.stringify({ raw: 'é'.repeat(400_000) });
    q.push('deadletter', Buffer.from('k'), 'small', 0);
    q.push('deadletter', Buffer.from('k'), big, 0);
    const [a, b] = decoded(q, 2);
    expect(a!.value.toString()).toBe('small');
    expect(b!.value.toString()).toBe(big);
  });

  it("puts each record in its key's partition, each key's records in order", () => {
    const q = new RecordQueue();
    const keys = Array.from({ length: 10 }, (_, i) => Buffer.from(`binance:spot:SYM${i}USDT`));
    for (let i = 0; i < 5_000; i++) q.push('trades', keys[(i * 7) % 10]!, `{"i":${i}}`, i);
    const ms = decoded(q, 4_000, 3);
    expect(ms).toHaveLength(4_000);
    for (const key of keys) {
      const mine = ms.filter((m) => m.key.equals(key));
      expect(new Set(mine.map((m) => m.partition))).toEqual(new Set([key[key.length - 1]! % 3]));
      const order = mine.map((m) => (JSON.parse(m.value.toString()) as { i: number }).i);
      expect(order).toEqual([...order].sort((a, b) => a - b));
      expect(order.length).toBe(400);
    }
  });

  it('keeps no more than its bound of keys while it never empties (keys from outside, e.g. dead letters)', () => {
    const q = new RecordQueue();
    const keysOf = () => (q as unknown as { keys: Buffer[] }).keys.length;
    let acked = 0;
    for (let i = 0; i < 40_000; i++) {
      q.push('deadletter', Buffer.from(`stream-${i}`), `{"i":${i}}`, i);
      if (q.length > 100) {
        q.acknowledge(50, () => {});
        acked += 50;
      }
    }
    expect(q.length).toBeGreaterThan(0);
    expect(keysOf()).toBeLessThanOrEqual(KEYS_MAX + 1);
    // The queued records still carry their own keys.
    const rest = decoded(q, q.length);
    expect(rest.map((m) => m.key.toString())).toEqual(rest.map((m) => `stream-${(JSON.parse(m.value.toString()) as { i: number }).i}`));
    expect(rest[0]!.value.toString()).toBe(`{"i":${acked}}`);
  });

  it('queues values a writer puts in place beside text ones, and nothing for a value the writer declines', () => {
    const q = new RecordQueue();
    const key = Buffer.from('binance:spot:BTCUSDT');
    // Writes "<n>" for even n and declines odd n, after scribbling over its room.
    const write = (n: number, b: Buffer, o: number) => {
      b.fill(0x21, o, o + 64);
      if (n % 2) return -1;
      return o + b.write(`<${n}>`, o, 'latin1');
    };
    let expectedBytes = 0;
    const expected: string[] = [];
    for (let i = 0; i < 30_000; i++) {
      // Enough records to fill several chunks with the room each written value asks for.
      if (q.pushWritten('trades', key, i, write, 64, i)) {
        expect(i % 2).toBe(0);
        expected.push(`<${i}>`);
        expectedBytes += key.length + `<${i}>`.length;
      } else {
        q.push('trades', key, `text ${i}`, i);
        expected.push(`text ${i}`);
        expectedBytes += key.length + `text ${i}`.length;
      }
    }
    expect(q.length).toBe(30_000);
    expect(q.bytes).toBe(expectedBytes);
    expect(decoded(q, q.length).map((m) => m.value.toString())).toEqual(expected);
  });

  it('reuses freed chunks instead of allocating new ones while records flow through, values intact', () => {
    const q = new RecordQueue();
    const key = Buffer.from('binance:spot:BTCUSDT');
    const seen = new Set<Buffer>();
    const chunks = () => (q as unknown as { chunks: Buffer[] }).chunks;
    let produced = 0;
    let acked = 0;
    for (let round = 0; round < 40; round++) {
      // About 1 MB in, then all but the newest 1,000 records acknowledged and checked.
      for (let j = 0; j < 4_000; j++) q.push('trades', key, text(produced++), produced);
      for (const c of chunks()) seen.add(c);
      const n = q.length - 1_000;
      const values = decoded(q, n).map((m) => m.value.toString());
      expect(values[0]).toBe(text(acked));
      expect(values.at(-1)).toBe(text(acked + n - 1));
      q.acknowledge(n, () => {});
      acked += n;
    }
    // 40 MB went through; the chunks ever used are what was live at once plus the spares.
    expect(produced).toBe(160_000);
    expect(seen.size).toBeLessThan(20);
  });

  it('encodes every request into one kept buffer, the groups side by side, and lets a huge one go', () => {
    const q = new RecordQueue();
    const keys = [Buffer.from('binance:spot:BTCUSDT'), Buffer.from('binance:spot:ETHUSDT')];
    for (let i = 0; i < 2_000; i++) q.push(i % 3 ? 'trades' : 'aggtrades', keys[i % 2]!, text(i), i);
    const byKey = (_t: string, key: Buffer) => key[13]! % 2; // B(TC) and E(TH)
    const first = q.encode(1_000, byKey);
    expect(first).toHaveLength(4);
    expect(new Set(first.map((e) => e.records.buffer)).size).toBe(1);
    const ends = first.map((e) => [e.records.byteOffset, e.records.byteOffset + e.records.length]).sort((a, b) => a[0]! - b[0]!);
    for (let i = 1; i < ends.length; i++) expect(ends[i]![0]).toBe(ends[i - 1]![1]); // side by side, not overlapping
    expect(q.encode(500, byKey)[0]!.records.buffer).toBe(first[0]!.records.buffer);
    // Past 4 MiB a request's buffer is its own, and the kept one stays.
    const big = new RecordQueue();
    big.push('trades', keys[0]!, 'x'.repeat(5 * 1024 * 1024), 0);
    big.push('trades', keys[0]!, 'small', 1);
    const huge = big.encode(2, byKey)[0]!.records;
    expect(big.encode(1, byKey)[0]!.records.buffer).not.toBe(huge.buffer);
  });
});
