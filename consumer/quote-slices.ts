// The per-second quote (book ticker) summary (pure): what a quote slice holds and how each book ticker adds to it,
// every decimal exact (decimal.ts). Its SQL counterpart, which must give the same values from the raw book tickers, is
// rebuild_quote_slices in sql/slices.sql.
import { BOOK_TICKER_FIELDS } from './copy-binary.ts';
import { readNumericField, readTick, skipFields, TickRow } from './copy-binary-reader.ts';
import { bigAt, bigOf, bigText, bpsInto, Dec, decText, LIMIT, POW10, productText, Range, sameDec, Sum } from './decimal.ts';
import { summarize, TickState, type SliceHead } from './tick-slices.ts';

/** Its first and last book ticker are by (time, update_id). */
export interface QuoteSlice extends SliceHead {
  readonly quoteCount: number;
  /** spread = ask - bid. */
  readonly sumSpread: string;
  readonly minSpread: string;
  readonly maxSpread: string;
  readonly lastSpread: string;
  /** spread bps = decimal_div(spread * 20000, ask + bid, 12). */
  readonly sumSpreadBps: string;
  readonly minSpreadBps: string;
  readonly maxSpreadBps: string;
  readonly lastSpreadBps: string;
  /** mid = (ask + bid) * 0.5. */
  readonly sumMid: string;
  readonly lastMid: string;
  /** bid * bid_qty, ask * ask_qty. */
  readonly sumBidNotional: string;
  readonly sumAskNotional: string;
  readonly lastBidNotional: string;
  readonly lastAskNotional: string;
  /** Σ over consecutive quotes inside the slice of (t_{i+1} - t_i) in µs. */
  readonly twUs: number;
  /** Σ spread_i * (t_{i+1} - t_i) (µs), exact. */
  readonly twSpreadUs: string;
}

/** The four decimals of a book ticker. */
class Quote {
  readonly bid = new Dec();
  readonly bidQty = new Dec();
  readonly ask = new Dec();
  readonly askQty = new Dec();

  set(q: Quote): void {
    this.bid.set(q.bid);
    this.bidQty.set(q.bidQty);
    this.ask.set(q.ask);
    this.askQty.set(q.askQty);
  }
}

/** The `book_tickers` row just read. */
class QuoteRow extends TickRow {
  readonly quote = new Quote();

  read(b: Uint8Array, o: number): void {
    const { quote } = this;
    let p = readTick(b, o, this, 'book_tickers', BOOK_TICKER_FIELDS, 'update_id');
    p = readNumericField(b, p, quote.bid, 'bid_price');
    p = readNumericField(b, p, quote.bidQty, 'bid_qty');
    p = readNumericField(b, p, quote.ask, 'ask_price');
    p = readNumericField(b, p, quote.askQty, 'ask_qty');
    this.end = skipFields(b, p, BOOK_TICKER_FIELDS - 9);
  }
}

/** mid = mid2 * 0.5: one more decimal. */
const midText = (mid2: bigint, s: number, d: number) => bigText(mid2 * 5n, s + 1, d + 1);

/** The last book ticker and what its prices give (reused while they stay): ask - bid, ask + bid (twice the mid), bps. */
class LastQuote {
  readonly quote = new Quote();
  readonly spread = new Dec();
  readonly mid2 = new Dec();
  readonly bps = new Dec();

  /** Takes q; true when its prices differ from the last quote's (always for the first, `fresh`). */
  set(q: Quote, fresh: boolean): boolean {
    const { ask, bid } = q;
    const d = ask.d > bid.d ? ask.d : bid.d;
    const moved = fresh || !sameDec(ask, this.quote.ask) || !sameDec(bid, this.quote.bid);
    if (moved) this.pricesInto(ask, bid, d);
    this.spread.d = this.mid2.d = d;
    this.quote.set(q);
    return moved;
  }

  /** Sets spread, mid2 (at the larger scale of ask and bid, shown with d decimals) and bps from ask and bid. */
  private pricesInto(ask: Dec, bid: Dec, d: number): void {
    const s = ask.s > bid.s ? ask.s : bid.s;
    if (ask.big === null && bid.big === null) {
      let au = ask.u;
      let bu = bid.u;
      if (bid.s > ask.s) au *= POW10[bid.s - ask.s]!;
      else if (bid.s < ask.s) bu *= POW10[ask.s - bid.s]!;
      // Both at most 2^51: ask + bid and 2 * spread stay within an exact division's operands.
      if (au >= 0 && au <= LIMIT / 2 && bu >= 0 && bu <= LIMIT / 2) {
        this.spread.setNumber(au - bu, s, d);
        this.mid2.setNumber(au + bu, s, d);
        return bpsInto(this.bps, 2, this.spread, this.mid2);
      }
    }
    const a = bigAt(ask, s);
    const b = bigAt(bid, s);
    this.spread.setBig(a - b, s, d);
    this.mid2.setBig(a + b, s, d);
    bpsInto(this.bps, 2, this.spread, this.mid2);
  }
}

