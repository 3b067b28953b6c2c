// One partition's records in a Fetch response, read from Kafka's record batches (format v2) into columns (pure). A
// fetch of tens of thousands of records costs a few typed arrays beside its batches' bytes as received, not an object
// per record (the client's own reader makes a record object, a BigInt and a tuple per varint, and a writer keeps a
// whole fetch alive long enough for all of it to be promoted). A compressed batch is decompressed to be indexed, and
// again when its records are read, one batch at a time: a fetch's decompressed bytes (several times its compressed
// ones) are never all held at once. lz4 (what ingestion writes) is decompressed into two buffers kept for it, one for
// indexing and one for reading, so the batches leave no decompressed garbage behind. Left out, as Kafka's consumers do
// under read_committed: control batches, batches of aborted transactions, and records before the asked offset (a
// compressed batch starts earlier).
import { compressionsAlgorithmsByBitmask, IS_COMPRESSED, IS_CONTROL, IS_TRANSACTIONAL } from '@platformatic/kafka';
import { BATCH_AT, BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD, LZ4 } from './kafka-batch.ts';
import { lz4Decompress, Lz4Scratch } from './lz4.ts';

/** One record as the handlers see it (its offset a decimal string, as the rest of the code keeps offsets). */
export interface FetchedMessage {
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** Present only when the record has headers. */
  readonly headers?: Record<string, Buffer>;
}

/** Records in offset order, read by index. */
export interface Records {
  readonly length: number;
  offset(i: number): bigint;
  /**
   * The value's bytes, null for a null value: a view, valid until a record of another batch is read (of any list),
   * so it is used at once; `message` copies.
   */
  value(i: number): Buffer | null;
  /** Length of the value, 0 for a null value. */
  valueLength(i: number): number;
  /** The first header of that name, undefined when there is none. */
  header(i: number, name: string): Buffer | undefined;
  /** The whole record as an object (key and headers too), its bytes its own. */
  message(i: number): FetchedMessage;
}

export interface AbortedTransaction {
  readonly producerId: bigint;
  readonly firstOffset: bigint;
}

/** Records a list makes room for before reading any (about 3 MB of columns); more grow the columns. */
const INITIAL_CAPACITY_BOUND = 131_072;

interface BatchHead {
  readonly at: number;
  readonly end: number;
  readonly attributes: number;
  readonly first: bigint;
  readonly count: number;
}

/** Records of one partition, read from a response's records bytes. */
export class RecordList implements Records {
  length = 0;
  /** Offset of the last record read, or of the last control record after it (from - 1 when there is none). */
  readonly last: bigint;
  /** Per kept batch: its records' bytes as received (compressed or not). */
  private chunks: Buffer[] = [];
  /** Per kept batch: its compression bits (0: none). */
  private codecs: number[] = [];
  /** Per kept batch: its base offset. */
  private bases: bigint[] = [];
  private chunk: Int32Array;
  private delta: Int32Array;
  /** Where the record's attributes byte is in its chunk (key and headers are read again from there on demand). */
  private body: Int32Array;
  private valueAt: Int32Array;
  /** -1: a null value. */
  private valueLen: Int32Array;
  private headerCount: Int32Array;

  /**
   * `bytes`: the partition's records field; `from`: the asked offset; `aborted`: the response's aborted transactions.
   * A batch cut short at the end of the response (the broker's size limit) is not read: the next fetch starts there.
   */
  constructor(bytes: Buffer, from: bigint, aborted: readonly AbortedTransaction[] = []) {
    const heads = keptBatches(bytes, from, aborted);
    this.last = heads.last;
    // The batches' own record counts size the columns, up to a bound: a count is only a claim until its records are
    // read, and the columns grow if a fetch really holds more.
    let capacity = 0;
    for (const h of heads.kept) capacity += Math.max(h.count, 0);
    capacity = Math.min(capacity, INITIAL_CAPACITY_BOUND);
    this.chunk = new Int32Array(capacity);
    this.delta = new Int32Array(capacity);
    this.body = new Int32Array(capacity);
    this.valueAt = new Int32Array(capacity);
    this.valueLen = new Int32Array(capacity);
    this.headerCount = new Int32Array(capacity);
    for (const h of heads.kept) this.readBatch(bytes, h, from);
  }

  private grow(): void {
    const twice = (a: Int32Array): Int32Array => {
      const b = new Int32Array(Math.max(1_024, a.length * 2));
      b.set(a);
      return b;
    };
    this.chunk = twice(this.chunk);
    this.delta = twice(this.delta);
    this.body = twice(this.body);
    this.valueAt = twice(this.valueAt);
    this.valueLen = twice(this.valueLen);
    this.headerCount = twice(this.headerCount);
  }

