// Test values for walking TICK_SCHEMA field by field: a Binance sample of each tick type, and per field the values
// its kind's rule takes, refuses, or takes but cannot store. decodeTick, checkWritable and the writer's fast path are
// all held to these (common/tick-schema.test.ts, consumer/tick-rows.test.ts).
import type { Tick, TickType, Trade } from './records.ts';
import { crossFieldProblem, MAX_TIME_MS, MIN_TIME_MS, newAggTrade, newBookTicker, newTrade, TICK_SCHEMA, type FieldKind, type TickField } from './tick-schema.ts';

const RECEIVE_US = 1723161254087896;
const T = 1723161255342;

/** One valid Binance record per type: a selling taker's trade, a buying taker's aggTrade, a spot book ticker. */
export const SAMPLE_TICKS: Readonly<Record<TickType, Tick>> = {
  trade: newTrade('binance', 'spot', 'BTCUSDT', RECEIVE_US, 3735683259, '61837.63000000', '0.02000000', true, T, T + 1),
  aggTrade: newAggTrade('usdm', 'ETHUSDT', RECEIVE_US, 42, 100, 103, '2612.1', '3', false, T, T + 1),
  bookTicker: newBookTicker('binance', 'spot', 'ETHUSDT', RECEIVE_US, 50093239219, '2612.10', '3.78826000', '2612.11', '0', null, null),
};

/** What a value does to a record: decodes and stores, is refused by decodeTick, or decodes but is outside 2000..2100. */
export type Expect = 'valid' | 'invalid' | 'unstorable';

const BAD_DECIMALS = ['-1', '1e3', '1.', '.5', '', '1 ', 'NaN', 1, null, undefined, '1'.repeat(21), `0.${'1'.repeat(19)}`];
const BAD_INTEGERS = [-1, 1.5, '7', true, null, undefined, 2 ** 53];

/** Per kind: values for a field of that kind (`undefined`: the field is absent; `null` is valid where the field is nullable). */
const VALUES: Readonly<Record<Exclude<FieldKind, 'rowTime'>, Readonly<Partial<Record<Expect, readonly unknown[]>>>>> = {
  exchange: { valid: ['binance'], invalid: ['kraken', 1, null, undefined] },
  market: { valid: ['spot', 'usdm'], invalid: ['coinm', 'SPOT', null, undefined] },
  symbol: { valid: ['AB', 'BTCUSDT', 'A'.repeat(20)], invalid: ['btcusdt', 'B', 'A'.repeat(21), 'BTC/USDT', 7, null, undefined] },
  side: { invalid: ['BUY', 'short', 1, null, undefined] },
  id: { valid: [0, 2 ** 53 - 1], invalid: BAD_INTEGERS },
  time: { valid: [MIN_TIME_MS, MAX_TIME_MS - 1], invalid: [0, ...BAD_INTEGERS], unstorable: [MIN_TIME_MS - 1, MAX_TIME_MS] },
  timeUs: { valid: [MIN_TIME_MS * 1000, MAX_TIME_MS * 1000 - 1], invalid: [0, ...BAD_INTEGERS], unstorable: [MIN_TIME_MS * 1000 - 1, MAX_TIME_MS * 1000] },
  decimal: { valid: ['0', '0.000', `${'9'.repeat(20)}.${'9'.repeat(18)}`, '007.50'], invalid: BAD_DECIMALS },
  positiveDecimal: { valid: ['0.000000000000000001', '7', `${'9'.repeat(20)}.5`], invalid: ['0', '0.000', ...BAD_DECIMALS] },
  flag: { invalid: ['true', 1, null, undefined] },
};

export interface FieldCase {
  readonly field: TickField;
  readonly value: unknown;
  readonly expect: Expect;
}

/**
 * Every case of every field of `type`, plus the rules across fields (side follows buyerIsMaker, first <= last id, no
 * time an hour ahead of the receive time, no bid above the ask): a value its kind takes that breaks one is invalid.
 */
export function fieldCases(type: TickType): FieldCase[] {
  const cases: FieldCase[] = [];
  const sample = SAMPLE_TICKS[type] as unknown as Record<string, unknown>;
  // An id valid on its own that would put firstTradeId after lastTradeId breaks the rule across them.
  const idsOutOfOrder = (name: string, v: unknown) =>
    (name === 'firstTradeId' && (v as number) > (sample.lastTradeId as number)) || (name === 'lastTradeId' && (v as number) < (sample.firstTradeId as number));
  for (const field of TICK_SCHEMA[type]) {
    if (field.kind === 'rowTime') continue;
    const values = VALUES[field.kind];
    for (const expect of ['valid', 'invalid', 'unstorable'] as const) {
      for (const value of values[expect] ?? []) {
        const across = expect !== 'invalid' && crossFieldProblem({ ...sample, [field.name]: value } as unknown as Tick) !== undefined;
        const want = value === null && field.nullable ? 'valid' : across || (expect === 'valid' && idsOutOfOrder(field.name, value)) ? 'invalid' : expect;
        cases.push({ field, value, expect: want });
      }
    }
  }
  if (type !== 'bookTicker') {
    const side = TICK_SCHEMA[type].find((f) => f.kind === 'side')!;
    cases.push({ field: side, value: sample.side === 'buy' ? 'sell' : 'buy', expect: 'invalid' });
  }
  if (type === 'aggTrade') {
    const first = TICK_SCHEMA[type].find((f) => f.name === 'firstTradeId')!;
    cases.push({ field: first, value: (sample.lastTradeId as number) + 1, expect: 'invalid' });
    cases.push({ field: first, value: sample.lastTradeId, expect: 'valid' });
  }
  return cases;
}

/** The sample of `type` as encodeRecord would write it, with one field set to `value` (undefined: left out). */
export function sampleWith(type: TickType, name: string, value: unknown): Buffer {
  const r: Record<string, unknown> = { ...SAMPLE_TICKS[type], [name]: value, v: 1 };
  return Buffer.from(JSON.stringify(r));
}

/** A spot trade of `symbol` with id `tradeId`, its times a function of the id (tests of ordering and resuming). */
export const tradeAt = (symbol: string, tradeId: number): Trade => ({
  type: 'trade',
  exchange: 'binance',
  market: 'spot',
  symbol,
  receiveTimeUs: 1_723_161_600_000_000 + tradeId,
  tradeId,
  price: '61837.63000000',
  quantity: '0.00100000',
  buyerIsMaker: false,
  side: 'buy',
  exchangeTimeMs: 1_723_161_600_000 + tradeId,
  eventTimeMs: 1_723_161_600_000 + tradeId,
});
