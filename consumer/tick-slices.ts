// The slice driver (pure): cuts the tick rows the writer has just COPYed into per-second partial aggregates ("slices")
// per stream, so the database merges them into 10-second and 1-minute bars instead of reading every tick again. What
// a slice holds and how a tick is added to it is each summary's own: trade-slices.ts, quote-slices.ts.
import { cmpBig } from './decimal.ts';
import { i32, int8Big, type TickRow } from './copy-binary-reader.ts';

/** Slice width: 1 second, in µs. */
export const SLICE_US = 1_000_000;

function sameBytes(b: Uint8Array, s: number, e: number, key: Uint8Array): boolean {
  if (e - s !== key.length) return false;
  for (let i = key.length - 1; i >= 0; i--) if (b[s + i] !== key[i]) return false;
  return true;
}

const utf8 = new TextDecoder();

/** What every slice starts with: its stream, its second, and its first and last tick by (time, id). */
export interface SliceHead {
  readonly exchange: string;
  readonly market: string;
  readonly symbol: string;
  /** Slice start, µs since the UNIX epoch: floor(timeUs / 1e6) * 1e6. */
  readonly sliceUs: number;
  readonly firstUs: number;
  readonly firstId: string;
  readonly lastUs: number;
  readonly lastId: string;
}

/** One (exchange, market, symbol): its key bytes as in the rows (three text fields), decoded once. */
export class Stream<S> {
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

/**
 * What every slice under construction holds, whatever its table: its place, its count, its first and last tick; each
 * summary adds its own values, how a row adds to them, and the finished slice (O).
 */
export abstract class TickState<S, R extends TickRow, O> {
  /** Out of (time, id) order, or an id beyond 2^53: summed again from its rows (`rows`, offsets) after the pass. */
  redo = false;
  readonly rows: number[] = [];
  count = 0;
  firstUs = 0;
  firstId = 0;
  lastUs = 0;
  lastId = 0;
  /** The exact first and last ids, where a redone slice has them (ids beyond 2^53). */
  exactIds: readonly [bigint, bigint] | null = null;

  constructor(
    readonly stream: Stream<S>,
    readonly sliceUs: number,
  ) {}

  /** Whether a tick at (t, id) can come next: ticks are summed in (time, id) order only. */
  takes(t: number, id: number): boolean {
    return this.count === 0 || !(t < this.lastUs || (t === this.lastUs && id < this.lastId));
  }

  /** Counts the tick at (t, id) just added. */
  took(t: number, id: number): void {
    if (this.count === 0) {
      this.firstUs = t;
      this.firstId = id;
    }
    this.count++;
    this.lastUs = t;
    this.lastId = id;
  }

  /** Adds the row in r; false when it comes out of (time, id) order (the slice is then redone). */
  abstract add(r: R): boolean;

  abstract slice(): O;

  /** The fields every finished slice starts with. */
  protected head(): SliceHead {
    const { stream, exactIds } = this;
    return {
      exchange: stream.exchange,
      market: stream.market,
      symbol: stream.symbol,
      sliceUs: this.sliceUs,
      firstUs: this.firstUs,
      firstId: exactIds === null ? String(this.firstId) : String(exactIds[0]),
      lastUs: this.lastUs,
      lastId: exactIds === null ? String(this.lastId) : String(exactIds[1]),
    };
  }
}

// Any summary's slice, where the driver does not care which.
type AnyState<S> = TickState<S, TickRow, unknown>;

/** The slices of one batch, found by the key bytes and time of a row. */
class Slices<S extends AnyState<S>> {
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
/**
 * The slices of a batch of one table's rows (r: that table's row, reused): one pass over them all, then the slices it
 * could not take redone.
 */
export function summarize<R extends TickRow, S extends TickState<S, R, O>, O>(
  rows: Uint8Array,
  r: R,
  state: (stream: Stream<S>, sliceUs: number) => S,
): O[] {
  const slices = new Slices<S>(state);
  let redo = false;
  for (let o = 0; o < rows.length; o = r.end) {
    r.read(rows, o);
    const st = slices.at(rows, o + 2, r.keyEnd, r.timeUs);
    if (st.redo) continue;
    // An id beyond 2^53 cannot be ordered as a Number.
    if (r.id !== r.id || !st.add(r)) redo = st.redo = true;
  }
  if (redo) {
    for (let o = 0; o < rows.length; o = r.end) {
      r.read(rows, o);
      const st = slices.at(rows, o + 2, r.keyEnd, r.timeUs);
      if (st.redo) st.rows.push(o);
    }
  }
  return slices.all.map((st) => (st.redo ? redoSlice(rows, st, r, state) : st).slice());
}

/** A slice whose rows came out of order (or with ids beyond 2^53): its rows sorted by (time, exact id), added again. */
function redoSlice<R extends TickRow, S extends TickState<S, R, O>, O>(
  b: Uint8Array,
  st: S,
  r: R,
  state: (stream: Stream<S>, sliceUs: number) => S,
): S {
  const rows = st.rows.map((o) => {
    r.read(b, o);
    return { o, t: r.timeUs, id: int8Big(b, r.idAt) };
  });
  rows.sort((x, y) => x.t - y.t || cmpBig(x.id, y.id));
  const again = state(st.stream, st.sliceUs);
  for (const { o } of rows) {
    r.read(b, o);
    // In order now, so every row is taken (an id beyond 2^53 is NaN and compares as never out of order).
    if (!again.add(r)) throw new Error(`tick-slices: row at byte ${o} out of order after sorting`);
  }
  again.exactIds = [rows[0]!.id, rows[rows.length - 1]!.id];
  return again;
}
