// Kafka record batches (magic 2) written straight from bytes (pure): the producer path encodes a whole batch into one
// buffer instead of the client's writer objects per record (its `createRecord` made several per record, the larger part
// of ingestion's CPU). Layout as Kafka's DefaultRecordBatch; decoded back by the client's own reader in the tests.
import { crc32c } from '@platformatic/kafka';

/** Bytes of the batch header before the records (base offset to record count). */
export const BATCH_HEADER_BYTES = 61;
/**
 * Where each header field starts (DefaultRecordBatch): base offset int64, batch length int32 (the bytes after it),
 * partition leader epoch int32, magic int8, CRC-32C uint32 (of the bytes from the attributes on), attributes int16,
 * last offset delta int32, base and max timestamps int64, producer id int64, producer epoch int16, base sequence int32,
 * record count int32; the records follow at BATCH_HEADER_BYTES.
 */
export const BATCH_AT = {
  baseOffset: 0,
  length: 8,
  leaderEpoch: 12,
  magic: 16,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  baseTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  baseSequence: 53,
  count: 57,
} as const;
/** Bytes up to and including the batch length: the batch length counts what follows. */
export const BATCH_LOG_OVERHEAD = BATCH_AT.length + 4;
/** Attributes bit of lz4 compression (Kafka's codec id 3). */
export const LZ4 = 3;

/** Bytes of `v` (>= 0) as a zigzag varint, as Kafka writes a record's lengths and deltas. */
export function varintSize(v: number): number {
  const z = v * 2;
  return z < 0x80 ? 1 : z < 0x4000 ? 2 : z < 0x200000 ? 3 : z < 0x10000000 ? 4 : 5;
}

function writeVarint(out: Buffer, pos: number, v: number): number {
  let z = v * 2; // zigzag of a non-negative number
  while (z >= 0x80) {
    out[pos++] = (z & 0x7f) | 0x80;
    z = Math.floor(z / 128);
  }
  out[pos++] = z;
  return pos;
}

/** Body bytes of a record without headers, timestamp delta 0 (every record of a batch carries the batch's time). */
function bodySize(keyLength: number, valueLength: number, offsetDelta: number): number {
  return 1 + 1 + varintSize(offsetDelta) + varintSize(keyLength) + keyLength + varintSize(valueLength) + valueLength + 1;
}

/** Bytes the record takes in a batch, its length prefix included. */
export function recordSize(keyLength: number, valueLength: number, offsetDelta: number): number {
  const body = bodySize(keyLength, valueLength, offsetDelta);
  return varintSize(body) + body;
}

/** Writes a record whose value is `src[start, start + length)` at `pos`; returns the position after it. */
export function writeRecord(out: Buffer, pos: number, offsetDelta: number, key: Buffer, src: Buffer, start: number, length: number): number {
  pos = writeVarint(out, pos, bodySize(key.length, length, offsetDelta));
  out[pos++] = 0; // attributes
  out[pos++] = 0; // timestamp delta
  pos = writeVarint(out, pos, offsetDelta);
  pos = writeVarint(out, pos, key.length);
  pos += key.copy(out, pos);
  pos = writeVarint(out, pos, length);
  pos += src.copy(out, pos, start, start + length);
  out[pos++] = 0; // no headers
  return pos;
}

/** Who sends a batch: the idempotent producer's id and epoch, and the sequence number of its first record. */
export interface BatchIdentity {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly baseSequence: number;
}

/**
 * The batch of `count` records whose encoded (and, per `attributes`, compressed) bytes are `records`: header and
 * CRC-32C. Called again with a new identity when a producer session is replaced; the records stay as they are.
 */
export function sealBatch(records: Buffer, count: number, timestampMs: number, attributes: number, id: BatchIdentity): Buffer {
  const out = Buffer.allocUnsafe(BATCH_HEADER_BYTES + records.length);
  const at = BATCH_AT;
  out.writeBigInt64BE(0n, at.baseOffset); // the broker assigns it
  out.writeInt32BE(out.length - BATCH_LOG_OVERHEAD, at.length);
  out.writeInt32BE(-1, at.leaderEpoch); // set by the broker
  out.writeInt8(2, at.magic);
  out.writeInt16BE(attributes, at.attributes);
  out.writeInt32BE(count - 1, at.lastOffsetDelta);
  out.writeBigInt64BE(BigInt(timestampMs), at.baseTimestamp);
  out.writeBigInt64BE(BigInt(timestampMs), at.maxTimestamp);
  out.writeBigInt64BE(id.producerId, at.producerId);
  out.writeInt16BE(id.producerEpoch, at.producerEpoch);
  out.writeInt32BE(id.baseSequence, at.baseSequence);
  out.writeInt32BE(count, at.count);
  records.copy(out, BATCH_HEADER_BYTES);
  out.writeUInt32BE(crc32c(out.subarray(at.attributes)), at.crc);
  return out;
}

/** The sequence number after `count` records from `sequence`: Kafka's sequences wrap to 0 after 2^31 - 1. */
export const nextSequence = (sequence: number, count: number): number => (sequence + count) % 2 ** 31;
