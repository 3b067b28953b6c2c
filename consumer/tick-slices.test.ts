// Tests of the per-second tick slices on the recorded captures: every field of trade-slices.ts and quote-slices.ts
// against an independent BigInt computation (tick-slices.fixture.ts), in any row order and any cut into batches.
import { describe, expect, it } from 'vitest';
import { capturesMissing, loadCaptureTicks } from '../test/capture-ticks.ts';
import { summarizeBookTickers } from './quote-slices.ts';
import { summarizeTrades } from './trade-slices.ts';
import { before, byKey, keyOf, quoteMismatches, refQuote, refTrade, rowsOf, shuffled, tradeMismatches, v60 } from './tick-slices.fixture.ts';

const missing = capturesMissing();

describe.skipIf(missing)('slices of the recorded captures', () => {
  const { trades, bookTickers } = missing ? { trades: [], bookTickers: [] } : loadCaptureTicks();

  it('trades: every field equals the straightforward computation, display scales included', () => {
    const out = summarizeTrades(rowsOf(trades));
    expect(out.length).toBeGreaterThan(1000);
    expect(tradeMismatches(out, trades.map((t) => refTrade(t)), true)).toEqual([]);
  });

  it('book tickers: every field equals the straightforward computation, display scales included', () => {
    const out = summarizeBookTickers(rowsOf(bookTickers));
    expect(out.length).toBeGreaterThan(1000);
    expect(quoteMismatches(out, bookTickers.map((q) => refQuote(q)), true)).toEqual([]);
  });

  it('rows in shuffled order give the same slices', () => {
    const t = trades.slice(0, 20_000);
    expect(byKey(summarizeTrades(rowsOf(shuffled(t))))).toEqual(byKey(summarizeTrades(rowsOf(t))));
    const q = bookTickers.slice(0, 50_000);
    expect(byKey(summarizeBookTickers(rowsOf(shuffled(q))))).toEqual(byKey(summarizeBookTickers(rowsOf(q))));
  });

  it('rows split into batches give slices that partition each group: counts and sums add up, first and last chain', () => {
    const pieces = <S extends { exchange: string; market: string; symbol: string; sliceUs: number }>(batches: S[][]) => {
      const out = new Map<string, S[]>();
      for (const b of batches) for (const s of b) (out.get(keyOf(s, s.sliceUs)) ?? out.set(keyOf(s, s.sliceUs), []).get(keyOf(s, s.sliceUs))!).push(s);
      return out;
    };
    const chunks = <T>(xs: readonly T[], n: number) => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));

    const t = trades.slice(0, 20_000);
    const whole = new Map(summarizeTrades(rowsOf(t)).map((s) => [keyOf(s, s.sliceUs), s]));
    const split = pieces(chunks(t, 997).map((c) => summarizeTrades(rowsOf(c))));
    expect([...split.keys()].sort()).toEqual([...whole.keys()].sort());
    let multi = 0;
    for (const [k, ps] of split) {
      const w = whole.get(k)!;
      ps.sort((a, b) => a.firstUs - b.firstUs || Number(BigInt(a.firstId) - BigInt(b.firstId)));
      if (ps.length > 1) multi++;
      expect(ps.reduce((n, p) => n + p.tradeCount, 0)).toBe(w.tradeCount);
      expect([ps[0]!.firstId, ps[0]!.firstPrice, ps.at(-1)!.lastId, ps.at(-1)!.lastPrice]).toEqual([w.firstId, w.firstPrice, w.lastId, w.lastPrice]);
      for (let i = 1; i < ps.length; i++) expect(before(ps[i - 1]!.lastUs, ps[i - 1]!.lastId, ps[i]!.firstUs, ps[i]!.firstId)).toBe(true);
      for (const f of ['volume', 'quoteVolume', 'takerBuyVolume', 'takerBuyQuoteVolume', 'sumPrice', 'sumPriceSq'] as const) {
        expect(ps.reduce((n, p) => n + v60(p[f]), 0n), `${k} ${f}`).toBe(v60(w[f]));
      }
      expect(ps.map((p) => v60(p.high)).reduce((a, b) => (b > a ? b : a))).toBe(v60(w.high));
    }
    expect(multi).toBeGreaterThan(5);

    const q = bookTickers.slice(0, 50_000);
    const wholeQ = new Map(summarizeBookTickers(rowsOf(q)).map((s) => [keyOf(s, s.sliceUs), s]));
    const splitQ = pieces(chunks(q, 1009).map((c) => summarizeBookTickers(rowsOf(c))));
    expect([...splitQ.keys()].sort()).toEqual([...wholeQ.keys()].sort());
    multi = 0;
    for (const [k, ps] of splitQ) {
      const w = wholeQ.get(k)!;
      ps.sort((a, b) => a.firstUs - b.firstUs || Number(BigInt(a.firstId) - BigInt(b.firstId)));
      if (ps.length > 1) multi++;
      expect(ps.reduce((n, p) => n + p.quoteCount, 0)).toBe(w.quoteCount);
      expect([ps[0]!.firstId, ps.at(-1)!.lastId, ps.at(-1)!.lastMid]).toEqual([w.firstId, w.lastId, w.lastMid]);
      let tw = ps[0]!.twUs;
      for (let i = 1; i < ps.length; i++) {
        expect(before(ps[i - 1]!.lastUs, ps[i - 1]!.lastId, ps[i]!.firstUs, ps[i]!.firstId)).toBe(true);
        tw += ps[i]!.firstUs - ps[i - 1]!.lastUs + ps[i]!.twUs; // the time between the pieces belongs to the earlier quote
      }
      expect(tw).toBe(w.twUs);
      for (const f of ['sumSpread', 'sumSpreadBps', 'sumMid', 'sumBidNotional', 'sumAskNotional'] as const) {
        expect(ps.reduce((n, p) => n + v60(p[f]), 0n), `${k} ${f}`).toBe(v60(w[f]));
      }
    }
    expect(multi).toBeGreaterThan(5);
  });

  it('reads rows from a Buffer that starts inside a larger one', () => {
    const t = trades.slice(0, 3000);
    const rows = rowsOf(t);
    const inside = Buffer.concat([Buffer.from('junk before'), rows, Buffer.from('after')]).subarray(11, 11 + rows.length);
    expect(inside.byteOffset).toBeGreaterThan(0);
    expect(summarizeTrades(inside)).toEqual(summarizeTrades(Uint8Array.from(rows)));
  });
});
