// Which ingestion shard streams a symbol (SHARD=i/N), in pure code. The shard depends on the symbol alone (a SHA-256
// of its name through Lamping and Veach's jump consistent hash), so every stream of a symbol is in one shard, a listing
// or delisting moves no other symbol, and going from N to N+1 shards moves only about 1/(N+1) of the symbols.
import { createHash } from 'node:crypto';

export interface Shard {
  readonly index: number;
  readonly count: number;
}

const MASK = (1n << 64n) - 1n;

/** Jump consistent hash: a bucket in [0, buckets) for a 64-bit key. */
export function jumpHash(key: bigint, buckets: number): number {
  let b = -1;
  let j = 0;
  let k = key & MASK;
  while (j < buckets) {
    b = j;
    k = (k * 2862933555777941757n + 1n) & MASK;
    j = Math.floor((b + 1) * (2 ** 31 / (Number(k >> 33n) + 1)));
  }
  return b;
}

/** The shard of a symbol among `count`. */
export function shardOf(symbol: string, count: number): number {
  if (count <= 1) return 0;
  const key = createHash('sha256').update(symbol.toUpperCase()).digest().readBigUInt64BE(0);
  return jumpHash(key, count);
}

/** The symbols of this shard, in the order given. */
export function shardSymbols(symbols: readonly string[], shard: Shard): string[] {
  return symbols.filter((s) => shardOf(s, shard.count) === shard.index);
}
