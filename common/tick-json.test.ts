import { describe, expect, it } from 'vitest';
import { createBinanceMapper } from '../ingestion/binance/mapper.ts';
import { loadRecording, missingRecordings } from '../test/binance-server.ts';
import { encodeRecordText, type ProducedRecord, type Tick, type Trade } from './records.ts';
import { TICK_JSON_MAX, writeTickJson } from './tick-json.ts';
import { SAMPLE_TICKS } from './tick-schema.fixture.ts';
import { newTrade, withVenueSymbol } from './tick-schema.ts';

const buf = Buffer.alloc(TICK_JSON_MAX + 16);

/** The writer's bytes, or undefined when it declines. */
function written(r: ProducedRecord): string | undefined {
  buf.fill(0xff);
  const end = writeTickJson(r, buf, 8);
  return end < 0 ? undefined : buf.toString('utf8', 8, end);
}

const trade = (over: Partial<Record<keyof Trade, unknown>>): Tick => ({ ...SAMPLE_TICKS.trade, ...over }) as Tick;

describe('writeTickJson', () => {
  it('writes every sample tick as encodeRecordText does', () => {
    for (const t of Object.values(SAMPLE_TICKS)) expect(written(t)).toBe(encodeRecordText(t));
  });

  it.skipIf(missingRecordings())('writes every recorded Binance trade, aggregate trade and book ticker byte for byte as JSON.stringify', async () => {
    const rec = await loadRecording();
    const mappers = [createBinanceMapper({ market: 'spot', maxFrameBytes: 65_536, streamTypes: ['trade', 'aggTrade', 'bookTicker'] }), createBinanceMapper({ market: 'usdm', maxFrameBytes: 65_536, streamTypes: ['trade', 'aggTrade', 'bookTicker'] })];
    const counts: Record<string, number> = {};
    for (const e of rec.events) {
      for (const m of mappers) {
        const r = m.map(e.text, Number(e.receiveNs / 1000n));
        if (r.kind !== 'tick') continue;
        expect(written(r.tick)).toBe(encodeRecordText(r.tick));
        counts[`${m.market} ${r.tick.type}`] = (counts[`${m.market} ${r.tick.type}`] ?? 0) + 1;
      }
    }
    // Both markets were seen, and all three types (the recorded book tickers carry no times, so a USD-M mapper
    // rejects them: the next test writes USD-M ones).
    expect(Object.keys(counts).sort()).toEqual(['spot aggTrade', 'spot bookTicker', 'spot trade', 'usdm aggTrade', 'usdm trade']);
    expect(Object.values(counts).reduce((a, b) => a + b)).toBeGreaterThan(200_000);
  });

  it('writes each record with its own exchange and market when a symbol repeats across them', () => {
    for (let i = 0; i < 3; i++) {
      for (const [exchange, market] of [['binance', 'spot'], ['binance', 'usdm'], ['coinbase', 'spot'], ['gemini', 'spot']]) {
        const t = trade({ exchange, market, symbol: 'ETHUSDT', tradeId: i });
        expect(written(t)).toBe(encodeRecordText(t));
      }
    }
  });

  it('writes integers at every digit count, up to the largest safe one, as Number#toString does', () => {
    // Each digit count's first and last values and one with inner zeros, then values a random walk draws (seeded).
    const ids = [0, 9, 10, 4_294_967_295, 4_294_967_296, 999_999_999_999, 1_000_000_000_000, 1_000_000_000, 10_000_000_001, Number.MAX_SAFE_INTEGER];
    for (let k = 1; k <= 15; k++) ids.push(10 ** k, 10 ** k - 1, 10 ** k + 7, 10 ** k * 3 + 10 ** Math.floor(k / 2));
    let seed = 7;
    for (let i = 0; i < 2_000; i++) {
      seed = (seed * 48_271) % 2_147_483_647;
      ids.push(Math.floor((seed / 2_147_483_647) * Math.min(10 ** (1 + (i % 16)), Number.MAX_SAFE_INTEGER)));
    }
    for (const id of ids) {
      const t = trade({ tradeId: id, receiveTimeUs: id });
      expect(written(t)).toBe(encodeRecordText(t));
    }
  });

  it('writes null times of a spot book ticker and times of a USD-M one', () => {
    expect(written(SAMPLE_TICKS.bookTicker)).toContain('"exchangeTimeMs":null,"eventTimeMs":null,"v":1}');
    const usdm = { ...SAMPLE_TICKS.bookTicker, market: 'usdm', exchangeTimeMs: 1_723_161_255_001, eventTimeMs: 1_723_161_255_002 } as Tick;
    expect(written(usdm)).toBe(encodeRecordText(usdm));
  });

  it('declines what JSON.stringify would write otherwise: escapes, non-ASCII, odd numbers, other shapes', () => {
    const declined: ProducedRecord[] = [
      trade({ symbol: 'BTC"USDT' }),
      trade({ symbol: 'BTC\\USDT' }),
      trade({ symbol: 'BTC\nUSDT' }),
      trade({ symbol: 'BTCUSDTé' }),
      trade({ price: '1'.repeat(65) }),
      trade({ tradeId: -1 }),
      trade({ tradeId: 1.5 }),
      trade({ tradeId: Number.MAX_SAFE_INTEGER + 1 }),
      trade({ receiveTimeUs: Number.NaN }),
      trade({ exchangeTimeMs: null }),
      trade({ buyerIsMaker: 1 }),
      trade({ price: 61837.63 }),
      trade({ eventTimeMs: undefined }),
      // The same keys in another order: JSON.stringify would write them in that order.
      { ...{ market: 'spot' }, ...SAMPLE_TICKS.trade } as Tick,
      withVenueSymbol(newTrade('coinbase', 'spot', 'BTCUSDT', 1, 2, '3', '4', true, 5, 6), 'BTC-USD'),
      { type: 'gap', exchange: 'binance', market: 'spot', symbol: 'BTCUSDT', stream: 'trade', fromId: 1, toId: 2, fromTimeMs: 3, toTimeMs: 4, reason: 'x', detectedAtUs: 5 },
    ];
    for (const r of declined) expect(writeTickJson(r, buf, 0), JSON.stringify(r)).toBe(-1);
  });

  it('stays within TICK_JSON_MAX with every string at its longest', () => {
    const s = '9'.repeat(64);
    const t = { ...SAMPLE_TICKS.aggTrade, exchange: s, market: s, symbol: s, price: s, quantity: s, side: s, aggId: Number.MAX_SAFE_INTEGER, firstTradeId: Number.MAX_SAFE_INTEGER, lastTradeId: Number.MAX_SAFE_INTEGER, receiveTimeUs: Number.MAX_SAFE_INTEGER, exchangeTimeMs: Number.MAX_SAFE_INTEGER, eventTimeMs: Number.MAX_SAFE_INTEGER } as Tick;
    const end = writeTickJson(t, buf, 0);
    expect(end).toBeGreaterThan(0);
    expect(end).toBeLessThanOrEqual(TICK_JSON_MAX);
    expect(buf.toString('utf8', 0, end)).toBe(encodeRecordText(t));
  });
});
