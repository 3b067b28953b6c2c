// Top-of-book analytics of one published book, the same for every venue: best bid/ask, mid and spread (exact decimals),
// spread in percent and basis points, quote notional within 10 and 50 bps of the mid per side, and the imbalances.
// Depth is summed over the levels the book shows (top N): `depthComplete*` says whether they reach past the band edge.
import { rowTimeMs, type Book, type BookLevel, type Decimal, type Exchange, type Market } from '../common/records.ts';

export interface TopOfBook {
  readonly exchange: Exchange;
  readonly market: Market;
  readonly symbol: string;
  readonly venueSymbol: string;
  /** Exchange time where the venue sends one, else receive time (ms), as for book tickers. */
  readonly timeMs: number;
  readonly sequence: number;
  readonly receiveTimeUs: number;
  readonly bidPrice: Decimal;
  readonly bidQty: Decimal;
  readonly askPrice: Decimal;
  readonly askQty: Decimal;
  /** (bid + ask) / 2 and ask - bid, exact. */
  readonly mid: Decimal;
  readonly spread: Decimal;
  readonly spreadPct: number;
  readonly spreadBps: number;
  /** Quote notional (sum of price * quantity) of the levels within 10 / 50 bps of the mid. */
  readonly bidDepth10Bps: number;
  readonly askDepth10Bps: number;
  readonly bidDepth50Bps: number;
  readonly askDepth50Bps: number;
  /** True when both sides' shown levels reach beyond the band (or show the whole side): the depth is the full depth. */
  readonly depthComplete10Bps: boolean;
  readonly depthComplete50Bps: boolean;
  /** Best-level bid notional / (bid + ask notional), 0..1: as the book-ticker quote metrics define it. */
  readonly imbalance: number;
  /** The same within 50 bps of the mid; null when both sides are empty there. */
  readonly depthImbalance50Bps: number | null;
}

/** A decimal string as an integer of `scale` fractional digits. */
function scaled(d: Decimal, scale: number): bigint {
  const dot = d.indexOf('.');
  const int = dot < 0 ? d : d.slice(0, dot);
  const frac = dot < 0 ? '' : d.slice(dot + 1);
  return BigInt(int + frac.padEnd(scale, '0'));
}

const fracDigits = (d: Decimal): number => (d.includes('.') ? d.length - d.indexOf('.') - 1 : 0);

function format(v: bigint, scale: number): Decimal {
  const neg = v < 0n;
  const s = (neg ? -v : v).toString().padStart(scale + 1, '0');
  const int = s.slice(0, s.length - scale);
  let frac = scale > 0 ? s.slice(s.length - scale) : '';
  frac = frac.replace(/0+$/, '');
  return `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

/** a - b, exact. */
export function decimalSub(a: Decimal, b: Decimal): Decimal {
  const scale = Math.max(fracDigits(a), fracDigits(b));
  return format(scaled(a, scale) - scaled(b, scale), scale);
}

/** (a + b) / 2, exact (one more decimal at most). */
export function decimalMid(a: Decimal, b: Decimal): Decimal {
  const scale = Math.max(fracDigits(a), fracDigits(b)) + 1;
  return format((scaled(a, scale) + scaled(b, scale)) / 2n, scale);
}

interface Band {
  notional: number;
  complete: boolean;
}

/** Notional of the levels (best first) at or inside `limit`; complete when a shown level lies beyond it. */
function band(levels: readonly BookLevel[], inside: (p: number) => boolean, wholeSide: boolean): Band {
  let notional = 0;
  for (const [p, q] of levels) {
    const price = Number(p);
    if (!inside(price)) return { notional, complete: true };
    notional += price * Number(q);
  }
  return { notional, complete: wholeSide };
}

/** Analytics of one book; undefined while a side is empty (no mid). */
export function topOfBook(b: Book): TopOfBook | undefined {
  const bid = b.bids[0];
  const ask = b.asks[0];
  if (!bid || !ask) return undefined;
  const mid = decimalMid(bid[0], ask[0]);
  const spread = decimalSub(ask[0], bid[0]);
  const m = Number(mid);
  const s = Number(spread);
  const bands = [10, 50].map((bps) => {
    const lo = m * (1 - bps / 10_000);
    const hi = m * (1 + bps / 10_000);
    return {
      bid: band(b.bids, (p) => p >= lo, b.bids.length < b.depth),
      ask: band(b.asks, (p) => p <= hi, b.asks.length < b.depth),
    };
  });
  const [b10, b50] = bands as [(typeof bands)[0], (typeof bands)[0]];
  const bidTop = Number(bid[0]) * Number(bid[1]);
  const askTop = Number(ask[0]) * Number(ask[1]);
  const wide = b50.bid.notional + b50.ask.notional;
  return {
    exchange: b.exchange,
    market: b.market,
    symbol: b.symbol,
    venueSymbol: b.venueSymbol,
    timeMs: rowTimeMs(b),
    sequence: b.sequence,
    receiveTimeUs: b.receiveTimeUs,
    bidPrice: bid[0],
    bidQty: bid[1],
    askPrice: ask[0],
    askQty: ask[1],
    mid,
    spread,
    spreadPct: (s / m) * 100,
    spreadBps: (s / m) * 10_000,
    bidDepth10Bps: b10.bid.notional,
    askDepth10Bps: b10.ask.notional,
    bidDepth50Bps: b50.bid.notional,
    askDepth50Bps: b50.ask.notional,
    depthComplete10Bps: b10.bid.complete && b10.ask.complete,
    depthComplete50Bps: b50.bid.complete && b50.ask.complete,
    imbalance: bidTop + askTop > 0 ? bidTop / (bidTop + askTop) : 0.5,
    depthImbalance50Bps: wide > 0 ? b50.bid.notional / wide : null,
  };
}
