// Gap detection in pure code. Trades and aggTrades carry contiguous ids per symbol: a sequencer per (stream, symbol)
// passes them on in id order exactly once, holds what arrives early, reports the hole in between (to be backfilled)
// and drops what it has already passed on (reconnect overlaps, make-before-break, backfill races).
// Book tickers have no contiguous ids: they are deduplicated by their recent update ids and their holes are time spans.
import { gapReason, type AggTrade, type BookTicker, type GapEvent, type Market, type Trade } from '../common/records.ts';
import { IdTable } from './id-table.ts';

export type Sequenced = Trade | AggTrade;

export const sequenceId = (t: Sequenced): number => (t.type === 'trade' ? t.tradeId : t.aggId);

export type Offer = 'passed' | 'duplicate' | 'held';

export interface IdRange {
  readonly fromId: number;
  readonly toId: number;
}

/** One symbol's id sequence of one stream. */
export class IdSequencer<T extends Sequenced = Sequenced> {
  /** The next id to pass on; undefined until the first tick (or a resume point) is seen. */
  private nextId: number | undefined;
  private readonly held = new Map<number, T>();
  private heldMin = Number.POSITIVE_INFINITY;
  private heldMax = Number.NEGATIVE_INFINITY;

  /** Start after `lastId` (e.g. the last id found in Kafka at start-up); never moves backwards. */
  resumeAfter(lastId: number): void {
    if (this.nextId === undefined || lastId + 1 > this.nextId) {
      this.nextId = lastId + 1;
      this.drain([]);
    }
  }

  get next(): number | undefined {
    return this.nextId;
  }

  get heldCount(): number {
    return this.held.size;
  }

  /** The highest id seen, passed or held. */
  get lastSeen(): number | undefined {
    if (this.held.size > 0) return this.heldMax;
    return this.nextId === undefined ? undefined : this.nextId - 1;
  }

  /** Offers one tick (live or backfilled); ticks that can be passed on in order are appended to `out`. */
  offer(t: T, out: T[]): Offer {
    const id = sequenceId(t);
    if (this.nextId === undefined || id === this.nextId) {
      out.push(t);
      this.nextId = id + 1;
      if (this.held.size > 0) this.drain(out);
      return 'passed';
    }
    if (id < this.nextId || this.held.has(id)) return 'duplicate';
    this.held.set(id, t);
    if (id < this.heldMin) this.heldMin = id;
    if (id > this.heldMax) this.heldMax = id;
    return 'held';
  }

  /** The first hole: ids between the last passed on and the first held. */
  gap(): IdRange | undefined {
    if (this.held.size === 0 || this.nextId === undefined) return undefined;
    return { fromId: this.nextId, toId: this.heldMin - 1 };
  }

  /** Gives up on every id below `id` (a hole that cannot be filled); returns what was skipped. */
  skipTo(id: number, out: T[]): IdRange | undefined {
    if (this.nextId === undefined || id <= this.nextId) return undefined;
    const skipped = { fromId: this.nextId, toId: id - 1 };
    this.nextId = id;
    this.drain(out);
    return skipped;
  }

  /** Takes a held tick out (an id the exchange never issued); the hole it opened closes with it. */
  drop(id: number): T | undefined {
    const t = this.held.get(id);
    if (t === undefined) return undefined;
    this.held.delete(id);
    this.drain([]);
    return t;
  }

  private drain(out: T[]): void {
    if (this.held.size === 0 || this.nextId === undefined) return;
    for (const id of this.held.keys()) if (id < this.nextId) this.held.delete(id);
    let t: T | undefined;
    while ((t = this.held.get(this.nextId)) !== undefined) {
      this.held.delete(this.nextId);
      out.push(t);
      this.nextId++;
    }
    this.heldMin = Number.POSITIVE_INFINITY;
    this.heldMax = Number.NEGATIVE_INFINITY;
    for (const id of this.held.keys()) {
      if (id < this.heldMin) this.heldMin = id;
      if (id > this.heldMax) this.heldMax = id;
    }
  }
}

/** The sequencers of every (stream, symbol). */
export class SequenceBook {
  /** Per stream type, per symbol (two lookups, no key string built per tick). */
  private readonly byType = new Map<Sequenced['type'], Map<string, IdSequencer>>();
  /** Every sequencer, in the order it was first asked for. */
  private readonly all: [type: Sequenced['type'], symbol: string, s: IdSequencer][] = [];

