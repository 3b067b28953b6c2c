// Record batches written by the product, read back by the client's own reader (as a consumer would): header fields,
// CRC-32C, lz4 and every record byte for byte, lengths across the varint size boundaries.
import { compressionsAlgorithms, jsCRC32C, Reader, readRecordsBatch } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { LZ4, nextSequence, recordSize, sealBatch, varintSize, writeRecord } from './kafka-batch.ts';

function encode(values: Buffer[], key: Buffer): Buffer {
  const size = values.reduce((s, v, i) => s + recordSize(key.length, v.length, i), 0);
  const out = Buffer.alloc(size);
  let pos = 0;
  // Each value read from the middle of a larger buffer, as the queue's chunks hold them.
  values.forEach((v, i) => (pos = writeRecord(out, pos, i, key, Buffer.concat([Buffer.from('xx'), v, Buffer.from('yy')]), 2, v.length)));
  expect(pos).toBe(size);
  return out;
}

describe('record batches', () => {
  const key = Buffer.from('binance:spot:BTCUSDT');
  // Lengths around 63/64 and 8191/8192 (where a zigzag varint grows a byte), empty, and past 2^20.
  const lengths = [0, 1, 63, 64, 65, 200, 8191, 8192, 8193, 1_100_000];
  const values = lengths.map((n, i) => Buffer.alloc(n, 97 + i));

  it('is read back by the client: header, records and CRC', () => {
    for (const compress of [false, true]) {
      const records = encode(values, key);
      const body = compress ? (compressionsAlgorithms.lz4.compressSync(records) as Buffer) : records;
      const batch = sealBatch(body, values.length, 1_723_161_254_087, compress ? LZ4 : 0, { producerId: 4242n, producerEpoch: 7, baseSequence: 2 ** 31 - 3 });
      const b = readRecordsBatch(Reader.from(batch));
      expect(b.firstOffset).toBe(0n);
      expect(b.length).toBe(batch.length - 12);
      expect(b.magic).toBe(2);
      expect(b.attributes).toBe(compress ? 3 : 0);
      expect(b.lastOffsetDelta).toBe(values.length - 1);
      expect(b.firstTimestamp).toBe(1_723_161_254_087n);
      expect(b.maxTimestamp).toBe(1_723_161_254_087n);
      expect(b.producerId).toBe(4242n);
      expect(b.producerEpoch).toBe(7);
      expect(b.firstSequence).toBe(2 ** 31 - 3);
      expect(b.crc).toBe(jsCRC32C(batch.subarray(21)));
      expect(b.records.map((r) => r.value!.equals(values[r.offsetDelta]!))).toEqual(values.map(() => true));
      expect(b.records.every((r) => r.key!.equals(key) && r.timestampDelta === 0n && r.headers.length === 0)).toBe(true);
    }
  });

  it('sizes zigzag varints as Kafka writes them', () => {
    expect([0, 63, 64, 8191, 8192, 2 ** 20 - 1, 2 ** 20, 2 ** 27, 2 ** 30].map(varintSize)).toEqual([1, 1, 2, 2, 3, 3, 4, 5, 5]);
  });

  it('wraps sequence numbers after 2^31 - 1 as Kafka does', () => {
    expect(nextSequence(5, 10)).toBe(15);
    expect(nextSequence(2 ** 31 - 3, 5)).toBe(2);
  });
});
