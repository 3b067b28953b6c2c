// Binance order books from the `@depth@100ms` diff stream plus a REST snapshot, in pure code. Per symbol: buffer diffs,
// load the snapshot (lastUpdateId), drop diffs it already contains, require the first applied diff to straddle it and
// every later one to follow on without a hole (spot: U = previous u + 1; USD-M: pu = previous u). A hole clears the book,
// records a gap event and asks for a new snapshot; the diffs that follow are buffered until it arrives.
import type { BookGapEvent, BookLevel, Market } from '../../common/records.ts';
import { isId, isTime } from '../../common/tick-schema.ts';
import { canonicalSymbol } from '../venues.ts';
import { checkLevels, OrderBook } from './order-book.ts';
import { bookRecord, BookPublisher, type BookIdentity, type PublishOptions, type VenueOutput } from './output.ts';

export interface DepthDiff {
  readonly venueSymbol: string;
  /** First update id in the event `U`. */
  readonly firstId: number;
  /** Last update id in the event `u`. */
  readonly lastId: number;
  /** USD-M `pu`: the previous event's `u`; null on spot. */
  readonly prevLastId: number | null;
  readonly eventTimeMs: number;
  readonly bids: readonly BookLevel[];
  readonly asks: readonly BookLevel[];
}

export interface DepthSnapshot {
  readonly lastUpdateId: number;
  readonly bids: readonly BookLevel[];
  readonly asks: readonly BookLevel[];
}

export type DepthParse =
  | { readonly kind: 'diff'; readonly stream: string; readonly diff: DepthDiff }
  | { readonly kind: 'ignored'; readonly stream: string | null; readonly why: string }
  | { readonly kind: 'rejected'; readonly stream: string | null; readonly reason: string };

/** A combined-stream `<symbol>@depth[@100ms]` frame -> a diff; other streams are ignored. */
export function parseDepthFrame(text: string, market: Market): DepthParse {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return { kind: 'rejected', stream: null, reason: 'not JSON' };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return { kind: 'rejected', stream: null, reason: 'not a JSON object' };
  const m = msg as Record<string, unknown>;
  if (typeof m.stream !== 'string') return { kind: 'ignored', stream: null, why: 'not a combined-stream frame' };
  const stream = m.stream;
  if (!/^[a-z0-9]+@depth(@\d+ms)?$/.test(stream)) return { kind: 'ignored', stream, why: 'not a depth stream' };
  const d = m.data as Record<string, unknown> | null;
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return { kind: 'rejected', stream, reason: 'missing or non-object field data' };
  const symbol = stream.slice(0, stream.indexOf('@')).toUpperCase();
  const bad =
    (d.e !== 'depthUpdate' ? `event type ${JSON.stringify(d.e)} is not depthUpdate` : undefined) ??
    (d.s !== symbol ? `field s ${JSON.stringify(d.s)} does not match stream symbol ${symbol}` : undefined) ??
    (!isId(d.U) || !isId(d.u) ? 'fields U and u must be update ids' : undefined) ??
    ((d.U as number) > (d.u as number) ? 'first update id U exceeds last update id u' : undefined) ??
    (market === 'usdm' && !isId(d.pu) ? 'field pu must be an update id (USD-M)' : undefined) ??
    (!isTime(d.E) ? 'field E is not a time in ms' : undefined) ??
    checkLevels(d.b, 'b') ??
    checkLevels(d.a, 'a');
  if (bad) return { kind: 'rejected', stream, reason: bad };
  return {
    kind: 'diff',
    stream,
    diff: {
      venueSymbol: symbol,
      firstId: d.U as number,
      lastId: d.u as number,
      prevLastId: market === 'usdm' ? (d.pu as number) : null,
      eventTimeMs: d.E as number,
      bids: d.b as BookLevel[],
      asks: d.a as BookLevel[],
    },
  };
}

/** The REST depth body `{"lastUpdateId":..,"bids":[..],"asks":[..]}` -> a snapshot, or the reason it is unusable. */
export function parseDepthSnapshot(body: unknown): DepthSnapshot | string {
  let b = body;
  if (typeof b === 'string') {
    try {
      b = JSON.parse(b);
    } catch {
      return 'snapshot is not JSON';
    }
  }
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return 'snapshot is not a JSON object';
  const s = b as Record<string, unknown>;
  const bad = (!isId(s.lastUpdateId) ? 'snapshot lastUpdateId is not an update id' : undefined) ?? checkLevels(s.bids, 'bids') ?? checkLevels(s.asks, 'asks');
  if (bad) return bad;
  return { lastUpdateId: s.lastUpdateId as number, bids: s.bids as BookLevel[], asks: s.asks as BookLevel[] };
}

export type SyncState = 'awaitingSnapshot' | 'synced';

export interface DepthSyncOptions extends PublishOptions {
  readonly market: Market;
  /** Diffs kept while waiting for a snapshot; the oldest go first (a snapshot newer than them does not need them). */
  readonly maxBuffered?: number;
}

