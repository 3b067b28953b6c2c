// Coinbase Exchange websocket messages (level2 snapshot/l2update, ticker, match/last_match) -> normalized values, in
// pure code: one frame of text in, a typed event or a rejection with its reason out. Sequence checks and the books
// live in the session (session.ts); nothing here keeps state or knows about sockets.
import type { BookLevel, VenueBookTicker, VenueTrade } from '../../common/records.ts';
import { crossFieldProblem, isDecimal, isId, isPositiveDecimal, isVenueTimeMs, newBookTicker, newTrade, withVenueSymbol } from '../../common/tick-schema.ts';
import { checkLevels, type LevelChange } from '../book/order-book.ts';
import { parseVenueFrame, shortValue, type SymbolMap } from '../venues.ts';

export type CoinbaseEvent =
  | { readonly kind: 'trade'; readonly trade: VenueTrade; readonly sequence: number }
  /** A ticker: `tick` when it carries best bid/ask sizes (newer feeds); older tickers only carry the sequence. */
  | { readonly kind: 'ticker'; readonly venueSymbol: string; readonly sequence: number; readonly tick: VenueBookTicker | null }
  | { readonly kind: 'snapshot'; readonly venueSymbol: string; readonly symbol: string; readonly bids: readonly BookLevel[]; readonly asks: readonly BookLevel[] }
  | { readonly kind: 'l2update'; readonly venueSymbol: string; readonly changes: readonly LevelChange[]; readonly exchangeTimeMs: number }
  /** The venue's list of this connection's channels, sent after every (un)subscribe. */
  | { readonly kind: 'subscriptions'; readonly channels: readonly string[] }
  /** An error message (`reason` for its dead letter; `detail`, the venue's message and reason, for the log). */
  | { readonly kind: 'venueError'; readonly reason: string; readonly detail: string }
  | { readonly kind: 'ignored'; readonly stream: string | null; readonly why: string }
  | { readonly kind: 'rejected'; readonly stream: string | null; readonly reason: string };

type Fields = Record<string, unknown>;

/** ISO time with up to µs ('2021-04-17T16:43:37.075687Z') -> ms, or undefined. */
export function isoTimeMs(x: unknown): number | undefined {
  if (typeof x !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/.test(x)) return undefined;
  const ms = Date.parse(x.length > 24 ? `${x.slice(0, 23)}Z` : x);
  return isVenueTimeMs(ms) ? ms : undefined;
}

const short = shortValue;

/** Channel names of a `subscriptions` message: `[{"name":"level2","product_ids":[...]}, ...]` (or bare names). */
function channelNames(x: unknown): string[] {
  if (!Array.isArray(x)) return [];
  return x.flatMap((c: unknown) => (typeof c === 'string' ? [c] : typeof c === 'object' && c !== null && typeof (c as { name?: unknown }).name === 'string' ? [(c as { name: string }).name] : []));
}

