import { describe, expect, it } from 'vitest';
import { recordBatches } from './kafka-records.fixture.ts';
import { RecordList, recordsOf } from './kafka-records.ts';

const values = (list: RecordList): (string | null)[] => Array.from({ length: list.length }, (_, i) => list.value(i)?.toString() ?? null);
const offsets = (list: RecordList): bigint[] => Array.from({ length: list.length }, (_, i) => list.offset(i));
const recs = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ value: Buffer.from(`v${from + i}`) }));

describe('RecordList', () => {
  // zstd too where Node has it (22.15 and later): the same decompressor call.
  for (const compression of ['none', 'lz4', 'gzip', 'snappy'] as const) {
    it(`reads ${compression} batches: offsets, values, keys, null values and headers`, () => {
      const bytes = recordBatches([
        { first: 10n, compression, records: [{ key: Buffer.from('k10'), value: Buffer.from('v10') }, { value: null }, { value: Buffer.from('v12'), headers: { 'schema-version': Buffer.from('1'), x: Buffer.from('y') } }] },
        { first: 13n, compression, records: recs(13, 2) },
      ]);
      const list = new RecordList(bytes, 10n);
      expect(offsets(list)).toEqual([10n, 11n, 12n, 13n, 14n]);
      expect(values(list)).toEqual(['v10', null, 'v12', 'v13', 'v14']);
      expect(list.valueLength(1)).toBe(0);
      expect(list.message(0)).toEqual({ offset: '10', key: Buffer.from('k10'), value: Buffer.from('v10') });
      expect(list.message(1)).toEqual({ offset: '11', key: null, value: null });
      expect(list.message(2)).toEqual({ offset: '12', key: null, value: Buffer.from('v12'), headers: { 'schema-version': Buffer.from('1'), x: Buffer.from('y') } });
      expect(list.header(2, 'schema-version')?.toString()).toBe('1');
      expect(list.header(2, 'other')).toBeUndefined();
      expect(list.header(0, 'schema-version')).toBeUndefined();
      expect(list.last).toBe(14n);
    });
  }

  it('leaves out the records before the asked offset, inside a compressed batch too, and whole batches below it', () => {
    const bytes = recordBatches([
      { first: 0n, records: recs(0, 3) },
      { first: 3n, compression: 'lz4', records: recs(3, 4) },
      { first: 7n, records: recs(7, 1) },
    ]);
    const list = new RecordList(bytes, 5n);
    expect(offsets(list)).toEqual([5n, 6n, 7n]);
    expect(values(list)).toEqual(['v5', 'v6', 'v7']);
    expect(list.last).toBe(7n);
  });

  it('stops before a batch cut short by the response size limit: the next fetch starts there', () => {
    const whole = recordBatches([{ first: 0n, records: recs(0, 2) }]);
    const cut = recordBatches([{ first: 2n, records: recs(2, 2) }]);
    for (const keep of [5, 11, 12, 40, cut.length - 1]) {
      const list = new RecordList(Buffer.concat([whole, cut.subarray(0, keep)]), 0n);
      expect(offsets(list)).toEqual([0n, 1n]);
      expect(list.last).toBe(1n);
    }
  });

  it('an empty records field holds nothing and leaves the position where it was asked', () => {
    const list = new RecordList(Buffer.alloc(0), 42n);
    expect(list.length).toBe(0);
    expect(list.last).toBe(41n);
  });

  it('finds the first record at or after an offset across gaps (compacted or transactional logs)', () => {
    const bytes = recordBatches([
      { first: 100n, records: recs(100, 2) },
      { first: 110n, compression: 'lz4', records: recs(110, 3) },
    ]);
    const list = new RecordList(bytes, 0n);
    expect(offsets(list)).toEqual([100n, 101n, 110n, 111n, 112n]);
    expect([0n, 100n, 101n, 102n, 110n, 112n, 113n].map((o) => list.indexOf(o))).toEqual([0, 0, 1, 2, 2, 4, 5]);
  });

  it('keeps what message() returned when other lz4 batches are read after it (values are views, messages copies)', () => {
    const a = new RecordList(recordBatches([{ first: 0n, compression: 'lz4', records: [{ key: Buffer.from('ka'), value: Buffer.from('value-a'), headers: { h: Buffer.from('ha') } }] }]), 0n);
    const b = new RecordList(recordBatches([{ first: 0n, compression: 'lz4', records: [{ key: Buffer.from('kb'), value: Buffer.from('value-b'), headers: { h: Buffer.from('hb') } }] }]), 0n);
    const kept = a.message(0);
    expect(values(b)).toEqual(['value-b']);
    expect(b.message(0).key?.toString()).toBe('kb');
    expect(kept).toEqual({ offset: '0', key: Buffer.from('ka'), value: Buffer.from('value-a'), headers: { h: Buffer.from('ha') } });
    // a's batch is decompressed again when it is read after b's.
    expect(values(a)).toEqual(['value-a']);
  });

  it('lets its bytes go on release', () => {
    const list = new RecordList(recordBatches([{ first: 0n, records: recs(0, 3) }]), 0n);
    list.release();
    expect(list.length).toBe(0);
    expect(list.last).toBe(2n);
  });

  it('refuses malformed batches with a clear error', () => {
    const good = recordBatches([{ first: 7n, records: recs(7, 2) }]);
    const oldFormat = Buffer.from(good);
    oldFormat.writeInt8(1, 16);
    expect(() => new RecordList(oldFormat, 0n)).toThrow(/offset 7: format v1; only v2/);
    const tooMany = Buffer.from(good);
    tooMany.writeInt32BE(3, 57); // says 3 records, holds 2
    expect(() => new RecordList(tooMany, 0n)).toThrow(/offset 7: record 2 runs past its batch/);
    const longRecord = Buffer.from(good);
    longRecord.writeInt8(0x7e, 61); // first record's length: 63, past the batch
    expect(() => new RecordList(longRecord, 0n)).toThrow(/offset 7: record 0 runs past its batch/);
    const unknownCodec = Buffer.from(good);
    unknownCodec.writeInt16BE(7, 21);
    expect(() => new RecordList(unknownCodec, 0n)).toThrow(/offset 7: unknown compression 7/);
  });

  it("takes a batch's record count only as a claim: a huge one is refused when its records run out, more than the first bound grow the columns", () => {
    const huge = recordBatches([{ first: 7n, records: recs(7, 2) }]);
    huge.writeInt32BE(2_000_000_000, 57);
    expect(() => new RecordList(huge, 0n)).toThrow(/offset 7: record 2 runs past its batch/);
    // More records than the bound the columns start with: they grow and keep every record.
    const many = recordBatches([{ first: 0n, records: Array.from({ length: 140_000 }, () => ({ value: Buffer.from('x') })) }]);
    const list = new RecordList(many, 0n);
    expect([list.length, list.offset(139_999), list.value(139_999)?.toString()]).toEqual([140_000, 139_999n, 'x']);
  });

  it('reads zigzag varints of every width the format allows', () => {
    // Values of 1 to 4 varint bytes for the length (and key lengths up to 3 bytes): every record reads back whole.
    const sizes = [0, 1, 63, 64, 127, 128, 8_191, 8_192, 70_000, 1_048_576 + 3];
    const bytes = recordBatches([{ first: 0n, records: sizes.map((n, i) => ({ key: Buffer.alloc(n % 9_000, 1), value: Buffer.alloc(n, i) })) }]);
    const list = new RecordList(bytes, 0n);
    expect(Array.from({ length: list.length }, (_, i) => list.valueLength(i))).toEqual(sizes);
    for (let i = 0; i < sizes.length; i++) {
      expect(list.value(i)!.every((b) => b === i)).toBe(true);
      expect(list.message(i).key!.length).toBe(sizes[i]! % 9_000);
    }
  });
});

describe('recordsOf', () => {
  it('reads records held as objects through the same interface', () => {
    const r = recordsOf([{ offset: '5', key: null, value: Buffer.from('a'), headers: { h: Buffer.from('1') } }, { offset: '6', key: null, value: null }]);
    expect([r.length, r.offset(1), r.value(0)?.toString(), r.valueLength(1), r.header(0, 'h')?.toString(), r.header(1, 'h')]).toEqual([2, 6n, 'a', 0, '1', undefined]);
  });
});
