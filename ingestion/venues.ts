// One canonical symbol for every venue (BASE-QUOTE, upper case: BTC-USDT, BTC-USD) next to the venue's own spelling,
// so that dashboards can put venues side by side while records still say what the venue called the market.
import type { Exchange } from '../common/records.ts';

// Quote assets per venue, tried longest first (BTCUSDT is BTC-USDT, not BTCUSD-T). Per venue because suffixes are
// ambiguous across venues: Gemini's GRTUSD is GRT-USD, but with Binance's TUSD quote it would read GR-TUSD.
const QUOTES: Readonly<Record<Exchange, readonly string[]>> = {
  binance: longestFirst(['FDUSD', 'USDT', 'USDC', 'BUSD', 'TUSD', 'USDP', 'EURI', 'AEUR', 'DAI', 'EUR', 'GBP', 'TRY', 'BRL', 'JPY', 'AUD', 'UAH', 'ZAR', 'PLN', 'RON', 'ARS', 'MXN', 'IDR', 'BTC', 'ETH', 'BNB', 'XRP', 'TRX', 'DOGE', 'SOL']),
  gemini: longestFirst(['GUSD', 'USDT', 'USDC', 'DAI', 'USD', 'EUR', 'GBP', 'SGD', 'AUD', 'CAD', 'BTC', 'ETH', 'LTC', 'BCH']),
  // Coinbase writes BASE-QUOTE itself.
  coinbase: [],
};

function longestFirst(q: string[]): string[] {
  return q.sort((a, b) => b.length - a.length);
}

const VENUE_SYMBOL = /^[A-Za-z0-9]{2,20}([-_/][A-Za-z0-9]{1,16})?$/;

/**
 * The canonical form of a venue symbol, or undefined when it cannot be split into base and quote (an unknown quote
 * asset): the caller dead-letters or skips such a market rather than inventing a name.
 */
export function canonicalSymbol(exchange: Exchange, venueSymbol: string): string | undefined {
  if (!VENUE_SYMBOL.test(venueSymbol)) return undefined;
  const s = venueSymbol.toUpperCase();
  // Coinbase already writes BASE-QUOTE; other separators are normalized to '-'.
  const sep = /[-_/]/.exec(s);
  if (sep) return `${s.slice(0, sep.index)}-${s.slice(sep.index + 1)}`;
  for (const q of QUOTES[exchange]) {
    if (s.length > q.length + 1 && s.endsWith(q)) return `${s.slice(0, -q.length)}-${q}`;
  }
  return undefined;
}

/** Remembers each venue symbol's canonical form (computed once per market, not per message). */
export class SymbolMap {
  private readonly known = new Map<string, string | null>();

  constructor(readonly exchange: Exchange) {}

  canonical(venueSymbol: string): string | undefined {
    let c = this.known.get(venueSymbol);
    if (c === undefined) {
      c = canonicalSymbol(this.exchange, venueSymbol) ?? null;
      // Bounded: a flood of garbage symbols must not grow the map without end.
      if (this.known.size < 10_000) this.known.set(venueSymbol, c);
    }
    return c ?? undefined;
  }
}

/** A venue frame's JSON object, or why the frame is not one (the mappers dead-letter it with that reason). */
export function parseVenueFrame(text: string): { readonly fields: Record<string, unknown> } | { readonly reason: string } {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return { reason: 'not JSON' };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return { reason: 'not a JSON object' };
  return { fields: msg as Record<string, unknown> };
}

/** A value shortened for a rejection reason. */
export function shortValue(v: unknown): string {
  const s = String(JSON.stringify(v));
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}
