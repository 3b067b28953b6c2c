// The tick writers' fast path (pure): a Binance tick record straight from its Kafka bytes into its COPY binary row,
// with no object and no string per record. It takes only what it can prove valid — a flat JSON object as encodeRecord
// writes it (no whitespace, no escapes, integers as plain digits, any field order) that passes every check of
// decodeTick and checkWritable — and declines anything else, which then takes the full path (JSON.parse + decodeTick:
// a row, or a dead letter with its reason). Decimals become numerics digit for digit; rows equal CopyBinaryEncoder.row's.
import { SCHEMA_VERSION, type TickType } from '../common/records.ts';
import {
  AGG_TRADE_FIELDS,
  BOOK_TICKER_FIELDS,
  boolField,
  bytesField,
  int8Field,
  nullField,
  numericField,
  putInt16,
  TICK_ROW_FIXED_BYTES,
  TRADE_FIELDS,
  timeMsField,
  timeUsField,
} from './copy-binary.ts';
import { MAX_TIME_MS, MIN_TIME_MS } from './copy-rows.ts';

// Kinds of a scanned value.
const STR = 1;
const NUM = 2;
const TRUE = 3;
const FALSE = 4;
const NULL = 5;

// The fields a Binance tick may have, as slots. Any other key declines the record (the full path ignores or rejects it).
const KEYS = [
  'type', 'exchange', 'market', 'symbol', 'receiveTimeUs', 'tradeId', 'aggId', 'firstTradeId', 'lastTradeId', 'updateId', 'price',
  'quantity', 'buyerIsMaker', 'side', 'exchangeTimeMs', 'eventTimeMs', 'bidPrice', 'bidQty', 'askPrice', 'askQty', 'v',
] as const;
const slot = (key: (typeof KEYS)[number]) => KEYS.indexOf(key);
const TYPE = slot('type');
const EXCHANGE = slot('exchange');
const MARKET = slot('market');
const SYMBOL = slot('symbol');
const RECEIVE = slot('receiveTimeUs');
const TRADE_ID = slot('tradeId');
const AGG_ID = slot('aggId');
const FIRST_ID = slot('firstTradeId');
const LAST_ID = slot('lastTradeId');
const UPDATE_ID = slot('updateId');
const PRICE = slot('price');
const QUANTITY = slot('quantity');
const BUYER_IS_MAKER = slot('buyerIsMaker');
const SIDE = slot('side');
const EXCHANGE_TIME = slot('exchangeTimeMs');
const EVENT_TIME = slot('eventTimeMs');
const BID_PRICE = slot('bidPrice');
const BID_QTY = slot('bidQty');
const ASK_PRICE = slot('askPrice');
const ASK_QTY = slot('askQty');
const VERSION = slot('v');

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const KEY_BYTES = KEYS.map(ascii);

// Keys are told apart by length, first and last byte (checked unique below), then compared in full.
const signature = (len: number, first: number, last: number) => (len * 961 + first * 31 + last) & 1023;
const SLOT_OF = new Int8Array(1024).fill(-1);
KEY_BYTES.forEach((k, slot) => {
  const sig = signature(k.length, k[0]!, k[k.length - 1]!);
  if (SLOT_OF[sig] !== -1) throw new Error(`tick-rows: key signature clash for ${KEYS[slot]}`);
  SLOT_OF[sig] = slot;
});

const BINANCE = ascii('binance');
const SPOT = ascii('spot');
const USDM = ascii('usdm');
const BUY = ascii('buy');
const SELL = ascii('sell');
const TYPE_BYTES: Readonly<Record<TickType, Uint8Array>> = { trade: ascii('trade'), aggTrade: ascii('aggTrade'), bookTicker: ascii('bookTicker') };

const QUOTE = 34;
const COMMA = 44;
const COLON = 58;
const BACKSLASH = 92;
const ZERO = 48;
const DOT = 46;

