// The per-second trade summary (pure): what a trade slice holds and how each trade adds to it, every decimal exact
// (decimal.ts), only the log returns in doubles. Its SQL counterpart, which must give the same values from the raw
// trades, is rebuild_trade_slices (with tick_log_return, tick_move_bps) in sql/migrations/0023_tick_slices.sql.
import { TRADE_FIELDS } from './copy-binary.ts';
import { fieldLength, readNumericField, readTick, skipFields, TickRow } from './copy-binary-reader.ts';
import { bigAt, bpsInto, cmpDec, Dec, decDouble, decText, MAX, POW10, sameDec, Sum, zeroBps } from './decimal.ts';
import { summarize, TickState, type Summary } from './tick-slices.ts';

export interface TradeSlice {
  readonly exchange: string;
  readonly market: string;
  readonly symbol: string;
  /** Slice start, µs since the UNIX epoch: floor(timeUs / 1e6) * 1e6. */
  readonly sliceUs: number;
  /** First trade by (time, trade_id). */
  readonly firstUs: number;
  readonly firstId: string;
  readonly firstPrice: string;
  /** Last trade by (time, trade_id). */
  readonly lastUs: number;
  readonly lastId: string;
  readonly lastPrice: string;
  readonly tradeCount: number;
  readonly high: string;
  readonly low: string;
  /** Σ qty, Σ price * qty. */
  readonly volume: string;
  readonly quoteVolume: string;
  /** The same over trades with buyer_is_maker = false ("0" if none). */
  readonly takerBuyVolume: string;
  readonly takerBuyQuoteVolume: string;
  /** Σ price, Σ price * price. */
  readonly sumPrice: string;
  readonly sumPriceSq: string;
  /** Σ ln(price / prev) and Σ of its square over the tradeCount - 1 consecutive pairs inside the slice. */
  readonly sumLogReturn: number;
  readonly sumLogReturnSq: number;
  /** max |price - prev| and max decimal_div(|price - prev| * 10000, prev, 12) over those pairs; null when tradeCount = 1. */
  readonly maxMove: string | null;
  readonly maxMoveBps: string | null;
}

const THIRD = 1 / 3;

/** ln(p / prev) from the exact relative move x = (p - prev) / prev, as tick_log_return computes it. */
const logReturn = (x: number, p: number, prev: number) =>
  x < 1e-3 && x > -1e-3 ? x * (1 - x * (0.5 - x * (THIRD - x * (0.25 - x * (0.2 - x / 6))))) : Math.log(p / prev);

/** The trade row just read by readTrade. */
class TradeRow extends TickRow {
  readonly price = new Dec();
  readonly qty = new Dec();
  maker = false;
}

/** Reads the `trades` row at o (COLUMNS.trades order) into r. */
function readTrade(b: Uint8Array, o: number, r: TradeRow): void {
  let p = readTick(b, o, r, 'trades', TRADE_FIELDS, 'trade_id');
  p = readNumericField(b, p, r.price, 'price');
  p = readNumericField(b, p, r.qty, 'quantity');
  fieldLength(b, p, 1, 'buyer_is_maker');
  r.maker = b[p + 4] !== 0;
  r.end = skipFields(b, p + 5, TRADE_FIELDS - 8);
}

/** One trade slice under construction. */
class TradeState extends TickState<TradeState> {
  readonly first = new Dec();
  readonly last = new Dec();
  readonly high = new Dec();
  readonly low = new Dec();
  readonly volume = new Sum();
  readonly quote = new Sum();
  readonly takerVolume = new Sum();
  readonly takerQuote = new Sum();
  readonly sumPrice = new Sum();
  readonly sumPriceSq = new Sum();
  lr = 0;
  lr2 = 0;
  /** Moves are never negative, so 0 is the neutral start of their max; shown with the largest scale of any pair. */
  readonly move = new Dec();
  readonly bps = zeroBps();
}

// The current pair's move and bps (reused: no allocation per trade).
const move = new Dec();
const bps = new Dec();

