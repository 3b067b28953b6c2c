import { describe, expect, it } from 'vitest';
import { decodeTick, encodeRecord, RecordError, type Tick, type TickType } from '../common/records.ts';
import { fieldCases, sampleWith } from '../common/tick-schema.fixture.ts';
import { compareDecimals, TICK_TYPES, tickColumns } from '../common/tick-schema.ts';
import { capturesMissing, mixedTicks } from '../test/capture-ticks.ts';
import { CopyBinaryEncoder } from './copy-binary.ts';
import { checkWritable, COLUMNS, TABLE_OF } from './copy-rows.ts';
import { familyCodec } from './families.ts';
import { compareDecimalsAt } from './decimal-text.ts';
import { CopyRowBuffer, RowBufferPool, TickRowWriter } from './tick-rows.ts';

/** CopyBinaryEncoder's rows of these ticks. */
function binaryRows(ticks: readonly Tick[]): Buffer {
  const enc = new CopyBinaryEncoder();
  const out = new CopyRowBuffer(16, 1);
  for (const t of ticks) enc.row(t, out);
  return Buffer.from(out.bytes());
}

/** The full path: what the writer stores for these bytes (its row in hex), or the dead letter's reason. */
function fullPath(family: TickType, value: Buffer): { row: string } | { reason: string } {
  try {
    const t = decodeTick(value, undefined);
    if (t.type !== family) return { reason: 'wrong type' };
    checkWritable(t);
    return { row: binaryRows([t]).toString('hex') };
  } catch (err) {
    if (err instanceof RecordError) return { reason: err.message };
    throw err;
  }
}

function fastPath(family: TickType, value: Buffer): string | null {
  const out = new CopyRowBuffer(16, 1);
  if (!new TickRowWriter(family).row(value, out)) {
    expect(out.pos).toBe(0); // a declined record appends nothing
    return null;
  }
  return out.bytes().toString('hex');
}

const trade = Buffer.from(
  '{"type":"trade","exchange":"binance","market":"spot","symbol":"BTCUSDT","receiveTimeUs":1723161254087896,"tradeId":3735683259,' +
    '"price":"61837.63000000","quantity":"0.02000000","buyerIsMaker":true,"side":"sell","exchangeTimeMs":1723161255342,"eventTimeMs":1723161255343,"v":1}',
);
const aggTrade = Buffer.from(
  '{"type":"aggTrade","exchange":"binance","market":"usdm","symbol":"ETHUSDT","receiveTimeUs":1723161254087896,"aggId":42,"firstTradeId":100,' +
    '"lastTradeId":103,"price":"2612.1","quantity":"3","buyerIsMaker":false,"side":"buy","exchangeTimeMs":1723161255342,"eventTimeMs":1723161255343,"v":1}',
);
const bookTicker = Buffer.from(
  '{"type":"bookTicker","exchange":"binance","market":"spot","symbol":"ETHUSDT","receiveTimeUs":1723161254116723,"updateId":50093239219,' +
    '"bidPrice":"2612.10","bidQty":"3.78826000","askPrice":"2612.11","askQty":"0","exchangeTimeMs":null,"eventTimeMs":null,"v":1}',
);
const SAMPLES: ReadonlyArray<[TickType, Buffer]> = [
  ['trade', trade],
  ['aggTrade', aggTrade],
  ['bookTicker', bookTicker],
];

