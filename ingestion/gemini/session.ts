// One Gemini v2 connection's state, in pure code: each symbol's book from its initial l2_updates and the changes after
// it, book tickers from the rebuilt best bid/ask (v2 l2 sends no ticker), and every trade once: the trades embedded in
// the initial message and the live `trade` events overlap after a resubscribe, so trades are deduplicated by event id
// (the ids seen are kept across a dropped connection).
import type { BookLevel, VenueTrade } from '../../common/records.ts';
import type { PublishOptions, VenueOutput } from '../book/output.ts';
import { VenueBooksSession, type SessionEvent } from '../book/venue-books.ts';
import { mapGemini, type GeminiEvent } from './mapper.ts';

/** Event ids remembered per symbol: far more than the 50 trades a resubscribe repeats. */
const SEEN_MAX = 4_096;

export class GeminiSession extends VenueBooksSession<GeminiEvent> {
  private readonly seen = new Map<string, Set<number>>();
  readonly counts = { trades: 0, duplicateTrades: 0 };

  constructor(opts: PublishOptions) {
    super('gemini', mapGemini, { ...opts, bookTickers: true });
  }

  protected apply(e: SessionEvent<GeminiEvent>, receiveTimeUs: number, out: VenueOutput[]): void {
    switch (e.kind) {
      case 'trade':
        this.trade(e.trade, out);
        return;
      case 'l2':
        if (e.snapshot) {
          const bids: BookLevel[] = [];
          const asks: BookLevel[] = [];
          for (const c of e.changes) if (Number(c.quantity) > 0) (c.side === 'bid' ? bids : asks).push([c.price, c.quantity]);
          this.books.snapshot({ exchange: 'gemini', market: 'spot', symbol: e.symbol, venueSymbol: e.venueSymbol }, bids, asks, null, receiveTimeUs, out);
          for (const t of e.trades) this.trade(t, out);
        } else {
          this.books.update(e.venueSymbol, e.changes, null, receiveTimeUs, out);
        }
        return;
    }
  }

  private trade(t: VenueTrade, out: VenueOutput[]): void {
    let seen = this.seen.get(t.venueSymbol);
    if (!seen) this.seen.set(t.venueSymbol, (seen = new Set()));
    if (seen.has(t.tradeId)) {
      this.counts.duplicateTrades++;
      out.push({ kind: 'ignored', stream: `trade:${t.venueSymbol}`, why: 'duplicate trade' });
      return;
    }
    seen.add(t.tradeId);
    // Sets iterate in insertion order: the oldest id goes first.
    if (seen.size > SEEN_MAX) seen.delete(seen.values().next().value!);
    this.counts.trades++;
    out.push({ kind: 'trade', record: t });
  }
}