/** One symbol's book. Outputs go to `out`: published books, gap events and snapshot requests. */
export class BinanceDepthSync {
  readonly book = new OrderBook();
  private stateNow: SyncState = 'awaitingSnapshot';
  private buffer: DepthDiff[] = [];
  /** u of the last applied diff (or the snapshot's lastUpdateId before the first). */
  private lastId = 0;
  private firstAfterSnapshot = true;
  private lastEventMs: number | null = null;
  private snapshotRequested = false;
  private readonly publisher: BookPublisher;
  private readonly maxBuffered: number;
  /** Counters for tests and metrics. */
  readonly counts = { applied: 0, stale: 0, gaps: 0, snapshots: 0, published: 0 };

  constructor(
    readonly id: BookIdentity,
    private readonly opts: DepthSyncOptions,
  ) {
    this.publisher = new BookPublisher(opts.intervalMs);
    this.maxBuffered = opts.maxBuffered ?? 10_000;
  }

  get state(): SyncState {
    return this.stateNow;
  }

  /** The last applied update id (the book's sequence). */
  get sequence(): number {
    return this.lastId;
  }

  get buffered(): number {
    return this.buffer.length;
  }

  diff(d: DepthDiff, receiveTimeUs: number, out: VenueOutput[]): void {
    if (this.stateNow === 'awaitingSnapshot') {
      this.buffer.push(d);
      if (this.buffer.length > this.maxBuffered) this.buffer.shift();
      this.request('no snapshot yet', out);
      return;
    }
    this.apply(d, receiveTimeUs, out);
  }

  snapshot(s: DepthSnapshot, receiveTimeUs: number, out: VenueOutput[]): void {
    this.snapshotRequested = false;
    if (this.stateNow === 'synced') {
      out.push({ kind: 'ignored', stream: null, why: 'depth snapshot while in sync' });
      return;
    }
    const pending = this.buffer.filter((d) => !this.contains(s.lastUpdateId, d));
    this.counts.stale += this.buffer.length - pending.length;
    const first = pending[0];
    // Older than the first diff still needed: the diffs in between are lost to us, only a newer snapshot helps.
    if (first !== undefined && !this.straddles(s.lastUpdateId, first)) {
      this.buffer = pending;
      this.request(`snapshot ${s.lastUpdateId} is older than buffered diff ${first.firstId}`, out);
      return;
    }
    this.buffer = [];
    this.book.load(s.bids, s.asks);
    this.lastId = s.lastUpdateId;
    this.firstAfterSnapshot = true;
    this.stateNow = 'synced';
    this.counts.snapshots++;
    this.publisher.reset();
    if (pending.length === 0) this.publish(true, null, receiveTimeUs, out);
    for (const d of pending) {
      this.apply(d, receiveTimeUs, out);
      if (this.stateNow !== 'synced') return;
    }
  }

  /** Interval publishing: call from a timer with the current time. */
  flush(nowMs: number, receiveTimeUs: number, out: VenueOutput[]): void {
    if (this.stateNow === 'synced' && this.publisher.due(nowMs)) this.emit(receiveTimeUs, out);
  }

  /** The connection dropped: the book cannot be trusted past this point. */
  reset(): void {
    this.book.clear();
    this.buffer = [];
    this.stateNow = 'awaitingSnapshot';
    this.snapshotRequested = false;
  }

  /** Whether the snapshot at `lastUpdateId` already holds everything in `d`. */
  private contains(lastUpdateId: number, d: DepthDiff): boolean {
    return this.opts.market === 'usdm' ? d.lastId < lastUpdateId : d.lastId <= lastUpdateId;
  }

  /** The first diff after a snapshot must cover the snapshot's id (spot: U <= L+1 <= u; USD-M: U <= L <= u). */
  private straddles(lastUpdateId: number, d: DepthDiff): boolean {
    return this.opts.market === 'usdm' ? d.firstId <= lastUpdateId && d.lastId >= lastUpdateId : d.firstId <= lastUpdateId + 1 && d.lastId >= lastUpdateId + 1;
  }

  private apply(d: DepthDiff, receiveTimeUs: number, out: VenueOutput[]): void {
    const usdm = this.opts.market === 'usdm';
    const first = this.firstAfterSnapshot;
    // Already applied (a repeat) or contained in the snapshot.
    if (usdm && first ? d.lastId < this.lastId : d.lastId <= this.lastId) {
      this.counts.stale++;
      return;
    }
    // Spot: U = previous u + 1 (after a snapshot: U <= L + 1 <= u, the upper half holds since the diff is not stale);
    // an overlap re-applies absolute quantities, which is harmless. USD-M: U <= L <= u first, then pu = previous u.
    const follows = usdm ? (first ? d.firstId <= this.lastId : d.prevLastId === this.lastId) : d.firstId <= this.lastId + 1;
    if (!follows) {
      this.lose(d, receiveTimeUs, out);
      return;
    }
    let top = false;
    const depth = this.opts.depth;
    for (const [p, q] of d.bids) if (this.book.apply('bid', p, q, depth)) top = true;
    for (const [p, q] of d.asks) if (this.book.apply('ask', p, q, depth)) top = true;
    this.lastId = d.lastId;
    this.lastEventMs = d.eventTimeMs;
    this.firstAfterSnapshot = false;
    this.counts.applied++;
    if (this.book.crossed()) {
      this.lose(d, receiveTimeUs, out, 'book crossed after applying the diff');
      return;
    }
    this.publish(top, d.eventTimeMs, receiveTimeUs, out);
  }