describe('TickRowWriter', () => {
  it('writes the rows CopyBinaryEncoder writes, byte for byte', () => {
    for (const [family, value] of SAMPLES) {
      const full = fullPath(family, value);
      expect(full).toHaveProperty('row');
      expect(fastPath(family, value)).toBe((full as { row: string }).row);
    }
  });

  it.skipIf(capturesMissing())('takes every recorded tick, in any field order, with the same row and times', () => {
    const ticks = mixedTicks(60_000);
    const writers = { trade: new TickRowWriter('trade'), aggTrade: new TickRowWriter('aggTrade'), bookTicker: new TickRowWriter('bookTicker') };
    const out = new CopyRowBuffer(1024, 16);
    let declined = 0;
    for (const [i, t] of ticks.entries()) {
      // Every other record with its fields in reverse order and without the version: the fast path keys on names.
      const value = i % 2 === 0 ? encodeRecord(t) : Buffer.from(JSON.stringify(Object.fromEntries(Object.entries(t).reverse())));
      if (!writers[t.type].row(value, out)) declined++;
    }
    expect(declined).toBe(0);
    expect(out.times.count).toBe(ticks.length);
    const expected = binaryRows(ticks);
    expect(out.pos).toBe(expected.length);
    // The first differing byte (-1: none), rather than a diff of megabytes.
    expect(out.bytes().findIndex((byte, i) => byte !== expected[i])).toBe(-1);
    expect([...out.times.receiveUs.subarray(0, ticks.length)]).toEqual(ticks.map((t) => t.receiveTimeUs));
    expect([...out.times.exchangeMs.subarray(0, ticks.length)]).toEqual(ticks.map((t) => t.exchangeTimeMs ?? NaN));
  });

  it('formats times across second, day and year boundaries', () => {
    for (const ms of [Date.UTC(2024, 11, 31, 23, 59, 59, 999), Date.UTC(2025, 0, 1), Date.UTC(2025, 0, 1, 0, 0, 0, 7)]) {
      const t: Tick = { ...(decodeTick(trade, undefined) as Tick & { type: 'trade' }), exchangeTimeMs: ms, eventTimeMs: ms + 1, receiveTimeUs: ms * 1000 + 999 };
      const row = fastPath('trade', encodeRecord(t));
      expect(row).toBe(binaryRows([t]).toString('hex'));
    }
  });

  // Every edit below must end in the same place on both paths: either the fast path declines it (the full path decides)
  // or it takes it and writes exactly the row the full path writes.
  const edits: ReadonlyArray<[string, (s: string) => string]> = [
    ['wrong version', (s) => s.replace('"v":1', '"v":2')],
    ['version as string', (s) => s.replace('"v":1', '"v":"1"')],
    ['no version', (s) => s.replace(',"v":1', '')],
    ['duplicate key', (s) => s.replace('"v":1', '"v":1,"v":1')],
    ['unknown key', (s) => s.replace('"v":1', '"v":1,"extra":"x"')],
    ['venueSymbol', (s) => s.replace('"v":1', '"v":1,"venueSymbol":"BTCUSDT"')],
    ['whitespace', (s) => s.replace('":', '": ')],
    ['trailing whitespace', (s) => `${s} `],
    ['escaped symbol', (s) => s.replace(/"symbol":"([A-Z]+)"/, '"symbol":"\\u0042$1"')],
    ['lower-case symbol', (s) => s.replace(/"symbol":"([A-Z]+)"/, '"symbol":"btcusdt"')],
    ['long symbol', (s) => s.replace(/"symbol":"([A-Z]+)"/, '"symbol":"ABCDEFGHIJKLMNOPQRSTU"')],
    ['coinbase', (s) => s.replace('"binance"', '"coinbase"').replace(/"symbol":"([A-Z]+)"/, '"symbol":"BTC-USD"').replace('usdm', 'spot')],
    ['market', (s) => s.replace(/"market":"\w+"/, '"market":"coinm"')],
    ['type', (s) => s.replace(/"type":"\w+"/, '"type":"trade"')],
    ['negative id', (s) => s.replace(/(Id|aggId)":(\d)/, '$1":-$2')],
    ['leading zero', (s) => s.replace(/"receiveTimeUs":/, '"receiveTimeUs":0')],
    ['exponent', (s) => s.replace(/"receiveTimeUs":(\d+)/, '"receiveTimeUs":1.723161254087896e15')],
    ['fraction', (s) => s.replace(/"receiveTimeUs":(\d+)/, '"receiveTimeUs":$1.0')],
    ['unsafe integer', (s) => s.replace(/"receiveTimeUs":(\d+)/, '"receiveTimeUs":9007199254740993')],
    ['17 digits', (s) => s.replace(/"receiveTimeUs":(\d+)/, '"receiveTimeUs":17231612540878960')],
    ['zero time', (s) => s.replace(/"receiveTimeUs":(\d+)/, '"receiveTimeUs":0')],
    ['time before 2000', (s) => s.replace(/"receiveTimeUs":(\d+)/, '"receiveTimeUs":946684799999999')],
    ['time at 2000', (s) => s.replace(/"receiveTimeUs":(\d+)/, '"receiveTimeUs":946684800000000')],
    ['time in 2100', (s) => s.replace(/"exchangeTimeMs":(\d+)/, '"exchangeTimeMs":4102444800000')],
    ['time as string', (s) => s.replace(/"eventTimeMs":(\d+)/, '"eventTimeMs":"$1"')],
    ['null time', (s) => s.replace(/"eventTimeMs":\d+/, '"eventTimeMs":null')],
    ['time set', (s) => s.replace(/"exchangeTimeMs":null/, '"exchangeTimeMs":1723161255342')],
    ['zero price', (s) => s.replace(/"(price|bidPrice)":"[\d.]+"/, '"$1":"0.000"')],
    ['price without digits after the point', (s) => s.replace(/"(price|bidPrice)":"[\d.]+"/, '"$1":"12."')],
    ['price with 19 decimals', (s) => s.replace(/"(price|bidPrice)":"[\d.]+"/, '"$1":"1.0000000000000000001"')],
    ['price with 21 digits', (s) => s.replace(/"(price|bidPrice)":"[\d.]+"/, '"$1":"123456789012345678901"')],
    ['price as number', (s) => s.replace(/"(price|bidPrice)":"([\d.]+)"/, '"$1":$2')],
    ['negative quantity', (s) => s.replace(/"(quantity|askQty)":"/, '"$1":"-')],
    ['side mismatch', (s) => s.replace('"side":"sell"', '"side":"buy"').replace('"side":"buy"', '"side":"sell"')],
    ['buyerIsMaker as string', (s) => s.replace(/"buyerIsMaker":(true|false)/, '"buyerIsMaker":"$1"')],
    ['first above last', (s) => s.replace('"firstTradeId":100', '"firstTradeId":104')],
    ['missing field', (s) => s.replace(/"(tradeId|lastTradeId|updateId)":\d+,/, '')],
    ['nested', (s) => s.replace('"v":1', '"v":1,"x":{"a":1}')],
    ['array', (s) => `[${s}]`],
    ['truncated', (s) => s.slice(0, -5)],
    ['tab in side', (s) => s.replace(/"side":"(\w+)"/, '"side":"$1\t"')],
    ['zero quantity with decimals', (s) => s.replace(/"(quantity|askQty)":"[\d.]+"/, '"$1":"0.00000000"')],
    ['leading zeros', (s) => s.replace(/"(price|bidPrice)":"([\d.]+)"/, '"$1":"000$2"')],
    ['18 decimals', (s) => s.replace(/"(price|bidPrice)":"[\d.]+"/, '"$1":"0.000000000000000001"')],
    // bid and ask alike: a bid above the ask is a crossed book, declined
    ['20 integer digits', (s) => s.replace(/"(price|bidPrice|askPrice)":"[\d.]+"/g, '"$1":"12345678901234567890.123456789012345678"')],
    ['integer quantity', (s) => s.replace(/"(quantity|askQty)":"[\d.]+"/, '"$1":"10000"')],
    ['largest safe id', (s) => s.replace(/"(tradeId|aggId|updateId)":\d+/, '"$1":9007199254740991')],
  ];

  for (const [name, edit] of edits) {
    it(`edit '${name}': declined, or the same row as the full path`, () => {
      for (const [family, value] of SAMPLES) {
        const edited = Buffer.from(edit(value.toString()));
        const fast = fastPath(family, edited);
        if (fast === null) continue;
        expect(fullPath(family, edited)).toEqual({ row: fast });
      }
    });
  }

  it('takes edge-case decimals and ids, with the full path row', () => {
    const taken = ['zero quantity with decimals', 'leading zeros', '18 decimals', '20 integer digits', 'integer quantity', 'largest safe id'];
    for (const name of taken) {
      const edit = edits.find(([n]) => n === name)![1];
      for (const [family, value] of SAMPLES) {
        const edited = Buffer.from(edit(value.toString()));
        expect(edited.equals(value), `${name} changes the ${family} sample`).toBe(false);
        const fast = fastPath(family, edited);
        expect(fast, `${name} on ${family}`).not.toBeNull();
        expect(fullPath(family, edited)).toEqual({ row: fast });
      }
    }
  });

  it('keeps the row of records it takes with the fields reordered and the version gone', () => {
    const reordered = Buffer.from(JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(trade.toString())).reverse().filter(([k]) => k !== 'v'))));
    expect(fastPath('trade', reordered)).toBe(fastPath('trade', trade));
  });

  it('survives random byte damage: declined, or the same row as the full path', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    const alphabet = Buffer.from('0123456789.-+eE"{}[],:\\ tnrufalsN\tABCz\u00e9');
    for (let k = 0; k < 20_000; k++) {
      const [family, value] = SAMPLES[k % SAMPLES.length]!;
      const b = Buffer.from(value);
      for (let j = 0, n = 1 + rand(3); j < n; j++) b[rand(b.length)] = alphabet[rand(alphabet.length)]!;
      const fast = fastPath(family, b);
      if (fast !== null) expect(fullPath(family, b)).toEqual({ row: fast });
    }
  });
});

