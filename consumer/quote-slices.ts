// The per-second quote (book ticker) summary (pure): what a quote slice holds and how each book ticker adds to it,
// every decimal exact (decimal.ts). Its SQL counterpart, which must give the same values from the raw book tickers, is
// rebuild_quote_slices in sql/migrations/0023_tick_slices.sql.
import { BOOK_TICKER_FIELDS } from './copy-binary.ts';
import { readNumericField, readTick, skipFields, TickRow } from './copy-binary-reader.ts';
import { bigAt, bigOf, bigText, bpsInto, cmpDec, Dec, decText, LIMIT, POW10, productText, sameDec, Sum } from './decimal.ts';
import { summarize, TickState, type Summary } from './tick-slices.ts';

export interface QuoteSlice {
  readonly exchange: string;
  readonly market: string;
  readonly symbol: string;
  readonly sliceUs: number;
  /** First book ticker by (time, update_id). */
  readonly firstUs: number;
  readonly firstId: string;
  readonly lastUs: number;
  readonly lastId: string;
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

/** The book ticker row just read by readBookTicker. */
class QuoteRow extends TickRow {
  readonly bid = new Dec();
  readonly bidQty = new Dec();
  readonly ask = new Dec();
  readonly askQty = new Dec();
}

/** Reads the `book_tickers` row at o (COLUMNS.book_tickers order) into r. */
function readBookTicker(b: Uint8Array, o: number, r: QuoteRow): void {
  let p = readTick(b, o, r, 'book_tickers', BOOK_TICKER_FIELDS, 'update_id');
  p = readNumericField(b, p, r.bid, 'bid_price');
  p = readNumericField(b, p, r.bidQty, 'bid_qty');
  p = readNumericField(b, p, r.ask, 'ask_price');
  p = readNumericField(b, p, r.askQty, 'ask_qty');
  r.end = skipFields(b, p, BOOK_TICKER_FIELDS - 9);
}

/** One quote slice under construction. */
class QuoteState extends TickState<QuoteState> {
  /** The last quote. */
  readonly bid = new Dec();
  readonly bidQty = new Dec();
  readonly ask = new Dec();
  readonly askQty = new Dec();
  /** What the last quote's prices give (reused while they stay): ask - bid, ask + bid (twice the mid), spread bps. */
  readonly spread = new Dec();
  readonly mid2 = new Dec();
  readonly bps = new Dec();
  readonly minSpread = new Dec();
  readonly maxSpread = new Dec();
  readonly minBps = new Dec();
  readonly maxBps = new Dec();
  readonly sumSpread = new Sum();
  readonly sumBps = new Sum();
  readonly sumMid2 = new Sum();
  readonly bidNotional = new Sum();
  readonly askNotional = new Sum();
  readonly twSpread = new Sum();
}

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

/** Adds the book ticker in r to its slice; false when it comes out of (time, id) order. */
function addQuote(st: QuoteState, r: QuoteRow): boolean {
  const t = r.timeUs;
  const { bid, bidQty, ask, askQty } = r;
  if (!st.takes(t, r.id)) return false;
  // The previous quote's spread was in force until this one.
  if (st.count > 0) st.twSpread.addTimes(st.spread, t - st.lastUs);
  const d = ask.d > bid.d ? ask.d : bid.d;
  if (st.count === 0 || !sameDec(ask, st.ask) || !sameDec(bid, st.bid)) {
    pricesInto(st, ask, bid, d);
    if (st.count === 0) {
      st.minSpread.set(st.spread);
      st.maxSpread.set(st.spread);
      st.minBps.set(st.bps);
      st.maxBps.set(st.bps);
    } else {
      if (cmpDec(st.spread, st.minSpread) < 0) st.minSpread.set(st.spread);
      if (cmpDec(st.spread, st.maxSpread) > 0) st.maxSpread.set(st.spread);
      if (cmpDec(st.bps, st.minBps) < 0) st.minBps.set(st.bps);
      if (cmpDec(st.bps, st.maxBps) > 0) st.maxBps.set(st.bps);
    }
  }
  st.spread.d = st.mid2.d = d;
  st.bid.set(bid);
  st.bidQty.set(bidQty);
  st.ask.set(ask);
  st.askQty.set(askQty);
  st.sumSpread.addDec(st.spread);
  st.sumBps.addDec(st.bps);
  st.sumMid2.addDec(st.mid2);
  st.bidNotional.addProductDec(bid, bidQty);
  st.askNotional.addProductDec(ask, askQty);
  st.took(t, r.id);
  return true;
}

/** mid = mid2 * 0.5: one more decimal. */
const midText = (mid2: bigint, s: number, d: number) => bigText(mid2 * 5n, s + 1, d + 1);

function quoteSlice(st: QuoteState): QuoteSlice {
  const { stream } = st;
  return {
    exchange: stream.exchange,
    market: stream.market,
    symbol: stream.symbol,
    sliceUs: st.sliceUs,
    firstUs: st.firstUs,
    firstId: st.firstIdText,
    lastUs: st.lastUs,
    lastId: st.lastIdText,
    quoteCount: st.count,
    sumSpread: st.sumSpread.text(),
    minSpread: decText(st.minSpread),
    maxSpread: decText(st.maxSpread),
    lastSpread: decText(st.spread),
    sumSpreadBps: st.sumBps.text(),
    minSpreadBps: decText(st.minBps),
    maxSpreadBps: decText(st.maxBps),
    lastSpreadBps: decText(st.bps),
    sumMid: midText(st.sumMid2.total(), st.sumMid2.w, st.sumMid2.ds),
    lastMid: midText(bigOf(st.mid2), st.mid2.s, st.mid2.d),
    sumBidNotional: st.bidNotional.text(),
    sumAskNotional: st.askNotional.text(),
    lastBidNotional: productText(st.bid, st.bidQty),
    lastAskNotional: productText(st.ask, st.askQty),
    twUs: st.lastUs - st.firstUs,
    twSpreadUs: st.twSpread.text(),
  };
}

const BOOK_TICKERS: Summary<QuoteRow, QuoteState, QuoteSlice> = {
  row: () => new QuoteRow(),
  read: readBookTicker,
  state: (stream, sliceUs) => new QuoteState(stream, sliceUs),
  add: addQuote,
  slice: quoteSlice,
};

/** Rows: concatenated COPY BINARY tuples of the `book_tickers` table (COLUMNS.book_tickers order). */
export function summarizeBookTickers(rows: Uint8Array): QuoteSlice[] {
  return summarize(rows, BOOK_TICKERS);
}
