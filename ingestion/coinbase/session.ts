// One Coinbase Exchange connection's state, in pure code: matches pass once in trade-id order per product (a repeat is
// dropped, a jump is a gap event: Coinbase trade ids are contiguous per product), tickers must not go back in `sequence`,
// and level2 snapshot + l2update rebuild each product's book. Frames in, normalized outputs out. Trade ids carry over a
// dropped connection, so its hole shows as a gap. A books subscription awaits its answer: the channel listed in a
// `subscriptions` reply, or an error (the venue names no channel in it) while it waits: refused.
import type { GapEvent } from '../../common/records.ts';
import type { PublishOptions, VenueOutput } from '../book/output.ts';
import { VenueBooksSession, type SessionEvent } from '../book/venue-books.ts';
import { mapCoinbase, type CoinbaseEvent } from './mapper.ts';

export class CoinbaseSession extends VenueBooksSession<CoinbaseEvent> {
  private readonly lastTradeId = new Map<string, { id: number; timeMs: number }>();
  private readonly lastTickerSequence = new Map<string, number>();
  readonly counts = { trades: 0, duplicateTrades: 0, staleTickers: 0, gaps: 0 };
  /** The books channel (level2_batch, or level2 when authenticated) and whether its subscription awaits an answer. */
  private readonly bookChannel: string;
  private awaitingBooks = false;

  constructor(opts: PublishOptions & { readonly bookChannel?: string }) {
    // Book tickers come from the ticker channel (with sizes), not from the book.
    super('coinbase', mapCoinbase, { ...opts, bookTickers: false });
    this.bookChannel = opts.bookChannel ?? 'level2_batch';
  }

  subscribing(): void {
    this.awaitingBooks = true;
  }

  protected apply(e: SessionEvent<CoinbaseEvent>, receiveTimeUs: number, out: VenueOutput[]): void {
    switch (e.kind) {
      case 'trade': {
        const t = e.trade;
        const last = this.lastTradeId.get(t.venueSymbol);
        if (last !== undefined && t.tradeId <= last.id) {
          this.counts.duplicateTrades++;
          out.push({ kind: 'ignored', stream: `match:${t.venueSymbol}`, why: 'duplicate trade' });
          return;
        }
        if (last !== undefined && t.tradeId > last.id + 1) {
          const gap: GapEvent = {
            type: 'gap',
            exchange: 'coinbase',
            market: 'spot',
            symbol: t.symbol,
            stream: 'trade',
            fromId: last.id + 1,
            toId: t.tradeId - 1,
            fromTimeMs: last.timeMs,
            toTimeMs: t.exchangeTimeMs,
            reason: 'missed trade ids',
            detectedAtUs: receiveTimeUs,
          };
          this.counts.gaps++;
          out.push({ kind: 'gap', record: gap });
        }
        this.lastTradeId.set(t.venueSymbol, { id: t.tradeId, timeMs: t.exchangeTimeMs });
        this.counts.trades++;
        out.push({ kind: 'trade', record: t });
        return;
      }
      case 'ticker': {
        // A ticker repeats its match's sequence; only one going backwards is stale.
        const last = this.lastTickerSequence.get(e.venueSymbol);
        if (last !== undefined && e.sequence <= last) {
          this.counts.staleTickers++;
          out.push({ kind: 'ignored', stream: `ticker:${e.venueSymbol}`, why: 'stale ticker sequence' });
          return;
        }
        this.lastTickerSequence.set(e.venueSymbol, e.sequence);
        if (e.tick) out.push({ kind: 'bookTicker', record: e.tick });
        else out.push({ kind: 'ignored', stream: `ticker:${e.venueSymbol}`, why: 'ticker without best bid/ask sizes' });
        return;
      }
      case 'subscriptions':
        out.push({ kind: 'ignored', stream: 'subscriptions', why: 'subscriptions' });
        if (this.awaitingBooks && e.channels.includes(this.bookChannel)) {
          this.awaitingBooks = false;
          out.push({ kind: 'subscription', channel: this.bookChannel, status: 'subscribed', reason: null });
        }
        return;
      case 'venueError':
        out.push({ kind: 'rejected', stream: 'error', reason: e.reason });
        if (this.awaitingBooks) {
          this.awaitingBooks = false;
          out.push({ kind: 'subscription', channel: this.bookChannel, status: 'refused', reason: e.detail });
        }
        return;
      case 'snapshot':
        this.books.snapshot({ exchange: 'coinbase', market: 'spot', symbol: e.symbol, venueSymbol: e.venueSymbol }, e.bids, e.asks, null, receiveTimeUs, out);
        return;
      case 'l2update':
        this.books.update(e.venueSymbol, e.changes, e.exchangeTimeMs, receiveTimeUs, out);
        return;
    }
  }
}