export function mapCoinbase(text: string, receiveTimeUs: number, symbols: SymbolMap): CoinbaseEvent {
  const parsed = parseVenueFrame(text);
  if ('reason' in parsed) return { kind: 'rejected', stream: null, reason: parsed.reason };
  const m = parsed.fields;
  const type = m.type;
  if (type === 'heartbeat') return { kind: 'ignored', stream: type, why: type };
  if (type === 'subscriptions') return { kind: 'subscriptions', channels: channelNames(m.channels) };
  if (type === 'error') {
    const detail = [m.message, m.reason].filter((x) => typeof x === 'string').join(': ').slice(0, 200);
    return { kind: 'venueError', reason: `venue error: ${short(m.message)} ${short(m.reason)}`, detail };
  }
  if (typeof type !== 'string') return { kind: 'rejected', stream: null, reason: 'missing field type' };
  const venueSymbol = m.product_id;
  if (typeof venueSymbol !== 'string') return { kind: 'rejected', stream: type, reason: 'missing field product_id' };
  const stream = `${type}:${venueSymbol}`;
  const symbol = symbols.canonical(venueSymbol);
  if (symbol === undefined) return { kind: 'rejected', stream, reason: `product_id ${short(venueSymbol)} is not BASE-QUOTE` };
  const reject = (reason: string): CoinbaseEvent => ({ kind: 'rejected', stream, reason });

  switch (type) {
    case 'match':
    case 'last_match': {
      const timeMs = isoTimeMs(m.time);
      const bad =
        (!isId(m.trade_id) ? `field trade_id is not an id: ${short(m.trade_id)}` : undefined) ??
        (!isId(m.sequence) ? `field sequence is not an id: ${short(m.sequence)}` : undefined) ??
        (!isPositiveDecimal(m.price) ? `field price is not a positive decimal string: ${short(m.price)}` : undefined) ??
        (!isDecimal(m.size) ? `field size is not a decimal string: ${short(m.size)}` : undefined) ??
        (m.side !== 'buy' && m.side !== 'sell' ? `field side is not buy or sell: ${short(m.side)}` : undefined) ??
        (timeMs === undefined ? `field time is not an ISO time: ${short(m.time)}` : undefined);
      if (bad) return reject(bad);
      // Coinbase's side is the maker's: a sell maker means the taker bought.
      const buyerIsMaker = m.side === 'buy';
      const t = newTrade('coinbase', 'spot', symbol, receiveTimeUs, m.trade_id as number, m.price as string, m.size as string, buyerIsMaker, timeMs!, timeMs!);
      const problem = crossFieldProblem(t);
      if (problem) return reject(problem);
      const trade: VenueTrade = withVenueSymbol(t, venueSymbol);
      return { kind: 'trade', trade, sequence: m.sequence as number };
    }
    case 'ticker': {
      const timeMs = isoTimeMs(m.time);
      const bad =
        (!isId(m.sequence) ? `field sequence is not an id: ${short(m.sequence)}` : undefined) ??
        (!isPositiveDecimal(m.best_bid) ? `field best_bid is not a positive decimal string: ${short(m.best_bid)}` : undefined) ??
        (!isPositiveDecimal(m.best_ask) ? `field best_ask is not a positive decimal string: ${short(m.best_ask)}` : undefined) ??
        (timeMs === undefined ? `field time is not an ISO time: ${short(m.time)}` : undefined);
      if (bad) return reject(bad);
      const sized = isDecimal(m.best_bid_size) && isDecimal(m.best_ask_size);
      if (!sized) return { kind: 'ticker', venueSymbol, sequence: m.sequence as number, tick: null };
      const bid = m.best_bid as string;
      const ask = m.best_ask as string;
      const t = newBookTicker('coinbase', 'spot', symbol, receiveTimeUs, m.sequence as number, bid, m.best_bid_size as string, ask, m.best_ask_size as string, timeMs!, timeMs!);
      const problem = crossFieldProblem(t);
      if (problem) return reject(problem);
      const tick: VenueBookTicker = withVenueSymbol(t, venueSymbol);
      return { kind: 'ticker', venueSymbol, sequence: m.sequence as number, tick };
    }
    case 'snapshot': {
      const bad = checkLevels(m.bids, 'bids') ?? checkLevels(m.asks, 'asks');
      if (bad) return reject(bad);
      return { kind: 'snapshot', venueSymbol, symbol, bids: m.bids as BookLevel[], asks: m.asks as BookLevel[] };
    }
    case 'l2update': {
      const timeMs = isoTimeMs(m.time);
      if (timeMs === undefined) return reject(`field time is not an ISO time: ${short(m.time)}`);
      if (!Array.isArray(m.changes)) return reject('field changes is not an array');
      const changes: LevelChange[] = [];
      for (let i = 0; i < m.changes.length; i++) {
        const c = m.changes[i] as unknown;
        if (!Array.isArray(c) || c.length !== 3) return reject(`changes[${i}] is not [side, price, size]`);
        if (c[0] !== 'buy' && c[0] !== 'sell') return reject(`changes[${i}] side is not buy or sell`);
        if (!isPositiveDecimal(c[1])) return reject(`changes[${i}] price is not a positive decimal string`);
        if (!isDecimal(c[2])) return reject(`changes[${i}] size is not a decimal string`);
        changes.push({ side: c[0] === 'buy' ? 'bid' : 'ask', price: c[1], quantity: c[2] });
      }
      return { kind: 'l2update', venueSymbol, changes, exchangeTimeMs: timeMs };
    }
    default:
      return { kind: 'ignored', stream, why: 'message type not ingested' };
  }
}
