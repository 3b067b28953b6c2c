// What happens to a frame between the socket (or a capture file) and the producer: map and validate it, send bad
// ones to the dead-letter topic, pass trades and aggTrades on in id order exactly once, backfill the holes over REST,
// deduplicate book tickers and record their holes as gap events, and keep the order books of the depth streams in sync
// with their REST snapshots. Live ingestion and replay share it.
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/log.ts';
import { tickKey, type Book, type DeadLetter, type GapEvent, type ProducedRecord, type Tick } from '../common/records.ts';
import type { RestBackfiller } from './backfill.ts';
import { streamName, type Mapper } from './binance/mapper.ts';
import { BinanceBooks } from './book/binance-depth.ts';
import type { VenueOutput } from './book/output.ts';
import { BookTickerTracker, SequenceBook, sequenceId, type IdSequencer, type Sequenced } from './gaps.ts';
import type { IngestMetrics } from './metrics.ts';
import { nowUs, sleep } from '../common/time.ts';

/** Where records go: the producer, or anything with the same face (tests, the parse-only benchmark). */
export interface RecordSink {
  produce(topic: string, key: string, record: ProducedRecord, receiveTimeUs?: number): void;
  writable(): Promise<void>;
}

/** A dead letter for a frame (or REST body) that cannot become a record, its raw text cut to `maxBytes`. */
export function deadLetterOf(source: string, raw: string, stream: string | null, reason: string, receiveTimeUs: number, maxBytes: number): DeadLetter {
  let text = raw;
  let truncated = false;
  if (Buffer.byteLength(raw) > maxBytes) {
    text = Buffer.from(raw).subarray(0, maxBytes).toString().replace(/\uFFFD$/, '');
    truncated = true;
  }
  return { type: 'deadLetter', source, stream, reason, raw: text, truncated, receiveTimeUs };
}

