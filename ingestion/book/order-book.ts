// A level-2 order book in pure code: two sides of absolute quantities keyed by price, kept sorted best first so the
// top N levels and the best prices are cheap after every update. Prices and quantities stay the venue's decimal text.
import type { BookLevel, Decimal } from '../../common/records.ts';
import { isDecimal, isPositiveDecimal } from '../../common/tick-schema.ts';

export type Side = 'bid' | 'ask';

export interface LevelChange {
  readonly side: Side;
  readonly price: Decimal;
  /** Absolute quantity now at this price; zero removes the level. */
  readonly quantity: Decimal;
}

/** One side: sorted numeric prices (best first) for ordering, the venue's text for output. */
export class BookSide {
  private readonly prices: number[] = [];
  private readonly levels = new Map<number, BookLevel>();

  constructor(readonly side: Side) {}

  get size(): number {
    return this.prices.length;
  }

  /** Best price as a number, or undefined for an empty side. */
  best(): number | undefined {
    return this.prices[0];
  }

  /** Index where `p` is or would be inserted, best first. Numbers order decimals exactly below 16 significant digits. */
  private find(p: number): number {
    const a = this.prices;
    let lo = 0;
    let hi = a.length;
    if (this.side === 'bid') {
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (a[mid]! > p) lo = mid + 1;
        else hi = mid;
      }
    } else {
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (a[mid]! < p) lo = mid + 1;
        else hi = mid;
      }
    }
    return lo;
  }

  /** Sets one level; returns its rank from the best (0 = best), or -1 when nothing changed (removing an absent level). */
  set(price: Decimal, quantity: Decimal): number {
    const p = Number(price);
    const i = this.find(p);
    const exists = i < this.prices.length && this.prices[i] === p;
    if (Number(quantity) === 0) {
      if (!exists) return -1;
      this.prices.splice(i, 1);
      this.levels.delete(p);
      return i;
    }
    if (!exists) this.prices.splice(i, 0, p);
    this.levels.set(p, [price, quantity]);
    return i;
  }

  /** The best `n` levels, best first. */
  top(n: number): BookLevel[] {
    const k = Math.min(n, this.prices.length);
    const out: BookLevel[] = new Array(k);
    for (let i = 0; i < k; i++) out[i] = this.levels.get(this.prices[i]!)!;
    return out;
  }

  clear(): void {
    this.prices.length = 0;
    this.levels.clear();
  }
}

export class OrderBook {
  readonly bids = new BookSide('bid');
  readonly asks = new BookSide('ask');

  /** Replaces the whole book (a snapshot). */
  load(bids: readonly BookLevel[], asks: readonly BookLevel[]): void {
    this.clear();
    for (const [p, q] of bids) this.bids.set(p, q);
    for (const [p, q] of asks) this.asks.set(p, q);
  }

  /** Applies one level; returns whether it touched the top `depth` levels of its side. */
  apply(side: Side, price: Decimal, quantity: Decimal, depth: number): boolean {
    const rank = (side === 'bid' ? this.bids : this.asks).set(price, quantity);
    return rank >= 0 && rank < depth;
  }

  /** Best bid at or above best ask: the book has lost updates (it never crosses on the venue). */
  crossed(): boolean {
    const b = this.bids.best();
    const a = this.asks.best();
    return b !== undefined && a !== undefined && b >= a;
  }

  get empty(): boolean {
    return this.bids.size === 0 && this.asks.size === 0;
  }

  clear(): void {
    this.bids.clear();
    this.asks.clear();
  }
}

/** Checks a list of [price, quantity] pairs; returns the reason it is bad, or undefined. */
export function checkLevels(x: unknown, what: string): string | undefined {
  if (!Array.isArray(x)) return `field ${what} is not an array`;
  for (let i = 0; i < x.length; i++) {
    const l = x[i] as unknown;
    if (!Array.isArray(l) || l.length < 2) return `${what}[${i}] is not a [price, quantity] pair`;
    if (!isPositiveDecimal(l[0])) return `${what}[${i}] price is not a positive decimal string`;
    if (!isDecimal(l[1])) return `${what}[${i}] quantity is not a non-negative decimal string`;
  }
  return undefined;
}
