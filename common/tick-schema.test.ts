// The tick schema held to itself and to decodeTick field by field: every kind of every field, valid, refused and
// unstorable values, the record constructors and the venue time rule.
import { describe, expect, it } from 'vitest';
import { decodeTick, encodeRecord, RecordError, type TickType } from './records.ts';
import { fieldCases, SAMPLE_TICKS, sampleWith } from './tick-schema.fixture.ts';
import { isTime, isVenueTimeMs, MIN_TIME_MS, TICK_FIELD_NAMES, TICK_SCHEMA, TICK_TYPES, tickColumns, unstorableTime } from './tick-schema.ts';

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

  it('reports the receive time first when several times cannot be stored', () => {
    const t = { ...SAMPLE_TICKS.trade, receiveTimeUs: 5, exchangeTimeMs: 5 };
    expect(unstorableTime(t)).toBe('receiveTimeUs');
    const types: TickType[] = ['trade', 'aggTrade', 'bookTicker'];
    for (const type of types) expect(unstorableTime(SAMPLE_TICKS[type])).toBeUndefined();
  });
});