/** Depth frames (`<symbol>@depth...`) go to the order books, not the tick mapper. */
const DEPTH_FRAME = /^\{"stream":"([a-z0-9]+@depth[@0-9a-z]*)"/;

export interface PipelineOptions {
  readonly source: Config['source'];
  readonly topics: Config['kafka']['topics'];
  readonly mapper: Mapper;
  readonly sink: RecordSink;
  /** Without one, holes are recorded as lost (replay without --backfill). */
  readonly backfiller?: RestBackfiller;
  readonly metrics: IngestMetrics;
  readonly log: Logger;
  /** Wait before backfilling a hole: the overlap of a switch-over, or reordered frames, often fill it first. */
  readonly backfillDelayMs?: number;
  /** Attempts at a hole REST does not (yet) cover before it is recorded as lost. */
  readonly backfillAttempts?: number;
  readonly onServerShutdown?: () => void;
  /** Keep order books of the depth streams (when STREAM_TYPES has `depth`); snapshots come over REST (backfiller). */
  readonly books?: Config['books'];
}


export class Pipeline {
  private readonly sequences = new SequenceBook();
  private readonly bookTickers = new BookTickerTracker();
  private readonly backfills = new Map<string, Promise<void>>();
  private readonly out: Sequenced[] = [];
  private readonly source: string;
  private stopped = false;
  /** Exchange time of the last tick passed on, per sequence (for the span of a lost hole). */
  private readonly lastTimeMs = new Map<IdSequencer, number>();
  /** Order books of the depth streams, or undefined when none are subscribed. */
  readonly books: BinanceBooks | undefined;
  private readonly bookOut: VenueOutput[] = [];
  /** Symbols whose book wants a REST snapshot, and the fetches running. */
  private readonly snapshotWanted = new Set<string>();
  private readonly snapshotFetches = new Map<string, Promise<void>>();
  private readonly flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: PipelineOptions) {
    this.source = `binance-${opts.source.market}`;
    const b = opts.books;
    if (b && opts.source.streamTypes.includes('depth')) {
      this.books = new BinanceBooks({ market: opts.source.market, depth: b.depth, intervalMs: b.publishIntervalMs, symbols: opts.source.symbols });
      if (b.publishIntervalMs > 0) {
        this.flushTimer = setInterval(() => {
          const nowMs = Date.now();
          this.books!.flush(nowMs, nowMs * 1000, this.bookOut);
          this.routeBooks('', nowMs * 1000);
        }, b.publishIntervalMs);
        this.flushTimer.unref();
      }
    }
  }

  /** Ticks held behind holes (they count towards the buffer bound). */
  get held(): number {
    return this.sequences.heldCount;
  }

  get backfilling(): number {
    return this.backfills.size;
  }

  /** REST snapshots being fetched for order books. */
  get snapshotting(): number {
    return this.snapshotFetches.size;
  }

  /** Start a sequence after an id already in Kafka (a restart then shows the downtime as a hole). */
  resumeAfter(type: Sequenced['type'], symbol: string, lastId: number): void {
    this.sequences.get(type, symbol).resumeAfter(lastId);
  }

  /** The connection carrying these symbols' streams went down. */
  disconnected(symbols: readonly string[], reason: string): void {
    this.bookTickers.disconnected(symbols, reason);
    // A book cannot be trusted across a hole in its diffs: it waits for a new snapshot after the next diff.
    if (this.books) for (const s of symbols) this.books.syncs.get(s)?.reset();
  }

  frame(text: string, receiveTimeUs: number): void {
    const m = this.opts.metrics;
    const depth = this.books ? DEPTH_FRAME.exec(text) : null;
    if (depth) {
      m.received(depth[1]!).inc();
      this.books!.frame(text, receiveTimeUs, this.bookOut);
      this.routeBooks(text, receiveTimeUs);
      return;
    }
    const r = this.opts.mapper.map(text, receiveTimeUs);
    switch (r.kind) {
      case 'tick': {
        m.received(r.stream).inc();
        const t = r.tick;
        if (t.exchangeTimeMs !== null) m.lag(t.type).observe((receiveTimeUs / 1000 - t.exchangeTimeMs) / 1000);
        if (t.type === 'bookTicker') {
          const b = this.bookTickers.offer(t, this.opts.source.market, receiveTimeUs);
          if (b.gap) this.gap(b.gap);
          if (b.pass) this.opts.sink.produce(this.opts.topics.bookTicker, tickKey(t), t, receiveTimeUs);
          else m.duplicates(r.stream).inc();
        } else {
          this.offer(t, r.stream);
        }
        return;
      }
      case 'rejected':
        m.received(r.stream ?? 'unknown').inc();
        this.deadLetter(text, r.stream, r.reason, receiveTimeUs);
        return;
      case 'ignored':
        m.ignored(r.why).inc();
        return;
      case 'serverShutdown':
        m.ignored('serverShutdown').inc();
        this.opts.log.warn({ eventTimeMs: r.eventTimeMs }, 'serverShutdown received');
        this.opts.onServerShutdown?.();
        return;
    }
  }

  private offer(t: Sequenced, stream: string): void {
    const seq = this.sequences.get(t.type, t.symbol);
    const out = this.out;
    const res = seq.offer(t, out);
    if (res === 'duplicate') this.opts.metrics.duplicates(stream).inc();
    else if (res === 'held') this.startBackfill(t.type, t.symbol, seq);
    if (out.length > 0) this.emit(seq, out);
  }

  private emit(seq: IdSequencer, out: Sequenced[]): void {
    const topic = out[0]!.type === 'trade' ? this.opts.topics.trade : this.opts.topics.aggTrade;
    for (const t of out) this.opts.sink.produce(topic, tickKey(t), t, t.receiveTimeUs);
    this.lastTimeMs.set(seq, out[out.length - 1]!.exchangeTimeMs);
    out.length = 0;
  }

  /** Sends what the books put out: books to the books topic, gaps, dead letters (of `raw`), snapshot requests. */
  private routeBooks(raw: string, receiveTimeUs: number): void {
    const m = this.opts.metrics;
    for (const o of this.bookOut) {
      switch (o.kind) {
        case 'book':
          this.opts.sink.produce(this.opts.books!.topic, tickKey(o.record), o.record, o.record.receiveTimeUs);
          break;
        case 'gap':
          this.gap(o.record);
          break;
        case 'rejected':
          this.deadLetter(raw, o.stream, o.reason, receiveTimeUs);
          break;
        case 'ignored':
          m.ignored(o.why).inc();
          break;
        case 'needSnapshot':
          this.opts.log.info({ symbol: o.venueSymbol, reason: o.reason }, 'order book needs a snapshot');
          this.requestSnapshot(o.venueSymbol);
          break;
        case 'trade':
        case 'bookTicker':
          break; // Binance books put out neither.
      }
    }
    this.bookOut.length = 0;
  }

  /** Fetches a REST snapshot for `symbol` (one fetch per symbol at a time), again while its book still waits for one. */
  private requestSnapshot(symbol: string): void {
    this.snapshotWanted.add(symbol);
    if (this.snapshotFetches.has(symbol) || this.stopped) return;
    const bf = this.opts.backfiller;
    if (!bf) {
      this.opts.log.warn({ symbol }, 'order book needs a snapshot but there is no REST source: it stays unsynced');
      return;
    }
    const log = this.opts.log.child({ stream: 'book', symbol });
    const task = (async () => {
      for (let attempt = 1; this.snapshotWanted.has(symbol) && !this.stopped; attempt++) {
        this.snapshotWanted.delete(symbol);
        await this.opts.sink.writable();
        let body: unknown;
        try {
          body = await bf.depthSnapshot(symbol);
        } catch (err) {
          log.warn({ err: (err as Error).message, attempt }, 'depth snapshot failed: retrying');
          this.snapshotWanted.add(symbol);
          await sleep(Math.min(10_000, 250 * 2 ** attempt));
          continue;
        }
        if (this.stopped) return;
        const receiveTimeUs = nowUs();
        this.books!.snapshot(symbol, body, receiveTimeUs, this.bookOut);
        this.routeBooks(JSON.stringify(body), receiveTimeUs);
        // Older than the diffs held (REST lagging the stream) or unusable: ask again, a little later.
        if (this.books!.syncs.get(symbol)?.state === 'awaitingSnapshot') {
          this.snapshotWanted.add(symbol);
          await sleep(Math.min(5_000, 100 * 2 ** attempt));
        } else {
          log.info({ sequence: this.books!.syncs.get(symbol)?.sequence, attempt }, 'order book synced from its snapshot');
        }
      }
    })()
      .catch((err: unknown) => log.error({ err }, 'depth snapshot loop failed'))
      .finally(() => this.snapshotFetches.delete(symbol));
    this.snapshotFetches.set(symbol, task);
  }

  private deadLetter(raw: string, stream: string | null, reason: string, receiveTimeUs: number): void {
    const dl = deadLetterOf(this.source, raw, stream, reason, receiveTimeUs, this.opts.source.deadLetterMaxBytes);
    this.opts.metrics.deadLettered(reason);
    this.opts.sink.produce(this.opts.topics.deadLetter, stream ?? this.source, dl, receiveTimeUs);
  }

  private gap(g: GapEvent): void {
    const m = this.opts.metrics;
    m.gaps.labels(g.stream).inc();
    if (g.fromId === null) m.gapSeconds.labels(g.stream).inc(Math.max(0, g.toTimeMs - g.fromTimeMs) / 1000);
    else m.gapIds.labels(g.stream, 'lost').inc(g.toId! - g.fromId + 1);
    this.opts.log.warn({ stream: g.stream, symbol: g.symbol, fromId: g.fromId, toId: g.toId, fromTimeMs: g.fromTimeMs, toTimeMs: g.toTimeMs, reason: g.reason }, 'gap recorded');
    this.opts.sink.produce(this.opts.topics.gap, tickKey(g), g);
  }

  private startBackfill(type: Sequenced['type'], symbol: string, seq: IdSequencer): void {
    const key = `${type}:${symbol}`;
    if (this.backfills.has(key) || this.stopped) return;
    const task = this.fill(type, symbol, seq)
      .catch((err: unknown) => this.opts.log.error({ err, type, symbol }, 'backfill failed'))
      .finally(() => {
        this.backfills.delete(key);
        // Holes that opened while this one was being filled get their own run.
        if (seq.gap() && !this.stopped) this.startBackfill(type, symbol, seq);
      });
    this.backfills.set(key, task);
  }

  private async fill(type: Sequenced['type'], symbol: string, seq: IdSequencer): Promise<void> {
    const m = this.opts.metrics;
    const log = this.opts.log.child({ stream: type, symbol });
    const stream = streamName(symbol, type);
    await sleep(this.opts.backfillDelayMs ?? 250);
    let counted = -1;
    let misses = 0;
    for (let g = seq.gap(); g && !this.stopped; g = seq.gap()) {
      if (g.fromId !== counted) {
        counted = g.fromId;
        m.gaps.labels(type).inc();
        m.gapIds.labels(type, 'detected').inc(g.toId - g.fromId + 1);
        log.info({ fromId: g.fromId, toId: g.toId }, 'gap detected');
      }
      const bf = this.opts.backfiller;
      let rows: Sequenced[] = [];
      let failure: string | undefined;
      if (!bf) failure = 'no backfill source';
      else {
        await this.opts.sink.writable();
        try {
          rows = type === 'trade' ? await bf.trades(symbol, g.fromId, g.toId - g.fromId + 1) : await bf.aggTrades(symbol, g.fromId, g.toId - g.fromId + 1);
        } catch (err) {
          failure = (err as Error).message;
        }
      }
      if (this.stopped) return;
      const first = rows[0];
      if (!failure && first !== undefined && sequenceId(first) <= g.fromId) {
        misses = 0;
        let filled = 0;
        for (const t of rows) {
          const id = sequenceId(t);
          if (id >= g.fromId && id <= g.toId) filled++;
          if (seq.offer(t, this.out) === 'duplicate') m.duplicates(stream).inc();
          if (this.out.length > 0) this.emit(seq, this.out);
        }
        m.gapIds.labels(type, 'backfilled').inc(filled);
        log.info({ fromId: g.fromId, rows: rows.length, filled }, 'backfilled');
        continue;
      }
      // REST has nothing at fromId yet (or failed): retry a few times, then record the hole as lost.
      misses++;
      if (misses < (this.opts.backfillAttempts ?? 5) && failure !== 'no backfill source') {
        log.warn({ fromId: g.fromId, failure, misses }, 'backfill found nothing at the start of the hole: retrying');
        await sleep(500 * misses);
        continue;
      }
      // Before ids are given up as lost, the one that opened the hole must exist: an id the exchange never issued (a
      // corrupt or hostile frame) would otherwise erase every real id below it. Unknown (REST failing): believed.
      if (bf && (await this.exists(type, symbol, g.toId + 1)) === false) {
        const outlier = seq.drop(g.toId + 1);
        if (outlier) {
          log.warn({ id: g.toId + 1, nextId: g.fromId }, 'an id the exchange does not know: dead-lettered, the sequence goes on');
          this.deadLetter(JSON.stringify(outlier), stream, `${type} id ${g.toId + 1} is not confirmed by the exchange (REST has no such id)`, outlier.receiveTimeUs);
        }
        misses = 0;
        continue;
      }
      const to = first !== undefined ? Math.min(sequenceId(first), g.toId + 1) : g.toId + 1;
      const fromTimeMs = this.lastTimeMs.get(seq) ?? 0;
      const skipped = seq.skipTo(to, this.out);
      const toTimeMs = this.out[0]?.exchangeTimeMs ?? fromTimeMs;
      if (this.out.length > 0) this.emit(seq, this.out);
      if (skipped) {
        this.gap({
          type: 'gap',
          exchange: 'binance',
          market: this.opts.source.market,
          symbol,
          stream: type,
          fromId: skipped.fromId,
          toId: skipped.toId,
          fromTimeMs: fromTimeMs || toTimeMs,
          toTimeMs,
          reason: `not backfilled: ${failure ?? 'REST returned nothing for these ids'}`,
          detectedAtUs: nowUs(),
        });
      }
      misses = 0;
    }
  }

  /** Whether the exchange knows the id (over REST): true, false, or undefined when it cannot say (no REST, an error). */
  async exists(type: Sequenced['type'], symbol: string, id: number): Promise<boolean | undefined> {
    const bf = this.opts.backfiller;
    if (!bf) return undefined;
    try {
      const rows = type === 'trade' ? await bf.trades(symbol, id, 1) : await bf.aggTrades(symbol, id, 1);
      return rows.length > 0 && sequenceId(rows[0]!) === id;
    } catch {
      return undefined;
    }
  }

  /** Resolves once no backfill is running. */
  async idle(): Promise<void> {
    while (this.backfills.size > 0) await Promise.all([...this.backfills.values()]);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.flushTimer);
  }
}
