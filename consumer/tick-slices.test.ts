// Tests of the per-second tick slices (trade-slices.ts, quote-slices.ts, driven by tick-slices.ts): every field against
// an independent BigInt computation, over the recorded captures and the edge cases (order, batches, scales, large
// values, ties, raw numerics).
import { describe, expect, it } from 'vitest';
import { rowTimeMs, type BookTicker, type Trade } from '../common/records.ts';
import { capturesMissing, loadCaptureTicks } from '../test/capture-ticks.ts';
import { divRound, fixed, pow10 } from '../test/expected-bars.ts';
import { CopyBinaryEncoder } from './copy-binary.ts';
import { CopyRowBuffer } from './tick-rows.ts';
import { summarizeBookTickers, type QuoteSlice } from './quote-slices.ts';
import { SLICE_US } from './tick-slices.ts';
import { summarizeTrades, type TradeSlice } from './trade-slices.ts';

// The independent computation: straight from the ticks' decimal strings, BigInt at each value's own scale, one group
// (exchange, market, symbol, second) at a time, ticks sorted by (time, id); what the bar SQL computes.

interface Dec {
  readonly v: bigint;
  readonly s: number;
}
const scaleOf = (x: string) => x.split('.')[1]?.length ?? 0;
const dec = (x: string): Dec => ({ v: fixed(x, scaleOf(x)), s: scaleOf(x) });
const at = (x: Dec, s: number) => x.v * pow10(s - x.s);
const ZERO: Dec = { v: 0n, s: 0 };
const add = (x: Dec, y: Dec): Dec => ({ v: at(x, Math.max(x.s, y.s)) + at(y, Math.max(x.s, y.s)), s: Math.max(x.s, y.s) });
const sub = (x: Dec, y: Dec): Dec => ({ v: at(x, Math.max(x.s, y.s)) - at(y, Math.max(x.s, y.s)), s: Math.max(x.s, y.s) });
const mul = (x: Dec, y: Dec): Dec => ({ v: x.v * y.v, s: x.s + y.s });
const abs = (x: Dec): Dec => (x.v < 0n ? { v: -x.v, s: x.s } : x);
const cmp = (x: Dec, y: Dec) => Number(sub(x, y).v > 0n) - Number(sub(x, y).v < 0n);
const max = (x: Dec, y: Dec) => (cmp(y, x) > 0 ? y : x);
const min = (x: Dec, y: Dec) => (cmp(y, x) < 0 ? y : x);
/** decimal_div(x * k, y, 12): the exact quotient rounded half away from zero to 12 decimals. */
function bps(x: Dec, k: bigint, y: Dec): Dec {
  const n = x.v * k * pow10(12 + y.s);
  const d = y.v * pow10(x.s);
  const q = divRound(n < 0n ? -n : n, d < 0n ? -d : d);
  return { v: n < 0n !== d < 0n ? -q : q, s: 12 };
}
const toNumber = (x: Dec) => Number(x.v) / 10 ** x.s;
/** A decimal's text at its scale, for messages and the odd direct check. */
function decText(x: Dec): string {
  const digits = (x.v < 0n ? -x.v : x.v).toString().padStart(x.s + 1, '0');
  return `${x.v < 0n ? '-' : ''}${x.s > 0 ? `${digits.slice(0, -x.s)}.${digits.slice(-x.s)}` : digits}`;
}

interface RefTick {
  readonly exchange: string;
  readonly market: string;
  readonly symbol: string;
  /** µs since the Unix epoch. */
  readonly t: number;
  readonly id: bigint;
}
interface RefTrade extends RefTick {
  readonly price: Dec;
  readonly qty: Dec;
  readonly maker: boolean;
}
interface RefQuote extends RefTick {
  readonly bid: Dec;
  readonly bidQty: Dec;
  readonly ask: Dec;
  readonly askQty: Dec;
}

