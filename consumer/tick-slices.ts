// Per-second partial aggregates ("slices") of the tick rows the writer has just COPYed (pure), read straight from the
// COPY binary rows, so the database can merge them into 10-second and 1-minute bars instead of reading every tick again.
// Every decimal is exact: safe-integer Numbers at each value's smallest scale on the fast path, BigInt beyond; only the
// log returns are doubles. Each value equals what the SQL rebuilding a slice from the raw ticks computes
// (rebuild_trade_slices / rebuild_quote_slices in sql/migrations/0023_tick_slices.sql, which merges the slices).
import { BOOK_TICKER_FIELDS, TRADE_FIELDS } from './copy-binary.ts';

/** Slice width: 1 second, in µs. */
export const SLICE_US = 1_000_000;

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
  /** Over the tradeCount - 1 consecutive pairs inside the slice. */
  readonly sumLogReturn: number;
  readonly sumLogReturnSq: number;
  /** Null when tradeCount = 1. */
  readonly maxMove: string | null;
  readonly maxMoveBps: string | null;
}

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
  readonly sumSpread: string;
  readonly minSpread: string;
  readonly maxSpread: string;
  readonly lastSpread: string;
  readonly sumSpreadBps: string;
  readonly minSpreadBps: string;
  readonly maxSpreadBps: string;
  readonly lastSpreadBps: string;
  readonly sumMid: string;
  readonly lastMid: string;
  readonly sumBidNotional: string;
  readonly sumAskNotional: string;
  readonly lastBidNotional: string;
  readonly lastAskNotional: string;
  /** Σ over consecutive quotes inside the slice of (t_{i+1} - t_i) in µs. */
  readonly twUs: number;
  /** Σ spread_i * (t_{i+1} - t_i) (µs), exact. */
  readonly twSpreadUs: string;
}

/** µs between the Unix epoch and PostgreSQL's (2000-01-01 UTC). */
const PG_EPOCH_US = 946_684_800_000_000;
const TWO_32 = 4_294_967_296;
const MAX = Number.MAX_SAFE_INTEGER;
// Operands of one exact division step stay at most 2^52, so quotient * divisor (off by at most one) stays below 2^53.
const LIMIT = 2 ** 52;
const NUMERIC_NEG = 0x4000;
const THIRD = 1 / 3;
/** Scale of the bps values (decimal_div(..., 12)). */
const BPS_SCALE = 12;
// Parsed from text, so every power up to 10^22 is exact.
const POW10: readonly number[] = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));
const BIG10: bigint[] = Array.from({ length: 40 }, (_, k) => 10n ** BigInt(k));
const pow10n = (k: number): bigint => BIG10[k] ?? 10n ** BigInt(k);

