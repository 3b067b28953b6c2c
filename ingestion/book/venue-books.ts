// Books of venues that send a full snapshot on subscribe and then level changes without update ids (Coinbase level2,
// Gemini v2 l2), and the session base those venues share. They cannot prove a hole by numbers, so a crossed book is the
// loss signal: it is dropped, recorded as a gap and the product resubscribed. Optionally the best bid/ask of each book
// is published as a book ticker.
import { gapReason, type BookGapEvent, type BookLevel, type VenueBookTicker } from '../../common/records.ts';
import type { VenueSession } from '../router.ts';
import { SymbolMap } from '../venues.ts';
import { OrderBook, type LevelChange } from './order-book.ts';
import { bookRecord, BookPublisher, type BookIdentity, type PublishOptions, type VenueOutput } from './output.ts';

export interface VenueBooksOptions extends PublishOptions {
  /** Publish a book ticker whenever a book's best bid or ask (price or quantity) changes. */
  readonly bookTickers: boolean;
}

class VenueBook {
  readonly book = new OrderBook();
  readonly publisher: BookPublisher;
  /** Updates applied since the snapshot: the book's local sequence. */
  sequence = 0;
  lastEventMs: number | null = null;

  constructor(
    readonly id: BookIdentity,
    intervalMs: number,
  ) {
    this.publisher = new BookPublisher(intervalMs);
  }
}

export class VenueBooks {
  private readonly books = new Map<string, VenueBook>();
  /** Venue symbols whose book is lost and was asked for again (asked once until a snapshot arrives). */
  private readonly requested = new Set<string>();

  constructor(private readonly opts: VenueBooksOptions) {}

  /** The rebuilt book of a venue symbol (tests and checks). */
  book(venueSymbol: string): OrderBook | undefined {
    return this.books.get(venueSymbol)?.book;
  }

  venueSymbols(): string[] {
    return [...this.books.keys()];
  }

  snapshot(id: BookIdentity, bids: readonly BookLevel[], asks: readonly BookLevel[], exchangeTimeMs: number | null, receiveTimeUs: number, out: VenueOutput[]): void {
    let b = this.books.get(id.venueSymbol);
    if (!b) this.books.set(id.venueSymbol, (b = new VenueBook(id, this.opts.intervalMs)));
    this.requested.delete(id.venueSymbol);
    b.book.load(bids, asks);
    b.sequence = 0;
    b.lastEventMs = exchangeTimeMs;
    b.publisher.reset();
    if (b.book.crossed()) {
      this.lose(b, 'snapshot is crossed', exchangeTimeMs, receiveTimeUs, out);
      return;
    }
    this.published(b, true, true, receiveTimeUs, out);
  }

  update(venueSymbol: string, changes: readonly LevelChange[], exchangeTimeMs: number | null, receiveTimeUs: number, out: VenueOutput[]): void {
    const b = this.books.get(venueSymbol);
    if (!b || this.requested.has(venueSymbol)) {
      out.push({ kind: 'ignored', stream: venueSymbol, why: 'book update before its snapshot' });
      if (!this.requested.has(venueSymbol)) {
        this.requested.add(venueSymbol);
        out.push({ kind: 'needSnapshot', venueSymbol, reason: 'book update before its snapshot' });
      }
      return;
    }
    const depth = this.opts.depth;
    let top = false;
    let best = false;
    for (const c of changes) {
      const rank = (c.side === 'bid' ? b.book.bids : b.book.asks).set(c.price, c.quantity);
      if (rank >= 0 && rank < depth) top = true;
      if (rank === 0) best = true;
    }
    b.sequence++;
    if (exchangeTimeMs !== null) b.lastEventMs = exchangeTimeMs;
    if (b.book.crossed()) {
      this.lose(b, 'book crossed after an update: updates were lost', exchangeTimeMs, receiveTimeUs, out);
      return;
    }
    this.published(b, top, best, receiveTimeUs, out);
  }

  /** Interval publishing: call from a timer. */
  flush(nowMs: number, receiveTimeUs: number, out: VenueOutput[]): void {
    for (const b of this.books.values()) {
      if (!this.requested.has(b.id.venueSymbol) && b.publisher.due(nowMs)) this.emit(b, receiveTimeUs, out);
    }
  }