const refTrade = (t: Trade, id = BigInt(t.tradeId)): RefTrade => ({
  exchange: t.exchange, market: t.market, symbol: t.symbol, t: t.exchangeTimeMs * 1000, id,
  price: dec(t.price), qty: dec(t.quantity), maker: t.buyerIsMaker,
});
const refQuote = (q: BookTicker, id = BigInt(q.updateId)): RefQuote => ({
  exchange: q.exchange, market: q.market, symbol: q.symbol, t: rowTimeMs(q) * 1000, id,
  bid: dec(q.bidPrice), bidQty: dec(q.bidQty), ask: dec(q.askPrice), askQty: dec(q.askQty),
});

const keyOf = (x: { exchange: string; market: string; symbol: string }, sliceUs: number) => `${x.exchange}|${x.market}|${x.symbol}|${sliceUs}`;

function groups<T extends RefTick>(ticks: readonly T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const t of ticks) {
    const k = keyOf(t, Math.floor(t.t / SLICE_US) * SLICE_US);
    (out.get(k) ?? out.set(k, []).get(k)!).push(t);
  }
  for (const g of out.values()) g.sort((a, b) => a.t - b.t || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return out;
}

interface ExpectedTrade {
  readonly first: RefTrade;
  readonly last: RefTrade;
  readonly count: number;
  readonly high: Dec;
  readonly low: Dec;
  readonly volume: Dec;
  readonly quoteVolume: Dec;
  readonly takerBuyVolume: Dec;
  readonly takerBuyQuoteVolume: Dec;
  readonly sumPrice: Dec;
  readonly sumPriceSq: Dec;
  readonly sumLogReturn: number;
  /** Σ |ln return|: the scale of the rounding error the sum may carry. */
  readonly absLogReturn: number;
  readonly sumLogReturnSq: number;
  readonly maxMove: Dec | null;
  readonly maxMoveBps: Dec | null;
}

function expectedTrades(ticks: readonly RefTrade[]): Map<string, ExpectedTrade> {
  const out = new Map<string, ExpectedTrade>();
  for (const [k, g] of groups(ticks)) {
    let volume = ZERO, quote = ZERO, takerV = ZERO, takerQ = ZERO, sumP = ZERO, sumP2 = ZERO;
    let lr = 0, absLr = 0, lr2 = 0;
    let maxMove: Dec | null = null, maxBps: Dec | null = null;
    g.forEach((t, i) => {
      volume = add(volume, t.qty);
      quote = add(quote, mul(t.price, t.qty));
      if (!t.maker) {
        takerV = add(takerV, t.qty);
        takerQ = add(takerQ, mul(t.price, t.qty));
      }
      sumP = add(sumP, t.price);
      sumP2 = add(sumP2, mul(t.price, t.price));
      if (i > 0) {
        const prev = g[i - 1]!.price;
        const diff = sub(t.price, prev);
        // ln(p / prev): log1p of the relative move near 1 (well conditioned there), a difference of logs far from it.
        const rel = Number(diff.v) / Number(at(prev, diff.s));
        const x = Math.abs(rel) < 0.5 ? Math.log1p(rel) : Math.log(toNumber(t.price)) - Math.log(toNumber(prev));
        lr += x;
        absLr += Math.abs(x);
        lr2 += x * x;
        const move = abs(diff);
        const b = bps(move, 10_000n, prev);
        maxMove = maxMove === null ? move : max(maxMove, move);
        maxBps = maxBps === null ? b : max(maxBps, b);
      }
    });
    const prices = g.map((t) => t.price);
    out.set(k, {
      first: g[0]!, last: g[g.length - 1]!, count: g.length, high: prices.reduce(max), low: prices.reduce(min),
      volume, quoteVolume: quote, takerBuyVolume: takerV, takerBuyQuoteVolume: takerQ, sumPrice: sumP, sumPriceSq: sumP2,
      sumLogReturn: lr, absLogReturn: absLr, sumLogReturnSq: lr2, maxMove, maxMoveBps: maxBps,
    });
  }
  return out;
}

