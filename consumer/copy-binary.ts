// COPY binary format for the three raw tick tables (pure): the PGCOPY framing, and each field as PostgreSQL's binary
// receive functions read it (big-endian int2/int4/int8, bool, UTF-8 text, timestamptz as µs since 2000-01-01, numeric
// as base-10000 digits built straight from the exchange's decimal text, so the stored value and its scale are exact).
// The tick fast path (tick-rows.ts) and CopyBinaryEncoder below use the same field writers, so both give equal bytes.
import { rowTimeMs, type AggTrade, type Tick, type Trade } from '../common/records.ts';
import { COLUMNS } from './copy-rows.ts';

/** The PGCOPY signature, flags (0: no OIDs) and header extension length (0). */
export const COPY_BINARY_HEADER: Buffer = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
/** The end of the data: a field count of -1. */
export const COPY_BINARY_TRAILER: Buffer = Buffer.from([0xff, 0xff]);

/** µs between the Unix epoch and PostgreSQL's (2000-01-01 UTC). */
export const PG_EPOCH_US = 946_684_800_000_000;
/** The weight of an int8's high 32 bits. */
export const TWO_32 = 4_294_967_296;
/** The sign word of a negative numeric (positive: 0; anything else is NaN or an infinity). */
export const NUMERIC_NEG = 0x4000;
const ZERO = 48;
const DOT = 46;

/** The field count that starts each row of a tick table. */
export const TRADE_FIELDS = COLUMNS.trades.length;
export const AGG_TRADE_FIELDS = COLUMNS.agg_trades.length;
export const BOOK_TICKER_FIELDS = COLUMNS.book_tickers.length;

/** Upper bound of the bytes a tick row takes beyond its strings' own (field lengths, ids, times, numeric headers). */
export const TICK_ROW_FIXED_BYTES = 320;

export function putInt16(o: Uint8Array, p: number, v: number): number {
  o[p] = (v >>> 8) & 0xff;
  o[p + 1] = v & 0xff;
  return p + 2;
}

export function putInt32(o: Uint8Array, p: number, v: number): number {
  o[p] = (v >>> 24) & 0xff;
  o[p + 1] = (v >>> 16) & 0xff;
  o[p + 2] = (v >>> 8) & 0xff;
  o[p + 3] = v & 0xff;
  return p + 4;
}

/** A safe integer as int8, big-endian two's complement. */
function putInt64(o: Uint8Array, p: number, v: number): number {
  const hi = Math.floor(v / TWO_32);
  return putInt32(o, putInt32(o, p, hi | 0), (v - hi * TWO_32) >>> 0);
}

/** An int8 field: length 8 and the value. */
export function int8Field(o: Uint8Array, p: number, v: number): number {
  return putInt64(o, putInt32(o, p, 8), v);
}

/** A bool field. */
export function boolField(o: Uint8Array, p: number, v: boolean): number {
  p = putInt32(o, p, 1);
  o[p] = v ? 1 : 0;
  return p + 1;
}

/** A NULL field: length -1. */
export function nullField(o: Uint8Array, p: number): number {
  return putInt32(o, p, -1);
}

/** A timestamptz field from µs since the Unix epoch. */
export function timeUsField(o: Uint8Array, p: number, us: number): number {
  return putInt64(o, putInt32(o, p, 8), us - PG_EPOCH_US);
}

/** A timestamptz field from ms since the Unix epoch. */
export function timeMsField(o: Uint8Array, p: number, ms: number): number {
  return timeUsField(o, p, ms * 1000);
}

/** A text field from bytes already known to be valid UTF-8 (checked ASCII on the fast path). */
export function bytesField(b: Uint8Array, s: number, e: number, o: Uint8Array, p: number): number {
  p = putInt32(o, p, e - s);
  for (let i = s; i < e; i++) o[p++] = b[i]!;
  return p;
}

// Base-10000 digits of the numeric being written (a decimal of n characters has at most n/4 + 2).
let groups = new Uint16Array(32);

/**
 * A numeric field from a plain decimal (digits, optionally a point and more digits: the caller has checked that)
 * in b[s, e). Display scale = the number of digits after the point, so `::text` gives the same text back; the digits
 * are stored without leading or trailing zero groups, as PostgreSQL stores them itself.
 */
