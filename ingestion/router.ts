// The one path from a venue session to Kafka: every session (Binance, Coinbase, Gemini) hands its frames' outputs to a
// router, which produces records to their topics, dead-letters rejections, records gaps, counts what it drops, and
// passes the control events (a lost book, a hole to backfill, a server going away) to the venue's own handling.
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/log.ts';
import { tickKey, type BookGapEvent, type DeadLetter, type Exchange, type GapEvent, type Market, type ProducedRecord } from '../common/records.ts';
import { emptyForReuse, type VenueOutput } from './book/output.ts';
import type { IngestMetrics } from './metrics.ts';

/** Where records go: the producer, or anything with the same face (tests, the parse-only benchmark). */
export interface RecordSink {
  produce(topic: string, key: string, record: ProducedRecord, receiveTimeUs?: number): void;
  writable(): Promise<void>;
}

/** The state behind one venue's connections, in pure code: frames in, outputs out. */
export interface VenueSession {
  /** Appends the frame's outputs; returns the stream the frame counts as received on, or undefined when it does not count. */
  frame(text: string, receiveTimeUs: number, out: VenueOutput[]): string | undefined;
  /** Interval publishing of books (BOOK_PUBLISH_INTERVAL_MS > 0). */
  flush(nowMs: number, out: VenueOutput[]): void;
  /** A subscription was just sent (a venue that subscribes by message): its answer is awaited. */
  subscribing?(): void;
  /** A connection went down: the one carrying `symbols` (Binance), or the venue's only one. */
  disconnected(reason: string, symbols: readonly string[]): void;
}

/** A dead letter for a frame (or REST body) that cannot become a record, its raw text cut to `maxBytes`. */
function deadLetterOf(source: string, raw: string, stream: string | null, reason: string, receiveTimeUs: number, maxBytes: number): DeadLetter {
  let text = raw;
  let truncated = false;
  if (Buffer.byteLength(raw) > maxBytes) {
    text = Buffer.from(raw).subarray(0, maxBytes).toString().replace(/\uFFFD$/, '');
    truncated = true;
  }
  return { type: 'deadLetter', source, stream, reason, raw: text, truncated, receiveTimeUs };
}

export interface VenueRouterOptions {
  readonly session: VenueSession;
  /** Dead letters' source (`binance-spot`, `coinbase`), and their key when the frame names no stream. */
  readonly source: string;
  readonly topics: Config['kafka']['topics'];
  readonly booksTopic: string;
  readonly sink: RecordSink;
  readonly metrics: IngestMetrics;
  readonly log: Logger;
  readonly deadLetterMaxBytes: number;
  /** Publish books on a timer every this many ms (0 or undefined: on every change, no timer). */
  readonly flushIntervalMs?: number;
  /**
   * Count what a gap lost (its ids, or its seconds when it has none) under gap_ids_total{outcome="lost"} and
   * gap_seconds_total: Binance, whose detected and backfilled ids are counted beside them. Other venues count gaps only.
   */
  readonly countLost?: boolean;
  /** A book must be fetched again (needSnapshot). */
  readonly refetchBook: (venueSymbol: string, reason: string) => void;
  readonly backfill?: (type: 'trade' | 'aggTrade', symbol: string) => void;
  readonly serverShutdown?: () => void;
  /** The venue answered a books subscription (subscribed or refused). */
  readonly subscription?: (o: Extract<VenueOutput, { kind: 'subscription' }>) => void;
}

/** Most symbols whose Kafka key the router remembers; past it the cache starts over. */
export const SYMBOL_KEYS_MAX = 10_000;

