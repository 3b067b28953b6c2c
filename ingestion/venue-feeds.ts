// Coinbase Exchange and Gemini next to Binance: what each venue subscribes to (and how one lost book is asked for
// again), and the routing of its session's outputs (ingestion/<venue>/session.ts, pure) to the same topics as Binance's
// trades, book tickers, gaps and dead letters, plus the books topic. The sockets are feed.ts's, as for Binance.
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/log.ts';
import { tickKey } from '../common/records.ts';
import type { PublishOptions, VenueOutput } from './book/output.ts';
import type { VenueBooks } from './book/venue-books.ts';
import { CoinbaseSession } from './coinbase/session.ts';
import { GeminiSession } from './gemini/session.ts';
import type { IngestMetrics } from './metrics.ts';
import { deadLetterOf, type RecordSink } from './pipeline.ts';

export type VenueName = 'coinbase' | 'gemini';

/** One connection's state (the venue's session): frames in, normalized outputs out. */
export interface VenueSession {
  readonly books: VenueBooks;
  frame(text: string, receiveTimeUs: number, out: VenueOutput[]): void;
  disconnected(): void;
}

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
  readonly log: Logger;
  readonly deadLetterMaxBytes: number;
  /** Sends frames on the venue's open connection; false when none is open (the next open subscribes anyway). */
  readonly send: (text: string) => boolean;
}

/** One venue's session behind its feed: every frame through the session, every output to its topic. */
export class VenueRouter {
  readonly session: VenueSession;
  private readonly out: VenueOutput[] = [];
  private readonly log: Logger;

  constructor(private readonly opts: VenueRouterOptions) {
    this.session = opts.venue.session({ depth: opts.books.depth, intervalMs: opts.books.publishIntervalMs });
    this.log = opts.log.child({ venue: opts.venue.name });
  }

  frame(text: string, receiveTimeUs: number): void {
    this.opts.metrics.received(this.opts.venue.name).inc();
    this.session.frame(text, receiveTimeUs, this.out);
    this.route(text, receiveTimeUs);
  }

  /** The connection dropped: books wait for the next subscription's snapshots. */
  disconnected(reason: string): void {
    this.log.warn({ reason }, 'venue connection lost: books wait for new snapshots');
    this.session.disconnected();
  }

  /** Interval publishing (BOOK_PUBLISH_INTERVAL_MS > 0): call from a timer. */
  flush(nowMs: number): void {
    this.session.books.flush(nowMs, nowMs * 1000, this.out);
    this.route('', nowMs * 1000);
  }

  private route(raw: string, receiveTimeUs: number): void {
    const { sink, topics, metrics } = this.opts;
    for (const o of this.out) {
      switch (o.kind) {
        case 'trade':
          sink.produce(topics.trade, tickKey(o.record), o.record, o.record.receiveTimeUs);
          break;
        case 'bookTicker':
          sink.produce(topics.bookTicker, tickKey(o.record), o.record, o.record.receiveTimeUs);
          break;
        case 'book':
          sink.produce(this.opts.books.topic, tickKey(o.record), o.record, o.record.receiveTimeUs);
          break;
        case 'gap': {
          const g = o.record;
          metrics.gaps.labels(g.stream).inc();
          this.log.warn({ stream: g.stream, symbol: g.symbol, fromId: g.fromId, toId: g.toId, reason: g.reason }, 'gap recorded');
          sink.produce(topics.gap, tickKey(g), g);
          break;
        }
        case 'rejected':
          metrics.deadLettered(o.reason);
          sink.produce(topics.deadLetter, o.stream ?? this.opts.venue.name, deadLetterOf(this.opts.venue.name, raw, o.stream, o.reason, receiveTimeUs, this.opts.deadLetterMaxBytes), receiveTimeUs);
          break;
        case 'ignored':
          metrics.ignored(o.why).inc();
          break;
        case 'needSnapshot': {
          this.log.info({ symbol: o.venueSymbol, reason: o.reason }, 'book lost: resubscribing');
          for (const m of this.opts.venue.resubscribe(o.venueSymbol)) this.opts.send(m);
          break;
        }
      }
    }
    this.out.length = 0;
  }
}