interface ExpectedQuote {
  readonly first: RefQuote;
  readonly last: RefQuote;
  readonly count: number;
  readonly spread: { sum: Dec; min: Dec; max: Dec; last: Dec };
  readonly spreadBps: { sum: Dec; min: Dec; max: Dec; last: Dec };
  readonly sumMid: Dec;
  readonly lastMid: Dec;
  readonly sumBidNotional: Dec;
  readonly sumAskNotional: Dec;
  readonly lastBidNotional: Dec;
  readonly lastAskNotional: Dec;
  readonly twUs: number;
  readonly twSpreadUs: Dec;
}

function expectedQuotes(ticks: readonly RefQuote[]): Map<string, ExpectedQuote> {
  const out = new Map<string, ExpectedQuote>();
  for (const [k, g] of groups(ticks)) {
    const spreads = g.map((q) => sub(q.ask, q.bid));
    const bpss = g.map((q, i) => bps(spreads[i]!, 20_000n, add(q.ask, q.bid)));
    const mids = g.map((q) => mul(add(q.ask, q.bid), { v: 5n, s: 1 }));
    const stats = (xs: Dec[]) => ({ sum: xs.reduce(add), min: xs.reduce(min), max: xs.reduce(max), last: xs[xs.length - 1]! });
    let tw = 0;
    let twSpread = ZERO;
    for (let i = 0; i + 1 < g.length; i++) {
      const dt = g[i + 1]!.t - g[i]!.t;
      tw += dt;
      twSpread = add(twSpread, mul(spreads[i]!, { v: BigInt(dt), s: 0 }));
    }
    const bidN = g.map((q) => mul(q.bid, q.bidQty));
    const askN = g.map((q) => mul(q.ask, q.askQty));
    out.set(k, {
      first: g[0]!, last: g[g.length - 1]!, count: g.length, spread: stats(spreads), spreadBps: stats(bpss),
      sumMid: mids.reduce(add), lastMid: mids[mids.length - 1]!, sumBidNotional: bidN.reduce(add), sumAskNotional: askN.reduce(add),
      lastBidNotional: bidN[bidN.length - 1]!, lastAskNotional: askN[askN.length - 1]!, twUs: tw, twSpreadUs: twSpread,
    });
  }
  return out;
}

// Comparison: decimals by value (and by display scale where the inputs make it unambiguous), doubles to 1e-9 relative.
const PLAIN = /^-?\d+(\.\d+)?$/;
const show = (x: Dec | null) => (x === null ? 'null' : decText(x));
function sameDec(got: string | null, want: Dec | null, checkScale: boolean): boolean {
  if (got === null || want === null) return got === want;
  return PLAIN.test(got) && fixed(got, 60) === at(want, 60) && (!checkScale || scaleOf(got) === want.s);
}
const close = (got: number, want: number, scale = Math.abs(want)) => got === want || Math.abs(got - want) <= 1e-9 * scale;

function mismatches<A extends { exchange: string; market: string; symbol: string; sliceUs: number }, E>(
  actual: readonly A[],
  expected: ReadonlyMap<string, E>,
  diff: (a: A, e: E) => string[],
): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const a of actual) {
    const k = keyOf(a, a.sliceUs);
    if (seen.has(k)) out.push(`${k}: twice`);
    seen.add(k);
    const e = expected.get(k);
    if (e === undefined) out.push(`${k}: not expected`);
    else {
      const bad = diff(a, e);
      if (bad.length > 0) out.push(`${k}: ${bad.join(', ')}`);
    }
  }
  for (const k of expected.keys()) if (!seen.has(k)) out.push(`${k}: missing`);
  return out.slice(0, 10);
}

