// The records of one producer lane waiting for Kafka's acknowledgement, kept without an object per record: each value
// is written straight into a large byte chunk, and a record is only numbers in a ring of parallel typed arrays (topic,
// key, chunk, start, length, receive time). A request's records are copied from the chunks straight into one record
// batch per partition (`encode`); acknowledged records free their chunks at once.
import { recordSize, writeRecord } from '../common/kafka-batch.ts';

/** Most distinct keys remembered (the producer's key cache has the same bound): past it, only queued records' keys. */
export const KEYS_MAX = 10_000;

/** Bytes per chunk; a larger record gets a chunk of its own. */
const CHUNK_BYTES = 256 * 1024;

/**
 * Freed chunks kept for the next writes. A chunk lives until its records are acknowledged, long enough for V8 to move
 * it to the old generation, where only a full collection frees it: at full speed new chunks for every record byte
 * were the largest share of the worker's peak RSS. Reused, the queue allocates chunks only as it grows.
 */
const SPARE_CHUNKS = 8;

/**
 * The buffer a request's records are encoded into is kept for the next request up to this size: a new one per request
 * was all of a record's bytes again in garbage, at full speed the larger part of the worker's ArrayBuffer churn.
 */
const ENCODED_KEEP_BYTES = 4 * 1024 * 1024;

/** Ring slots at first and after the queue empties; it doubles as needed (PRODUCER_BUFFER_MAX bounds it). */
const SLOTS = 4_096;

/** One partition's share of the first records of the queue, in their order, as a record batch's (uncompressed) records. */
export interface EncodedRecords {
  readonly topic: string;
  readonly partition: number;
  readonly count: number;
  readonly records: Buffer;
}

export class RecordQueue {
  /** Chunks still referenced by a queued record, oldest first; `chunks[i]` has id `firstChunk + i`. */
  private chunks: Buffer[] = [];
  /** Freed chunks of CHUNK_BYTES, for reuse (at most SPARE_CHUNKS). */
  private spare: Buffer[] = [];
  private firstChunk = 0;
  private writePos = 0;
  private readonly topicIds = new Map<string, number>();
  private topics: string[] = [];
  private readonly keyIds = new Map<Buffer, number>();
  private keys: Buffer[] = [];
  /** Where `encode` writes (kept up to ENCODED_KEEP_BYTES). */
  private encoded = Buffer.allocUnsafeSlow(0);
  // One slot per record, the i-th queued record at (head + i) & mask. Typed arrays rather than number arrays: their
  // bytes are outside the V8 heap, so a queue that lives for many young-generation collections is neither copied nor
  // promoted by them, and growing it copies each record once.
  private topicOf = new Int32Array(SLOTS);
  private keyOf = new Int32Array(SLOTS);
  /** Chunk ids grow for as long as the queue never empties: past 2^31, exact in a double. */
  private chunkOf = new Float64Array(SLOTS);
  private startOf = new Int32Array(SLOTS);
  private lengthOf = new Int32Array(SLOTS);
  private receivedUs = new Float64Array(SLOTS);
  private mask = SLOTS - 1;
  private head = 0;
  private count = 0;
  /** Bytes of the queued keys and values. */
  bytes = 0;

  get length(): number {
    return this.count;
  }

  /** Queues a record whose value is the UTF-8 of `text`. */
  push(topic: string, key: Buffer, text: string, receiveTimeUs: number): void {
    const chunk = this.room(text.length * 3); // UTF-8 bytes per UTF-16 unit, at most
    this.queued(topic, key, chunk.write(text, this.writePos, 'utf8'), receiveTimeUs);
  }

  /**
   * Queues a record whose value `write` puts into the chunk at the given offset (at most `maxBytes`), returning the
   * offset after it; false, with nothing queued, when `write` declines (-1).
   */
  pushWritten<V>(topic: string, key: Buffer, value: V, write: (value: V, b: Buffer, o: number) => number, maxBytes: number, receiveTimeUs: number): boolean {
    const chunk = this.room(maxBytes);
    const end = write(value, chunk, this.writePos);
    if (end < 0) return false;
    this.queued(topic, key, end - this.writePos, receiveTimeUs);
    return true;
  }

