// A Fetch response of @platformatic/kafka as the readers hand it out (pure): one batch per partition, control
// batches, batches of aborted transactions and records before the asked offset left out; and the response inside a
// partition-level fetch error.
import { IS_CONTROL, IS_TRANSACTIONAL } from '@platformatic/kafka';
import { isKafkaError, type KafkaConsumer } from './kafka.ts';
import type { FetchedMessage, PartitionBatch } from './kafka-partitions.ts';

export type FetchResponse = Awaited<ReturnType<KafkaConsumer['fetch']>>;

/** A partition's key in the readers' maps. */
export const partitionKey = (topic: string, partition: number): string => `${topic}:${partition}`;

export function fetchedBatches(response: FetchResponse, names: Map<string, string>, requested: Map<string, { offset: bigint }>): PartitionBatch[] {
  const out: PartitionBatch[] = [];
  for (const t of response.responses) {
    const topic = names.get(t.topicId);
    if (topic === undefined) continue;
    for (const p of t.partitions) {
      const from = requested.get(partitionKey(topic, p.partitionIndex))?.offset;
      if (from === undefined || p.errorCode !== 0 || !p.records || p.records.length === 0) {
        if (from !== undefined && p.errorCode === 0) out.push(batchOf(topic, p.partitionIndex, [], p.highWatermark, from - 1n));
        continue;
      }
      const messages: FetchedMessage[] = [];
      let last = from - 1n;
      // read_committed: the broker hands out aborted transactions' batches too, with where each aborted transaction
      // starts; a producer's batches from there are skipped up to its abort marker (Kafka's consumers do the same).
      const aborted = [...(p.abortedTransactions ?? [])].sort((x, y) => (x.firstOffset < y.firstOffset ? -1 : x.firstOffset > y.firstOffset ? 1 : 0));
      const abortedProducers = new Set<bigint>();
      let nextAborted = 0;
      for (const b of p.records) {
        const end = b.firstOffset + BigInt(b.lastOffsetDelta);
        if (end > last) last = end; // control batches (transaction markers) advance the position too
        while (nextAborted < aborted.length && aborted[nextAborted]!.firstOffset <= end) abortedProducers.add(aborted[nextAborted++]!.producerId);
        if (b.attributes & IS_CONTROL) {
          abortedProducers.delete(b.producerId); // its marker ends the producer's transaction
          continue;
        }
        if (b.attributes & IS_TRANSACTIONAL && abortedProducers.has(b.producerId)) continue;
        for (const r of b.records) {
          const offset = b.firstOffset + BigInt(r.offsetDelta);
          if (offset < from) continue; // a compressed batch starts before the requested offset
          messages.push({
            offset: offset.toString(),
            key: r.key,
            value: r.value,
            ...(r.headers.length > 0 ? { headers: headersOf(r.headers) } : {}),
          });
        }
      }
      out.push(batchOf(topic, p.partitionIndex, messages, p.highWatermark, last));
    }
  }
  return out;
}

function batchOf(topic: string, partition: number, messages: FetchedMessage[], high: bigint, last: bigint): PartitionBatch {
  const lastOffset = last.toString();
  return { topic, partition, messages, highWatermark: high.toString(), lastOffset: () => lastOffset };
}

function headersOf(headers: [Buffer | null, Buffer | null][]): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of headers) if (k !== null && v !== null) out[k.toString()] = v;
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
