import { describe, expect, it } from 'vitest';
import type { AggTrade, BookTicker, Trade } from '../common/records.ts';
import {
  COPY_BINARY_HEADER,
  COPY_BINARY_TRAILER,
  CopyBinaryEncoder,
  int8Field,
  numericField,
  numericFieldOf,
  timeMsField,
  timeUsField,
} from './copy-binary.ts';
import { COLUMNS } from './copy-rows.ts';
import { CopyRowBuffer } from './tick-rows.ts';

/** A numeric field as PostgreSQL reads it (numeric_recv). */
function readNumeric(b: Buffer, p = 0): { len: number; ndigits: number; weight: number; sign: number; dscale: number; digits: number[] } {
  const len = b.readInt32BE(p);
  const ndigits = b.readInt16BE(p + 4);
  const digits = [];
  for (let i = 0; i < ndigits; i++) digits.push(b.readInt16BE(p + 12 + 2 * i));
  return { len, ndigits, weight: b.readInt16BE(p + 6), sign: b.readUInt16BE(p + 8), dscale: b.readInt16BE(p + 10), digits };
}

/** The text PostgreSQL's numeric_out gives for that value: every base-10000 digit expanded, then cut to dscale. */
function numericText(n: ReturnType<typeof readNumeric>): string {
  const digitAt = (w: number) => {
    const i = n.weight - w; // the base-10000 digit of 10000^w
    return i >= 0 && i < n.ndigits ? n.digits[i]! : 0;
  };
  let int = '';
  for (let w = Math.max(n.weight, 0); w >= 0; w--) int += String(digitAt(w)).padStart(4, '0');
  int = int.replace(/^0+(?=\d)/, '');
  let frac = '';
  for (let w = -1; frac.length < n.dscale; w--) frac += String(digitAt(w)).padStart(4, '0');
  return n.dscale > 0 ? `${int}.${frac.slice(0, n.dscale)}` : int;
}

function encode(decimal: string): Buffer {
  const o = Buffer.alloc(16 + decimal.length * 2);
  const end = numericFieldOf(decimal, o, 0);
  return o.subarray(0, end);
}

/** What `::text` prints for a decimal: the integer part without leading zeros, the fraction as given. */
const canonical = (d: string) => d.replace(/^0+(?=\d)/, '');