export class VenueRouter {
  private readonly session: VenueSession;
  private readonly out: VenueOutput[] = [];
  private readonly keys = new Map<string, { exchange: Exchange; market: Market; key: string }>();
  private readonly flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: VenueRouterOptions) {
    this.session = opts.session;
    const every = opts.flushIntervalMs ?? 0;
    if (every > 0) {
      this.flushTimer = setInterval(() => this.flush(Date.now()), every);
      this.flushTimer.unref();
    }
  }

  frame(text: string, receiveTimeUs: number): void {
    let stream: string | undefined;
    try {
      stream = this.session.frame(text, receiveTimeUs, this.out);
    } catch (err) {
      // A bug one frame runs into must not take every stream down with the process: book tickers lost while it
      // restarts cannot be backfilled. The frame is dead-lettered with the error and logged; what the session had
      // output before the error goes out as usual.
      this.opts.log.error({ err, source: this.opts.source }, 'a frame failed in the session: dead-lettered');
      this.out.push({ kind: 'rejected', stream: null, reason: `internal error: ${err instanceof Error ? err.message : String(err)}` });
    }
    if (stream !== undefined) this.opts.metrics.received(stream).inc();
    this.route(this.out, text, receiveTimeUs);
  }

  /** A subscription was just sent: the session awaits its answer. */
  subscribing(): void {
    this.session.subscribing?.();
  }

  disconnected(reason: string, symbols: readonly string[] = []): void {
    this.session.disconnected(reason, symbols);
  }

  /** Publishes the books whose interval has passed (the timer calls it). */
  flush(nowMs: number): void {
    this.session.flush(nowMs, this.out);
    this.route(this.out, '', nowMs * 1000);
  }

  /** Sends each output where it belongs, then empties `out`; rejections dead-letter `raw` (the frame or REST body). */
  route(out: VenueOutput[], raw: string, receiveTimeUs: number): void {
    const { sink, topics, metrics } = this.opts;
    for (const o of out) {
      switch (o.kind) {
        case 'trade':
        case 'aggTrade':
        case 'bookTicker':
          sink.produce(topics[o.kind], this.keyOf(o.record), o.record, o.record.receiveTimeUs);
          break;
        case 'book':
          sink.produce(this.opts.booksTopic, this.keyOf(o.record), o.record, o.record.receiveTimeUs);
          break;
        case 'gap':
          this.gap(o.record);
          break;
        case 'rejected': {
          const dl = deadLetterOf(this.opts.source, raw, o.stream, o.reason, receiveTimeUs, this.opts.deadLetterMaxBytes);
          metrics.deadLettered(o.reason);
          sink.produce(topics.deadLetter, o.stream ?? this.opts.source, dl, receiveTimeUs);
          break;
        }
        case 'ignored':
          metrics.ignored(o.why).inc();
          break;
        case 'duplicate':
          metrics.duplicates(o.stream).inc();
          break;
        case 'needSnapshot':
          this.opts.refetchBook(o.venueSymbol, o.reason);
          break;
        case 'needBackfill':
          this.opts.backfill?.(o.type, o.symbol);
          break;
        case 'serverShutdown':
          metrics.ignored('serverShutdown').inc();
          this.opts.log.warn({ eventTimeMs: o.eventTimeMs }, 'serverShutdown received');
          this.opts.serverShutdown?.();
          break;
        case 'subscription':
          this.opts.subscription?.(o);
          break;
      }
    }
    emptyForReuse(out);
  }

  stop(): void {
    clearInterval(this.flushTimer);
  }

  /** tickKey of a record, built once per symbol rather than once per record. */
  private keyOf(r: { exchange: Exchange; market: Market; symbol: string }): string {
    const k = this.keys.get(r.symbol);
    if (k !== undefined && k.exchange === r.exchange && k.market === r.market) return k.key;
    // Symbols come from the venue (a rule may list thousands): the cache starts over past its bound.
    if (this.keys.size >= SYMBOL_KEYS_MAX) this.keys.clear();
    const key = tickKey(r);
    this.keys.set(r.symbol, { exchange: r.exchange, market: r.market, key });
    return key;
  }

  private gap(g: GapEvent | BookGapEvent): void {
    const m = this.opts.metrics;
    m.gaps.labels(g.stream).inc();
    if (this.opts.countLost) {
      if (g.fromId === null) m.gapSeconds.labels(g.stream).inc(Math.max(0, g.toTimeMs - g.fromTimeMs) / 1000);
      else m.gapIds.labels(g.stream, 'lost').inc(g.toId! - g.fromId + 1);
    }
    this.opts.log.warn({ stream: g.stream, symbol: g.symbol, fromId: g.fromId, toId: g.toId, fromTimeMs: g.fromTimeMs, toTimeMs: g.toTimeMs, reason: g.reason }, 'gap recorded');
    this.opts.sink.produce(this.opts.topics.gap, tickKey(g), g);
  }
}
