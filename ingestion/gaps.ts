// Gap detection in pure code. Trades and aggTrades carry contiguous ids per symbol: a sequencer per (stream, symbol)
// passes them on in id order exactly once, holds what arrives early, reports the hole in between (to be backfilled)
// and drops what it has already passed on (reconnect overlaps, make-before-break, backfill races).
// Book tickers have no contiguous ids: they are deduplicated by update id and their holes are time spans.
import { gapReason, type AggTrade, type BookTicker, type GapEvent, type Market, type Trade } from '../common/records.ts';

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
  private readonly sequencers = new Map<string, IdSequencer>();

  get(type: Sequenced['type'], symbol: string): IdSequencer {
    const key = `${type}:${symbol}`;
    let s = this.sequencers.get(key);
    if (!s) this.sequencers.set(key, (s = new IdSequencer()));
    return s;
  }

  entries(): [type: Sequenced['type'], symbol: string, s: IdSequencer][] {
    return [...this.sequencers].map(([k, s]) => {
      const [type, symbol] = k.split(':') as [Sequenced['type'], string];
      return [type, symbol, s];
    });
  }

  get heldCount(): number {
    let n = 0;
    for (const s of this.sequencers.values()) n += s.heldCount;
    return n;
  }
}

const bookTickerTimeMs = (t: BookTicker): number => t.exchangeTimeMs ?? Math.floor(t.receiveTimeUs / 1000);

/**
 * Book tickers: drops repeats (update id not above the last), and after a disconnection reports the time span
 * during which the symbol's book tickers were lost: they cannot be fetched again.
 */
export class BookTickerTracker {
  private readonly last = new Map<string, { updateId: number; timeMs: number; lostSince?: { reason: string } }>();

  /** The connection carrying these symbols went down. */
  disconnected(symbols: readonly string[], reason: string): void {
    for (const s of symbols) {
      const l = this.last.get(s);
      if (l && !l.lostSince) l.lostSince = { reason };
    }
  }

  /** Returns whether to pass the tick on, and the gap it closes, if any. */
  offer(t: BookTicker, market: Market, detectedAtUs: number): { pass: boolean; gap?: GapEvent } {
    const l = this.last.get(t.symbol);
    if (!l) {
      this.last.set(t.symbol, { updateId: t.updateId, timeMs: bookTickerTimeMs(t) });
      return { pass: true };
    }
    if (t.updateId <= l.updateId) return { pass: false };
    const timeMs = bookTickerTimeMs(t);
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
    }
    this.last.set(t.symbol, { updateId: t.updateId, timeMs });
    return gap ? { pass: true, gap } : { pass: true };
  }
}