function tradeMismatches(actual: readonly TradeSlice[], ticks: readonly RefTrade[], checkScale = false): string[] {
  return mismatches(actual, expectedTrades(ticks), (a, e) => {
    const bad: string[] = [];
    const decs: [string, string | null, Dec | null][] = [
      ['firstPrice', a.firstPrice, e.first.price], ['lastPrice', a.lastPrice, e.last.price], ['high', a.high, e.high], ['low', a.low, e.low],
      ['volume', a.volume, e.volume], ['quoteVolume', a.quoteVolume, e.quoteVolume], ['takerBuyVolume', a.takerBuyVolume, e.takerBuyVolume],
      ['takerBuyQuoteVolume', a.takerBuyQuoteVolume, e.takerBuyQuoteVolume], ['sumPrice', a.sumPrice, e.sumPrice],
      ['sumPriceSq', a.sumPriceSq, e.sumPriceSq], ['maxMove', a.maxMove, e.maxMove], ['maxMoveBps', a.maxMoveBps, e.maxMoveBps],
    ];
    for (const [name, got, want] of decs) if (!sameDec(got, want, checkScale)) bad.push(`${name} ${got} != ${show(want)}`);
    const plain: [string, unknown, unknown][] = [
      ['firstUs', a.firstUs, e.first.t], ['firstId', a.firstId, String(e.first.id)], ['lastUs', a.lastUs, e.last.t],
      ['lastId', a.lastId, String(e.last.id)], ['tradeCount', a.tradeCount, e.count],
    ];
    for (const [name, got, want] of plain) if (got !== want) bad.push(`${name} ${String(got)} != ${String(want)}`);
    if (!close(a.sumLogReturn, e.sumLogReturn, e.absLogReturn)) bad.push(`sumLogReturn ${a.sumLogReturn} != ${e.sumLogReturn}`);
    if (!close(a.sumLogReturnSq, e.sumLogReturnSq)) bad.push(`sumLogReturnSq ${a.sumLogReturnSq} != ${e.sumLogReturnSq}`);
    return bad;
  });
}

function quoteMismatches(actual: readonly QuoteSlice[], ticks: readonly RefQuote[], checkScale = false): string[] {
  return mismatches(actual, expectedQuotes(ticks), (a, e) => {
    const bad: string[] = [];
    const decs: [string, string, Dec][] = [
      ['sumSpread', a.sumSpread, e.spread.sum], ['minSpread', a.minSpread, e.spread.min], ['maxSpread', a.maxSpread, e.spread.max],
      ['lastSpread', a.lastSpread, e.spread.last], ['sumSpreadBps', a.sumSpreadBps, e.spreadBps.sum],
      ['minSpreadBps', a.minSpreadBps, e.spreadBps.min], ['maxSpreadBps', a.maxSpreadBps, e.spreadBps.max],
      ['lastSpreadBps', a.lastSpreadBps, e.spreadBps.last], ['sumMid', a.sumMid, e.sumMid], ['lastMid', a.lastMid, e.lastMid],
      ['sumBidNotional', a.sumBidNotional, e.sumBidNotional], ['sumAskNotional', a.sumAskNotional, e.sumAskNotional],
      ['lastBidNotional', a.lastBidNotional, e.lastBidNotional], ['lastAskNotional', a.lastAskNotional, e.lastAskNotional],
      ['twSpreadUs', a.twSpreadUs, e.twSpreadUs],
    ];
    for (const [name, got, want] of decs) if (!sameDec(got, want, checkScale)) bad.push(`${name} ${got} != ${show(want)}`);
    const plain: [string, unknown, unknown][] = [
      ['firstUs', a.firstUs, e.first.t], ['firstId', a.firstId, String(e.first.id)], ['lastUs', a.lastUs, e.last.t],
      ['lastId', a.lastId, String(e.last.id)], ['quoteCount', a.quoteCount, e.count], ['twUs', a.twUs, e.twUs],
    ];
    for (const [name, got, want] of plain) if (got !== want) bad.push(`${name} ${String(got)} != ${String(want)}`);
    return bad;
  });
}