function equals(b: Uint8Array, s: number, e: number, want: Uint8Array): boolean {
  if (e - s !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (b[s + i] !== want[i]) return false;
  return true;
}

/** /^\d{1,20}(\.\d{1,18})?$/ (isDecimal), and with `positive` also a non-zero digit (isPositiveDecimal). */
function isDecimalAt(b: Uint8Array, s: number, e: number, positive: boolean): boolean {
  let i = s;
  let nonZero = false;
  while (i < e && b[i]! >= ZERO && b[i]! <= 57) {
    if (b[i] !== ZERO) nonZero = true;
    i++;
  }
  const intDigits = i - s;
  if (intDigits < 1 || intDigits > 20) return false;
  if (i < e) {
    if (b[i] !== DOT) return false;
    const f = ++i;
    while (i < e && b[i]! >= ZERO && b[i]! <= 57) {
      if (b[i] !== ZERO) nonZero = true;
      i++;
    }
    if (i !== e || i - f < 1 || i - f > 18) return false;
  }
  return !positive || nonZero;
}

/** The binance symbol check of decodeTick: /^[A-Z0-9]{2,20}$/. */
function isBinanceSymbolAt(b: Uint8Array, s: number, e: number): boolean {
  if (e - s < 2 || e - s > 20) return false;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (!((c >= 65 && c <= 90) || (c >= ZERO && c <= 57))) return false;
  }
  return true;
}

/** The value of a plain-digit JSON integer (the scanner admits no other numbers), or -1 when not a safe integer. */
function intAt(b: Uint8Array, s: number, e: number): number {
  if (e - s > 16) return -1;
  let n = 0;
  for (let i = s; i < e; i++) n = n * 10 + (b[i]! - ZERO);
  return n <= Number.MAX_SAFE_INTEGER ? n : -1;
}

const inWindow = (ms: number) => ms >= MIN_TIME_MS && ms < MAX_TIME_MS;

/** The times of the rows written so far, for the writer's lag and latency metrics. */
export interface RowTimes {
  /** Per row: exchange time in ms, NaN where the tick has none. */
  exchangeMs: Float64Array;
  /** Per row: receive time in µs. */
  receiveUs: Float64Array;
  /** Rows written. */
  count: number;
  /** The newest row time (exchange time, else receive time), ms; -Infinity before the first row. */
  newestMs: number;
}

/** A growable byte buffer of COPY rows, with each row's times. */
export class CopyRowBuffer {
  buf: Buffer;
  pos = 0;
  readonly times: RowTimes;

  constructor(bytes: number, rows: number) {
    this.buf = Buffer.allocUnsafe(Math.max(bytes, 256));
    this.times = { exchangeMs: new Float64Array(rows), receiveUs: new Float64Array(rows), count: 0, newestMs: -Infinity };
  }