const u16 = (b: Uint8Array, p: number) => (b[p]! << 8) | b[p + 1]!;
const i16 = (b: Uint8Array, p: number) => ((b[p]! << 24) >> 16) | b[p + 1]!;
const i32 = (b: Uint8Array, p: number) => (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
const int8Big = (b: Uint8Array, p: number) => (BigInt(i32(b, p)) << 32n) + BigInt(i32(b, p + 4) >>> 0);

// ---------------------------------------------------------------------------------------------------------------------
// Exact decimal helpers. A fast-path value is (u, s, d): unscaled safe integer u at its smallest scale s (u has no
// trailing decimal zero), and the display scale d PostgreSQL gives it. Equal values have equal (u, s).

/** Sign of (u1 at scale s1) - (u2 at scale s2). */
function cmp(u1: number, s1: number, u2: number, s2: number): number {
  if (s1 === s2) return u1 - u2;
  if (s1 < s2) {
    const x = u1 * POW10[s2 - s1]!;
    return Math.abs(x) <= MAX ? x - u2 : cmpBig(BigInt(u1) * pow10n(s2 - s1), BigInt(u2));
  }
  const y = u2 * POW10[s1 - s2]!;
  return Math.abs(y) <= MAX ? u1 - y : cmpBig(BigInt(u1), BigInt(u2) * pow10n(s1 - s2));
}

const cmpBig = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * floor(r / d) for safe integers 0 <= r and 0 < d: the quotient from doubles is off by at most one, and the remainder
 * (exact in safe integers) says which way.
 */
function quotient(r: number, d: number): number {
  const q = Math.floor(r / d);
  const m = r - q * d;
  return m < 0 ? q - 1 : m >= d ? q + 1 : q;
}

/**
 * decimal_div in safe integers: round half away from zero of a * 10^e / d, for a safe integer a and 0 < d. NaN when
 * a step would leave the safe range (the caller then takes the BigInt path).
 */
function divRound(a: number, e: number, d: number): number {
  let r = a < 0 ? -a : a;
  if (e < 0) {
    d *= POW10[-e] ?? NaN;
    e = 0;
  }
  if (!(r <= LIMIT && d <= LIMIT && d > 0)) return NaN;
  let q = quotient(r, d);
  r -= q * d;
  // The remaining decimals in chunks of c digits: r < d, so r * 10^c <= d * 10^c <= LIMIT keeps each step exact.
  let c = 0;
  while (c < 15 && d * POW10[c + 1]! <= LIMIT) c++;
  while (e > 0 && r !== 0) {
    const k = e < c ? e : c;
    if (k === 0) return NaN;
    r *= POW10[k]!;
    const g = quotient(r, d);
    r -= g * d;
    q = q * POW10[k]! + g;
    e -= k;
    if (q > LIMIT) return NaN;
  }
  if (e > 0) q *= POW10[e] ?? NaN; // r = 0: the rest of the decimals are zeros
  if (2 * r >= d) q++;
  if (!(q <= MAX)) return NaN;
  return a < 0 ? -q : q;
}

/** decimal_div in BigInt: round half away from zero of n / d. */
function divRoundBig(n: bigint, d: bigint): bigint {
  if (d === 0n) throw new Error('tick-slices: division by a zero price');
  const an = n < 0n ? -n : n;
  const ad = d < 0n ? -d : d;
  const q = (2n * an + ad) / (2n * ad);
  return n < 0n !== d < 0n ? -q : q;
}

/** ln(p / prev) from the exact relative move x = (p - prev) / prev, as the bar SQL computes it. */
const logReturn = (x: number, p: number, prev: number) =>
  x < 1e-3 && x > -1e-3 ? x * (1 - x * (0.5 - x * (THIRD - x * (0.25 - x * (0.2 - x / 6))))) : Math.log(p / prev);

/** Plain decimal text of the digits of |value| * 10^s, shown with ds >= s decimals. */
function digitsText(neg: boolean, digits: string, s: number, ds: number): string {
  if (ds > s) digits += '0'.repeat(ds - s);
  else ds = s;
  const sign = neg ? '-' : '';
  if (ds === 0) return sign + digits;
  if (digits.length <= ds) digits = '0'.repeat(ds - digits.length + 1) + digits;
  const cut = digits.length - ds;
  return `${sign}${digits.slice(0, cut)}.${digits.slice(cut)}`;
}

const numText = (u: number, s: number, ds: number) => digitsText(u < 0, String(u < 0 ? -u : u), s, ds);
const bigText = (v: bigint, s: number, ds: number) => digitsText(v < 0n, String(v < 0n ? -v : v), s, ds);

/** An exact running sum: a Number while it stays a safe integer, the overflow carried in a BigInt. */
class Sum {
  /** The Number part and the BigInt part, both at the working scale w (the largest scale added so far). */
  n = 0;
  big = 0n;
  w = 0;
  /** Display scale: the largest of the terms'. */
  ds = 0;

  add(u: number, s: number, ds: number): void {
    if (ds > this.ds) this.ds = ds;
    if (s !== this.w) {
      if (s > this.w) this.rescale(s);
      else {
        const x = u * POW10[this.w - s]!;
        if (!(Math.abs(x) <= MAX)) {
          this.big += BigInt(u) * pow10n(this.w - s);
          return;
        }
        u = x;
      }
    }
    const t = this.n + u;
    if (Math.abs(t) <= MAX) this.n = t;
    else {
      this.big += BigInt(this.n);
      this.n = u;
    }
  }

  /** Adds v at scale s. */
  addBig(v: bigint, s: number, ds: number): void {
    if (ds > this.ds) this.ds = ds;
    if (s > this.w) this.rescale(s);
    this.big += v * pow10n(this.w - s);
  }

  /** Adds u1 * u2 at scale s. */
  addProduct(u1: number, u2: number, s: number, ds: number): void {
    const x = u1 * u2;
    if (Math.abs(x) <= MAX) this.add(x, s, ds);
    else this.addBig(BigInt(u1) * BigInt(u2), s, ds);
  }

  /** The sum at the working scale. */
  total(): bigint {
    return this.big + BigInt(this.n);
  }

  text(): string {
    return this.big === 0n ? numText(this.n, this.w, this.ds) : bigText(this.total(), this.w, this.ds);
  }

  private rescale(s: number): void {
    const k = s - this.w;
    const x = this.n * (POW10[k] ?? NaN);
    if (Math.abs(x) <= MAX) this.n = x;
    else {
      this.big += BigInt(this.n);
      this.n = 0;
    }
    if (this.big !== 0n) this.big *= pow10n(k);
    this.w = s;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Rows, streams and slices.

/** A numeric field of the row just read: where its value starts, and the fast path's (u, s, d) of it. */
class Numeric {
  at = 0;
  u = 0;
  s = 0;
  d = 0;
}

/**
 * Reads the numeric field whose value is b[p, p + len) (numeric_send's layout) at its smallest scale into n.u, n.s,
 * n.d. False when that is not a safe integer (or has digits below its display scale, which numeric_recv cuts off):
 * the BigInt path reads it again.
 */
function readNumeric(b: Uint8Array, p: number, len: number, n: Numeric): boolean {
  const ndigits = u16(b, p);
  const sign = u16(b, p + 4);
  if (len !== 8 + 2 * ndigits) throw new Error(`tick-slices: numeric field of ${len} bytes with ${ndigits} digits at byte ${p}`);
  if (sign !== 0 && sign !== NUMERIC_NEG) throw new Error(`tick-slices: numeric NaN or infinity at byte ${p}`);
  n.d = u16(b, p + 6);
  if (ndigits === 0) {
    n.u = 0;
    n.s = 0;
    return true;
  }
  // All digits but the last, then the last without its trailing decimal zeros (int32 arithmetic, no double modulo).
  const lastAt = p + 6 + 2 * ndigits;
  let d = 0;
  for (let q = p + 8; q < lastAt; q += 2) d = d * 10_000 + u16(b, q);
  let e = 4 * (i16(b, p + 2) - ndigits + 1); // value = (d * 10000 + g) * 10^e
  const g = u16(b, lastAt);
  if (g !== 0) {
    const zeros = g % 10 !== 0 ? 0 : g % 100 !== 0 ? 1 : g % 1000 !== 0 ? 2 : 3;
    d = d * POW10[4 - zeros]! + g / POW10[zeros]!;
    e += zeros;
  } else {
    // A trailing zero digit (PostgreSQL never stores one, but the format allows it).
    d *= 10_000;
    if (d === 0) {
      n.u = 0;
      n.s = 0;
      return true;
    }
    if (d > MAX) return false;
    while (d % 10 === 0) {
      d /= 10;
      e++;
    }
  }
  if (d > MAX) return false;
  if (e >= 0) {
    d *= POW10[e] ?? NaN;
    if (!(d <= MAX)) return false;
    n.s = 0;
  } else {
    n.s = -e;
    if (n.s > n.d) return false;
  }
  n.u = sign === 0 ? d : -d;
  return true;
}

/** A numeric field read exactly at its display scale (digits below it cut off, as numeric_recv does). */
function readNumericBig(b: Uint8Array, p: number): { v: bigint; s: number } {
  const ndigits = u16(b, p);
  const ds = u16(b, p + 6);
  let d = 0n;
  for (let q = p + 8, end = q + 2 * ndigits; q < end; q += 2) d = d * 10_000n + BigInt(u16(b, q));
  const e = 4 * (i16(b, p + 2) - ndigits + 1) + ds;
  const v = e >= 0 ? d * pow10n(e) : d / pow10n(-e);
  return { v: u16(b, p + 4) === NUMERIC_NEG ? -v : v, s: ds };
}

/** A safe int8 at b[p]; NaN beyond 2^53. */
function readInt8(b: Uint8Array, p: number): number {
  const hi = i32(b, p);
  return hi >= -0x200000 && hi < 0x200000 ? hi * TWO_32 + (i32(b, p + 4) >>> 0) : NaN;
}

function fieldLength(b: Uint8Array, p: number, want: number, what: string): number {
  const len = i32(b, p);
  if (len !== want && !(want < 0 && len >= 0)) throw new Error(`tick-slices: ${what} field of length ${len} at byte ${p}`);
  return len;
}

/** Skips the text fields exchange, market, symbol that start every row at p; returns where the time field starts. */
function skipKey(b: Uint8Array, p: number): number {
  for (let k = 0; k < 3; k++) p += 4 + fieldLength(b, p, -1, 'text');
  return p;
}

/** Skips `n` fields (NULL or not) from p. */
function skipFields(b: Uint8Array, p: number, n: number): number {
  for (let k = 0; k < n; k++) {
    const len = i32(b, p);
    p += len > 0 ? 4 + len : 4;
  }
  return p;
}

/** The row's time, µs since the Unix epoch (a timestamptz field at p). */
function readTime(b: Uint8Array, p: number): number {
  fieldLength(b, p, 8, 'time');
  const t = readInt8(b, p + 4) + PG_EPOCH_US;
  if (!(Math.abs(t) <= MAX)) throw new Error(`tick-slices: time out of range at byte ${p}`);
  return t;
}

function sameBytes(b: Uint8Array, s: number, e: number, key: Uint8Array): boolean {
  if (e - s !== key.length) return false;
  for (let i = key.length - 1; i >= 0; i--) if (b[s + i] !== key[i]) return false;
  return true;
}

const utf8 = new TextDecoder();

/** One (exchange, market, symbol): its key bytes as in the rows (three text fields), decoded once. */
class Stream<S> {
  readonly exchange: string;
  readonly market: string;
  readonly symbol: string;
  /** The slice of the last row of this stream, and every slice by start. */
  cur: S | null = null;
  readonly slices = new Map<number, S>();

  constructor(readonly key: Uint8Array) {
    const text: string[] = [];
    for (let p = 0; p < key.length; ) {
      const len = i32(key, p);
      text.push(utf8.decode(key.subarray(p + 4, p + 4 + len)));
      p += 4 + len;
    }
    [this.exchange = '', this.market = '', this.symbol = ''] = text;
  }
}

/** What every slice under construction holds, whatever its table: its place, its count, its first and last tick. */
class TickState<S> {
  /** Out of (time, id) order, or beyond safe integers: summed again from its rows (`rows`, offsets) after the pass. */
  redo = false;
  readonly rows: number[] = [];
  count = 0;
  firstUs = 0;
  firstId = 0;
  lastUs = 0;
  lastId = 0;

  constructor(
    readonly stream: Stream<S>,
    readonly sliceUs: number,
  ) {}

  /** Whether the fast path can take a tick at (t, id) next: it sums ticks in (time, id) order only. */
  takes(t: number, id: number): boolean {
    return this.count === 0 || !(t < this.lastUs || (t === this.lastUs && id < this.lastId));
  }

  /** Counts the tick at (t, id) that the fast path took. */
  took(t: number, id: number): void {
    if (this.count === 0) {
      this.firstUs = t;
      this.firstId = id;
    }
    this.count++;
    this.lastUs = t;
    this.lastId = id;
  }
}

/** The slices of one batch, found by the key bytes and time of a row. */
class Slices<S extends TickState<S>> {
  readonly all: S[] = [];
  private last: Stream<S> | null = null;
  private readonly streams = new Map<number, Stream<S>[]>();

  constructor(private readonly make: (stream: Stream<S>, sliceUs: number) => S) {}

  /** The slice of the row whose key is b[s, e) and whose time is timeUs. */
  at(b: Uint8Array, s: number, e: number, timeUs: number): S {
    let st = this.last;
    if (st === null || !sameBytes(b, s, e, st.key)) st = this.last = this.stream(b, s, e);
    const cur = st.cur;
    if (cur !== null && timeUs >= cur.sliceUs && timeUs < cur.sliceUs + SLICE_US) return cur;
    let r = timeUs % SLICE_US;
    if (r < 0) r += SLICE_US;
    const sliceUs = timeUs - r;
    let slice = st.slices.get(sliceUs);
    if (slice === undefined) {
      slice = this.make(st, sliceUs);
      st.slices.set(sliceUs, slice);
      this.all.push(slice);
    }
    st.cur = slice;
    return slice;
  }

  private stream(b: Uint8Array, s: number, e: number): Stream<S> {
    let h = 0x811c9dc5;
    for (let i = s; i < e; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
    let list = this.streams.get(h);
    if (list === undefined) this.streams.set(h, (list = []));
    for (const st of list) if (sameBytes(b, s, e, st.key)) return st;
    const st = new Stream<S>(b.slice(s, e));
    list.push(st);
    return st;
  }
}

/** What every row reader fills in; each table's row adds its own fields. */
class TickRow {
  keyEnd = 0;
  end = 0;
  timeUs = 0;
  idAt = 0;
  /** NaN beyond 2^53. */
  id = 0;
  /** The id and every numeric are safe integers (else the row's Number fields are meaningless). */
  safe = true;
}

/**
 * Reads what starts every row at o (field count, key, time, id) into r, r.safe saying whether the id is a safe
 * integer; returns where the table's own fields start.
 */
function readTick(b: Uint8Array, o: number, r: TickRow, table: string, fields: number, idName: string): number {
  if (i16(b, o) !== fields) throw new Error(`tick-slices: ${table} row of ${i16(b, o)} fields at byte ${o}`);
  let p = skipKey(b, o + 2);
  r.keyEnd = p;
  r.timeUs = readTime(b, p);
  p += 12;
  fieldLength(b, p, 8, idName);
  r.idAt = p + 4;
  r.id = readInt8(b, p + 4);
  r.safe = r.id === r.id;
  return p + 12;
}

/** Reads the numeric field at p into n, clearing r.safe when it needs BigInt; returns where the next field starts. */
function readNumericField(b: Uint8Array, p: number, r: TickRow, n: Numeric, what: string): number {
  const len = fieldLength(b, p, -1, what);
  n.at = p + 4;
  if (!readNumeric(b, p + 4, len, n)) r.safe = false;
  return p + 4 + len;
}

/** A row of a slice to redo: its offset, time and exact id. */
interface RowAt {
  readonly o: number;
  readonly t: number;
  readonly id: bigint;
}

/** One table's part of the passes below: its row, reader, slice state, adder, and fast and BigInt finishers. */
interface Table<R extends TickRow, S extends TickState<S>, O> {
  readonly row: () => R;
  /** Reads the row at o into r. */
  readonly read: (b: Uint8Array, o: number, r: R) => void;
  readonly state: (stream: Stream<S>, sliceUs: number) => S;
  /** Adds the row in r to its slice; false when it is out of order or needs BigInt (the slice is then redone). */
  readonly add: (st: S, r: R) => boolean;
  readonly slice: (st: S) => O;
  /** The slice from its rows in (time, id) order, every value at its display scale in BigInt. */
  readonly big: (b: Uint8Array, st: S, rows: readonly RowAt[], r: R) => O;
}

/** The slices of a batch of one table's rows: one fast pass over them all, then the slices it could not take redone. */
function summarize<R extends TickRow, S extends TickState<S>, O>(rows: Uint8Array, table: Table<R, S, O>): O[] {
  const { read, add } = table;
  const slices = new Slices<S>(table.state);
  const r = table.row();
  let redo = false;
  for (let o = 0; o < rows.length; o = r.end) {
    read(rows, o, r);
    const st = slices.at(rows, o + 2, r.keyEnd, r.timeUs);
    if (st.redo) continue;
    if (!r.safe || !add(st, r)) redo = st.redo = true;
  }
  if (redo) {
    for (let o = 0; o < rows.length; o = r.end) {
      read(rows, o, r);
      const st = slices.at(rows, o + 2, r.keyEnd, r.timeUs);
      if (st.redo) st.rows.push(o);
    }
  }
  return slices.all.map((st) => (st.redo ? redoSlice(rows, st, r, table) : table.slice(st)));
}

/** A slice whose rows came out of order or need BigInt: sorted, then the fast path again, else all in BigInt. */
function redoSlice<R extends TickRow, S extends TickState<S>, O>(b: Uint8Array, st: S, r: R, table: Table<R, S, O>): O {
  let safe = true;
  const rows: RowAt[] = st.rows.map((o) => {
    table.read(b, o, r);
    safe &&= r.safe;
    return { o, t: r.timeUs, id: int8Big(b, r.idAt) };
  });
  // Ids compared as BigInt: they may be beyond 2^53.
  rows.sort((x, y) => x.t - y.t || cmpBig(x.id, y.id));
  if (safe) {
    const again = table.state(st.stream, st.sliceUs);
    let ok = true;
    for (const { o } of rows) {
      table.read(b, o, r);
      if (!(ok = table.add(again, r))) break;
    }
    if (ok) return table.slice(again);
  }
  return table.big(b, st, rows, r);
}

// ---------------------------------------------------------------------------------------------------------------------
// Trades.

/** The trade row just read by readTrade. */
class TradeRow extends TickRow {
  readonly price = new Numeric();
  readonly qty = new Numeric();
  maker = false;
}

/** Reads the `trades` row at o (COLUMNS.trades order) into r. */
function readTrade(b: Uint8Array, o: number, r: TradeRow): void {
  let p = readTick(b, o, r, 'trades', TRADE_FIELDS, 'trade_id');
  p = readNumericField(b, p, r, r.price, 'price');
  p = readNumericField(b, p, r, r.qty, 'quantity');
  fieldLength(b, p, 1, 'buyer_is_maker');
  r.maker = b[p + 4] !== 0;
  r.end = skipFields(b, p + 5, TRADE_FIELDS - 8);
}

/** One trade slice under construction (fast path). */
class TradeState extends TickState<TradeState> {
  firstU = 0;
  firstS = 0;
  firstD = 0;
  lastU = 0;
  lastS = 0;
  lastD = 0;
  highU = 0;
  highS = 0;
  highD = 0;
  lowU = 0;
  lowS = 0;
  lowD = 0;
  readonly volume = new Sum();
  readonly quote = new Sum();
  readonly takerVolume = new Sum();
  readonly takerQuote = new Sum();
  readonly sumPrice = new Sum();
  readonly sumPriceSq = new Sum();
  lr = 0;
  lr2 = 0;
  // Moves are never negative, so 0 is the neutral start of their max.
  moveU = 0;
  moveS = 0;
  moveD = 0;
  bps = 0;
}

/** Adds the trade in r to its slice; false when it is out of order or needs BigInt (the slice is then redone). */
function addTrade(st: TradeState, r: TradeRow): boolean {
  const t = r.timeUs;
  const id = r.id;
  const { u: pU, s: pS, d: pD } = r.price;
  if (!st.takes(t, id)) return false;
  if (st.count === 0) {
    st.firstU = st.highU = st.lowU = pU;
    st.firstS = st.highS = st.lowS = pS;
    st.firstD = st.highD = st.lowD = pD;
  } else {
    const lU = st.lastU;
    const lS = st.lastS;
    const moveD = pD > st.lastD ? pD : st.lastD;
    if (moveD > st.moveD) st.moveD = moveD;
    // An unchanged price (most trades): return 0, move 0, bps 0, high and low as they are.
    if (pU !== lU || pS !== lS) {
      let a = lU;
      let c = pU;
      let s = lS;
      if (pS > lS) {
        a = lU * POW10[pS - lS]!;
        s = pS;
      } else if (pS < lS) c = pU * POW10[lS - pS]!;
      if (!(a > 0 && a <= MAX && c > 0 && c <= MAX)) return false;
      const diff = c - a;
      const lr = logReturn(diff / a, pU / POW10[pS]!, lU / POW10[lS]!);
      st.lr += lr;
      st.lr2 += lr * lr;
      const move = diff < 0 ? -diff : diff;
      // decimal_div(move * 10000, prev, 12) = move * 10^(16 + lS - s) / lU, rounded
      const bps = divRound(move, 16 + lS - s, lU);
      if (bps !== bps) return false;
      if (bps > st.bps) st.bps = bps;
      if (cmp(move, s, st.moveU, st.moveS) > 0) {
        st.moveU = move;
        st.moveS = s;
      }
      if (cmp(pU, pS, st.highU, st.highS) > 0) {
        st.highU = pU;
        st.highS = pS;
        st.highD = pD;
      } else if (cmp(pU, pS, st.lowU, st.lowS) < 0) {
        st.lowU = pU;
        st.lowS = pS;
        st.lowD = pD;
      }
    }
  }
  st.took(t, id);
  st.lastU = pU;
  st.lastS = pS;
  st.lastD = pD;
  const { u: qU, s: qS, d: qD } = r.qty;
  st.volume.add(qU, qS, qD);
  st.quote.addProduct(pU, qU, pS + qS, pD + qD);
  if (!r.maker) {
    st.takerVolume.add(qU, qS, qD);
    st.takerQuote.addProduct(pU, qU, pS + qS, pD + qD);
  }
  st.sumPrice.add(pU, pS, pD);
  st.sumPriceSq.addProduct(pU, pU, 2 * pS, 2 * pD);
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
    firstId: String(st.firstId),
    firstPrice: numText(st.firstU, st.firstS, st.firstD),
    lastUs: st.lastUs,
    lastId: String(st.lastId),
    lastPrice: numText(st.lastU, st.lastS, st.lastD),
    tradeCount: count,
    high: numText(st.highU, st.highS, st.highD),
    low: numText(st.lowU, st.lowS, st.lowD),
    volume: st.volume.text(),
    quoteVolume: st.quote.text(),
    takerBuyVolume: st.takerVolume.text(),
    takerBuyQuoteVolume: st.takerQuote.text(),
    sumPrice: st.sumPrice.text(),
    sumPriceSq: st.sumPriceSq.text(),
    sumLogReturn: st.lr,
    sumLogReturnSq: st.lr2,
    maxMove: count > 1 ? numText(st.moveU, st.moveS, st.moveD) : null,
    maxMoveBps: count > 1 ? numText(st.bps, BPS_SCALE, BPS_SCALE) : null,
  };
}

interface Dec {
  readonly v: bigint;
  readonly s: number;
}
const at = (x: Dec, s: number) => x.v * pow10n(s - x.s);
const cmpDec = (x: Dec, y: Dec) => (x.s === y.s ? cmpBig(x.v, y.v) : cmpBig(at(x, Math.max(x.s, y.s)), at(y, Math.max(x.s, y.s))));
const decText = (x: Dec) => bigText(x.v, x.s, x.s);
/** The double nearest a decimal (closely enough for a log return). */
const decDouble = (x: Dec) => Number(x.v) / 10 ** x.s;

/** The BigInt path of one trade slice: every value at its display scale. */
function bigTrades(b: Uint8Array, st: TradeState, rows: readonly RowAt[], r: TradeRow): TradeSlice {
  const volume = new Sum();
  const quote = new Sum();
  const takerVolume = new Sum();
  const takerQuote = new Sum();
  const sumPrice = new Sum();
  const sumPriceSq = new Sum();
  let first: Dec | undefined;
  let prev: Dec | undefined;
  let high: Dec | undefined;
  let low: Dec | undefined;
  let move: Dec | undefined;
  let bps = 0n;
  let lr = 0;
  let lr2 = 0;
  for (const { o } of rows) {
    readTrade(b, o, r);
    const p = readNumericBig(b, r.price.at);
    const q = readNumericBig(b, r.qty.at);
    first ??= p;
    if (high === undefined || cmpDec(p, high) > 0) high = p;
    if (low === undefined || cmpDec(p, low) < 0) low = p;
    volume.addBig(q.v, q.s, q.s);
    quote.addBig(p.v * q.v, p.s + q.s, p.s + q.s);
    if (!r.maker) {
      takerVolume.addBig(q.v, q.s, q.s);
      takerQuote.addBig(p.v * q.v, p.s + q.s, p.s + q.s);
    }
    sumPrice.addBig(p.v, p.s, p.s);
    sumPriceSq.addBig(p.v * p.v, 2 * p.s, 2 * p.s);
    if (prev !== undefined) {
      const s = Math.max(p.s, prev.s);
      const diff = at(p, s) - at(prev, s);
      const m = { v: diff < 0n ? -diff : diff, s };
      if (move === undefined || cmpDec(m, move) > 0) move = m;
      if (diff !== 0n) {
        const x = logReturn(Number(diff) / Number(at(prev, s)), decDouble(p), decDouble(prev));
        lr += x;
        lr2 += x * x;
        const mb = divRoundBig(m.v * pow10n(16 + prev.s), prev.v * pow10n(s));
        if (mb > bps) bps = mb;
      }
    }
    prev = p;
  }
  const firstRow = rows[0]!;
  const lastRow = rows[rows.length - 1]!;
  return {
    exchange: st.stream.exchange,
    market: st.stream.market,
    symbol: st.stream.symbol,
    sliceUs: st.sliceUs,
    firstUs: firstRow.t,
    firstId: String(firstRow.id),
    firstPrice: decText(first!),
    lastUs: lastRow.t,
    lastId: String(lastRow.id),
    lastPrice: decText(prev!),
    tradeCount: rows.length,
    high: decText(high!),
    low: decText(low!),
    volume: volume.text(),
    quoteVolume: quote.text(),
    takerBuyVolume: takerVolume.text(),
    takerBuyQuoteVolume: takerQuote.text(),
    sumPrice: sumPrice.text(),
    sumPriceSq: sumPriceSq.text(),
    sumLogReturn: lr,
    sumLogReturnSq: lr2,
    maxMove: move === undefined ? null : decText(move),
    maxMoveBps: move === undefined ? null : bigText(bps, BPS_SCALE, BPS_SCALE),
  };
}

const TRADES: Table<TradeRow, TradeState, TradeSlice> = {
  row: () => new TradeRow(),
  read: readTrade,
  state: (stream, sliceUs) => new TradeState(stream, sliceUs),
  add: addTrade,
  slice: tradeSlice,
  big: bigTrades,
};

/** Rows: concatenated COPY BINARY tuples of the `trades` table (COLUMNS.trades order), no header/trailer. */
export function summarizeTrades(rows: Uint8Array): TradeSlice[] {
  return summarize(rows, TRADES);
}

// ---------------------------------------------------------------------------------------------------------------------
// Book tickers.

/** The book ticker row just read by readBookTicker. */
class QuoteRow extends TickRow {
  readonly bid = new Numeric();
  readonly bidQty = new Numeric();
  readonly ask = new Numeric();
  readonly askQty = new Numeric();
}

/** Reads the `book_tickers` row at o (COLUMNS.book_tickers order) into r. */
function readBookTicker(b: Uint8Array, o: number, r: QuoteRow): void {
  let p = readTick(b, o, r, 'book_tickers', BOOK_TICKER_FIELDS, 'update_id');
  p = readNumericField(b, p, r, r.bid, 'bid_price');
  p = readNumericField(b, p, r, r.bidQty, 'bid_qty');
  p = readNumericField(b, p, r, r.ask, 'ask_price');
  p = readNumericField(b, p, r, r.askQty, 'ask_qty');
  r.end = skipFields(b, p, BOOK_TICKER_FIELDS - 9);
}

/** One quote slice under construction (fast path). */
class QuoteState extends TickState<QuoteState> {
  // The last quote, and what its prices give (reused while they stay): spread = ask - bid and mid2 = ask + bid at
  // scale s (display scale d), spread bps at scale 12.
  aU = 0;
  aS = 0;
  bU = 0;
  bS = 0;
  spU = 0;
  m2U = 0;
  s = 0;
  d = 0;
  bps = 0;
  bnU = 0;
  bnS = 0;
  bnD = 0;
  bqU = 0;
  anS = 0;
  anD = 0;
  aqU = 0;
  minSpU = 0;
  minSpS = 0;
  minSpD = 0;
  maxSpU = 0;
  maxSpS = 0;
  maxSpD = 0;
  minBps = 0;
  maxBps = 0;
  readonly sumSpread = new Sum();
  readonly sumBps = new Sum();
  readonly sumMid2 = new Sum();
  readonly bidNotional = new Sum();
  readonly askNotional = new Sum();
  readonly twSpread = new Sum();
}

/** Adds the book ticker in r to its slice; false when it is out of order or needs BigInt (the slice is then redone). */
function addQuote(st: QuoteState, r: QuoteRow): boolean {
  const t = r.timeUs;
  const id = r.id;
  const { bid, bidQty, ask, askQty } = r;
  if (!st.takes(t, id)) return false;
  if (st.count > 0) {
    // The previous quote's spread was in force until this one.
    st.twSpread.addProduct(st.spU, t - st.lastUs, st.s, st.d);
  }
  const d = ask.d > bid.d ? ask.d : bid.d;
  if (st.count === 0 || ask.u !== st.aU || ask.s !== st.aS || bid.u !== st.bU || bid.s !== st.bS) {
    let au = ask.u;
    let bu = bid.u;
    let s = ask.s;
    if (bid.s > s) {
      au *= POW10[bid.s - s]!;
      s = bid.s;
    } else if (bid.s < s) bu *= POW10[s - bid.s]!;
    // Both at most 2^51: ask + bid and 2 * spread stay within divRound's operands.
    if (!(au >= 0 && au <= LIMIT / 2 && bu >= 0 && bu <= LIMIT / 2 && au + bu > 0)) return false;
    const sp = au - bu;
    const m2 = au + bu;
    // decimal_div(spread * 20000, ask + bid, 12) = 2 * spread * 10^16 / mid2, rounded
    const bps = sp === 0 ? 0 : divRound(2 * sp, 16, m2);
    if (bps !== bps) return false;
    st.aU = ask.u;
    st.aS = ask.s;
    st.bU = bid.u;
    st.bS = bid.s;
    st.spU = sp;
    st.m2U = m2;
    st.s = s;
    st.bps = bps;
    if (st.count === 0) {
      st.minSpU = st.maxSpU = sp;
      st.minSpS = st.maxSpS = s;
      st.minSpD = st.maxSpD = d;
      st.minBps = st.maxBps = bps;
    } else {
      if (cmp(sp, s, st.minSpU, st.minSpS) < 0) {
        st.minSpU = sp;
        st.minSpS = s;
        st.minSpD = d;
      }
      if (cmp(sp, s, st.maxSpU, st.maxSpS) > 0) {
        st.maxSpU = sp;
        st.maxSpS = s;
        st.maxSpD = d;
      }
      if (bps < st.minBps) st.minBps = bps;
      if (bps > st.maxBps) st.maxBps = bps;
    }
  }
  st.d = d;
  st.sumSpread.add(st.spU, st.s, d);
  st.sumBps.add(st.bps, BPS_SCALE, BPS_SCALE);
  st.sumMid2.add(st.m2U, st.s, d);
  st.bidNotional.addProduct(bid.u, bidQty.u, bid.s + bidQty.s, bid.d + bidQty.d);
  st.askNotional.addProduct(ask.u, askQty.u, ask.s + askQty.s, ask.d + askQty.d);
  st.bqU = bidQty.u;
  st.bnS = bid.s + bidQty.s;
  st.bnD = bid.d + bidQty.d;
  st.aqU = askQty.u;
  st.anS = ask.s + askQty.s;
  st.anD = ask.d + askQty.d;
  st.took(t, id);
  return true;
}

function quoteSlice(st: QuoteState): QuoteSlice {
  const { stream } = st;
  // mid = mid2 * 0.5: one more decimal.
  const mid = (x: bigint, s: number, d: number) => bigText(x * 5n, s + 1, d + 1);
  return {
    exchange: stream.exchange,
    market: stream.market,
    symbol: stream.symbol,
    sliceUs: st.sliceUs,
    firstUs: st.firstUs,
    firstId: String(st.firstId),
    lastUs: st.lastUs,
    lastId: String(st.lastId),
    quoteCount: st.count,
    sumSpread: st.sumSpread.text(),
    minSpread: numText(st.minSpU, st.minSpS, st.minSpD),
    maxSpread: numText(st.maxSpU, st.maxSpS, st.maxSpD),
    lastSpread: numText(st.spU, st.s, st.d),
    sumSpreadBps: st.sumBps.text(),
    minSpreadBps: numText(st.minBps, BPS_SCALE, BPS_SCALE),
    maxSpreadBps: numText(st.maxBps, BPS_SCALE, BPS_SCALE),
    lastSpreadBps: numText(st.bps, BPS_SCALE, BPS_SCALE),
    sumMid: mid(st.sumMid2.total(), st.sumMid2.w, st.sumMid2.ds),
    lastMid: mid(BigInt(st.m2U), st.s, st.d),
    sumBidNotional: st.bidNotional.text(),
    sumAskNotional: st.askNotional.text(),
    lastBidNotional: bigText(BigInt(st.bU) * BigInt(st.bqU), st.bnS, st.bnD),
    lastAskNotional: bigText(BigInt(st.aU) * BigInt(st.aqU), st.anS, st.anD),
    twUs: st.lastUs - st.firstUs,
    twSpreadUs: st.twSpread.text(),
  };
}

/** The BigInt path of one quote slice: every value at its display scale. */
function bigQuotes(b: Uint8Array, st: QuoteState, rows: readonly RowAt[], r: QuoteRow): QuoteSlice {
  const sumSpread = new Sum();
  const sumBps = new Sum();
  const sumMid2 = new Sum();
  const bidNotional = new Sum();
  const askNotional = new Sum();
  const twSpread = new Sum();
  let minSp: Dec | undefined;
  let maxSp: Dec | undefined;
  let minBps = 0n;
  let maxBps = 0n;
  let last: { sp: Dec; m2: Dec; bps: bigint; bn: Dec; an: Dec } | undefined;
  let lastUs = 0;
  for (const { o, t } of rows) {
    readBookTicker(b, o, r);
    const bid = readNumericBig(b, r.bid.at);
    const bq = readNumericBig(b, r.bidQty.at);
    const ask = readNumericBig(b, r.ask.at);
    const aq = readNumericBig(b, r.askQty.at);
    if (last !== undefined) twSpread.addBig(last.sp.v * BigInt(t - lastUs), last.sp.s, last.sp.s);
    const s = Math.max(ask.s, bid.s);
    const sp = { v: at(ask, s) - at(bid, s), s };
    const m2 = { v: at(ask, s) + at(bid, s), s };
    const bps = divRoundBig(sp.v * 2n * pow10n(16), m2.v);
    if (minSp === undefined || cmpDec(sp, minSp) < 0) minSp = sp;
    if (maxSp === undefined || cmpDec(sp, maxSp) > 0) maxSp = sp;
    if (last === undefined || bps < minBps) minBps = bps;
    if (last === undefined || bps > maxBps) maxBps = bps;
    sumSpread.addBig(sp.v, s, s);
    sumBps.addBig(bps, BPS_SCALE, BPS_SCALE);
    sumMid2.addBig(m2.v, s, s);
    const bn = { v: bid.v * bq.v, s: bid.s + bq.s };
    const an = { v: ask.v * aq.v, s: ask.s + aq.s };
    bidNotional.addBig(bn.v, bn.s, bn.s);
    askNotional.addBig(an.v, an.s, an.s);
    last = { sp, m2, bps, bn, an };
    lastUs = t;
  }
  const firstRow = rows[0]!;
  const lastRow = rows[rows.length - 1]!;
  const end = last!;
  return {
    exchange: st.stream.exchange,
    market: st.stream.market,
    symbol: st.stream.symbol,
    sliceUs: st.sliceUs,
    firstUs: firstRow.t,
    firstId: String(firstRow.id),
    lastUs: lastRow.t,
    lastId: String(lastRow.id),
    quoteCount: rows.length,
    sumSpread: sumSpread.text(),
    minSpread: decText(minSp!),
    maxSpread: decText(maxSp!),
    lastSpread: decText(end.sp),
    sumSpreadBps: sumBps.text(),
    minSpreadBps: bigText(minBps, BPS_SCALE, BPS_SCALE),
    maxSpreadBps: bigText(maxBps, BPS_SCALE, BPS_SCALE),
    lastSpreadBps: bigText(end.bps, BPS_SCALE, BPS_SCALE),
    sumMid: bigText(sumMid2.total() * 5n, sumMid2.w + 1, sumMid2.ds + 1),
    lastMid: bigText(end.m2.v * 5n, end.m2.s + 1, end.m2.s + 1),
    sumBidNotional: bidNotional.text(),
    sumAskNotional: askNotional.text(),
    lastBidNotional: decText(end.bn),
    lastAskNotional: decText(end.an),
    twUs: lastRow.t - firstRow.t,
    twSpreadUs: twSpread.text(),
  };
}

const BOOK_TICKERS: Table<QuoteRow, QuoteState, QuoteSlice> = {
  row: () => new QuoteRow(),
  read: readBookTicker,
  state: (stream, sliceUs) => new QuoteState(stream, sliceUs),
  add: addQuote,
  slice: quoteSlice,
  big: bigQuotes,
};

/** Rows: concatenated COPY BINARY tuples of the `book_tickers` table (COLUMNS.book_tickers order). */
export function summarizeBookTickers(rows: Uint8Array): QuoteSlice[] {
  return summarize(rows, BOOK_TICKERS);
}
