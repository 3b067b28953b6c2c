// Reads the tick rows the writer has just encoded in COPY binary format (pure), the inverse of copy-binary.ts: the
// fields every tick table starts with (key, time, id), exact numerics, and skipping the rest.
import { NUMERIC_NEG, PG_EPOCH_US, TWO_32 } from './copy-binary.ts';
import { type Dec, MAX, POW10, pow10n } from './decimal.ts';

const u16 = (b: Uint8Array, p: number) => (b[p]! << 8) | b[p + 1]!;
export const i16 = (b: Uint8Array, p: number): number => ((b[p]! << 24) >> 16) | b[p + 1]!;
export const i32 = (b: Uint8Array, p: number): number => (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
/** The int8 at b[p], exact. */
export const int8Big = (b: Uint8Array, p: number): bigint => (BigInt(i32(b, p)) << 32n) + BigInt(i32(b, p + 4) >>> 0);

/**
 * Reads the numeric whose value is b[p, p + len) (numeric_send's layout) into n: a Number at its smallest scale when it
 * is a safe integer there and has no digits below its display scale, else a BigInt at its display scale (digits below
 * it cut off, as numeric_recv does).
 */
function readNumeric(b: Uint8Array, p: number, len: number, n: Dec): void {
  const ndigits = u16(b, p);
  const sign = u16(b, p + 4);
  if (len !== 8 + 2 * ndigits) throw new Error(`tick-slices: numeric field of ${len} bytes with ${ndigits} digits at byte ${p}`);
  if (sign !== 0 && sign !== NUMERIC_NEG) throw new Error(`tick-slices: numeric NaN or infinity at byte ${p}`);
  const ds = u16(b, p + 6);
  if (!readSafe(b, p, ndigits, sign, ds, n)) n.setBig(readBig(b, p, ndigits, sign, ds), ds, ds);
}

/** The Number reading of readNumeric; false when the value needs a BigInt. */
function readSafe(b: Uint8Array, p: number, ndigits: number, sign: number, ds: number, n: Dec): boolean {
  if (ndigits === 0) {
    n.setNumber(0, 0, ds);
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
      n.setNumber(0, 0, ds);
      return true;
    }
    if (d > MAX) return false;
    while (d % 10 === 0) {
      d /= 10;
      e++;
    }
  }
  if (d > MAX) return false;
  let s = 0;
  if (e >= 0) {
    d *= POW10[e] ?? NaN;
    if (!(d <= MAX)) return false;
  } else {
    s = -e;
    if (s > ds) return false;
  }
  n.setNumber(sign === 0 ? d : -d, s, ds);
  return true;
}

/** The numeric exactly at its display scale ds. */
function readBig(b: Uint8Array, p: number, ndigits: number, sign: number, ds: number): bigint {
  let d = 0n;
  for (let q = p + 8, end = q + 2 * ndigits; q < end; q += 2) d = d * 10_000n + BigInt(u16(b, q));
  const e = 4 * (i16(b, p + 2) - ndigits + 1) + ds;
  const v = e >= 0 ? d * pow10n(e) : d / pow10n(-e);
  return sign === NUMERIC_NEG ? -v : v;
}

/** A safe int8 at b[p]; NaN beyond 2^53. */
function readInt8(b: Uint8Array, p: number): number {
  const hi = i32(b, p);
  return hi >= -0x200000 && hi < 0x200000 ? hi * TWO_32 + (i32(b, p + 4) >>> 0) : NaN;
}

/** The length of the field at p, checked: `want`, or any non-NULL length when want < 0. */
export function fieldLength(b: Uint8Array, p: number, want: number, what: string): number {
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
export function skipFields(b: Uint8Array, p: number, n: number): number {
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

/** What every row reader fills in; each table's row adds its own fields and reads them. */
export abstract class TickRow {
  keyEnd = 0;
  end = 0;
  timeUs = 0;
  idAt = 0;
  /** NaN beyond 2^53 (the exact id is read again from idAt). */
  id = 0;

  /** Reads the row at b[o] (its table's COLUMNS order) into this. */
  abstract read(b: Uint8Array, o: number): void;
}

/**
 * Reads what starts every row at o (field count, key, time, id) into r; returns where the table's own fields start.
 */
export function readTick(b: Uint8Array, o: number, r: TickRow, table: string, fields: number, idName: string): number {
  if (i16(b, o) !== fields) throw new Error(`tick-slices: ${table} row of ${i16(b, o)} fields at byte ${o}`);
  let p = skipKey(b, o + 2);
  r.keyEnd = p;
  r.timeUs = readTime(b, p);
  p += 12;
  fieldLength(b, p, 8, idName);
  r.idAt = p + 4;
  r.id = readInt8(b, p + 4);
  return p + 12;
}

/** Reads the numeric field at p into n; returns where the next field starts. */
export function readNumericField(b: Uint8Array, p: number, n: Dec, what: string): number {
  const len = fieldLength(b, p, -1, what);
  readNumeric(b, p + 4, len, n);
  return p + 4 + len;
}
