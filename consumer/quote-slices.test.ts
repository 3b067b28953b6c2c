// Quote slices (quote-slices.ts) in the edge cases: zero and crossed spreads, exact half-way rounding, ties in time,
// large values and mixed scales, random decimals; against tick-slices.fixture.ts.
import { describe, expect, it } from 'vitest';
import type { BookTicker } from '../common/records.ts';
import { summarizeBookTickers } from './quote-slices.ts';
import { quote, quoteMismatches, rand, randomDecimal, refQuote, rowsOf, shuffled, v60 } from './tick-slices.fixture.ts';

describe('quote slices', () => {
  const base = 1_723_161_255_000;

  it('a spread of 0 has 0 bps; a crossed book a negative spread and bps rounded away from zero', () => {
    const ticks = [
      quote({ updateId: 1, bidPrice: '100.00', askPrice: '100.00' }),
      quote({ updateId: 2, bidPrice: '100.02', askPrice: '100.01', exchangeTimeMs: base + 400 }),
      quote({ updateId: 3, bidPrice: '3', askPrice: '2.999999999999999999', exchangeTimeMs: base + 900 }),
    ];
    const out = summarizeBookTickers(rowsOf(ticks));
    expect(quoteMismatches(out, ticks.map((q) => refQuote(q)))).toEqual([]);
    const spread0 = summarizeBookTickers(rowsOf(ticks.slice(0, 1)))[0]!;
    expect([spread0.sumSpread, spread0.lastSpreadBps, spread0.twUs, v60(spread0.twSpreadUs)]).toEqual(['0.00', '0.000000000000', 0, 0n]);
    expect(out).toHaveLength(1);
    const s = out[0]!;
    expect(v60(s.minSpread)).toBe(v60('-0.01'));
    expect(s.minSpreadBps.startsWith('-')).toBe(true);
  });

  it('rounds a spread bps exactly half way away from zero, either sign, in Numbers and in BigInt', () => {
    // 0.2 * 20000 / 262144 = 0.0152587890625 exactly: half way at 12 decimals.
    for (const bidQty of ['1', '99999999999999999999.999999999999999999']) {
      const ticks = [
        quote({ updateId: 1, bidPrice: '131071.9', askPrice: '131072.1', bidQty }),
        quote({ updateId: 2, bidPrice: '131072.1', askPrice: '131071.9', exchangeTimeMs: base + 500 }),
      ];
      const out = summarizeBookTickers(rowsOf(ticks));
      expect([out[0]!.maxSpreadBps, out[0]!.minSpreadBps, v60(out[0]!.sumSpreadBps)], bidQty).toEqual(['0.015258789063', '-0.015258789063', 0n]);
      expect(quoteMismatches(out, ticks.map((q) => refQuote(q)), true)).toEqual([]);
    }
  });

  it('a group whose ticks share one time: ordered by update id, no time weight', () => {
    const ticks = [5, 3, 4, 9].map((id, i) =>
      quote({ updateId: id, bidPrice: `100.${i}`, askPrice: `100.${i + 2}`, bidQty: `${i + 1}`, exchangeTimeMs: base + 250 }),
    );
    const out = summarizeBookTickers(rowsOf(ticks));
    expect(out).toHaveLength(1);
    expect([out[0]!.firstId, out[0]!.lastId, out[0]!.quoteCount, out[0]!.twUs, v60(out[0]!.twSpreadUs)]).toEqual(['3', '9', 4, 0, 0n]);
    expect(out[0]!.lastBidNotional).toBe('401.2'); // the quote with id 9: 100.3 * 4
    expect(quoteMismatches(out, ticks.map((q) => refQuote(q)))).toEqual([]);
  });

  it('keeps large values exact: 20 integer digits and 18 decimals, mixed scales', () => {
    const ticks = [
      quote({ updateId: 1, bidPrice: '12345678901234567890.123456789012345678', askPrice: '99999999999999999999.999999999999999999', bidQty: '99999999999999999999.999999999999999999' }),
      quote({ updateId: 2, bidPrice: '1.5', askPrice: '1.50000001', askQty: '0.000000000000000001', exchangeTimeMs: base + 999 }),
      quote({ updateId: 3, bidPrice: '1.50000000', askPrice: '1.5', exchangeTimeMs: base + 999 }),
      // Same digits, other scales: other prices.
      quote({ updateId: 4, bidPrice: '1.4', askPrice: '1.5', exchangeTimeMs: base + 1100 }),
      quote({ updateId: 5, bidPrice: '14', askPrice: '15', exchangeTimeMs: base + 1200 }),
      quote({ updateId: 6, bidPrice: '140', askPrice: '150', exchangeTimeMs: base + 1300 }),
      quote({ updateId: 7, bidPrice: '1.40', askPrice: '1.5', exchangeTimeMs: base + 1400 }),
    ];
    const out = summarizeBookTickers(rowsOf(ticks));
    expect(quoteMismatches(out, ticks.map((q) => refQuote(q)))).toEqual([]);
  });

  it('equals the straightforward computation over random decimals, in order and shuffled, in one batch with plain groups', () => {
    for (let round = 0; round < 4; round++) {
      const ticks: BookTicker[] = [];
      for (let i = 0; i < 3000; i++) {
        const prev = ticks.at(-1);
        const keep = prev !== undefined && rand(2) === 0;
        const bidPrice = keep ? prev.bidPrice : randomDecimal(true);
        // Mostly above the bid, sometimes equal or below (a crossed book), sometimes anything.
        const r = rand(10);
        const askPrice = keep ? prev.askPrice : r < 6 ? `${bidPrice}${bidPrice.includes('.') ? '' : '.'}01` : r < 8 ? bidPrice : randomDecimal(true);
        ticks.push(
          quote({
            symbol: ['BTCUSDT', 'ETHUSDT'][rand(2)]!, market: rand(2) === 0 ? 'spot' : 'usdm', updateId: 1000 + i, exchangeTimeMs: base + rand(3000),
            bidPrice, askPrice, bidQty: randomDecimal(false), askQty: randomDecimal(false),
          }),
        );
      }
      ticks.sort((a, b) => a.exchangeTimeMs! - b.exchangeTimeMs! || a.updateId - b.updateId);
      const ref = ticks.map((q) => refQuote(q));
      expect(quoteMismatches(summarizeBookTickers(rowsOf(ticks)), ref), `round ${round}`).toEqual([]);
      expect(quoteMismatches(summarizeBookTickers(rowsOf(shuffled(ticks))), ref), `round ${round} shuffled`).toEqual([]);
    }
  });
});