/** Min and max of the spread and of its bps, over the distinct prices of the slice. */
class SpreadRanges {
  readonly spread = new Range();
  readonly bps = new Range();

  take(q: LastQuote, first: boolean): void {
    if (first) {
      this.spread.reset(q.spread);
      this.bps.reset(q.bps);
    } else {
      this.spread.take(q.spread);
      this.bps.take(q.bps);
    }
  }
}

/** Σ spread, Σ bps and Σ (ask + bid) over the quotes added. */
class QuoteSums {
  readonly spread = new Sum();
  readonly bps = new Sum();
  readonly mid2 = new Sum();

  add(spread: Dec, bps: Dec, mid2: Dec): void {
    this.spread.addDec(spread);
    this.bps.addDec(bps);
    this.mid2.addDec(mid2);
  }
}

/** Σ bid * bid_qty and Σ ask * ask_qty over the quotes added. */
class Notionals {
  readonly bid = new Sum();
  readonly ask = new Sum();

  add(q: Quote): void {
    this.bid.addProductDec(q.bid, q.bidQty);
    this.ask.addProductDec(q.ask, q.askQty);
  }
}

/** One quote slice under construction. */
class QuoteState extends TickState<QuoteState, QuoteRow, QuoteSlice> {
  readonly last = new LastQuote();
  readonly ranges = new SpreadRanges();
  readonly sums = new QuoteSums();
  readonly notionals = new Notionals();
  /** Σ spread * time in force (µs). */
  readonly twSpread = new Sum();

  /** Adds the book ticker in r; false when it comes out of (time, id) order. */
  add(r: QuoteRow): boolean {
    const t = r.timeUs;
    if (!this.takes(t, r.id)) return false;
    const { last } = this;
    // The previous quote's spread was in force until this one.
    if (this.count > 0) this.twSpread.addTimes(last.spread, t - this.lastUs);
    if (last.set(r.quote, this.count === 0)) this.ranges.take(last, this.count === 0);
    this.sums.add(last.spread, last.bps, last.mid2);
    this.notionals.add(r.quote);
    this.took(t, r.id);
    return true;
  }

  slice(): QuoteSlice {
    const { last, ranges, sums } = this;
    const { mid2 } = last;
    // Spelled out, not spread (see TradeState.slice).
    const { exchange, market, symbol, sliceUs, firstUs, firstId, lastUs, lastId } = this.head();
    return {
      exchange, market, symbol, sliceUs, firstUs, firstId, lastUs, lastId,
      quoteCount: this.count,
      sumSpread: sums.spread.text(),
      minSpread: decText(ranges.spread.min),
      maxSpread: decText(ranges.spread.max),
      lastSpread: decText(last.spread),
      sumSpreadBps: sums.bps.text(),
      minSpreadBps: decText(ranges.bps.min),
      maxSpreadBps: decText(ranges.bps.max),
      lastSpreadBps: decText(last.bps),
      sumMid: midText(sums.mid2.total(), sums.mid2.w, sums.mid2.ds),
      lastMid: midText(bigOf(mid2), mid2.s, mid2.d),
      sumBidNotional: this.notionals.bid.text(),
      sumAskNotional: this.notionals.ask.text(),
      lastBidNotional: productText(last.quote.bid, last.quote.bidQty),
      lastAskNotional: productText(last.quote.ask, last.quote.askQty),
      twUs: this.lastUs - this.firstUs,
      twSpreadUs: this.twSpread.text(),
    };
  }
}

/** Rows: concatenated COPY BINARY tuples of the `book_tickers` table (COLUMNS.book_tickers order). */
export function summarizeBookTickers(rows: Uint8Array): QuoteSlice[] {
  return summarize<QuoteRow, QuoteState, QuoteSlice>(rows, new QuoteRow(), (stream, sliceUs) => new QuoteState(stream, sliceUs));
}
