// Binance trades and aggTrades passed on in id order, exactly once per symbol, in pure code: live and backfilled ticks
// go through the same sequencers (ingestion/gaps.ts); a repeat is a duplicate, a tick held behind a hole asks for a
// backfill, and a hole given up on becomes a gap event spanning the exchange times around it.
import type { Market } from '../../common/records.ts';
import { emptyForReuse, type VenueOutput } from '../book/output.ts';
import { SequenceBook, sequenceId, type IdRange, type IdSequencer, type Sequenced } from '../gaps.ts';

export class TradeSequences {
  private readonly book = new SequenceBook();
  /** Exchange time of the last tick passed on, per sequence (for the span of a lost hole). */
  private readonly lastTimeMs = new Map<IdSequencer, number>();
  private readonly passed: Sequenced[] = [];

  constructor(private readonly market: Market) {}

  /** Ticks held behind holes (they count towards the buffer bound). */
  get held(): number {
    return this.book.heldCount;
  }

  sequencer(type: Sequenced['type'], symbol: string): IdSequencer {
    return this.book.get(type, symbol);
  }

  /** Start a sequence after an id already in Kafka (a restart then shows the downtime as a hole). */
  resumeAfter(type: Sequenced['type'], symbol: string, lastId: number): void {
    this.book.get(type, symbol).resumeAfter(lastId);
  }

  /** One live tick of `stream`. */
  offer(t: Sequenced, stream: string, out: VenueOutput[]): void {
    const seq = this.book.get(t.type, t.symbol);
    const res = seq.offer(t, this.passed);
    if (res === 'duplicate') out.push({ kind: 'duplicate', stream });
    else if (res === 'held') out.push({ kind: 'needBackfill', type: t.type, symbol: t.symbol });
    this.pass(seq, out);
  }

  /** Backfilled rows for the hole `g`; returns how many of them fell inside it. */
  fill(seq: IdSequencer, rows: readonly Sequenced[], g: IdRange, stream: string, out: VenueOutput[]): number {
    let filled = 0;
    for (const t of rows) {
      const id = sequenceId(t);
      if (id >= g.fromId && id <= g.toId) filled++;
      if (seq.offer(t, this.passed) === 'duplicate') out.push({ kind: 'duplicate', stream });
      this.pass(seq, out);
    }
    return filled;
  }

  /** Gives up on the ids below `to`: what was held behind them passes on, and the ids skipped are a gap event. */
  skipTo(seq: IdSequencer, type: Sequenced['type'], symbol: string, to: number, reason: string, detectedAtUs: number, out: VenueOutput[]): void {
    const fromTimeMs = this.lastTimeMs.get(seq) ?? 0;
    const skipped = seq.skipTo(to, this.passed);
    const toTimeMs = this.passed[0]?.exchangeTimeMs ?? fromTimeMs;
    this.pass(seq, out);
    if (!skipped) return;
    out.push({
      kind: 'gap',
      record: {
        type: 'gap',
        exchange: 'binance',
        market: this.market,
        symbol,
        stream: type,
        fromId: skipped.fromId,
        toId: skipped.toId,
        fromTimeMs: fromTimeMs || toTimeMs,
        toTimeMs,
        reason,
        detectedAtUs,
      },
    });
  }

  private pass(seq: IdSequencer, out: VenueOutput[]): void {
    const p = this.passed;
    if (p.length === 0) return;
    for (const t of p) out.push(t.type === 'trade' ? { kind: 'trade', record: t } : { kind: 'aggTrade', record: t });
    this.lastTimeMs.set(seq, p[p.length - 1]!.exchangeTimeMs);
    emptyForReuse(p);
  }
}