// Rows as the writer COPYs them.
const encoder = new CopyBinaryEncoder();
function rowsOf(ticks: readonly (Trade | BookTicker)[]): Buffer {
  const out = new CopyRowBuffer(1 << 16, 1);
  for (const t of ticks) encoder.row(t, out);
  return out.buf.subarray(0, out.pos);
}

/** A numeric field (length, then numeric_send's layout) from raw parts, for values our encoder never writes. */
function numericBytes(digits: readonly number[], weight: number, sign: number, dscale: number): Buffer {
  const b = Buffer.alloc(12 + 2 * digits.length);
  b.writeInt32BE(8 + 2 * digits.length, 0);
  b.writeInt16BE(digits.length, 4);
  b.writeInt16BE(weight, 6);
  b.writeUInt16BE(sign, 8);
  b.writeInt16BE(dscale, 10);
  digits.forEach((d, i) => b.writeInt16BE(d, 12 + 2 * i));
  return b;
}

/** The rows with field `index` of each row replaced by `field` (null: kept). */
function replaceField(rows: Buffer, index: number, fields: readonly (Buffer | null)[]): Buffer {
  const out: Buffer[] = [];
  for (let o = 0, row = 0; o < rows.length; row++) {
    let p = o + 2;
    let start = 0;
    let end = 0;
    for (let k = 0, n = rows.readInt16BE(o); k < n; k++) {
      if (k === index) start = p;
      p += 4 + Math.max(rows.readInt32BE(p), 0);
      if (k === index) end = p;
    }
    const f = fields[row];
    out.push(f ? Buffer.concat([rows.subarray(o, start), f, rows.subarray(end, p)]) : rows.subarray(o, p));
    o = p;
  }
  return Buffer.concat(out);
}

let seed = 7;
const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
function shuffled<T>(xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rand(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
const byKey = <S extends { exchange: string; market: string; symbol: string; sliceUs: number }>(xs: readonly S[]) =>
  [...xs].sort((a, b) => (keyOf(a, a.sliceUs) < keyOf(b, b.sliceUs) ? -1 : 1));
/** Every decimal at scale 60 (for sums of pieces). */
const v60 = (x: string) => fixed(x, 60);
/** (time, id) of a and b in order. */
const before = (ta: number, ia: string, tb: number, ib: string) => ta < tb || (ta === tb && BigInt(ia) <= BigInt(ib));

const trade = (over: Partial<Trade>): Trade => ({
  type: 'trade', exchange: 'binance', market: 'spot', symbol: 'BTCUSDT', receiveTimeUs: 1_723_161_255_342_100, tradeId: 1,
  price: '61837.63000000', quantity: '0.02000000', buyerIsMaker: false, side: 'buy', exchangeTimeMs: 1_723_161_255_342,
  eventTimeMs: 1_723_161_255_343, ...over,
});
const quote = (over: Partial<BookTicker>): BookTicker => ({
  type: 'bookTicker', exchange: 'binance', market: 'usdm', symbol: 'BTCUSDT', receiveTimeUs: 1_723_161_255_342_100, updateId: 1,
  bidPrice: '61837.60', bidQty: '1.234', askPrice: '61837.70', askQty: '0.5', exchangeTimeMs: 1_723_161_255_342, eventTimeMs: null, ...over,
});

/** A plain decimal with 1..20 integer digits and 0..18 decimals, small Binance-like ones and zeros favoured. */
function randomDecimal(positive: boolean): string {
  const digits = (n: number) => Array.from({ length: n }, () => (rand(3) === 0 ? '0' : String(rand(10)))).join('');
  let d: string;
  if (rand(2) === 0) d = `${1 + rand(99_999)}.${String(rand(100)).padStart(2, '0')}${rand(2) === 0 ? '000000' : ''}`;
  else {
    d = digits(1 + rand(20));
    const f = rand(19);
    if (f > 0) d += `.${digits(f)}`;
  }
  return positive && !/[1-9]/.test(d) ? `${d}1` : d;
}

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
