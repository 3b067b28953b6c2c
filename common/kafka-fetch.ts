// Fetch responses of @platformatic/kafka read by the project: the client's Fetch request as it is, its response read
// here (the client's own reader makes objects per record and per varint; kafka-records.ts keeps a partition's records
// in columns), and handed out as one batch per partition; plus the response inside a partition-level fetch error.
import { kGetConnection, Reader, ResponseError, type Broker, type Callback, type Connection, type ConnectionPool } from '@platformatic/kafka';
import { isKafkaError, type KafkaConsumer } from './kafka.ts';
import type { PartitionBatch } from './kafka-partitions.ts';
import { RecordList, type AbortedTransaction } from './kafka-records.ts';

const FETCH = 1;
/** Fetch versions whose response this file reads: 13 to 17 share one layout (topic ids; Kafka 3.1 and later). */
const READ_VERSIONS = { min: 13, max: 17 };

export interface FetchedPartition {
  readonly partitionIndex: number;
  readonly errorCode: number;
  readonly highWatermark: bigint;
  readonly abortedTransactions: AbortedTransaction[] | null;
  /** The partition's records field as it came (record batches), absent when empty. */
  records?: Buffer;
}

export interface FetchResponse {
  readonly errorCode: number;
  readonly responses: { readonly topicId: string; readonly partitions: FetchedPartition[] }[];
}

/** A partition's key in the readers' maps. */
export const partitionKey = (topic: string, partition: number): string => `${topic}:${partition}`;

/**
 * Fetch Response v13-v17: throttle_time_ms error_code session_id [responses] TAG_BUFFER; responses: topic_id
 * [partitions]; partitions: partition_index error_code high_watermark last_stable_offset log_start_offset
 * [aborted_transactions] preferred_read_replica records. Errors are thrown as the client's ResponseError, carrying the
 * response, as its own parser does.
 */
export function parseFetchResponse(_correlationId: number, apiKey: number, apiVersion: number, reader: Reader): FetchResponse {
  if (apiVersion < READ_VERSIONS.min || apiVersion > READ_VERSIONS.max) throw new Error(`Fetch v${apiVersion} is not read here: Kafka 3.1 or later is needed (Fetch v13-v17)`);
  const errors: [string, [number, null]][] = [];
  reader.readInt32(); // throttle time
  const errorCode = reader.readInt16();
  if (errorCode !== 0) errors.push(['', [errorCode, null]]);
  reader.readInt32(); // session id
  const responses = reader.readArray((r, i) => ({
    topicId: r.readUUID(),
    partitions: r.readArray((r, j) => {
      const partitionIndex = r.readInt32();
      const errorCode = r.readInt16();
      const highWatermark = r.readInt64();
      r.readInt64(); // last stable offset
      r.readInt64(); // log start offset
      const abortedTransactions = r.readArray((r) => ({ producerId: r.readInt64(), firstOffset: r.readInt64() }));
      r.readInt32(); // preferred read replica
      const partition: FetchedPartition = { partitionIndex, errorCode, highWatermark, abortedTransactions };
      if (partition.errorCode !== 0) errors.push([`/responses/${i}/partitions/${j}`, [partition.errorCode, null]]);
      const size = r.readUnsignedVarInt() - 1; // COMPACT_RECORDS: length + 1
      if (size > 0) {
        partition.records = r.buffer.slice(r.position, r.position + size);
        r.skip(size);
      }
      return partition;
    }),
  }));
  const response: FetchResponse = { errorCode, responses };
  if (errors.length > 0) throw new ResponseError(apiKey, apiVersion, Object.fromEntries(errors), response);
  return response;
}

/**
 * The consumer's own connections, with Fetch responses read by parseFetchResponse: handed to the client's fetch as its
 * `connectionPool`, so its retries, metadata refresh and leader-epoch handling stay the client's.
 */
export function fetchConnections(consumer: KafkaConsumer): ConnectionPool {
  const pool = {
    get(broker: Broker, callback: Callback<Connection>): void {
      consumer[kGetConnection](broker, (err, connection) => {
        if (err || !connection) return callback(err ?? new Error('no connection'));
        const reading = Object.create(connection) as Connection;
        reading.send = ((apiKey: number, apiVersion: number, payload: unknown, parser: unknown, ...rest: unknown[]) =>
          (connection.send as (...a: unknown[]) => void).call(connection, apiKey, apiVersion, payload, apiKey === FETCH ? parseFetchResponse : parser, ...rest)) as Connection['send'];
        callback(null, reading);
      });
    },
  };
  return pool as unknown as ConnectionPool;
}

export function fetchedBatches(response: FetchResponse, names: Map<string, string>, requested: Map<string, { offset: bigint }>): PartitionBatch[] {
  const out: PartitionBatch[] = [];
  for (const t of response.responses) {
    const topic = names.get(t.topicId);
    if (topic === undefined) continue;
    for (const p of t.partitions) {
      const from = requested.get(partitionKey(topic, p.partitionIndex))?.offset;
      if (from === undefined || p.errorCode !== 0) continue;
      const records = new RecordList(p.records ?? Buffer.alloc(0), from, p.abortedTransactions ?? []);
      const lastOffset = records.last.toString();
      out.push({ topic, partition: p.partitionIndex, records, highWatermark: p.highWatermark.toString(), lastOffset: () => lastOffset });
    }
  }
  return out;
}

export function responseOf(err: unknown): FetchResponse | undefined {
  const walk = (e: unknown, depth: number): FetchResponse | undefined => {
    if (e === null || typeof e !== 'object' || depth > 4) return undefined;
    const x = e as { response?: unknown; errors?: unknown[] };
    if (x.response && typeof x.response === 'object' && Array.isArray((x.response as FetchResponse).responses)) return x.response as FetchResponse;
    for (const inner of x.errors ?? []) {
      const r = walk(inner, depth + 1);
      if (r) return r;
    }
    return undefined;
  };
  // Only partition-level errors: a failure of the whole request has no records to hand out.
  return isKafkaError(err, 'OFFSET_OUT_OF_RANGE') || isKafkaError(err, 'NOT_LEADER_OR_FOLLOWER') || isKafkaError(err, 'UNKNOWN_TOPIC_OR_PARTITION') || isKafkaError(err, 'FENCED_LEADER_EPOCH')
    ? walk(err, 0)
    : undefined;
}