  /** The last chunk when it has `bytes` free from writePos, else a new one. */
  private room(bytes: number): Buffer {
    let chunk = this.chunks.at(-1);
    if (chunk === undefined || this.writePos + bytes > chunk.length) {
      chunk = (bytes <= CHUNK_BYTES ? this.spare.pop() : undefined) ?? Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, bytes));
      this.chunks.push(chunk);
      this.writePos = 0;
    }
    return chunk;
  }

  /** Records the value just written at writePos, `length` bytes long. */
  private queued(topic: string, key: Buffer, length: number, receiveTimeUs: number): void {
    if (this.count > this.mask) this.resize(2 * (this.mask + 1));
    const r = (this.head + this.count++) & this.mask;
    this.topicOf[r] = this.topicId(topic);
    this.keyOf[r] = this.keyId(key);
    this.chunkOf[r] = this.firstChunk + this.chunks.length - 1;
    this.startOf[r] = this.writePos;
    this.lengthOf[r] = length;
    this.receivedUs[r] = receiveTimeUs;
    this.writePos += length;
    this.bytes += key.length + length;
  }

  /** The distinct topics of the first `n` queued records. */
  topicsOf(n: number): string[] {
    const ids = new Set<number>();
    for (let i = 0; i < n; i++) ids.add(this.topicOf[(this.head + i) & this.mask]!);
    return [...ids].map((id) => this.topics[id]!);
  }

  /**
   * The first `n` queued records encoded per (topic, partition), each partition's records in queue order (so a key's
   * records keep their order); the records stay queued until `acknowledge`. The encoded records are views on one
   * buffer the next `encode` writes over: the producer compresses them at once.
   */
  encode(n: number, partitionOf: (topic: string, key: Buffer) => number): EncodedRecords[] {
    const groups = new Map<number, { topic: number; partition: number; members: number[]; bytes: number }>();
    for (let i = 0; i < n; i++) {
      const r = (this.head + i) & this.mask;
      const topic = this.topicOf[r]!;
      const key = this.keys[this.keyOf[r]!]!;
      const partition = partitionOf(this.topics[topic]!, key);
      const id = topic * 2 ** 31 + partition;
      let g = groups.get(id);
      if (g === undefined) groups.set(id, (g = { topic, partition, members: [], bytes: 0 }));
      g.bytes += recordSize(key.length, this.lengthOf[r]!, g.members.length);
      g.members.push(r);
    }
    let total = 0;
    for (const g of groups.values()) total += g.bytes;
    let buf = this.encoded;
    if (buf.length < total) {
      buf = Buffer.allocUnsafeSlow(Math.max(total, Math.min(2 * buf.length, ENCODED_KEEP_BYTES)));
      if (buf.length <= ENCODED_KEEP_BYTES) this.encoded = buf;
    }
    const out: EncodedRecords[] = [];
    let pos = 0;
    for (const g of groups.values()) {
      const start = pos;
      for (let j = 0; j < g.members.length; j++) {
        const r = g.members[j]!;
        pos = writeRecord(buf, pos, j, this.keys[this.keyOf[r]!]!, this.chunks[this.chunkOf[r]! - this.firstChunk]!, this.startOf[r]!, this.lengthOf[r]!);
      }
      out.push({ topic: this.topics[g.topic]!, partition: g.partition, count: g.members.length, records: buf.subarray(start, pos) });
    }
    return out;
  }

  /**
   * Drops the first `n` records (Kafka has them), calling `each` with each one's topic and receive time first, and
   * frees the chunks no queued record uses any more. Returns the bytes dropped.
   */
  acknowledge(n: number, each: (topic: string, receiveTimeUs: number) => void): number {
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const r = (this.head + i) & this.mask;
      bytes += this.keys[this.keyOf[r]!]!.length + this.lengthOf[r]!;
      each(this.topics[this.topicOf[r]!]!, this.receivedUs[r]!);
    }
    this.head = (this.head + n) & this.mask;
    this.count -= n;
    this.bytes -= bytes;
    if (this.count === 0) {
      // Nothing queued, nothing in flight: keep the newest chunk for reuse, forget everything else.
      const last = this.chunks.at(-1);
      const keep = last === undefined || last.length > CHUNK_BYTES ? 0 : 1;
      this.release(this.chunks.length - keep);
      this.chunks = keep ? [last!] : [];
      this.firstChunk = 0;
      this.writePos = 0;
      this.head = 0;
      // A burst's ring goes back to its first size.
      if (this.mask + 1 > SLOTS) this.resize(SLOTS);
      if (this.keys.length > KEYS_MAX) {
        this.keys = [];
        this.keyIds.clear();
      }
      return bytes;
    }
    if (this.keys.length > KEYS_MAX) this.compactKeys();
    const oldest = this.chunkOf[this.head]!;
    if (oldest > this.firstChunk) {
      this.release(oldest - this.firstChunk);
      this.chunks = this.chunks.slice(oldest - this.firstChunk);
      this.firstChunk = oldest;
    }
    return bytes;
  }

  /** Moves the queued records to rings of `slots` (a power of two, at least the count), the oldest at slot 0. */
  private resize(slots: number): void {
    const grown = <A extends Int32Array | Float64Array>(a: A, make: (n: number) => A): A => {
      const b = make(slots);
      for (let i = 0; i < this.count; i++) b[i] = a[(this.head + i) & this.mask]!;
      return b;
    };
    const ints = (n: number) => new Int32Array(n);
    this.topicOf = grown(this.topicOf, ints);
    this.keyOf = grown(this.keyOf, ints);
    this.chunkOf = grown(this.chunkOf, (n) => new Float64Array(n));
    this.startOf = grown(this.startOf, ints);
    this.lengthOf = grown(this.lengthOf, ints);
    this.receivedUs = grown(this.receivedUs, (n) => new Float64Array(n));
    this.head = 0;
    this.mask = slots - 1;
  }

  /** Keeps the first `n` chunks (no longer used by any queued record) as spares, within SPARE_CHUNKS. */
  private release(n: number): void {
    for (let i = 0; i < n && this.spare.length < SPARE_CHUNKS; i++) if (this.chunks[i]!.length === CHUNK_BYTES) this.spare.push(this.chunks[i]!);
  }

  /** Keeps only the keys of queued records (a queue that never empties must not keep every key it ever saw). */
  private compactKeys(): void {
    const keys: Buffer[] = [];
    this.keyIds.clear();
    for (let i = 0; i < this.count; i++) {
      const r = (this.head + i) & this.mask;
      this.keyOf[r] = intern(this.keyIds, keys, this.keys[this.keyOf[r]!]!);
    }
    this.keys = keys;
  }

  private topicId(topic: string): number {
    return intern(this.topicIds, this.topics, topic);
  }

  private keyId(key: Buffer): number {
    return intern(this.keyIds, this.keys, key);
  }
}

/** The index of value in list, appended the first time: the few topics and keys are stored once, records hold ids. */
function intern<T>(ids: Map<T, number>, list: T[], value: T): number {
  let id = ids.get(value);
  if (id === undefined) {
    ids.set(value, (id = list.length));
    list.push(value);
  }
  return id;
}