export function numericField(b: Uint8Array, s: number, e: number, o: Uint8Array, p: number): number {
  let dot = s;
  while (dot < e && b[dot] !== DOT) dot++;
  const intDigits = dot - s;
  const fracDigits = dot < e ? e - dot - 1 : 0;
  const intGroups = (intDigits + 3) >> 2;
  const total = intGroups + ((fracDigits + 3) >> 2);
  if (groups.length < total) groups = new Uint16Array(total * 2);
  // The digits as if the integer part were left-padded and the fraction right-padded to whole groups of 4.
  const padLeft = intGroups * 4 - intDigits;
  let first = -1;
  let last = -1;
  for (let g = 0; g < total; g++) {
    let v = 0;
    for (let k = g * 4, end = k + 4; k < end; k++) {
      let d = 0;
      if (g < intGroups) {
        const i = k - padLeft;
        if (i >= 0) d = b[s + i]! - ZERO;
      } else {
        const f = k - intGroups * 4;
        if (f < fracDigits) d = b[dot + 1 + f]! - ZERO;
      }
      v = v * 10 + d;
    }
    groups[g] = v;
    if (v !== 0) {
      if (first < 0) first = g;
      last = g;
    }
  }
  const ndigits = first < 0 ? 0 : last - first + 1;
  p = putInt32(o, p, 8 + 2 * ndigits);
  p = putInt16(o, p, ndigits);
  p = putInt16(o, p, first < 0 ? 0 : intGroups - 1 - first); // weight: the power of 10000 of the first digit
  p = putInt16(o, p, 0); // sign: positive (the tick decimals have no sign)
  p = putInt16(o, p, fracDigits); // display scale
  for (let g = first; g <= last && first >= 0; g++) p = putInt16(o, p, groups[g]!);
  return p;
}

const PLAIN_DECIMAL = /^\d+(\.\d+)?$/;

/** The numeric field of a decimal string (throws on anything but plain digits with an optional fraction). */
export function numericFieldOf(decimal: string, o: Uint8Array, p: number): number {
  if (!PLAIN_DECIMAL.test(decimal)) throw new Error(`not a plain decimal: ${JSON.stringify(decimal)}`);
  return numericField(Buffer.from(decimal, 'latin1'), 0, decimal.length, o, p);
}

/** A growable buffer that rows are written into. */
export interface RowSink {
  buf: Buffer;
  pos: number;
  reserve(bytes: number): void;
}

/** Tick rows in COPY binary format, columns in COLUMNS order of the tick's table (no header or trailer). */
export class CopyBinaryEncoder {
  private str(o: Buffer, p: number, s: string): number {
    const n = o.write(s, p + 4, 'utf8');
    putInt32(o, p, n);
    return p + 4 + n;
  }

  row(t: Tick, out: RowSink): void {
    const chars =
      t.exchange.length + t.market.length + t.symbol.length +
      (t.type === 'bookTicker' ? t.bidPrice.length + t.bidQty.length + t.askPrice.length + t.askQty.length : t.side.length + t.price.length + t.quantity.length);
    out.reserve(TICK_ROW_FIXED_BYTES + 3 * chars); // UTF-8 takes at most 3 bytes per UTF-16 unit
    const o = out.buf;
    let p = out.pos;
    switch (t.type) {
      case 'trade':
        p = int8Field(o, this.head(o, p, TRADE_FIELDS, t, t.exchangeTimeMs), t.tradeId);
        p = this.fill(o, p, t);
        break;
      case 'aggTrade':
        p = int8Field(o, this.head(o, p, AGG_TRADE_FIELDS, t, t.exchangeTimeMs), t.aggId);
        p = int8Field(o, int8Field(o, p, t.firstTradeId), t.lastTradeId);
        p = this.fill(o, p, t);
        break;
      case 'bookTicker':
        p = int8Field(o, this.head(o, p, BOOK_TICKER_FIELDS, t, rowTimeMs(t)), t.updateId);
        p = numericFieldOf(t.bidPrice, o, p);
        p = numericFieldOf(t.bidQty, o, p);
        p = numericFieldOf(t.askPrice, o, p);
        p = numericFieldOf(t.askQty, o, p);
        p = t.exchangeTimeMs === null ? nullField(o, p) : timeMsField(o, p, t.exchangeTimeMs);
        p = t.eventTimeMs === null ? nullField(o, p) : timeMsField(o, p, t.eventTimeMs);
        break;
    }
    out.pos = timeUsField(o, p, t.receiveTimeUs);
  }

  /** What a trade and an aggTrade row end with: price, quantity, buyer-is-maker, side, event time. */
  private fill(o: Buffer, p: number, t: Trade | AggTrade): number {
    p = numericFieldOf(t.price, o, p);
    p = numericFieldOf(t.quantity, o, p);
    p = boolField(o, p, t.buyerIsMaker);
    p = this.str(o, p, t.side);
    return timeMsField(o, p, t.eventTimeMs);
  }

  /** What every tick row starts with: its field count, exchange, market, symbol, and the row's time. */
  private head(o: Buffer, p: number, fields: number, t: Tick, timeMs: number): number {
    p = this.str(o, this.str(o, this.str(o, putInt16(o, p, fields), t.exchange), t.market), t.symbol);
    return timeMsField(o, p, timeMs);
  }
}
