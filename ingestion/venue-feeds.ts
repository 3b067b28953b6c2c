// Coinbase Exchange and Gemini next to Binance: what each venue subscribes to, how one lost book is asked for again
// (resubscribing it), and the router that sends its session's outputs (ingestion/<venue>/session.ts) to the same topics
// as Binance's. The sockets are feed.ts's, as for Binance.
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/log.ts';
import type { PublishOptions } from './book/output.ts';
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
}

const COINBASE_CHANNELS = ['level2', 'ticker', 'matches'];

export function coinbaseVenue(c: Config['venues']['coinbase']): Venue {
  return {
    name: 'coinbase',
    wsUrl: c.wsUrl,
    symbols: c.products,
    subscribe: () => [JSON.stringify({ type: 'subscribe', product_ids: c.products, channels: COINBASE_CHANNELS })],
    resubscribe: (p) => [
      JSON.stringify({ type: 'unsubscribe', product_ids: [p], channels: ['level2'] }),
      JSON.stringify({ type: 'subscribe', product_ids: [p], channels: ['level2'] }),
    ],
    session: (opts) => new CoinbaseSession(opts),
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
  return new VenueRouter({
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
      for (const m of venue.resubscribe(symbol)) o.send(m);
    },
  });
}