  /** Room for `bytes` more. */
  reserve(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Appends one row rendered as text (the full path). */
  text(row: string): void {
    this.reserve(Buffer.byteLength(row));
    this.pos += this.buf.write(row, this.pos);
  }

  /** Records the times of the row just appended. */
  rowTimes(exchangeMs: number | null, receiveUs: number, timeMs: number): void {
    const t = this.times;
    if (t.count === t.exchangeMs.length) {
      const grow = (a: Float64Array) => {
        const b = new Float64Array(Math.max(16, a.length * 2));
        b.set(a);
        return b;
      };
      t.exchangeMs = grow(t.exchangeMs);
      t.receiveUs = grow(t.receiveUs);
    }
    t.exchangeMs[t.count] = exchangeMs ?? NaN;
    t.receiveUs[t.count] = receiveUs;
    t.count++;
    if (timeMs > t.newestMs) t.newestMs = timeMs;
  }

  /** The rows so far (a view on the buffer). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/**
 * The fast path of one tick family. `row` appends the record's row and returns true, or returns false and appends
 * nothing.
 */
export class TickRowWriter {
  private readonly starts = new Int32Array(KEYS.length);
  private readonly ends = new Int32Array(KEYS.length);
  private readonly kinds = new Uint8Array(KEYS.length);
  private readonly type: Uint8Array;

  constructor(readonly family: TickType) {
    this.type = TYPE_BYTES[family];
  }

  /** Scans a flat JSON object into the slots; false for anything outside the subset encodeRecord writes. */
  private scan(b: Uint8Array): boolean {
    const { starts, ends, kinds } = this;
    kinds.fill(0);
    const n = b.length;
    if (n < 2 || b[0] !== 123 /* { */) return false;
    let i = 1;
    for (;;) {
      // "key":
      if (b[i] !== QUOTE) return false;
      const ks = ++i;
      while (i < n && b[i] !== QUOTE) {
        if (b[i] === BACKSLASH) return false;
        i++;
      }
      const ke = i;
      if (ke === ks || i + 1 >= n || b[i + 1] !== COLON) return false;
      const slot = SLOT_OF[signature(ke - ks, b[ks]!, b[ke - 1]!)]!;
      if (slot < 0 || kinds[slot] !== 0 || !equals(b, ks, ke, KEY_BYTES[slot]!)) return false;
      i += 2;
      // value
      const c = b[i];
      if (c === QUOTE) {
        const vs = ++i;
        while (i < n && b[i] !== QUOTE) {
          if (b[i] === BACKSLASH || b[i]! < 32) return false;
          i++;
        }
        if (i >= n) return false;
        starts[slot] = vs;
        ends[slot] = i++;
        kinds[slot] = STR;
      } else if (c !== undefined && c >= ZERO && c <= 57) {
        const vs = i;
        while (i < n && b[i]! >= ZERO && b[i]! <= 57) i++;
        if (b[vs] === ZERO && i - vs > 1) return false; // not JSON
        starts[slot] = vs;
        ends[slot] = i;
        kinds[slot] = NUM;
      } else if (c === 116 /* t */ && b[i + 1] === 114 && b[i + 2] === 117 && b[i + 3] === 101) {
        kinds[slot] = TRUE;
        i += 4;
      } else if (c === 102 /* f */ && b[i + 1] === 97 && b[i + 2] === 108 && b[i + 3] === 115 && b[i + 4] === 101) {
        kinds[slot] = FALSE;
        i += 5;
      } else if (c === 110 /* n */ && b[i + 1] === 117 && b[i + 2] === 108 && b[i + 3] === 108) {
        kinds[slot] = NULL;
        i += 4;
      } else {
        return false;
      }
      if (b[i] === COMMA) {
        i++;
        continue;
      }
      return b[i] === 125 /* } */ && i === n - 1;
    }
  }

  /** A string field. */
  private str(slot: number): boolean {
    return this.kinds[slot] === STR;
  }

  /** A safe non-negative integer field (isId; with `positive` isTime), else -1. */
  private int(b: Uint8Array, slot: number, positive: boolean): number {
    if (this.kinds[slot] !== NUM) return -1;
    const v = intAt(b, this.starts[slot]!, this.ends[slot]!);
    return positive && v === 0 ? -1 : v;
  }

  private decimal(b: Uint8Array, slot: number, positive: boolean): boolean {
    return this.kinds[slot] === STR && isDecimalAt(b, this.starts[slot]!, this.ends[slot]!, positive);
  }

  /** Appends the record's row, or returns false (nothing appended) when the full path must decide. */
  row(value: Uint8Array, out: CopyRowBuffer): boolean {
    const b = value;
    if (!this.scan(b)) return false;
    const { kinds, starts, ends } = this;
    // Schema version (absent, or exactly 1), type, and the Binance tick fields shared by all three types.
    if (kinds[VERSION] !== 0 && !(kinds[VERSION] === NUM && intAt(b, starts[VERSION]!, ends[VERSION]!) === SCHEMA_VERSION)) return false;
    if (!this.str(TYPE) || !equals(b, starts[TYPE]!, ends[TYPE]!, this.type)) return false;
    if (!this.str(EXCHANGE) || !equals(b, starts[EXCHANGE]!, ends[EXCHANGE]!, BINANCE)) return false;
    if (!this.str(MARKET) || !(equals(b, starts[MARKET]!, ends[MARKET]!, SPOT) || equals(b, starts[MARKET]!, ends[MARKET]!, USDM))) return false;
    if (!this.str(SYMBOL) || !isBinanceSymbolAt(b, starts[SYMBOL]!, ends[SYMBOL]!)) return false;
    const receiveUs = this.int(b, RECEIVE, true);
    if (receiveUs < 0 || !inWindow(Math.floor(receiveUs / 1000))) return false;

    if (this.family === 'bookTicker') return this.bookTicker(b, out, receiveUs);
    // trade and aggTrade
    if (!this.decimal(b, PRICE, true) || !this.decimal(b, QUANTITY, false)) return false;
    const bim = kinds[BUYER_IS_MAKER];
    if (bim !== TRUE && bim !== FALSE) return false;
    if (!this.str(SIDE) || !equals(b, starts[SIDE]!, ends[SIDE]!, bim === TRUE ? SELL : BUY)) return false;
    const exchangeMs = this.int(b, EXCHANGE_TIME, true);
    const eventMs = this.int(b, EVENT_TIME, true);
    if (exchangeMs < 0 || eventMs < 0 || !inWindow(exchangeMs) || !inWindow(eventMs)) return false;
    const trade = this.family === 'trade';
    // tradeId, or aggId, firstTradeId and lastTradeId
    const id = this.int(b, trade ? TRADE_ID : AGG_ID, false);
    const first = trade ? 0 : this.int(b, FIRST_ID, false);
    const last = trade ? 0 : this.int(b, LAST_ID, false);
    if (id < 0 || first < 0 || last < 0 || first > last) return false;

    out.reserve(b.length + TICK_ROW_FIXED_BYTES);
    const o = out.buf;
    let p = putInt16(o, out.pos, trade ? TRADE_FIELDS : AGG_TRADE_FIELDS);
    p = this.head(b, o, p);
    p = timeMsField(o, p, exchangeMs);
    p = int8Field(o, p, id);
    if (!trade) p = int8Field(o, int8Field(o, p, first), last);
    p = numericField(b, starts[PRICE]!, ends[PRICE]!, o, p);
    p = numericField(b, starts[QUANTITY]!, ends[QUANTITY]!, o, p);
    p = boolField(o, p, bim === TRUE);
    p = bytesField(b, starts[SIDE]!, ends[SIDE]!, o, p);
    p = timeMsField(o, p, eventMs);
    out.pos = timeUsField(o, p, receiveUs);
    out.rowTimes(exchangeMs, receiveUs, exchangeMs);
    return true;
  }

  private bookTicker(b: Uint8Array, out: CopyRowBuffer, receiveUs: number): boolean {
    const { kinds, starts, ends } = this;
    const updateId = this.int(b, UPDATE_ID, false);
    if (updateId < 0) return false;
    if (!this.decimal(b, BID_PRICE, true) || !this.decimal(b, ASK_PRICE, true)) return false;
    if (!this.decimal(b, BID_QTY, false) || !this.decimal(b, ASK_QTY, false)) return false;
    const exNull = kinds[EXCHANGE_TIME] === NULL;
    const evNull = kinds[EVENT_TIME] === NULL;
    const exchangeMs = exNull ? 0 : this.int(b, EXCHANGE_TIME, true);
    const eventMs = evNull ? 0 : this.int(b, EVENT_TIME, true);
    if (!exNull && (exchangeMs < 0 || !inWindow(exchangeMs))) return false;
    if (!evNull && (eventMs < 0 || !inWindow(eventMs))) return false;

    out.reserve(b.length + TICK_ROW_FIXED_BYTES);
    const o = out.buf;
    const timeMs = exNull ? Math.floor(receiveUs / 1000) : exchangeMs;
    let p = putInt16(o, out.pos, BOOK_TICKER_FIELDS);
    p = this.head(b, o, p);
    p = timeMsField(o, p, timeMs);
    p = int8Field(o, p, updateId);
    p = numericField(b, starts[BID_PRICE]!, ends[BID_PRICE]!, o, p);
    p = numericField(b, starts[BID_QTY]!, ends[BID_QTY]!, o, p);
    p = numericField(b, starts[ASK_PRICE]!, ends[ASK_PRICE]!, o, p);
    p = numericField(b, starts[ASK_QTY]!, ends[ASK_QTY]!, o, p);
    p = exNull ? nullField(o, p) : timeMsField(o, p, exchangeMs);
    p = evNull ? nullField(o, p) : timeMsField(o, p, eventMs);
    out.pos = timeUsField(o, p, receiveUs);
    out.rowTimes(exNull ? null : exchangeMs, receiveUs, timeMs);
    return true;
  }

  /** exchange, market, symbol (all checked ASCII). */
  private head(b: Uint8Array, o: Buffer, p: number): number {
    const { starts, ends } = this;
    p = bytesField(b, starts[EXCHANGE]!, ends[EXCHANGE]!, o, p);
    p = bytesField(b, starts[MARKET]!, ends[MARKET]!, o, p);
    return bytesField(b, starts[SYMBOL]!, ends[SYMBOL]!, o, p);
  }
}
