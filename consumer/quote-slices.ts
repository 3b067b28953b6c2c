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

/** Sets st.spread, st.mid2 (at the larger scale of ask and bid, shown with d decimals) and st.bps from ask and bid. */
function pricesInto(st: QuoteState, ask: Dec, bid: Dec, d: number): void {
  const s = ask.s > bid.s ? ask.s : bid.s;
  if (ask.big === null && bid.big === null) {
    let au = ask.u;
    let bu = bid.u;
    if (bid.s > ask.s) au *= POW10[bid.s - ask.s]!;
    else if (bid.s < ask.s) bu *= POW10[ask.s - bid.s]!;
    // Both at most 2^51: ask + bid and 2 * spread stay within an exact division's operands.
    if (au >= 0 && au <= LIMIT / 2 && bu >= 0 && bu <= LIMIT / 2) {
      st.spread.setNumber(au - bu, s, d);
      st.mid2.setNumber(au + bu, s, d);
      return bpsInto(st.bps, 2, st.spread, st.mid2);
    }
  }
  const a = bigAt(ask, s);
  const b = bigAt(bid, s);
  st.spread.setBig(a - b, s, d);
  st.mid2.setBig(a + b, s, d);
  bpsInto(st.bps, 2, st.spread, st.mid2);
}

/** One quote slice under construction. */
class QuoteState extends TickState<QuoteState, QuoteRow, QuoteSlice> {
  readonly last = new Quote();
  /** What the last quote's prices give (reused while they stay): ask - bid, ask + bid (twice the mid), spread bps. */
  readonly spread = new Dec();
  readonly mid2 = new Dec();
  readonly bps = new Dec();
  readonly spreads = new Range();
  readonly spreadBps = new Range();
  readonly sumSpread = new Sum();
  readonly sumBps = new Sum();
  readonly sumMid2 = new Sum();
  readonly bidNotional = new Sum();
  readonly askNotional = new Sum();
  readonly twSpread = new Sum();

  /** Adds the book ticker in r; false when it comes out of (time, id) order. */
  add(r: QuoteRow): boolean {
    const t = r.timeUs;
    const { bid, bidQty, ask, askQty } = r.quote;
    if (!this.takes(t, r.id)) return false;
    // The previous quote's spread was in force until this one.
    if (this.count > 0) this.twSpread.addTimes(this.spread, t - this.lastUs);
    const d = ask.d > bid.d ? ask.d : bid.d;
    if (this.count === 0 || !sameDec(ask, this.last.ask) || !sameDec(bid, this.last.bid)) {
      pricesInto(this, ask, bid, d);
      if (this.count === 0) {
        this.spreads.reset(this.spread);
        this.spreadBps.reset(this.bps);
      } else {
        this.spreads.take(this.spread);
        this.spreadBps.take(this.bps);
      }
    }
    this.spread.d = this.mid2.d = d;
    this.last.set(r.quote);
    this.sumSpread.addDec(this.spread);
    this.sumBps.addDec(this.bps);
    this.sumMid2.addDec(this.mid2);
    this.bidNotional.addProductDec(bid, bidQty);
    this.askNotional.addProductDec(ask, askQty);
    this.took(t, r.id);
    return true;
  }

  slice(): QuoteSlice {
    const { sumMid2, mid2 } = this;
    return {
      ...this.head(),
      quoteCount: this.count,
      sumSpread: this.sumSpread.text(),
      minSpread: decText(this.spreads.min),
      maxSpread: decText(this.spreads.max),
      lastSpread: decText(this.spread),
      sumSpreadBps: this.sumBps.text(),
      minSpreadBps: decText(this.spreadBps.min),
      maxSpreadBps: decText(this.spreadBps.max),
      lastSpreadBps: decText(this.bps),
      sumMid: midText(sumMid2.total(), sumMid2.w, sumMid2.ds),
      lastMid: midText(bigOf(mid2), mid2.s, mid2.d),
      sumBidNotional: this.bidNotional.text(),
      sumAskNotional: this.askNotional.text(),
      lastBidNotional: productText(this.last.bid, this.last.bidQty),
      lastAskNotional: productText(this.last.ask, this.last.askQty),
      twUs: this.lastUs - this.firstUs,
      twSpreadUs: this.twSpread.text(),
    };
  }
}

/** Rows: concatenated COPY BINARY tuples of the `book_tickers` table (COLUMNS.book_tickers order). */
export function summarizeBookTickers(rows: Uint8Array): QuoteSlice[] {
  return summarize<QuoteRow, QuoteState, QuoteSlice>(rows, new QuoteRow(), (stream, sliceUs) => new QuoteState(stream, sliceUs));
}