  /** The connection dropped: every book waits for the snapshot of the next subscription. */
  reset(): void {
    this.books.clear();
    this.requested.clear();
  }

  private published(b: VenueBook, top: boolean, best: boolean, receiveTimeUs: number, out: VenueOutput[]): void {
    if (b.publisher.changed(top, Math.floor(receiveTimeUs / 1000))) this.emit(b, receiveTimeUs, out);
    if (best && this.opts.bookTickers) {
      const [bid] = b.book.bids.top(1);
      const [ask] = b.book.asks.top(1);
      if (bid && ask) {
        const t: VenueBookTicker = {
          type: 'bookTicker',
          exchange: b.id.exchange,
          market: b.id.market,
          symbol: b.id.symbol,
          venueSymbol: b.id.venueSymbol,
          receiveTimeUs,
          updateId: b.sequence,
          bidPrice: bid[0],
          bidQty: bid[1],
          askPrice: ask[0],
          askQty: ask[1],
          exchangeTimeMs: b.lastEventMs,
          eventTimeMs: b.lastEventMs,
        };
        out.push({ kind: 'bookTicker', record: t });
      }
    }
  }

  private emit(b: VenueBook, receiveTimeUs: number, out: VenueOutput[]): void {
    out.push({ kind: 'book', record: bookRecord(b.id, b.book, this.opts.depth, b.sequence, b.lastEventMs, receiveTimeUs) });
  }

  private lose(b: VenueBook, reason: string, exchangeTimeMs: number | null, receiveTimeUs: number, out: VenueOutput[]): void {
    const nowMs = exchangeTimeMs ?? Math.floor(receiveTimeUs / 1000);
    const gap: BookGapEvent = {
      type: 'gap',
      exchange: b.id.exchange,
      market: b.id.market,
      symbol: b.id.symbol,
      stream: 'book',
      fromId: null,
      toId: null,
      fromTimeMs: b.lastEventMs ?? nowMs,
      toTimeMs: nowMs,
      reason: gapReason(reason),
      detectedAtUs: receiveTimeUs,
    };
    out.push({ kind: 'gap', record: gap });
    b.book.clear();
    this.requested.add(b.id.venueSymbol);
    out.push({ kind: 'needSnapshot', venueSymbol: b.id.venueSymbol, reason });
  }
}

type Passed = Extract<VenueOutput, { readonly kind: 'ignored' | 'rejected' }>;
/** The mapper events a session applies itself: all but the ignored and rejected frames, which pass as they are. */
export type SessionEvent<E> = Exclude<E, { readonly kind: 'ignored' | 'rejected' }>;

/**
 * A Coinbase or Gemini connection's state: the events of the venue's mapper in, outputs out. The books come from the
 * snapshot every subscription sends, so a dropped connection drops them.
 */
export abstract class VenueBooksSession<E extends { readonly kind: string }> implements VenueSession {
  readonly books: VenueBooks;
  private readonly symbols: SymbolMap;

  protected constructor(
    private readonly venue: 'coinbase' | 'gemini',
    private readonly map: (text: string, receiveTimeUs: number, symbols: SymbolMap) => E,
    opts: VenueBooksOptions,
  ) {
    this.books = new VenueBooks(opts);
    this.symbols = new SymbolMap(venue);
  }

  protected abstract apply(e: SessionEvent<E>, receiveTimeUs: number, out: VenueOutput[]): void;

  /** Every frame counts as received on the venue's name. */
  frame(text: string, receiveTimeUs: number, out: VenueOutput[]): string {
    const e = this.map(text, receiveTimeUs, this.symbols);
    if (e.kind === 'ignored' || e.kind === 'rejected') out.push(e as unknown as Passed);
    else this.apply(e as SessionEvent<E>, receiveTimeUs, out);
    return this.venue;
  }

  flush(nowMs: number, out: VenueOutput[]): void {
    this.books.flush(nowMs, nowMs * 1000, out);
  }

  /** The connection dropped: books wait for the next subscription's snapshots. */
  disconnected(): void {
    this.books.reset();
  }
}
