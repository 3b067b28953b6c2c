// The per-second trade summary (pure): what a trade slice holds and how each trade adds to it, every decimal exact
// (decimal.ts), only the log returns in doubles. Its SQL counterpart, which must give the same values from the raw
// trades, is rebuild_trade_slices (with tick_log_return, tick_move_bps) in sql/slices.sql.
import { TRADE_FIELDS } from './copy-binary.ts';
import { fieldLength, readNumericField, readTick, skipFields, TickRow } from './copy-binary-reader.ts';
import { bigAt, bpsInto, cmpDec, Dec, decDouble, decText, MAX, POW10, Range, sameDec, Sum, zeroBps } from './decimal.ts';
import { summarize, TickState, type SliceHead } from './tick-slices.ts';

/** Its first and last trade are by (time, trade_id). */
export interface TradeSlice extends SliceHead {
  readonly firstPrice: string;
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

/** The `trades` row just read. */
class TradeRow extends TickRow {
  readonly price = new Dec();
  readonly qty = new Dec();
  maker = false;

  read(b: Uint8Array, o: number): void {
    let p = readTick(b, o, this, 'trades', TRADE_FIELDS, 'trade_id');
    p = readNumericField(b, p, this.price, 'price');
    p = readNumericField(b, p, this.qty, 'quantity');
    fieldLength(b, p, 1, 'buyer_is_maker');
    this.maker = b[p + 4] !== 0;
    this.end = skipFields(b, p + 5, TRADE_FIELDS - 8);
  }
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

/** Σ qty and Σ price * qty of the trades added: all of them, and those whose buyer is the taker (buyer_is_maker = false). */
class Volumes {
  readonly qty = new Sum();
  readonly quote = new Sum();
  readonly takerBuyQty = new Sum();
  readonly takerBuyQuote = new Sum();

  add(price: Dec, qty: Dec, maker: boolean): void {
    this.qty.addDec(qty);
    this.quote.addProductDec(price, qty);
    if (maker) return;
    this.takerBuyQty.addDec(qty);
    this.takerBuyQuote.addProductDec(price, qty);
  }
}

/** Σ price and Σ price² of the trades added (a bar's mean and variance of price). */
class PriceSums {
  readonly sum = new Sum();
  readonly sumSq = new Sum();

  add(price: Dec): void {
    this.sum.addDec(price);
    this.sumSq.addProductDec(price, price);
  }
}

/** The first and last price of the trades added, and their range (high and low). */
class TradePrices {
  readonly first = new Dec();
  readonly last = new Dec();
  readonly range = new Range();
}

/** One trade slice under construction. */
class TradeState extends TickState<TradeState, TradeRow, TradeSlice> {
  /** First, last, high and low. */
  readonly prices = new TradePrices();
  readonly volumes = new Volumes();
  readonly priceSums = new PriceSums();
  lr = 0;
  lr2 = 0;
  /** Moves are never negative, so 0 is the neutral start of their max; shown with the largest scale of any pair. */
  readonly move = new Dec();
  readonly bps = zeroBps();

  /** Adds the trade in r; false when it comes out of (time, id) order. */
  add(r: TradeRow): boolean {
    const { price, qty } = r;
    if (!this.takes(r.timeUs, r.id)) return false;
    if (this.count === 0) {
      this.prices.first.set(price);
      this.prices.range.reset(price);
    } else {
      const { last } = this.prices;
      const moveD = price.d > last.d ? price.d : last.d;
      if (moveD > this.move.d) this.move.d = moveD;
      // An unchanged price (most trades): return 0, move 0, bps 0, high and low as they are.
      if (!sameDec(price, last)) {
        const lr = moveFrom(price, last);
        this.lr += lr;
        this.lr2 += lr * lr;
        bpsInto(bps, 1, move, last);
        if (cmpDec(bps, this.bps) > 0) this.bps.set(bps);
        if (cmpDec(move, this.move) > 0) this.move.setValue(move);
        this.prices.range.take(price);
      }
    }
    this.took(r.timeUs, r.id);
    this.prices.last.set(price);
    this.volumes.add(price, qty, r.maker);
    this.priceSums.add(price);
    return true;
  }

  slice(): TradeSlice {
    const { count } = this;
    // Spelled out, not spread: a spread head made every slice a slow dictionary-mode object (3 x the summarizing CPU).
    const { exchange, market, symbol, sliceUs, firstUs, firstId, lastUs, lastId } = this.head();
    return {
      exchange, market, symbol, sliceUs, firstUs, firstId, lastUs, lastId,
      firstPrice: decText(this.prices.first),
      lastPrice: decText(this.prices.last),
      tradeCount: count,
      high: decText(this.prices.range.max),
      low: decText(this.prices.range.min),
      volume: this.volumes.qty.text(),
      quoteVolume: this.volumes.quote.text(),
      takerBuyVolume: this.volumes.takerBuyQty.text(),
      takerBuyQuoteVolume: this.volumes.takerBuyQuote.text(),
      sumPrice: this.priceSums.sum.text(),
      sumPriceSq: this.priceSums.sumSq.text(),
      sumLogReturn: this.lr,
      sumLogReturnSq: this.lr2,
      maxMove: count > 1 ? decText(this.move) : null,
      maxMoveBps: count > 1 ? decText(this.bps) : null,
    };
  }
}

/** Rows: concatenated COPY BINARY tuples of the `trades` table (COLUMNS.trades order), no header/trailer. */
export function summarizeTrades(rows: Uint8Array): TradeSlice[] {
  return summarize<TradeRow, TradeState, TradeSlice>(rows, new TradeRow(), (stream, sliceUs) => new TradeState(stream, sliceUs));
}