describe('numeric fields', () => {
  it('encodes known values exactly as PostgreSQL stores them', () => {
    const cases: Array<[string, { ndigits: number; weight: number; dscale: number; digits: number[] }]> = [
      ['0', { ndigits: 0, weight: 0, dscale: 0, digits: [] }],
      ['0.00000000', { ndigits: 0, weight: 0, dscale: 8, digits: [] }],
      ['000', { ndigits: 0, weight: 0, dscale: 0, digits: [] }],
      ['1', { ndigits: 1, weight: 0, dscale: 0, digits: [1] }],
      ['9999', { ndigits: 1, weight: 0, dscale: 0, digits: [9999] }],
      ['10000', { ndigits: 1, weight: 1, dscale: 0, digits: [1] }],
      ['10001', { ndigits: 2, weight: 1, dscale: 0, digits: [1, 1] }],
      ['0.0001', { ndigits: 1, weight: -1, dscale: 4, digits: [1] }],
      ['0.00001', { ndigits: 1, weight: -2, dscale: 5, digits: [1000] }],
      ['0.5', { ndigits: 1, weight: -1, dscale: 1, digits: [5000] }],
      ['61837.63000000', { ndigits: 3, weight: 1, dscale: 8, digits: [6, 1837, 6300] }],
      ['0.02000000', { ndigits: 1, weight: -1, dscale: 8, digits: [200] }],
      ['2612.10', { ndigits: 2, weight: 0, dscale: 2, digits: [2612, 1000] }],
      ['0.000000000000000001', { ndigits: 1, weight: -5, dscale: 18, digits: [100] }],
      ['12345678901234567890', { ndigits: 5, weight: 4, dscale: 0, digits: [1234, 5678, 9012, 3456, 7890] }],
      ['00012.340', { ndigits: 2, weight: 0, dscale: 3, digits: [12, 3400] }],
      ['100000000.00000001', { ndigits: 5, weight: 2, dscale: 8, digits: [1, 0, 0, 0, 1] }],
    ];
    for (const [decimal, want] of cases) {
      const n = readNumeric(encode(decimal));
      expect({ decimal, ...n }).toEqual({ decimal, len: 8 + 2 * want.ndigits, sign: 0, ...want });
    }
  });

  it('gives back the exchange text, decimals and trailing zeros included, for every shape of decimal', () => {
    const decimals = [
      '0', '0.0', '0.00000000', '0.000000000000000000', '1', '1.0', '1.00000000', '10', '100', '1000', '10000', '100000', '00000001',
      '0.1', '0.01', '0.001', '0.0001', '0.00001', '0.000000000000000001', '0.100000000000000000', '123456789.123456789',
      '99999999999999999999', '99999999999999999999.999999999999999999', '10000000000000000000', '12345678901234567890.123456789012345678',
      '61837.63000000', '0.00010000', '2612.10', '1.23400', '0000.0001', '9999.9999', '10000.0001', '50000', '0.5',
    ];
    let seed = 11;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let k = 0; k < 20_000; k++) {
      // 1..20 integer digits (leading zeros allowed, as isDecimal allows them) and 0..18 decimals, zeros favoured.
      const digit = () => (rand(3) === 0 ? '0' : String(rand(10)));
      let d = '';
      for (let i = 0, n = 1 + rand(20); i < n; i++) d += digit();
      const f = rand(19);
      if (f > 0) {
        d += '.';
        for (let i = 0; i < f; i++) d += digit();
      }
      decimals.push(d);
    }
    for (const d of decimals) {
      const n = readNumeric(encode(d));
      expect({ d, text: numericText(n) }).toEqual({ d, text: canonical(d) });
      // Stored as PostgreSQL stores it: no leading or trailing zero digit, zero has no digits and weight 0.
      if (n.ndigits > 0) expect(n.digits[0] !== 0 && n.digits.at(-1) !== 0, d).toBe(true);
      else expect(n.weight, d).toBe(0);
      expect(n.digits.every((x) => x >= 0 && x < 10_000)).toBe(true);
    }
  });

  it('reads a decimal in the middle of a buffer and writes where it is told', () => {
    const src = Buffer.from('{"price":"61837.63000000"}');
    const o = Buffer.alloc(40, 0xee);
    const end = numericField(src, 10, 24, o, 3);
    expect(o[2]).toBe(0xee);
    expect(end).toBe(3 + 4 + 14);
    expect(o.subarray(3, end)).toEqual(encode('61837.63000000'));
    expect(o[end]).toBe(0xee);
  });

  it('refuses anything but a plain decimal', () => {
    for (const bad of ['', '.5', '1.', '-1', '+1', '1e5', '1.2.3', ' 1', '1,5', 'NaN', '١']) {
      expect(() => encode(bad), bad).toThrow('not a plain decimal');
    }
  });
});

describe('int8 and timestamptz fields', () => {
  it('writes big-endian two’s complement with length 8', () => {
    const o = Buffer.alloc(12);
    for (const v of [0, 1, 255, 2 ** 32 - 1, 2 ** 32, 3735683259, 50093239219, Number.MAX_SAFE_INTEGER, -1, -(2 ** 32), Number.MIN_SAFE_INTEGER]) {
      expect(int8Field(o, 0, v)).toBe(12);
      expect(o.readInt32BE(0)).toBe(8);
      expect(o.readBigInt64BE(4)).toBe(BigInt(v));
    }
  });

  it('counts µs from 2000-01-01 UTC', () => {
    const o = Buffer.alloc(12);
    timeUsField(o, 0, Date.UTC(2000, 0, 1) * 1000);
    expect(o.readBigInt64BE(4)).toBe(0n);
    timeUsField(o, 0, 1723161254087896);
    expect(o.readBigInt64BE(4)).toBe(1723161254087896n - 946684800000000n);
    timeMsField(o, 0, 1723161255342);
    expect(o.readBigInt64BE(4)).toBe(1723161255342000n - 946684800000000n);
    timeMsField(o, 0, Date.UTC(2099, 11, 31, 23, 59, 59, 999));
    expect(o.readBigInt64BE(4)).toBe(BigInt(Date.UTC(2099, 11, 31, 23, 59, 59, 999) - Date.UTC(2000, 0, 1)) * 1000n);
  });
});