describe('the writer against the tick schema', () => {
  it('COPYs the columns of the schema, in its order', () => {
    for (const type of TICK_TYPES) expect(COLUMNS[TABLE_OF[type]], type).toEqual(tickColumns(type));
  });

  for (const type of TICK_TYPES) {
    it(`the fast path takes what the full path stores and declines what it refuses: ${type}, field by field`, () => {
      for (const { field, value, expect: want } of fieldCases(type)) {
        const what = `${type}.${field.name} = ${JSON.stringify(value)}`;
        const bytes = sampleWith(type, field.name, value);
        const fast = fastPath(type, bytes);
        const full = fullPath(type, bytes);
        if (want === 'valid') {
          expect(fast, what).not.toBeNull();
          expect(full, what).toEqual({ row: fast });
        } else {
          expect(fast, what).toBeNull();
          expect(full, what).toHaveProperty('reason');
        }
      }
    });
  }
});

describe('tick family runs', () => {
  it('writes good records through either path and refuses poison with the full path reason, adding nothing', () => {
    const run = familyCodec('trade').run(4, 1024);
    run.add(trade, undefined);
    run.add(trade, '1'); // the version header of records produced before it moved into the value
    expect(() => run.add(Buffer.from(trade.toString().replace('"v":1', '"v":1,"venueSymbol":"BTCUSDT"')), undefined)).not.toThrow();
    expect(() => run.add(trade, '2')).toThrow('unsupported schema version 2');
    expect(() => run.add(Buffer.from(trade.toString().replace('"side":"sell"', '"side":"buy"')), undefined)).toThrow('side must match buyerIsMaker');
    expect(() => run.add(bookTicker, undefined)).toThrow('a bookTicker record on the trade topic');
    expect(() => run.add(Buffer.from('not json'), undefined)).toThrow('value is not JSON');
    expect(() => run.add(null, undefined)).toThrow('empty record value');
    const { tables, times } = run.finish();
    const t = decodeTick(trade, undefined);
    expect(tables).toEqual([{ table: 'trades', rows: binaryRows([t, t, t]), count: 3 }]);
    expect(times.count).toBe(3);
    expect(times.newestMs).toBe(1723161255342);
  });

  it('grows past the size it was given', () => {
    const run = familyCodec('bookTicker').run(1, 10);
    for (let i = 0; i < 100; i++) run.add(bookTicker, undefined);
    const { tables, times } = run.finish();
    expect(tables[0]!.rows).toEqual(binaryRows(Array<Tick>(100).fill(decodeTick(bookTicker, undefined))));
    expect(times.count).toBe(100);
    expect(Number.isNaN(times.exchangeMs[99])).toBe(true);
    expect(times.newestMs).toBe(Math.floor(1723161254116723 / 1000));
  });
});