/** Sets `move` to |p - prev| (at the larger scale of the two) and returns ln(p / prev), for p ≠ prev. */
function moveFrom(p: Dec, prev: Dec): number {
  if (p.big === null && prev.big === null) {
    let a = prev.u;
    let c = p.u;
    let s = prev.s;
    if (p.s > prev.s) {
      a = prev.u * POW10[p.s - prev.s]!;
      s = p.s;
    } else if (p.s < prev.s) c = p.u * POW10[prev.s - p.s]!;
    if (a > 0 && a <= MAX && c > 0 && c <= MAX) {
      const diff = c - a;
      move.setNumber(diff < 0 ? -diff : diff, s, 0);
      return logReturn(diff / a, decDouble(p), decDouble(prev));
    }
  }
  const s = p.s > prev.s ? p.s : prev.s;
  const a = bigAt(prev, s);
  const diff = bigAt(p, s) - a;
  move.setBig(diff < 0n ? -diff : diff, s, 0);
  return logReturn(Number(diff) / Number(a), decDouble(p), decDouble(prev));
}

/** Adds the trade in r to its slice; false when it comes out of (time, id) order. */
function addTrade(st: TradeState, r: TradeRow): boolean {
  const { price, qty } = r;
  if (!st.takes(r.timeUs, r.id)) return false;
  if (st.count === 0) {
    st.first.set(price);
    st.high.set(price);
    st.low.set(price);
  } else {
    const { last } = st;
    const moveD = price.d > last.d ? price.d : last.d;
    if (moveD > st.move.d) st.move.d = moveD;
    // An unchanged price (most trades): return 0, move 0, bps 0, high and low as they are.
    if (!sameDec(price, last)) {
      const lr = moveFrom(price, last);
      st.lr += lr;
      st.lr2 += lr * lr;
      bpsInto(bps, 1, move, last);
      if (cmpDec(bps, st.bps) > 0) st.bps.set(bps);
      if (cmpDec(move, st.move) > 0) st.move.setValue(move);
      if (cmpDec(price, st.high) > 0) st.high.set(price);
      else if (cmpDec(price, st.low) < 0) st.low.set(price);
    }
  }
  st.took(r.timeUs, r.id);
  st.last.set(price);
  st.volume.addDec(qty);
  st.quote.addProductDec(price, qty);
  if (!r.maker) {
    st.takerVolume.addDec(qty);
    st.takerQuote.addProductDec(price, qty);
  }
  st.sumPrice.addDec(price);
  st.sumPriceSq.addProductDec(price, price);
  return true;
}

function tradeSlice(st: TradeState): TradeSlice {
  const { stream, count } = st;
  return {
    exchange: stream.exchange,
    market: stream.market,
    symbol: stream.symbol,
    sliceUs: st.sliceUs,
    firstUs: st.firstUs,
    firstId: st.firstIdText,
    firstPrice: decText(st.first),
    lastUs: st.lastUs,
    lastId: st.lastIdText,
    lastPrice: decText(st.last),
    tradeCount: count,
    high: decText(st.high),
    low: decText(st.low),
    volume: st.volume.text(),
    quoteVolume: st.quote.text(),
    takerBuyVolume: st.takerVolume.text(),
    takerBuyQuoteVolume: st.takerQuote.text(),
    sumPrice: st.sumPrice.text(),
    sumPriceSq: st.sumPriceSq.text(),
    sumLogReturn: st.lr,
    sumLogReturnSq: st.lr2,
    maxMove: count > 1 ? decText(st.move) : null,
    maxMoveBps: count > 1 ? decText(st.bps) : null,
  };
}

const TRADES: Summary<TradeRow, TradeState, TradeSlice> = {
  row: () => new TradeRow(),
  read: readTrade,
  state: (stream, sliceUs) => new TradeState(stream, sliceUs),
  add: addTrade,
  slice: tradeSlice,
};

/** Rows: concatenated COPY BINARY tuples of the `trades` table (COLUMNS.trades order), no header/trailer. */
export function summarizeTrades(rows: Uint8Array): TradeSlice[] {
  return summarize(rows, TRADES);
}
