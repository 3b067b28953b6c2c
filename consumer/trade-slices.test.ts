// Trade slices (trade-slices.ts) in the edge cases: one trade, second boundaries, mixed scales, large values, ids
// beyond 2^53, exact half-way rounding, raw numerics, random decimals; against tick-slices.fixture.ts.
import { describe, expect, it } from 'vitest';
import type { Trade } from '../common/records.ts';
import { summarizeTrades } from './trade-slices.ts';
import { byKey, decText, numericBytes, rand, randomDecimal, refTrade, replaceField, rowsOf, shuffled, trade, tradeMismatches, v60 } from './tick-slices.fixture.ts';

describe('trade slices', () => {
  const base = 1_723_161_255_000; // ms, a whole second

  it('a group with one trade has no moves: null maxMove and maxMoveBps, no return', () => {
    const ticks = [trade({ tradeId: 5, exchangeTimeMs: base + 1 }), trade({ tradeId: 6, exchangeTimeMs: base + 1000, price: '61840.00000000' })];
    const out = byKey(summarizeTrades(rowsOf(ticks)));
    expect(out).toHaveLength(2);
    for (const s of out) expect([s.tradeCount, s.maxMove, s.maxMoveBps, s.sumLogReturn, s.sumLogReturnSq]).toEqual([1, null, null, 0, 0]);
    expect(out.map((s) => [s.sliceUs, s.firstUs, s.firstId, s.high, s.low])).toEqual([
      [base * 1000, (base + 1) * 1000, '5', '61837.63000000', '61837.63000000'],
      [(base + 1000) * 1000, (base + 1000) * 1000, '6', '61840.00000000', '61840.00000000'],
    ]);
    expect(tradeMismatches(out, ticks.map((t) => refTrade(t)))).toEqual([]);
  });

  it('puts a trade at x.999 s in slice x and one at (x+1).000 s in slice x + 1', () => {
    const ticks = [999, 1000, 1999, 2000].map((ms, i) => trade({ tradeId: i, exchangeTimeMs: base + ms }));
    expect(summarizeTrades(rowsOf(ticks)).map((s) => [s.sliceUs / 1000 - base, s.tradeCount])).toEqual([[0, 1], [1000, 2], [2000, 1]]);
  });

  it('takes equal prices of different scales as equal, and sums mixed scales exactly', () => {
    const prices = ['1.5', '1.50000000', '1.5000', '2', '0.75', '0.750', '1.5'];
    const ticks = prices.map((price, i) =>
      trade({ tradeId: 100 + i, exchangeTimeMs: base + i, price, quantity: ['1', '0.5', '2.25000000'][i % 3]!, buyerIsMaker: i % 2 === 0 }),
    );
    const out = summarizeTrades(rowsOf(ticks));
    expect(tradeMismatches(out, ticks.map((t) => refTrade(t)))).toEqual([]);
    const [s] = out;
    expect(v60(s!.high)).toBe(v60('2'));
    expect(v60(s!.maxMove!)).toBe(v60('1.25'));
    expect(v60(s!.maxMoveBps!)).toBe(v60('10000')); // 0.75 -> 1.5: 0.75 / 0.75 * 10000 (2 -> 0.75 is 6250)
    expect(s!.maxMoveBps).toBe('10000.000000000000');
    // Same digits, other scales: other prices.
    // (Moves down by 90% at most, so the bps stay in Numbers.)
    const shifted = ['15', '1.5', '0.15', '0.150', '0.15000'].map((price, i) => trade({ tradeId: i, exchangeTimeMs: base + 3, price }));
    expect(tradeMismatches(summarizeTrades(rowsOf(shifted)), shifted.map((t) => refTrade(t)))).toEqual([]);
    const equal = summarizeTrades(rowsOf(prices.slice(0, 3).map((price, i) => trade({ tradeId: i, exchangeTimeMs: base, price }))));
    expect([v60(equal[0]!.maxMove!), v60(equal[0]!.maxMoveBps!), equal[0]!.sumLogReturn]).toEqual([0n, 0n, 0]);
  });

  it('keeps large values exact: 20 integer digits and 18 decimals', () => {
    const ticks = [
      ['12345678901234567890.123456789012345678', '99999999999999999999.999999999999999999'],
      ['12345678901234567890.123456789012345679', '0.000000000000000001'],
      ['99999999999999999999.999999999999999999', '12345678901234567890'],
      ['0.000000000000000001', '99999999999999999999.999999999999999999'],
      ['61837.63000000', '0.02000000'],
    ].map(([price, quantity], i) => trade({ tradeId: i, exchangeTimeMs: base + 7, price, quantity }));
    const out = summarizeTrades(rowsOf(ticks));
    expect(tradeMismatches(out, ticks.map((t) => refTrade(t)), true)).toEqual([]);
    expect(out[0]!.quoteVolume.length).toBeGreaterThan(40);
  });

  it('reads trade ids beyond 2^53 exactly and orders by them', () => {
    const ticks = [0, 1, 2, 3].map((i) => trade({ tradeId: 1, exchangeTimeMs: base + 5, price: `${100 + ((i * 7) % 5)}.5` }));
    const ids = [2n ** 60n + 3n, 2n ** 60n + 1n, 2n ** 62n, 2n ** 60n + 2n];
    const rows = rowsOf(ticks);
    // Patch each row's trade_id field: after the field count, three text fields and the time.
    const per = rows.length / ticks.length;
    ids.forEach((id, i) => {
      let p = i * per + 2;
      for (let k = 0; k < 3; k++) p += 4 + rows.readInt32BE(p);
      rows.writeBigInt64BE(id, p + 12 + 4);
    });
    const out = summarizeTrades(rows);
    expect([out[0]!.firstId, out[0]!.lastId]).toEqual([String(2n ** 60n + 1n), String(2n ** 62n)]);
    expect(tradeMismatches(out, ticks.map((t, i) => refTrade(t, ids[i])))).toEqual([]);
  });

  it('rounds a bps exactly half way away from zero, in Numbers and in BigInt', () => {
    // 1 / 131072 * 10^4 = 0.0762939453125 exactly: half way at 12 decimals.
    for (const quantity of ['1', '99999999999999999999.999999999999999999']) {
      const ticks = ['131072', '131073'].map((price, i) => trade({ tradeId: i, price, quantity }));
      const out = summarizeTrades(rowsOf(ticks));
      expect(out[0]!.maxMoveBps, quantity).toBe('0.076293945313');
      expect(tradeMismatches(out, ticks.map((t) => refTrade(t)), true)).toEqual([]);
    }
  });

  it('reads numerics as PostgreSQL stores them: digits below the display scale cut off, zero digit groups, a sign', () => {
    // One trade a second: each slice takes its own path (Numbers, or BigInt where a value needs it).
    const ticks = [0, 1, 2, 3].map((i) => trade({ tradeId: i, exchangeTimeMs: base + 1000 * i }));
    const prices = [
      numericBytes([1, 2345], 0, 0, 2), // 1.2345 with display scale 2: numeric_recv keeps 1.23
      numericBytes([1, 0], 1, 0, 0), // 10000 with a trailing zero group
      numericBytes([0, 7, 5000], 1, 0, 1), // 7.5 with a leading zero group
      numericBytes([1, 2345, 6789, 1234, 5678], 0, 0, 3), // 1.234 with 13 digits below its display scale
    ];
    const quantities = [numericBytes([2], 0, 0x4000, 3), numericBytes([1], -1, 0x4000, 4), numericBytes([], 0, 0, 5), null];
    const rows = replaceField(replaceField(rowsOf(ticks), 5, prices), 6, quantities);
    // fixed() reads a sign: the reference takes the (never sent) negative quantities as they are.
    const ref = [['1.23', '-2.000'], ['10000', '-0.0001'], ['7.5', '0.00000'], ['1.234', '0.02000000']].map(([price, qty], i) =>
      refTrade({ ...ticks[i]!, price: price!, quantity: qty! }),
    );
    const out = summarizeTrades(rows);
    expect(out.map((s) => [s.high, s.volume])).toEqual(ref.map((r) => [decText(r.price), decText(r.qty)]));
    expect(tradeMismatches(out, ref, true)).toEqual([]);
    expect(tradeMismatches(summarizeTrades(replaceField(rows, 5, [null, null, null, numericBytes([1, 2340], 0, 0, 3)])), ref, true)).toEqual([]);
  });

  it('equals the straightforward computation over random decimals, in order and shuffled, in one batch with plain groups', () => {
    for (let round = 0; round < 4; round++) {
      const ticks: Trade[] = [];
      for (let i = 0; i < 3000; i++) {
        const prev = ticks.at(-1);
        // Repeat the last price often (also written with more zeros), as real trades do.
        const price = prev && rand(3) === 0 ? (rand(2) === 0 ? prev.price : `${prev.price}${prev.price.includes('.') ? '' : '.'}00`) : randomDecimal(true);
        ticks.push(
          trade({
            symbol: ['BTCUSDT', 'ETHUSDT', 'X€'][rand(3)]!, market: rand(2) === 0 ? 'spot' : 'usdm', tradeId: 1000 + i,
            exchangeTimeMs: base + rand(4000), price, quantity: randomDecimal(false), buyerIsMaker: rand(2) === 0,
          }),
        );
      }
      ticks.sort((a, b) => a.exchangeTimeMs - b.exchangeTimeMs || a.tradeId - b.tradeId);
      const ref = ticks.map((t) => refTrade(t));
      expect(tradeMismatches(summarizeTrades(rowsOf(ticks)), ref), `round ${round}`).toEqual([]);
      expect(tradeMismatches(summarizeTrades(rowsOf(shuffled(ticks))), ref), `round ${round} shuffled`).toEqual([]);
    }
  });
});