describe('row buffers of committed runs', () => {
  it('go to the next run of the family, emptied; a run not released keeps its own', () => {
    const codec = familyCodec('trade');
    const t = decodeTick(trade, undefined);
    const first = codec.run(4, 10_000); // a buffer of its own (not in Buffer's shared pool)
    for (let i = 0; i < 3; i++) first.add(trade, undefined);
    const a = first.finish();
    const open = codec.run(1, 256).finish(); // while `a` is not released
    expect(open.tables[0]!.rows.buffer).not.toBe(a.tables[0]!.rows.buffer);
    a.release!();
    const second = codec.run(1, 256);
    second.add(trade, undefined);
    const b = second.finish();
    expect(b.tables[0]!.rows.buffer).toBe(a.tables[0]!.rows.buffer);
    expect(b.tables).toEqual([{ table: 'trades', rows: binaryRows([t]), count: 1 }]);
    expect(b.times.count).toBe(1);
    expect(b.times.newestMs).toBe(1723161255342);
  });

  it('are kept up to a bound: three per family and 6 MiB together, the largest first, and only when large enough', () => {
    const pool = new RowBufferPool();
    const sizes = [1_000, 5_000, 2_000, 3_000, 8 * 1024 * 1024];
    const made = sizes.map((n) => pool.take(n, 1));
    made.forEach((b) => pool.give(b));
    expect(made).not.toContain(pool.take(6_000, 1)); // the huge one was not kept, nothing else is large enough
    const kept = [pool.take(1, 1), pool.take(1, 1), pool.take(1, 1)];
    expect(kept.map((b) => b.buf.length)).toEqual([5_000, 3_000, 2_000]);
    expect(made).not.toContain(pool.take(1, 1)); // empty now: a new one
    const mb = (n: number) => pool.take(n * 1024 * 1024, 1);
    [mb(4), mb(3), mb(1)].forEach((b) => pool.give(b));
    expect([pool.take(1, 1), pool.take(1, 1)].map((b) => b.buf.length / 2 ** 20)).toEqual([4, 1]); // 4 + 3 would pass 6
  });
});

describe('compareDecimalsAt', () => {
  it('orders decimal bytes exactly as compareDecimals orders the strings', () => {
    const digits = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 10)).join('');
    const decimal = () => `${digits(1 + Math.floor(Math.random() * 4))}${Math.random() < 0.7 ? `.${digits(1 + Math.floor(Math.random() * 5))}` : ''}`;
    for (let i = 0; i < 20_000; i++) {
      const a = decimal();
      const b = Math.random() < 0.2 ? a : decimal();
      const bytes = Buffer.from(`${a}|${b}`);
      expect(compareDecimalsAt(bytes, 0, a.length, a.length + 1, bytes.length), `${a} vs ${b}`).toBe(compareDecimals(a, b));
    }
  });
});

