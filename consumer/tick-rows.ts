// The tick writers' fast path (pure): a Binance tick record straight from its Kafka bytes into its COPY binary row,
// with no object and no string per record. It takes only what it can prove valid — a flat JSON object as encodeRecord
// writes it (no whitespace, no escapes, integers as plain digits, any field order) whose every field passes its rule in
// TICK_SCHEMA (common/tick-schema.ts), as decodeTick and checkWritable check them — and declines anything else, which
// then takes the full path (JSON.parse + decodeTick: a row, or a dead letter with its reason). The checks and the row's
// columns are tables built from the schema at load; decimals become numerics digit for digit; rows equal
// CopyBinaryEncoder.row's.
import { rowTimeMsOf, SCHEMA_VERSION, type TickType } from '../common/records.ts';
import { compareDecimalsAt, isDecimalAt } from './decimal-text.ts';
import { isAheadOfReceive, isStorableTimeMs, TICK_FIELD_NAMES, TICK_SCHEMA, TICK_TYPES, type FieldKind } from '../common/tick-schema.ts';
import { boolField, bytesField, int8Field, nullField, numericField, putInt16, TICK_ROW_FIXED_BYTES, timeMsField, timeUsField } from './copy-binary.ts';

// Kinds of a scanned value.
const STR = 1;
const NUM = 2;
const TRUE = 3;
const FALSE = 4;
const NULL = 5;

// The fields a Binance tick may have, as slots: the schema's, the type and the schema version. Any other key declines
// the record (the full path ignores or rejects it).
const KEYS: readonly string[] = ['type', 'v', ...TICK_FIELD_NAMES];
const slot = (key: string) => {
  const i = KEYS.indexOf(key);
  if (i < 0) throw new Error(`tick-rows: no slot for ${key}`);
  return i;
};
const TYPE = slot('type');
const VERSION = slot('v');
const RECEIVE = slot('receiveTimeUs');
const EXCHANGE_TIME = slot('exchangeTimeMs');
const BUYER_IS_MAKER = slot('buyerIsMaker');
const SIDE = slot('side');
const FIRST_ID = slot('firstTradeId');
const LAST_ID = slot('lastTradeId');
const EVENT_TIME = slot('eventTimeMs');
const BID = slot('bidPrice');
const ASK = slot('askPrice');

// Field kinds as small integers, for the per-record switches.
const [K_EXCHANGE, K_MARKET, K_SYMBOL, K_SIDE, K_ID, K_TIME, K_TIME_US, K_DECIMAL, K_POSITIVE, K_FLAG, K_ROW_TIME] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] as const;
const KIND: Readonly<Record<FieldKind, number>> = {
  exchange: K_EXCHANGE, market: K_MARKET, symbol: K_SYMBOL, side: K_SIDE, id: K_ID, time: K_TIME, timeUs: K_TIME_US,
  decimal: K_DECIMAL, positiveDecimal: K_POSITIVE, flag: K_FLAG, rowTime: K_ROW_TIME,
};

/** One tick type's schema as flat arrays: per field its slot, kind, nullability and whether it fills a column. */
interface Plan {
  readonly slots: Int8Array;
  readonly kinds: Uint8Array;
  readonly nullable: Uint8Array;
  readonly stored: Uint8Array;
  /** The row's field count. */
  readonly columns: number;
}

function plan(type: TickType): Plan {
  const fields = TICK_SCHEMA[type];
  return {
    slots: Int8Array.from(fields, (f) => (f.kind === 'rowTime' ? -1 : slot(f.name))),
    kinds: Uint8Array.from(fields, (f) => KIND[f.kind]),
    nullable: Uint8Array.from(fields, (f) => (f.nullable ? 1 : 0)),
    stored: Uint8Array.from(fields, (f) => (f.column === null ? 0 : 1)),
    columns: fields.filter((f) => f.column !== null).length,
  };
}
const PLANS = Object.fromEntries(TICK_TYPES.map((t) => [t, plan(t)])) as unknown as Readonly<Record<TickType, Plan>>;

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
const TYPE_BYTES = Object.fromEntries(TICK_TYPES.map((t) => [t, ascii(t)])) as unknown as Readonly<Record<TickType, Uint8Array>>;

