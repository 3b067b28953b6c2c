// Coinbase Exchange and Gemini next to Binance: what each venue subscribes to, how one lost book is asked for again
// (resubscribing it), and the router that sends its session's outputs (ingestion/<venue>/session.ts) to the same topics
// as Binance's. The sockets are feed.ts's, as for Binance. Coinbase's books come from level2_batch, or from level2 with
// a signed subscription when credentials are configured; the state of that subscription is kept for /healthz.
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/log.ts';
import type { PublishOptions } from './book/output.ts';
import { signedFields } from './coinbase/auth.ts';
import { CoinbaseSession } from './coinbase/session.ts';
import { GeminiSession } from './gemini/session.ts';
import type { IngestMetrics } from './metrics.ts';
import { VenueRouter, type RecordSink, type VenueSession } from './router.ts';

export type VenueName = 'coinbase' | 'gemini';

export interface Venue {
  readonly name: VenueName;
  readonly wsUrl: string;
  /** Venue symbols: Coinbase products (BTC-USD), Gemini symbols (BTCUSD). */
  readonly symbols: readonly string[];
  /** Sent on every open. */
  subscribe(): string[];
  /** Sent to get one symbol's book again (a full snapshot follows the new subscription). */
  resubscribe(venueSymbol: string): string[];
  session(opts: PublishOptions): VenueSession;
  /** The books channel's subscription, for a venue that answers it (Coinbase). */
  readonly books?: BooksChannel;
}

/** A venue's books subscription as last answered: shown on /healthz, refused is a failure. */
export class BooksChannel {
  state: 'subscribing' | 'subscribed' | 'refused' = 'subscribing';
  /** The venue's words for the last refusal. */
  reason: string | null = null;

  constructor(readonly channel: string) {}
}

/**
 * Coinbase's subscriptions. Without credentials one message: level2_batch, ticker, matches. With them the books come
 * from level2 in a message of its own, signed afresh on every call (every open and every resubscription: Coinbase
 * refuses a timestamp 30 s off), so that a refusal costs the books only, not the trades.
 */
export function coinbaseVenue(c: Config['venues']['coinbase'], now: () => number = Date.now): Venue {
  const creds = c.credentials;
  const books = new BooksChannel(creds ? 'level2' : 'level2_batch');
  const subscribeBooks = (products: readonly string[]) =>
    JSON.stringify({ type: 'subscribe', product_ids: products, channels: [books.channel], ...(creds ? signedFields(creds, now()) : {}) });
  return {
    name: 'coinbase',
    wsUrl: c.wsUrl,
    symbols: c.products,
    books,
    subscribe: () =>
      creds
        ? [subscribeBooks(c.products), JSON.stringify({ type: 'subscribe', product_ids: c.products, channels: ['ticker', 'matches'] })]
        : [JSON.stringify({ type: 'subscribe', product_ids: c.products, channels: [books.channel, 'ticker', 'matches'] })],
    resubscribe: (p) => [JSON.stringify({ type: 'unsubscribe', product_ids: [p], channels: [books.channel] }), subscribeBooks([p])],
    session: (opts) => new CoinbaseSession({ ...opts, bookChannel: books.channel }),
  };
}

export function geminiVenue(g: Config['venues']['gemini']): Venue {
  return {
    name: 'gemini',
    wsUrl: g.wsUrl,
    symbols: g.symbols,
    subscribe: () => [JSON.stringify({ type: 'subscribe', subscriptions: [{ name: 'l2', symbols: g.symbols }] })],
    resubscribe: (s) => [
      JSON.stringify({ type: 'unsubscribe', subscriptions: [{ name: 'l2', symbols: [s] }] }),
      JSON.stringify({ type: 'subscribe', subscriptions: [{ name: 'l2', symbols: [s] }] }),
    ],
    session: (opts) => new GeminiSession(opts),
  };
}

/** The venues with at least one symbol configured (COINBASE_PRODUCTS, GEMINI_SYMBOLS). */
export function enabledVenues(config: Config): Venue[] {
  const v = config.venues;
  return [...(v.coinbase.products.length > 0 ? [coinbaseVenue(v.coinbase)] : []), ...(v.gemini.symbols.length > 0 ? [geminiVenue(v.gemini)] : [])];
}

export interface VenueRouterOptions {
  readonly venue: Venue;
  readonly topics: Config['kafka']['topics'];
  readonly books: Config['books'];
  readonly sink: RecordSink;
  readonly metrics: IngestMetrics;
  /** The venue's logger (with its `venue` field). */
  readonly log: Logger;
  readonly deadLetterMaxBytes: number;
  /** Sends frames on the venue's open connection; false when none is open (the next open subscribes anyway). */
  readonly send: (text: string) => boolean;
}

/** One venue's session behind the router: every frame through the session, every output to its topic. */
export function venueRouter(o: VenueRouterOptions): VenueRouter {
  const { venue, log } = o;
  const router: VenueRouter = new VenueRouter({
    session: venue.session({ depth: o.books.depth, intervalMs: o.books.publishIntervalMs }),
    source: venue.name,
    topics: o.topics,
    booksTopic: o.books.topic,
    sink: o.sink,
    metrics: o.metrics,
    log,
    deadLetterMaxBytes: o.deadLetterMaxBytes,
    flushIntervalMs: o.books.publishIntervalMs,
    refetchBook: (symbol, reason) => {
      log.info({ symbol, reason }, 'book lost: resubscribing');
      router.subscribing();
      for (const m of venue.resubscribe(symbol)) o.send(m);
    },
    subscription: (s) => {
      const books = venue.books;
      if (!books) return;
      if (s.status === 'subscribed') {
        if (books.state !== 'subscribed') log.info({ channel: s.channel }, 'books channel subscribed');
        books.state = 'subscribed';
        return;
      }
      books.state = 'refused';
      books.reason = s.reason;
      o.metrics.subscriptionRefused(venue.name, s.channel);
      log.error({ channel: s.channel, reason: s.reason }, 'books subscription refused: no books from this venue until it is accepted');
    },
  });
  return router;
}
