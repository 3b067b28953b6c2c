// The independent computation the tick slice tests hold trade-slices.ts and quote-slices.ts to: straight from the ticks'
// decimal strings, BigInt at each value's own scale; with the tests' rows, raw numerics, and seeded random values.
import { rowTimeMs, type BookTicker, type Trade } from '../common/records.ts';
import { divRound, fixed, pow10 } from '../test/expected-bars.ts';
import { CopyBinaryEncoder } from './copy-binary.ts';
import type { QuoteSlice } from './quote-slices.ts';
import { SLICE_US } from './tick-slices.ts';
import { CopyRowBuffer } from './tick-rows.ts';
import type { TradeSlice } from './trade-slices.ts';

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
export function decText(x: Dec): string {
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

export const refTrade = (t: Trade, id = BigInt(t.tradeId)): RefTrade => ({
  exchange: t.exchange, market: t.market, symbol: t.symbol, t: t.exchangeTimeMs * 1000, id,
  price: dec(t.price), qty: dec(t.quantity), maker: t.buyerIsMaker,
});
export const refQuote = (q: BookTicker, id = BigInt(q.updateId)): RefQuote => ({
  exchange: q.exchange, market: q.market, symbol: q.symbol, t: rowTimeMs(q) * 1000, id,
  bid: dec(q.bidPrice), bidQty: dec(q.bidQty), ask: dec(q.askPrice), askQty: dec(q.askQty),
});

export const keyOf = (x: { exchange: string; market: string; symbol: string }, sliceUs: number) => `${x.exchange}|${x.market}|${x.symbol}|${sliceUs}`;

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

export function tradeMismatches(actual: readonly TradeSlice[], ticks: readonly RefTrade[], checkScale = false): string[] {
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

export function quoteMismatches(actual: readonly QuoteSlice[], ticks: readonly RefQuote[], checkScale = false): string[] {
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
export function rowsOf(ticks: readonly (Trade | BookTicker)[]): Buffer {
  const out = new CopyRowBuffer(1 << 16, 1);
  for (const t of ticks) encoder.row(t, out);
  return out.buf.subarray(0, out.pos);
}

/** A numeric field (length, then numeric_send's layout) from raw parts, for values our encoder never writes. */
export function numericBytes(digits: readonly number[], weight: number, sign: number, dscale: number): Buffer {
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
export function replaceField(rows: Buffer, index: number, fields: readonly (Buffer | null)[]): Buffer {
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
export const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
export function shuffled<T>(xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rand(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
export const byKey = <S extends { exchange: string; market: string; symbol: string; sliceUs: number }>(xs: readonly S[]) =>
  [...xs].sort((a, b) => (keyOf(a, a.sliceUs) < keyOf(b, b.sliceUs) ? -1 : 1));
/** Every decimal at scale 60 (for sums of pieces). */
export const v60 = (x: string) => fixed(x, 60);
/** (time, id) of a and b in order. */
export const before = (ta: number, ia: string, tb: number, ib: string) => ta < tb || (ta === tb && BigInt(ia) <= BigInt(ib));

export const trade = (over: Partial<Trade>): Trade => ({
  type: 'trade', exchange: 'binance', market: 'spot', symbol: 'BTCUSDT', receiveTimeUs: 1_723_161_255_342_100, tradeId: 1,
  price: '61837.63000000', quantity: '0.02000000', buyerIsMaker: false, side: 'buy', exchangeTimeMs: 1_723_161_255_342,
  eventTimeMs: 1_723_161_255_343, ...over,
});
export const quote = (over: Partial<BookTicker>): BookTicker => ({
  type: 'bookTicker', exchange: 'binance', market: 'usdm', symbol: 'BTCUSDT', receiveTimeUs: 1_723_161_255_342_100, updateId: 1,
  bidPrice: '61837.60', bidQty: '1.234', askPrice: '61837.70', askQty: '0.5', exchangeTimeMs: 1_723_161_255_342, eventTimeMs: null, ...over,
});

/** A plain decimal with 1..20 integer digits and 0..18 decimals, small Binance-like ones and zeros favoured. */
export function randomDecimal(positive: boolean): string {
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
