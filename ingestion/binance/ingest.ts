// Binance behind the one venue contract: its session (mapper, id sequences, order books) in front of the router, and the
// two REST loops that feed the router as well: the backfill of id holes and the snapshots of order books. Live
// ingestion and replay share it.
import type { Config } from '../../common/config.ts';
import type { Logger } from '../../common/log.ts';
import type { RestBackfiller } from '../backfill.ts';
import { BackfillLoop, type RestLoopOptions } from '../backfill-loop.ts';
import { BinanceBooks } from '../book/binance-depth.ts';
import { SnapshotLoop } from '../book/snapshot-loop.ts';
import type { Sequenced } from '../gaps.ts';
import type { IngestMetrics } from '../metrics.ts';
import { VenueRouter, type RecordSink } from '../router.ts';
import type { Mapper } from './mapper.ts';
import { BinanceSession } from './session.ts';

export interface BinanceIngestOptions {
  readonly source: Config['source'];
  readonly topics: Config['kafka']['topics'];
  readonly mapper: Mapper;
  readonly sink: RecordSink;
  /** Without one, holes are recorded as lost (replay without --backfill) and books stay unsynced. */
  readonly backfiller?: RestBackfiller;
  readonly metrics: IngestMetrics;
  readonly log: Logger;
  /** Wait before backfilling a hole: the overlap of a switch-over, or reordered frames, often fill it first. */
  readonly backfillDelayMs?: number;
  /** Attempts at a hole REST does not (yet) cover before it is recorded as lost. */
  readonly backfillAttempts?: number;
  readonly onServerShutdown?: () => void;
  /** The symbols streamed, read live (symbols by rule); default: the configured list. */
  readonly symbols?: ReadonlySet<string>;
  /** Keep order books of the depth streams (when STREAM_TYPES has `depth`); snapshots come over REST (backfiller). */
  readonly books?: Config['books'];
}

export class BinanceIngest {
  readonly session: BinanceSession;
  readonly router: VenueRouter;
  private readonly backfills: BackfillLoop;
  private readonly snapshots: SnapshotLoop | undefined;

  constructor(opts: BinanceIngestOptions) {
    const { source: src, sink, backfiller, metrics, log } = opts;
    const b = opts.books && src.streamTypes.includes('depth') ? opts.books : undefined;
    const books = b && new BinanceBooks({ market: src.market, depth: b.depth, intervalMs: b.publishIntervalMs, symbols: opts.symbols ?? src.symbols });
    this.session = new BinanceSession({ market: src.market, mapper: opts.mapper, books, lag: (type, seconds) => metrics.lag(type).observe(seconds) });
    const route: RestLoopOptions['route'] = (out, raw, receiveTimeUs) => this.router.route(out, raw, receiveTimeUs);
    this.backfills = new BackfillLoop({ sequences: this.session.sequences, backfiller, sink, route, metrics, log, delayMs: opts.backfillDelayMs, attempts: opts.backfillAttempts });
    this.snapshots = books && new SnapshotLoop({ books, backfiller, sink, route, log });
    this.router = new VenueRouter({
      session: this.session,
      source: `binance-${src.market}`,
      topics: opts.topics,
      booksTopic: b?.topic ?? '',
      sink,
      metrics,
      log,
      deadLetterMaxBytes: src.deadLetterMaxBytes,
      flushIntervalMs: b?.publishIntervalMs,
      countLost: true,
      refetchBook: (symbol, reason) => this.snapshots?.request(symbol, reason),
      backfill: (type, symbol) => this.backfills.start(type, symbol),
      serverShutdown: opts.onServerShutdown,
    });
  }

  frame(text: string, receiveTimeUs: number): void {
    this.router.frame(text, receiveTimeUs);
  }

  /** The connection carrying these symbols' streams went down. */
  disconnected(reason: string, symbols: readonly string[]): void {
    this.router.disconnected(reason, symbols);
  }

  /** Ticks held behind holes (they count towards the buffer bound). */
  get held(): number {
    return this.session.sequences.held;
  }

  get backfilling(): number {
    return this.backfills.running;
  }

  /** REST snapshots being fetched for order books. */
  get snapshotting(): number {
    return this.snapshots?.running ?? 0;
  }

  /** Start a sequence after an id already in Kafka (a restart then shows the downtime as a hole). */
  resumeAfter(type: Sequenced['type'], symbol: string, lastId: number): void {
    this.session.sequences.resumeAfter(type, symbol, lastId);
  }

  /** Whether the exchange knows the id (over REST): true, false, or undefined when it cannot say. */
  exists(type: Sequenced['type'], symbol: string, id: number): Promise<boolean | undefined> {
    return this.backfills.exists(type, symbol, id);
  }

  /** Resolves once no backfill is running. */
  idle(): Promise<void> {
    return this.backfills.idle();
  }

  stop(): void {
    this.backfills.stop();
    this.snapshots?.stop();
    this.router.stop();
  }
}