  get(type: Sequenced['type'], symbol: string): IdSequencer {
    let symbols = this.byType.get(type);
    if (!symbols) this.byType.set(type, (symbols = new Map()));
    let s = symbols.get(symbol);
    if (!s) {
      symbols.set(symbol, (s = new IdSequencer()));
      this.all.push([type, symbol, s]);
    }
    return s;
  }

  entries(): [type: Sequenced['type'], symbol: string, s: IdSequencer][] {
    return this.all.map(([type, symbol, s]) => [type, symbol, s]);
  }

  get heldCount(): number {
    let n = 0;
    for (const [, , s] of this.all) n += s.heldCount;
    return n;
  }
}

const bookTickerTimeMs = (t: BookTicker): number => t.exchangeTimeMs ?? Math.floor(t.receiveTimeUs / 1000);

/** How many of a symbol's last update ids are remembered (more than a switch-over's overlap brings again at live rates). */
export const RECENT_UPDATE_IDS = 256;

/**
 * The last RECENT_UPDATE_IDS update ids passed on, and their minimum. A repeat is an id among them or below them all:
 * one id far ahead (a corrupt or hostile frame) then cannot make the real ids below it look like repeats, as a
 * high-water mark would. The minimum is kept in a monotonic queue, O(1) a tick.
 */
class RecentIds {
  private readonly ring = new Float64Array(RECENT_UPDATE_IDS);
  private readonly set = new IdTable(RECENT_UPDATE_IDS);
  private size = 0;
  private head = 0;
  /** Increasing candidates for the minimum, oldest first, as a ring over `mins` from `minHead`, `minSize` long. */
  private readonly mins = new Float64Array(RECENT_UPDATE_IDS);
  private minHead = 0;
  private minSize = 0;

  seen(id: number): boolean {
    return this.set.has(id) || (this.minSize > 0 && id < this.mins[this.minHead]!);
  }

  add(id: number): void {
    const n = RECENT_UPDATE_IDS;
    if (this.size === n) {
      const old = this.ring[this.head]!;
      this.set.delete(old);
      if (this.mins[this.minHead] === old) {
        this.minHead = (this.minHead + 1) % n;
        this.minSize--;
      }
      this.head = (this.head + 1) % n;
      this.size--;
    }
    this.ring[(this.head + this.size) % n] = id;
    this.size++;
    this.set.add(id);
    while (this.minSize > 0 && this.mins[(this.minHead + this.minSize - 1) % n]! > id) this.minSize--;
    this.mins[(this.minHead + this.minSize) % n] = id;
    this.minSize++;
  }
}

interface BookTickerState {
  readonly recent: RecentIds;
  /** Exchange (else receive) time of the highest update id passed on: where a span lost to a disconnection starts. */
  topId: number;
  timeMs: number;
  lostSince: { reason: string } | undefined;
}

/**
 * Book tickers: drops repeats (see RecentIds), and after a disconnection reports the time span during which the
 * symbol's book tickers were lost: they cannot be fetched again.
 */
export class BookTickerTracker {
  private readonly last = new Map<string, BookTickerState>();

  /** The connection carrying these symbols went down. */
  disconnected(symbols: readonly string[], reason: string): void {
    for (const s of symbols) {
      const l = this.last.get(s);
      if (l && !l.lostSince) l.lostSince = { reason };
    }
  }

  /** Returns whether to pass the tick on, and the gap it closes, if any. */
  offer(t: BookTicker, market: Market, detectedAtUs: number): { pass: boolean; gap?: GapEvent } {
    const timeMs = bookTickerTimeMs(t);
    const l = this.last.get(t.symbol);
    if (!l) {
      const recent = new RecentIds();
      recent.add(t.updateId);
      this.last.set(t.symbol, { recent, topId: t.updateId, timeMs, lostSince: undefined });
      return { pass: true };
    }
    if (l.recent.seen(t.updateId)) return { pass: false };
    l.recent.add(t.updateId);
    let gap: GapEvent | undefined;
    if (l.lostSince) {
      gap = {
        type: 'gap',
        exchange: t.exchange,
        market,
        symbol: t.symbol,
        stream: 'bookTicker',
        fromId: null,
        toId: null,
        fromTimeMs: l.timeMs,
        toTimeMs: Math.max(timeMs, l.timeMs),
        reason: gapReason(l.lostSince.reason),
        detectedAtUs,
      };
      l.lostSince = undefined;
    }
    if (t.updateId > l.topId) {
      l.topId = t.updateId;
      l.timeMs = timeMs;
    }
    return gap ? { pass: true, gap } : { pass: true };
  }
}
