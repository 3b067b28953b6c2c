// Exact decimal arithmetic for the tick summaries (pure). A value is a safe-integer Number at its smallest scale while
// it fits, a BigInt beyond; every operation tries the Number path first and falls back to BigInt, so results are exact.
// Rounding follows PostgreSQL's decimal_div (half away from zero); display scales follow numeric's rules.

export const MAX = Number.MAX_SAFE_INTEGER;
// Operands of one exact division step stay at most 2^52, so quotient * divisor (off by at most one) stays below 2^53.
export const LIMIT = 2 ** 52;
/** Scale of the bps values (decimal_div(..., 12)). */
export const BPS_SCALE = 12;
// Parsed from text, so every power up to 10^22 is exact.
export const POW10: readonly number[] = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));
const BIG10: bigint[] = Array.from({ length: 40 }, (_, k) => 10n ** BigInt(k));
export const pow10n = (k: number): bigint => BIG10[k] ?? 10n ** BigInt(k);

/** Sign of (u1 at scale s1) - (u2 at scale s2). */
export function cmp(u1: number, s1: number, u2: number, s2: number): number {
  if (s1 === s2) return u1 - u2;
  if (s1 < s2) {
    const x = u1 * POW10[s2 - s1]!;
    return Math.abs(x) <= MAX ? x - u2 : cmpBig(BigInt(u1) * pow10n(s2 - s1), BigInt(u2));
  }
  const y = u2 * POW10[s1 - s2]!;
  return Math.abs(y) <= MAX ? u1 - y : cmpBig(BigInt(u1), BigInt(u2) * pow10n(s1 - s2));
}

export const cmpBig = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

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
export const bigText = (v: bigint, s: number, ds: number) => digitsText(v < 0n, String(v < 0n ? -v : v), s, ds);

/**
 * One exact decimal, reused in place (no allocation per tick): u at scale s while it is a safe integer (big = null; u read
 * from a row has no trailing decimal zero, so equal values read have equal (u, s)), else big at scale s; shown with d
 * decimals, the display scale PostgreSQL gives it.
 */
export class Dec {
  u = 0;
  big: bigint | null = null;
  s = 0;
  d = 0;

  setNumber(u: number, s: number, d: number): void {
    this.u = u;
    this.big = null;
    this.s = s;
    this.d = d;
  }

  setBig(v: bigint, s: number, d: number): void {
    this.u = NaN;
    this.big = v;
    this.s = s;
    this.d = d;
  }

  /** Takes y's value and display scale. */
  set(y: Dec): void {
    this.u = y.u;
    this.big = y.big;
    this.s = y.s;
    this.d = y.d;
  }

  /** Takes y's value, keeping its own display scale. */
  setValue(y: Dec): void {
    this.u = y.u;
    this.big = y.big;
    this.s = y.s;
  }
}

export const bigOf = (x: Dec): bigint => x.big ?? BigInt(x.u);
/** x's unscaled value at scale s >= x.s. */
export const bigAt = (x: Dec, s: number): bigint => bigOf(x) * pow10n(s - x.s);
/** Whether x and y hold the same value the same way (for decimals read from rows: the same value). */
export const sameDec = (x: Dec, y: Dec): boolean => x.s === y.s && x.big === y.big && (x.big !== null || x.u === y.u);

/** A bps of 0, the neutral start of a max of bps. */
export function zeroBps(): Dec {
  const x = new Dec();
  x.setNumber(0, BPS_SCALE, BPS_SCALE);
  return x;
}

/** Sign of x - y. */
export function cmpDec(x: Dec, y: Dec): number {
  if (x.big === null && y.big === null) return cmp(x.u, x.s, y.u, y.s);
  const s = x.s > y.s ? x.s : y.s;
  return cmpBig(bigAt(x, s), bigAt(y, s));
}

/** The decimal's text at its display scale, as numeric_out prints it. */
export const decText = (x: Dec): string => (x.big === null ? numText(x.u, x.s, x.d) : bigText(x.big, x.s, x.d));
/** The text of x * y (display scale: the sum of theirs, as numeric multiplication gives). */
export const productText = (x: Dec, y: Dec): string => bigText(bigOf(x) * bigOf(y), x.s + y.s, x.d + y.d);
/** The double nearest x (closely enough for a log return). */
export const decDouble = (x: Dec): number => (x.big === null ? x.u / (POW10[x.s] ?? 10 ** x.s) : Number(x.big) / 10 ** x.s);

/**
 * out = decimal_div(k * n * 10000, den, 12): the bps of n relative to den, k times (trades: a move against the previous
 * price; quotes: 2 * spread against ask + bid). Throws on a zero den, as the database would.
 */
export function bpsInto(out: Dec, k: number, n: Dec, den: Dec): void {
  if (n.big === null && den.big === null && den.u > 0) {
    const q = divRound(k * n.u, 16 + den.s - n.s, den.u);
    if (q === q) return out.setNumber(q, BPS_SCALE, BPS_SCALE);
  }
  out.setBig(divRoundBig(BigInt(k) * bigOf(n) * pow10n(16 + den.s), bigOf(den) * pow10n(n.s)), BPS_SCALE, BPS_SCALE);
}

/** The least and the greatest of the decimals taken (of equal ones, the first taken is kept, display scale and all). */
export class Range {
  readonly min = new Dec();
  readonly max = new Dec();

  /** Starts the range at x. */
  reset(x: Dec): void {
    this.min.set(x);
    this.max.set(x);
  }

  take(x: Dec): void {
    if (cmpDec(x, this.max) > 0) this.max.set(x);
    else if (cmpDec(x, this.min) < 0) this.min.set(x);
  }
}

/** An exact running sum: a Number while it stays a safe integer, the overflow carried in a BigInt. */
export class Sum {
  /** The Number part and the BigInt part, both at the working scale w (the largest scale added so far). */
  n = 0;
  big = 0n;
  w = 0;
  /** Display scale: the largest of the terms'. */
  ds = 0;

  /** Adds u at scale s. */
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

  addDec(x: Dec): void {
    if (x.big === null) this.add(x.u, x.s, x.d);
    else this.addBig(x.big, x.s, x.d);
  }

  /** Adds x * y. */
  addProductDec(x: Dec, y: Dec): void {
    if (x.big === null && y.big === null) this.addProduct(x.u, y.u, x.s + y.s, x.d + y.d);
    else this.addBig(bigOf(x) * bigOf(y), x.s + y.s, x.d + y.d);
  }

  /** Adds x * k for a safe integer k. */
  addTimes(x: Dec, k: number): void {
    if (x.big === null) this.addProduct(x.u, k, x.s, x.d);
    else this.addBig(x.big * BigInt(k), x.s, x.d);
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
