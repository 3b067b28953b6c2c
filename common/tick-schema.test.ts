// The tick schema held to itself and to decodeTick field by field: every kind of every field, valid, refused and
// unstorable values, the record constructors and the venue time rule.
import { describe, expect, it } from 'vitest';
import { decodeTick, encodeRecord, RecordError, type TickType } from './records.ts';
import { fieldCases, SAMPLE_TICKS, sampleWith } from './tick-schema.fixture.ts';
import { decodeBook, decodeGap, gapReason } from './records.ts';
import { compareDecimals, isTime, isVenueTimeMs, MIN_TIME_MS, TICK_FIELD_NAMES, TICK_SCHEMA, TICK_TYPES, tickColumns, unstorableTime } from './tick-schema.ts';

describe('tick schema', () => {
  it('names each record field once per type, every column once, the row time first after the identity', () => {
    for (const type of TICK_TYPES) {
      const names = TICK_SCHEMA[type].map((f) => f.name);
      expect(new Set(names).size, type).toBe(names.length);
      const columns = tickColumns(type);
      expect(new Set(columns).size, type).toBe(columns.length);
      expect(columns.slice(0, 4), type).toEqual(['exchange', 'market', 'symbol', 'time']);
      expect(columns.at(-1), type).toBe('receive_time');
    }
    expect(TICK_FIELD_NAMES).not.toContain('rowTime');
  });

  it('the record constructors set exactly the fields of the schema', () => {
    for (const type of TICK_TYPES) {
      const fields = TICK_SCHEMA[type].filter((f) => f.kind !== 'rowTime').map((f) => f.name);
      expect(Object.keys(SAMPLE_TICKS[type]).sort(), type).toEqual(['type', ...fields].sort());
      expect(decodeTick(encodeRecord(SAMPLE_TICKS[type]), undefined), type).toEqual(SAMPLE_TICKS[type]);
    }
  });

  for (const type of TICK_TYPES) {
    it(`decodeTick and the storable window hold ${type} to the schema, field by field`, () => {
      const cases = fieldCases(type);
      const kinds = new Set(TICK_SCHEMA[type].filter((f) => f.kind !== 'rowTime').map((f) => f.kind));
      expect(new Set(cases.filter((c) => c.expect === 'invalid').map((c) => c.field.kind))).toEqual(kinds);
      for (const { field, value, expect: want } of cases) {
        const what = `${type}.${field.name} = ${JSON.stringify(value)}`;
        const bytes = sampleWith(type, field.name, value);
        if (want === 'invalid') {
          expect(() => decodeTick(bytes, undefined), what).toThrow(RecordError);
          continue;
        }
        const t = decodeTick(bytes, undefined);
        expect((t as unknown as Record<string, unknown>)[field.name], what).toEqual(value);
        expect(unstorableTime(t), what).toBe(want === 'unstorable' ? field.name : undefined);
      }
    });
  }

  it('a venue time is a time after 2000 in ms: a time in seconds is refused', () => {
    const seconds = 1723161255;
    expect(isTime(seconds)).toBe(true);
    expect(isVenueTimeMs(seconds)).toBe(false);
    expect(isVenueTimeMs(MIN_TIME_MS)).toBe(false);
    expect(isVenueTimeMs(MIN_TIME_MS + 1)).toBe(true);
    expect(isVenueTimeMs(1.5e12 + 0.5)).toBe(false);
  });

  it('compares decimal strings by value: leading zeros, scales and lengths', () => {
    const cases: [string, string, number][] = [
      ['1', '1.000', 0], ['007.50', '7.5', 0], ['0', '0.000', 0], ['2612.10', '2612.11', -1], ['10', '9.99', 1],
      ['0.000000000000000001', '0', 1], ['12345678901234567890.5', '12345678901234567890.49', 1], ['1.05', '1.5', -1],
    ];
    for (const [a, b, want] of cases) {
      expect(compareDecimals(a, b), `${a} vs ${b}`).toBe(want);
      expect(compareDecimals(b, a), `${b} vs ${a}`).toBe(want === 0 ? 0 : -want);
    }
  });

  it('decodeTick refuses a crossed book ticker and a time ahead of the receipt: the writer dead-letters what ingestion would', () => {
    const book = { ...SAMPLE_TICKS.bookTicker, v: 1 };
    expect(() => decodeTick(JSON.stringify({ ...book, bidPrice: '2612.12' }), undefined)).toThrow(/crossed book ticker/);
    expect(decodeTick(JSON.stringify({ ...book, bidPrice: '2612.11' }), undefined)).toMatchObject({ bidPrice: '2612.11' });
    const trade = { ...SAMPLE_TICKS.trade, v: 1 };
    expect(() => decodeTick(JSON.stringify({ ...trade, eventTimeMs: Math.floor(trade.receiveTimeUs / 1000) + 3_700_000 }), undefined)).toThrow(/within an hour/);
  });

  it('gap and book decoders refuse what their columns cannot hold: NUL, integers past int4, times outside 2000..2100', () => {
    const gap = { type: 'gap', exchange: 'binance', market: 'spot', symbol: 'BTCUSDT', stream: 'trade', fromId: 1, toId: 2, fromTimeMs: 1723161255342, toTimeMs: 1723161255342, reason: 'reconnect', detectedAtUs: 1723161255342000, v: 1 };
    expect(decodeGap(JSON.stringify(gap), undefined)).toMatchObject({ reason: 'reconnect' });
    expect(() => decodeGap(JSON.stringify({ ...gap, reason: 'bad\u0000reason' }), undefined)).toThrow(/without NUL/);
    expect(() => decodeGap(JSON.stringify({ ...gap, reason: 'x'.repeat(2_001) }), undefined)).toThrow(/2,000/);
    expect(() => decodeGap(JSON.stringify({ ...gap, toTimeMs: 9e15 }), undefined)).toThrow(/2000..2100/);
    expect(gapReason('socket \u0000closed')).toBe('socket closed');
    const book = { type: 'book', exchange: 'coinbase', market: 'spot', symbol: 'BTC-USD', venueSymbol: 'BTC-USD', sequence: 1, depth: 2, bids: [['1', '2']], asks: [['3', '4']], exchangeTimeMs: null, receiveTimeUs: 1723161255342000, v: 1 };
    expect(decodeBook(JSON.stringify(book), undefined)).toMatchObject({ depth: 2 });
    expect(() => decodeBook(JSON.stringify({ ...book, depth: 2 ** 31 }), undefined)).toThrow(/below 2\^31/);
  });

  it('reports the receive time first when several times cannot be stored', () => {
    const t = { ...SAMPLE_TICKS.trade, receiveTimeUs: 5, exchangeTimeMs: 5 };
    expect(unstorableTime(t)).toBe('receiveTimeUs');
    const types: TickType[] = ['trade', 'aggTrade', 'bookTicker'];
    for (const type of types) expect(unstorableTime(SAMPLE_TICKS[type])).toBeUndefined();
  });
});