const QUOTE = 34;
const COMMA = 44;
const COLON = 58;
const BACKSLASH = 92;
const ZERO = 48;

function equals(b: Uint8Array, s: number, e: number, want: Uint8Array): boolean {
  if (e - s !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (b[s + i] !== want[i]) return false;
  return true;
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

  /** Empty again, keeping its memory (a committed run's buffer reused for the next run). */
  reset(): void {
    this.pos = 0;
    this.times.count = 0;
    this.times.newestMs = -Infinity;
  }
}

/** Row buffers kept for reuse, at most this many per family... */
const SPARE_ROW_BUFFERS = 3;
/** ...and this many bytes together: what an idle writer keeps is bounded, a rare huge run's memory is not kept. */
const SPARE_ROW_BYTES = 6 * 1024 * 1024;

/**
 * The row buffers of committed runs, handed to the next runs. A run's rows live until its transaction commits, long
 * enough for V8 to promote the buffer, so a new one per run left megabytes of dead buffers to wait for a full
 * collection.
 */
export class RowBufferPool {
  private readonly spare: CopyRowBuffer[] = [];

  /** A buffer for about `bytes` of rows and `rows` rows: a spare one large enough, else a new one. */
  take(bytes: number, rows: number): CopyRowBuffer {
    const i = this.spare.findIndex((b) => b.buf.length >= bytes);
    if (i < 0) return new CopyRowBuffer(bytes, rows);
    const b = this.spare.splice(i, 1)[0]!;
    b.reset();
    return b;
  }

  /** Takes back a buffer nothing reads any more (its transaction committed); smaller spares make room for it. */
  give(b: CopyRowBuffer): void {
    if (b.buf.length > SPARE_ROW_BYTES) return;
    this.spare.push(b);
    this.spare.sort((x, y) => y.buf.length - x.buf.length);
    let bytes = 0;
    let keep = 0;
    while (keep < Math.min(this.spare.length, SPARE_ROW_BUFFERS) && bytes + this.spare[keep]!.buf.length <= SPARE_ROW_BYTES) bytes += this.spare[keep++]!.buf.length;
    this.spare.length = keep;
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
  /** The value of each id and time slot checked (NaN: null). */
  private readonly ints = new Float64Array(KEYS.length);
  private readonly type: Uint8Array;
  private readonly plan: Plan;

  constructor(readonly family: TickType) {
    this.type = TYPE_BYTES[family];
    this.plan = PLANS[family];
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

  /** Whether the field in `slot` passes the rule of its kind; ids and times go into `ints`. */
  private check(b: Uint8Array, slot: number, kind: number, nullable: boolean): boolean {
    const { kinds, starts, ends, ints } = this;
    switch (kind) {
      case K_EXCHANGE:
        return this.str(slot) && equals(b, starts[slot]!, ends[slot]!, BINANCE);
      case K_MARKET:
        return this.str(slot) && (equals(b, starts[slot]!, ends[slot]!, SPOT) || equals(b, starts[slot]!, ends[slot]!, USDM));
      case K_SYMBOL:
        return this.str(slot) && isBinanceSymbolAt(b, starts[slot]!, ends[slot]!);
      case K_SIDE:
        return this.str(slot); // its value: a rule across fields (row)
      case K_ID:
        return (ints[slot] = this.int(b, slot, false)) >= 0;
      case K_TIME: {
        if (nullable && kinds[slot] === NULL) {
          ints[slot] = NaN;
          return true;
        }
        const ms = (ints[slot] = this.int(b, slot, true));
        return ms >= 0 && isStorableTimeMs(ms);
      }
      case K_TIME_US: {
        const us = (ints[slot] = this.int(b, slot, true));
        return us >= 0 && isStorableTimeMs(Math.floor(us / 1000));
      }
      case K_DECIMAL:
        return this.decimal(b, slot, false);
      case K_POSITIVE:
        return this.decimal(b, slot, true);
      case K_FLAG:
        return kinds[slot] === TRUE || kinds[slot] === FALSE;
      default:
        return true; // the row time: no field of its own
    }
  }

  /** Writes the (checked) field in `slot` as its column. */
  private put(b: Uint8Array, o: Buffer, p: number, slot: number, kind: number, rowTimeMs: number): number {
    const { kinds, starts, ends, ints } = this;
    switch (kind) {
      case K_ID:
        return int8Field(o, p, ints[slot]!);
      case K_TIME: {
        const ms = ints[slot]!;
        return ms === ms ? timeMsField(o, p, ms) : nullField(o, p);
      }
      case K_TIME_US:
        return timeUsField(o, p, ints[slot]!);
      case K_DECIMAL:
      case K_POSITIVE:
        return numericField(b, starts[slot]!, ends[slot]!, o, p);
      case K_FLAG:
        return boolField(o, p, kinds[slot] === TRUE);
      case K_ROW_TIME:
        return timeMsField(o, p, rowTimeMs);
      default:
        return bytesField(b, starts[slot]!, ends[slot]!, o, p); // exchange, market, symbol, side: checked ASCII
    }
  }

  /** Appends the record's row, or returns false (nothing appended) when the full path must decide. */
  row(value: Uint8Array, out: CopyRowBuffer): boolean {
    const b = value;
    if (!this.scan(b)) return false;
    const { kinds, starts, ends, ints, plan } = this;
    // Schema version (absent, or exactly 1) and type.
    if (kinds[VERSION] !== 0 && !(kinds[VERSION] === NUM && intAt(b, starts[VERSION]!, ends[VERSION]!) === SCHEMA_VERSION)) return false;
    if (!this.str(TYPE) || !equals(b, starts[TYPE]!, ends[TYPE]!, this.type)) return false;
    const n = plan.kinds.length;
    for (let i = 0; i < n; i++) if (!this.check(b, plan.slots[i]!, plan.kinds[i]!, plan.nullable[i] === 1)) return false;
    // The rules across fields: side = sideOf(buyerIsMaker); an aggTrade's firstTradeId <= lastTradeId.
    if (this.family !== 'bookTicker' && !equals(b, starts[SIDE]!, ends[SIDE]!, kinds[BUYER_IS_MAKER] === TRUE ? SELL : BUY)) return false;
    if (this.family === 'aggTrade' && ints[FIRST_ID]! > ints[LAST_ID]!) return false;

    const exchangeMs = ints[EXCHANGE_TIME]!;
    const receiveUs = ints[RECEIVE]!;
    // The rules between fields that need the values (tick-schema.ts crossFieldProblem): a time ahead of the receive
    // time or a crossed book is declined here, and the full decoder dead-letters it with its reason.
    const eventMs = ints[EVENT_TIME]!;
    if ((exchangeMs === exchangeMs && isAheadOfReceive(exchangeMs, receiveUs)) || (eventMs === eventMs && isAheadOfReceive(eventMs, receiveUs))) return false;
    if (this.family === 'bookTicker' && compareDecimalsAt(b, starts[BID]!, ends[BID]!, starts[ASK]!, ends[ASK]!) > 0) return false;
    const exchangeOrNull = exchangeMs === exchangeMs ? exchangeMs : null;
    const timeMs = rowTimeMsOf(exchangeOrNull, receiveUs);
    out.reserve(b.length + TICK_ROW_FIXED_BYTES);
    const o = out.buf;
    let p = putInt16(o, out.pos, plan.columns);
    for (let i = 0; i < n; i++) if (plan.stored[i] === 1) p = this.put(b, o, p, plan.slots[i]!, plan.kinds[i]!, timeMs);
    out.pos = p;
    out.rowTimes(exchangeOrNull, receiveUs, timeMs);
    return true;
  }
}