  private publish(topChanged: boolean, eventTimeMs: number | null, receiveTimeUs: number, out: VenueOutput[]): void {
    if (eventTimeMs !== null) this.lastEventMs = eventTimeMs;
    if (this.publisher.changed(topChanged, Math.floor(receiveTimeUs / 1000))) this.emit(receiveTimeUs, out);
  }

  private emit(receiveTimeUs: number, out: VenueOutput[]): void {
    this.counts.published++;
    out.push({ kind: 'book', record: bookRecord(this.id, this.book, this.opts.depth, this.lastId, this.lastEventMs, receiveTimeUs) });
  }

  private lose(d: DepthDiff, receiveTimeUs: number, out: VenueOutput[], why?: string): void {
    const crossed = why !== undefined;
    const gap: BookGapEvent = {
      type: 'gap',
      exchange: this.id.exchange,
      market: this.id.market,
      symbol: this.id.symbol,
      stream: 'book',
      fromId: crossed ? null : this.lastId + 1,
      toId: crossed ? null : this.opts.market === 'usdm' ? (d.prevLastId ?? d.firstId - 1) : d.firstId - 1,
      fromTimeMs: this.lastEventMs ?? d.eventTimeMs,
      toTimeMs: d.eventTimeMs,
      reason: why ?? (this.firstAfterSnapshot ? `first diff ${d.firstId}..${d.lastId} does not follow snapshot ${this.lastId}` : `missed depth update ids ${this.lastId + 1}..${d.firstId - 1}`),
      detectedAtUs: receiveTimeUs,
    };
    this.counts.gaps++;
    out.push({ kind: 'gap', record: gap });
    this.book.clear();
    this.stateNow = 'awaitingSnapshot';
    // A crossed book cannot reuse the diff that crossed it; a hole keeps the diff that revealed it for the next snapshot.
    this.buffer = crossed ? [] : [d];
    this.snapshotRequested = false;
    this.request(gap.reason, out);
  }

  private request(reason: string, out: VenueOutput[]): void {
    if (this.snapshotRequested) return;
    this.snapshotRequested = true;
    out.push({ kind: 'needSnapshot', venueSymbol: this.id.venueSymbol, reason });
  }
}

export interface BinanceBooksOptions extends DepthSyncOptions {
  /** Upper-case venue symbols to keep books for; undefined: every depth stream seen. A Set is read live. */
  readonly symbols?: readonly string[] | ReadonlySet<string>;
}

/** Every symbol's depth sync behind one entry for frames and one for snapshots. */
export class BinanceBooks {
  readonly syncs = new Map<string, BinanceDepthSync>();
  private readonly wanted: ReadonlySet<string> | undefined;

  constructor(private readonly opts: BinanceBooksOptions) {
    this.wanted = opts.symbols instanceof Set ? opts.symbols : opts.symbols ? new Set([...opts.symbols].map((s) => s.toUpperCase())) : undefined;
  }

  sync(venueSymbol: string): BinanceDepthSync | undefined {
    let s = this.syncs.get(venueSymbol);
    if (s) return s;
    if (this.wanted && !this.wanted.has(venueSymbol)) return undefined;
    const symbol = canonicalSymbol('binance', venueSymbol);
    if (symbol === undefined) return undefined;
    s = new BinanceDepthSync({ exchange: 'binance', market: this.opts.market, symbol, venueSymbol }, this.opts);
    this.syncs.set(venueSymbol, s);
    return s;
  }

  /** One combined-stream frame; frames other than depth diffs are ignored. */
  frame(text: string, receiveTimeUs: number, out: VenueOutput[]): void {
    const r = parseDepthFrame(text, this.opts.market);
    if (r.kind !== 'diff') {
      out.push(r);
      return;
    }
    const s = this.sync(r.diff.venueSymbol);
    if (!s) {
      out.push({ kind: 'ignored', stream: r.stream, why: 'symbol without a book' });
      return;
    }
    s.diff(r.diff, receiveTimeUs, out);
  }

  /** A REST snapshot answer for `venueSymbol` (the body as text or parsed JSON). */
  snapshot(venueSymbol: string, body: unknown, receiveTimeUs: number, out: VenueOutput[]): void {
    const s = this.sync(venueSymbol.toUpperCase());
    if (!s) {
      out.push({ kind: 'ignored', stream: null, why: 'snapshot for a symbol without a book' });
      return;
    }
    const snap = parseDepthSnapshot(body);
    if (typeof snap === 'string') {
      out.push({ kind: 'rejected', stream: `${venueSymbol.toLowerCase()}@depth`, reason: snap });
      return;
    }
    s.snapshot(snap, receiveTimeUs, out);
  }

  flush(nowMs: number, receiveTimeUs: number, out: VenueOutput[]): void {
    for (const s of this.syncs.values()) s.flush(nowMs, receiveTimeUs, out);
  }
}