  private readBatch(bytes: Buffer, h: BatchHead, from: bigint): void {
    let buf = bytes;
    let p = h.at + BATCH_HEADER_BYTES;
    let end = h.end;
    const codec = h.attributes & IS_COMPRESSED;
    const packed = bytes.subarray(p, end);
    if (codec !== 0) {
      buf = decompress(packed, codec, h.first, indexing);
      p = 0;
      end = buf.length;
    }
    // Records before the asked offset are skipped by delta, without a BigInt per record.
    const skipBelow = from > h.first ? Number(from - h.first) : 0;
    const index = this.chunks.length;
    let kept = 0;
    const c = cursor;
    for (let r = 0; r < h.count; r++) {
      if (p >= end) throw new Error(`record batch at offset ${h.first}: record ${r} runs past its batch`);
      c.p = p;
      const len = varint(buf, c);
      const recordEnd = c.p + len;
      if (len < 0 || recordEnd > end) throw new Error(`record batch at offset ${h.first}: record ${r} runs past its batch`);
      const body = c.p;
      c.p++; // attributes
      skipVarint(buf, c); // timestamp delta
      const delta = varint(buf, c);
      const keyLen = varint(buf, c);
      if (keyLen > 0) c.p += keyLen;
      const valueLen = varint(buf, c);
      const valueAt = c.p;
      if (valueLen > 0) c.p += valueLen;
      const headers = varint(buf, c);
      if (c.p > recordEnd) throw new Error(`record batch at offset ${h.first}: record ${r} is longer than it says`);
      p = recordEnd;
      if (delta < skipBelow) continue;
      const n = this.length++;
      if (n === this.chunk.length) this.grow();
      this.chunk[n] = index;
      this.delta[n] = delta;
      this.body[n] = body;
      this.valueAt[n] = valueAt;
      this.valueLen[n] = valueLen;
      this.headerCount[n] = headers;
      kept++;
    }
    if (kept > 0) {
      // An uncompressed batch's positions are in the response's bytes; a compressed one's in its decompressed bytes.
      this.chunks.push(codec === 0 ? bytes : packed);
      this.codecs.push(codec);
      this.bases.push(h.first);
    }
  }

  /** The bytes record positions of batch `k` refer to. */
  private batch(k: number): Buffer {
    const codec = this.codecs[k]!;
    if (codec === 0) return this.chunks[k]!;
    if (reading.list !== this || reading.batch !== k) {
      reading.bytes = decompress(this.chunks[k]!, codec, this.bases[k]!, reading.scratch);
      reading.list = this;
      reading.batch = k;
    }
    return reading.bytes;
  }

  offset(i: number): bigint {
    return this.bases[this.chunk[i]!]! + BigInt(this.delta[i]!);
  }

  value(i: number): Buffer | null {
    const len = this.valueLen[i]!;
    if (len < 0) return null;
    const at = this.valueAt[i]!;
    return this.batch(this.chunk[i]!).subarray(at, at + len);
  }

  valueLength(i: number): number {
    return Math.max(this.valueLen[i]!, 0);
  }

  header(i: number, name: string): Buffer | undefined {
    if (this.headerCount[i] === 0) return undefined;
    for (const [k, v] of this.headersOf(i)) if (k !== null && v !== null && k.toString() === name) return v;
    return undefined;
  }

  message(i: number): FetchedMessage {
    const buf = this.batch(this.chunk[i]!);
    const c = cursor;
    c.p = this.body[i]! + 1;
    skipVarint(buf, c);
    varint(buf, c);
    const key = copy(bytesAt(buf, c));
    const value = copy(this.value(i));
    const offset = this.offset(i).toString();
    if (this.headerCount[i] === 0) return { offset, key, value };
    const headers: Record<string, Buffer> = {};
    for (const [k, v] of this.headersOf(i)) if (k !== null && v !== null) headers[k.toString()] = Buffer.from(v);
    return { offset, key, value, headers };
  }

  /** Index of the first record at or after `offset` (length when there is none). */
  indexOf(offset: bigint): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.offset(mid) < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Lets the batches' bytes go (the rows made from them are all a writer needs): the list is empty after. */
  release(): void {
    this.length = 0;
    this.chunks = [];
    this.codecs = [];
    this.bases = [];
    if (reading.list === this) {
      reading.list = null;
      reading.bytes = Buffer.alloc(0);
      reading.scratch.trim();
    }
  }

  private headersOf(i: number): [Buffer | null, Buffer | null][] {
    const buf = this.batch(this.chunk[i]!);
    const c = cursor;
    c.p = this.valueAt[i]! + Math.max(this.valueLen[i]!, 0);
    const n = varint(buf, c);
    const out: [Buffer | null, Buffer | null][] = [];
    for (let h = 0; h < n; h++) {
      const k = bytesAt(buf, c);
      out.push([k, bytesAt(buf, c)]);
    }
    return out;
  }
}

/** lz4 batches are indexed in one kept buffer (as a list is made, at once)... */
const indexing = new Lz4Scratch();
/**
 * ...and read in another: the one compressed batch held decompressed is the last one read, by any list (other codecs'
 * in a new buffer).
 */
const reading: { scratch: Lz4Scratch; list: RecordList | null; batch: number; bytes: Buffer } = { scratch: new Lz4Scratch(), list: null, batch: -1, bytes: Buffer.alloc(0) };

