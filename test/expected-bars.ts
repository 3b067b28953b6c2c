// The independent computation of bars from trades (BigInt decimals, never from other bars), shared by the bar
// exactness test (metrics/bars.int.test.ts) and the soak harness (stack/soak.ts), plus a comparator for bars_* rows.
import type { Trade } from '../common/records.ts';
import { bucketStart } from '../metrics/schedule.ts';

export const pow10 = (n: number) => 10n ** BigInt(n);
/** A decimal string as an integer at `scale` decimals; throws if it has more significant decimals. */
export function fixed(s: string, scale: number): bigint {
  const neg = s.startsWith('-');
  const [i = '0', f = ''] = (neg ? s.slice(1) : s).split('.');
  if (f.length > scale && /[1-9]/.test(f.slice(scale))) throw new Error(`${s} has more than ${scale} decimals`);
  const v = BigInt(`${i}${f.slice(0, scale).padEnd(scale, '0')}`);
  return neg ? -v : v;
}
/** Round half up of a / b for non-negative a, b. */
export const divRound = (a: bigint, b: bigint) => (2n * a + b) / (2n * b);

export const P = 8; // price and quantity scale in fixed()

export interface ExpectedBar {
  open: bigint; high: bigint; low: bigint; close: bigint; // scale 8
  volume: bigint; quoteVolume: bigint; vwap: bigint; // 8, 16, 18
  tradeCount: number; takerBuyVolume: bigint; takerBuyQuoteVolume: bigint; // 8, 16
  firstTradeId: number; lastTradeId: number;
  returnCount: number; maxMove: bigint | null; maxMoveBps: bigint | null; // 8, 12
  volatility: number | null; priceStddev: number | null;
}

export const key = (t: { market: string; symbol: string }, bucket: number) => `${t.market}|${t.symbol}|${bucket}`;

export function sampleStd(xs: number[]): number | null {
  if (xs.length < 2) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1));
}

/** The ticks of each market and symbol, in first-seen order of the symbols, each list sorted by `order`. */
export function perSymbol<T extends { market: string; symbol: string }>(ticks: readonly T[], order: (a: T, b: T) => number): T[][] {
  const bySymbol = new Map<string, T[]>();
  for (const t of ticks) {
    const k = `${t.market}|${t.symbol}`;
    (bySymbol.get(k) ?? bySymbol.set(k, []).get(k)!).push(t);
  }
  return [...bySymbol.values()].map((list) => list.sort(order));
}

/** Bars of width `widthMs` straight from the trades (never from other bars). */
export function expectedBars(trades: readonly Trade[], widthMs: number): Map<string, ExpectedBar> {
  const out = new Map<string, ExpectedBar>();
  for (const list of perSymbol(trades, (a, b) => a.exchangeTimeMs - b.exchangeTimeMs || a.tradeId - b.tradeId)) {
    const groups = new Map<number, { t: Trade; prev: Trade | undefined }[]>();
    list.forEach((t, i) => {
      const prev = i > 0 && t.exchangeTimeMs - list[i - 1]!.exchangeTimeMs <= 86_400_000 ? list[i - 1] : undefined;
      const b = bucketStart(t.exchangeTimeMs, widthMs);
      (groups.get(b) ?? groups.set(b, []).get(b)!).push({ t, prev });
    });
    for (const [b, g] of groups) {
      const prices = g.map(({ t }) => fixed(t.price, P));
      let volume = 0n, quote = 0n, takerV = 0n, takerQ = 0n;
      const returns: number[] = [];
      let maxMove: bigint | null = null, maxBps: bigint | null = null;
      for (const { t, prev } of g) {
        const p = fixed(t.price, P), q = fixed(t.quantity, P);
        volume += q; quote += p * q;
        if (!t.buyerIsMaker) { takerV += q; takerQ += p * q; }
        if (prev) {
          const pp = fixed(prev.price, P);
          const move = p > pp ? p - pp : pp - p;
          returns.push(Math.log1p(Number(p - pp) / Number(pp)));
          const bps = divRound(move * pow10(16), pp);
          if (maxMove === null || move > maxMove) maxMove = move;
          if (maxBps === null || bps > maxBps) maxBps = bps;
        }
      }
      out.set(key(g[0]!.t, b), {
        open: prices[0]!, close: prices[prices.length - 1]!,
        high: prices.reduce((a, x) => (x > a ? x : a)), low: prices.reduce((a, x) => (x < a ? x : a)),
        volume, quoteVolume: quote, vwap: volume === 0n ? -1n : divRound(quote * pow10(10), volume),
        tradeCount: g.length, takerBuyVolume: takerV, takerBuyQuoteVolume: takerQ,
        firstTradeId: g[0]!.t.tradeId, lastTradeId: g[g.length - 1]!.t.tradeId,
        returnCount: returns.length, maxMove, maxMoveBps: maxBps,
        volatility: sampleStd(returns), priceStddev: sampleStd(g.map(({ t }) => Number(t.price))),
      });
    }
  }
  return out;
}

/** Differences between bars_* rows (as read by node-postgres) and the expected bars; empty when they are equal. */
export function barMismatches(rows: readonly Record<string, unknown>[], expected: ReadonlyMap<string, ExpectedBar>, width: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const close = (a: unknown, e: number | null) => (e === null ? a === null : Math.abs(Number(a) - e) <= Math.abs(e) * 1e-9 + 1e-15);
  for (const r of rows) {
    const k = `${r.market}|${r.symbol}|${new Date(r.bucket as string).getTime()}`;
    seen.add(k);
    const e = expected.get(k);
    if (!e) {
      out.push(`${width} ${k}: bar not expected`);
      continue;
    }
    const checks: [string, boolean][] = [
      ['open', fixed(String(r.open), P) === e.open], ['high', fixed(String(r.high), P) === e.high],
      ['low', fixed(String(r.low), P) === e.low], ['close', fixed(String(r.close), P) === e.close],
      ['volume', fixed(String(r.volume), P) === e.volume], ['quote_volume', fixed(String(r.quote_volume), 16) === e.quoteVolume],
      ['vwap', fixed(String(r.vwap), 18) === e.vwap], ['trade_count', Number(r.trade_count) === e.tradeCount],
      ['taker_buy_volume', fixed(String(r.taker_buy_volume), P) === e.takerBuyVolume],
      ['taker_buy_quote_volume', fixed(String(r.taker_buy_quote_volume), 16) === e.takerBuyQuoteVolume],
      ['first_trade_id', Number(r.first_trade_id) === e.firstTradeId], ['last_trade_id', Number(r.last_trade_id) === e.lastTradeId],
      ['return_count', Number(r.return_count) === e.returnCount],
      ['max_move', (r.max_move === null ? null : fixed(String(r.max_move), P)) === e.maxMove],
      ['max_move_bps', (r.max_move_bps === null ? null : fixed(String(r.max_move_bps), 12)) === e.maxMoveBps],
      ['volatility', close(r.volatility, e.volatility)], ['price_stddev', close(r.price_stddev, e.priceStddev)],
    ];
    const bad = checks.filter(([, ok]) => !ok).map(([c]) => c);
    if (bad.length > 0) out.push(`${width} ${k}: ${bad.join(', ')} differ`);
  }
  for (const k of expected.keys()) if (!seen.has(k)) out.push(`${width} ${k}: bar missing`);
  return out;
}