/** Splits one binary row into its fields (null for NULL). */
function fields(row: Buffer): { fields: (Buffer | null)[]; end: number } {
  const n = row.readInt16BE(0);
  const out: (Buffer | null)[] = [];
  let p = 2;
  for (let i = 0; i < n; i++) {
    const len = row.readInt32BE(p);
    p += 4;
    if (len < 0) out.push(null);
    else {
      out.push(row.subarray(p, p + len));
      p += len;
    }
  }
  return { fields: out, end: p };
}

const us = (f: Buffer | null) => (f === null ? null : Number(f.readBigInt64BE(0) + 946684800000000n));
const num = (f: Buffer | null) => numericText(readNumeric(Buffer.concat([Buffer.from([0, 0, 0, f!.length]), f!])));

describe('CopyBinaryEncoder', () => {
  const trade: Trade = {
    type: 'trade', exchange: 'coinbase', market: 'spot', symbol: 'BTC-USD\t\\é', receiveTimeUs: 1723161254087896, tradeId: 3735683259,
    price: '61837.63000000', quantity: '0.02000000', buyerIsMaker: true, side: 'sell', exchangeTimeMs: 1723161255342, eventTimeMs: 1723161255343,
  };

  it('frames the stream as PGCOPY', () => {
    expect(COPY_BINARY_HEADER).toEqual(Buffer.from([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]));
    expect(COPY_BINARY_TRAILER.readInt16BE(0)).toBe(-1);
  });

  it('writes a trade in COLUMNS order, text as UTF-8 without escapes', () => {
    const out = new CopyRowBuffer(8, 1);
    new CopyBinaryEncoder().row(trade, out);
    const { fields: f, end } = fields(out.bytes());
    expect(end).toBe(out.pos);
    expect(f).toHaveLength(COLUMNS.trades.length);
    expect(f.slice(0, 3).map((x) => x!.toString('utf8'))).toEqual(['coinbase', 'spot', 'BTC-USD\t\\é']);
    expect(us(f[3]!)).toBe(1723161255342000);
    expect(f[4]!.readBigInt64BE(0)).toBe(3735683259n);
    expect([num(f[5]!), num(f[6]!)]).toEqual(['61837.63000000', '0.02000000']);
    expect(f[7]).toEqual(Buffer.from([1]));
    expect(f[8]!.toString()).toBe('sell');
    expect([us(f[9]!), us(f[10]!)]).toEqual([1723161255343000, 1723161254087896]);
  });

  it('writes an aggTrade and a bookTicker with NULL times and the receive time as its time', () => {
    const agg: AggTrade = { ...trade, type: 'aggTrade', aggId: 42, firstTradeId: 100, lastTradeId: 103, buyerIsMaker: false, side: 'buy' } as AggTrade;
    const bt: BookTicker = {
      type: 'bookTicker', exchange: 'binance', market: 'spot', symbol: 'ETHUSDT', receiveTimeUs: 1723161254116723, updateId: 50093239219,
      bidPrice: '2612.10', bidQty: '3.78826000', askPrice: '2612.11', askQty: '0', exchangeTimeMs: null, eventTimeMs: null,
    };
    const enc = new CopyBinaryEncoder();
    const out = new CopyRowBuffer(8, 2);
    enc.row(agg, out);
    const first = fields(out.bytes());
    expect(first.fields).toHaveLength(COLUMNS.agg_trades.length);
    expect(first.fields.slice(4, 7).map((x) => x!.readBigInt64BE(0))).toEqual([42n, 100n, 103n]);
    expect(first.fields[9]).toEqual(Buffer.from([0]));
    enc.row(bt, out);
    const second = fields(out.bytes().subarray(first.end));
    expect(first.end + second.end).toBe(out.pos);
    expect(second.fields).toHaveLength(COLUMNS.book_tickers.length);
    expect(us(second.fields[3]!)).toBe(1723161254116000);
    expect(second.fields.slice(5, 9).map(num)).toEqual(['2612.10', '3.78826000', '2612.11', '0']);
    expect(second.fields.slice(9)).toEqual([null, null, second.fields[11]]);
    expect(us(second.fields[11]!)).toBe(1723161254116723);
  });
});