/** A batch's records' bytes: lz4's into `scratch` (valid until it is used again), other codecs' into a new buffer. */
function decompress(packed: Buffer, codec: number, first: bigint, scratch: Lz4Scratch): Buffer {
  try {
    if (codec === LZ4) return lz4Decompress(packed, scratch);
  } catch (err) {
    throw new Error(`record batch at offset ${first}: ${(err as Error).message}`);
  }
  const algorithm = compressionsAlgorithmsByBitmask[codec];
  if (!algorithm) throw new Error(`record batch at offset ${first}: unknown compression ${codec}`);
  return algorithm.decompressSync(packed) as Buffer;
}

const copy = (b: Buffer | null): Buffer | null => (b === null ? null : Buffer.from(b));

/** Records held as objects (a run read again, tests) behind the same interface. */
export function recordsOf(messages: readonly FetchedMessage[]): Records {
  return {
    length: messages.length,
    offset: (i) => BigInt(messages[i]!.offset),
    value: (i) => messages[i]!.value,
    valueLength: (i) => messages[i]!.value?.length ?? 0,
    header: (i, name) => messages[i]!.headers?.[name],
    message: (i) => messages[i]!,
  };
}

/**
 * The batches whose records are handed out, and the offset the partition is read up to. Under read_committed the
 * broker hands out aborted transactions' batches too, with where each aborted transaction starts; a producer's
 * batches from there are skipped up to its abort marker.
 */
function keptBatches(bytes: Buffer, from: bigint, aborted: readonly AbortedTransaction[]): { kept: BatchHead[]; last: bigint } {
  const byStart = [...aborted].sort((x, y) => (x.firstOffset < y.firstOffset ? -1 : x.firstOffset > y.firstOffset ? 1 : 0));
  const abortedProducers = new Set<bigint>();
  let nextAborted = 0;
  let last = from - 1n;
  const kept: BatchHead[] = [];
  for (let at = 0; at + BATCH_LOG_OVERHEAD <= bytes.length; ) {
    const end = at + BATCH_LOG_OVERHEAD + bytes.readInt32BE(at + BATCH_AT.length);
    if (end > bytes.length || end < at + BATCH_HEADER_BYTES) break; // cut short by the response's size limit
    const magic = bytes.readInt8(at + BATCH_AT.magic);
    const first = bytes.readBigInt64BE(at);
    if (magic !== 2) throw new Error(`record batch at offset ${first}: format v${magic}; only v2 (Kafka 0.11 and later) is read`);
    const attributes = bytes.readInt16BE(at + BATCH_AT.attributes);
    const batchEnd = first + BigInt(bytes.readInt32BE(at + BATCH_AT.lastOffsetDelta));
    if (batchEnd > last) last = batchEnd; // control batches (transaction markers) advance the position too
    while (nextAborted < byStart.length && byStart[nextAborted]!.firstOffset <= batchEnd) abortedProducers.add(byStart[nextAborted++]!.producerId);
    const head = { at, end, attributes, first, count: bytes.readInt32BE(at + BATCH_AT.count) };
    at = end;
    if (attributes & IS_CONTROL) {
      abortedProducers.delete(bytes.readBigInt64BE(head.at + BATCH_AT.producerId)); // its marker ends the producer's transaction
      continue;
    }
    if (attributes & IS_TRANSACTIONAL && abortedProducers.has(bytes.readBigInt64BE(head.at + BATCH_AT.producerId))) continue;
    if (batchEnd < from) continue;
    kept.push(head);
  }
  return { kept, last };
}

// A cursor shared by the readers below (single-threaded, never held across calls): no tuple per varint.
const cursor = { p: 0 };

/** A zigzag varint (int32) at c.p; moves c.p past it. */
function varint(buf: Buffer, c: { p: number }): number {
  let v = 0;
  let shift = 0;
  for (;;) {
    if (c.p >= buf.length) throw new Error('record batch: a varint runs past the end');
    const b = buf[c.p++]!;
    if (shift < 28) v |= (b & 0x7f) << shift;
    else v += (b & 0x7f) * 2 ** shift; // 5th byte: beyond 32 bits would not be an int32
    if ((b & 0x80) === 0) break;
    shift += 7;
    if (shift > 28) throw new Error('record batch: a varint is longer than 5 bytes');
  }
  return (v >>> 1) ^ -(v & 1);
}

function skipVarint(buf: Buffer, c: { p: number }): void {
  for (let n = 0; n < 10; n++) {
    if (c.p >= buf.length) break;
    if ((buf[c.p++]! & 0x80) === 0) return;
  }
  throw new Error('record batch: a varlong is malformed');
}

function bytesAt(buf: Buffer, c: { p: number }): Buffer | null {
  const len = varint(buf, c);
  if (len < 0) return null;
  const at = c.p;
  c.p += len;
  if (c.p > buf.length) throw new Error('record batch: bytes run past the end');
  return buf.subarray(at, c.p);
}
