// What every venue session (ingestion/<venue>/session.ts) hands to the router (ingestion/router.ts), and when a book is
// published: on every change of its top N levels, or at most once per interval (the latest state wins; nothing is
// published for an unchanged top). The book keepers here are the sessions' main source of outputs.
import type { AggTrade, Book, BookGapEvent, BookTicker, Exchange, GapEvent, Market, Trade } from '../../common/records.ts';
import type { OrderBook } from './order-book.ts';

/** Coinbase and Gemini records also keep the venue's own symbol (VenueTrade, VenueBookTicker); Binance's need none. */
type MaybeVenueSymbol<T> = T & { readonly venueSymbol?: string };

/**
 * Empties an array that is filled again at once (the outputs of each frame): by pop, which keeps its backing store,
 * where `length = 0` gives it up and the next push allocates a new one (43 against 3 ns per push and clear, and garbage
 * for the young generation, with one output per frame).
 */
export function emptyForReuse(a: unknown[]): void {
  while (a.length > 0) a.pop();
}

/** One output of a venue session: a record to produce, an accounting fact, or a control event for the router. */
export type VenueOutput =
  | { readonly kind: 'trade'; readonly record: MaybeVenueSymbol<Trade> }
  | { readonly kind: 'aggTrade'; readonly record: AggTrade }
  | { readonly kind: 'bookTicker'; readonly record: MaybeVenueSymbol<BookTicker> }
  | { readonly kind: 'book'; readonly record: Book }
  | { readonly kind: 'gap'; readonly record: GapEvent | BookGapEvent }
  /** The frame cannot become a record: the caller dead-letters its raw text with this reason. */
  | { readonly kind: 'rejected'; readonly stream: string | null; readonly reason: string }
  | { readonly kind: 'ignored'; readonly stream: string | null; readonly why: string }
  /** A tick whose id was already passed on (a reconnect overlap, a backfill race): dropped, counted by stream. */
  | { readonly kind: 'duplicate'; readonly stream: string }
  /** The book of this venue symbol must be fetched again (Binance: REST snapshot; others: resubscribe). */
  | { readonly kind: 'needSnapshot'; readonly venueSymbol: string; readonly reason: string }
  /** Ticks of this Binance sequence wait behind a hole in their ids: fill it over REST. */
  | { readonly kind: 'needBackfill'; readonly type: 'trade' | 'aggTrade'; readonly symbol: string }
  /** The exchange announced it is going away: open new connections at once. */
  | { readonly kind: 'serverShutdown'; readonly eventTimeMs: number | null }
  /** The venue answered a books subscription: the channel listed as subscribed, or refused (`reason`, the venue's words). */
  | { readonly kind: 'subscription'; readonly channel: string; readonly status: 'subscribed' | 'refused'; readonly reason: string | null };

export interface BookIdentity {
  readonly exchange: Exchange;
  readonly market: Market;
  /** Canonical BASE-QUOTE. */
  readonly symbol: string;
  readonly venueSymbol: string;
}

export interface PublishOptions {
  /** Levels per side in a published book. */
  readonly depth: number;
  /** 0: publish on every change of the top levels; else at most once per this many ms (receive time). */
  readonly intervalMs: number;
}

/** The publishing decision of one book. */
export class BookPublisher {
  private dirty = false;
  private lastMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly intervalMs: number) {}

  /** An update was applied at `nowMs`; true when the book should be published now. */
  changed(topChanged: boolean, nowMs: number): boolean {
    if (topChanged) this.dirty = true;
    return this.due(nowMs);
  }

  /** For a timer: true when a change is waiting and its interval has passed. */
  due(nowMs: number): boolean {
    if (!this.dirty || nowMs - this.lastMs < this.intervalMs) return false;
    this.dirty = false;
    this.lastMs = nowMs;
    return true;
  }

  /** A new session (snapshot): the next change is published at once. */
  reset(): void {
    this.dirty = false;
    this.lastMs = Number.NEGATIVE_INFINITY;
  }
}

export function bookRecord(id: BookIdentity, book: OrderBook, depth: number, sequence: number, exchangeTimeMs: number | null, receiveTimeUs: number): Book {
  return {
    type: 'book',
    exchange: id.exchange,
    market: id.market,
    symbol: id.symbol,
    venueSymbol: id.venueSymbol,
    sequence,
    depth,
    bids: book.bids.top(depth),
    asks: book.asks.top(depth),
    exchangeTimeMs,
    receiveTimeUs,
  };
}
