// Produce requests of sealed record batches (common/kafka-batch.ts) through a @platformatic/kafka producer's metadata and
// connections (its exported low-level API: `createAPI`, `produceV9`, `Writer`): the client finds leaders, connects,
// authenticates and parses the response; the batches arrive already encoded, so no object is made per record.
import { createAPI, produceV9, Writer, type Connection } from '@platformatic/kafka';
import { isKafkaError, kafkaErrorText, type KafkaProducer } from './kafka.ts';

/** A record batch ready for a partition (sealed with its producer id and sequence). */
export interface SealedBatch {
  readonly topic: string;
  readonly partition: number;
  readonly batch: Buffer;
}

type ProduceResponse = ReturnType<typeof produceV9.parseResponse>;

/** Produce v9 (Kafka 2.8 and later) with acks = all, as the client's own `createRequest`, records given as bytes. */
function createRequest(timeoutMs: number, topics: [string, SealedBatch[]][]): Writer {
  return Writer.create()
    .appendString(null) // no transactional id
    .appendInt16(-1) // acks = all
    .appendInt32(timeoutMs)
    .appendArray(topics, (w, [topic, batches]) => {
      w.appendString(topic).appendArray(batches, (w, b) => {
        w.appendInt32(b.partition).appendUnsignedVarInt(b.batch.length + 1).append(b.batch);
      });
    })
    .appendTaggedFields();
}

const produceApi = createAPI<[number, [string, SealedBatch[]][]], ProduceResponse>(0, 9, createRequest, produceV9.parseResponse);

/** Each topic's partition count (the client's cached metadata; refreshed after `producer.clearMetadata()`). */
export async function partitionCounts(producer: KafkaProducer, topics: readonly string[]): Promise<Map<string, number>> {
  let meta;
  try {
    meta = await producer.metadata({ topics: [...topics] });
  } catch (err) {
    throw new Error(`cannot place records on ${topics.join(', ')} (a topic deleted while running? the workers create theirs at start): ${kafkaErrorText(err)}`, { cause: err });
  }
  const counts = new Map(topics.map((t) => [t, meta.topics.get(t)?.partitionsCount ?? 0]));
  const none = topics.filter((t) => counts.get(t) === 0);
  if (none.length > 0) throw new NoLeaderError(`Kafka knows no partition of ${none.join(', ')}`);
  return counts;
}

/** A partition without a leader in fresh metadata: gone (the topic recreated smaller) or not yet elected. */
export class NoLeaderError extends Error {
  override readonly name = 'NoLeaderError';
}

/**
 * Whether a failed request can never succeed with the same bytes: a batch larger than the broker takes, or a
 * partition that no longer exists. The caller encodes the records again (smaller, or for the new partition count).
 */
export function unsendable(err: unknown): boolean {
  return isKafkaError(err, 'MESSAGE_TOO_LARGE') || isKafkaError(err, 'UNKNOWN_TOPIC_OR_PARTITION') || err instanceof NoLeaderError;
}

/**
 * Produce v9 is sent without the client's version negotiation: a broker without it (Kafka before 2.8) is refused at
 * start with that said, instead of failing every send.
 */
export async function requireProduceV9(producer: KafkaProducer): Promise<void> {
  const produce = (await producer.listApis()).find((a) => a.name === 'Produce');
  if (produce === undefined || produce.maxVersion < 9) throw new Error(`the Kafka broker does not speak Produce v9 (it offers up to v${produce?.maxVersion ?? '?'}): Kafka 2.8 or later is required`);
}

/**
 * Sends the batches, one request per partition leader, and resolves once every leader has acknowledged its part
 * (acks = all). On any failure it waits for every request to settle, forgets the metadata (a leader may have moved)
 * and throws the first error: the caller sends the same batches again, which the broker deduplicates by sequence.
 */
export async function produceBatches(producer: KafkaProducer, batches: readonly SealedBatch[], timeoutMs: number): Promise<void> {
  const meta = await producer.metadata({ topics: [...new Set(batches.map((b) => b.topic))] });
  const byLeader = new Map<number, Map<string, SealedBatch[]>>();
  for (const b of batches) {
    const leader = meta.topics.get(b.topic)?.partitions[b.partition]?.leader;
    if (leader === undefined || leader < 0) {
      producer.clearMetadata();
      throw new NoLeaderError(`no leader known for ${b.topic} partition ${b.partition}`);
    }
    const topics = byLeader.get(leader) ?? byLeader.set(leader, new Map()).get(leader)!;
    (topics.get(b.topic) ?? topics.set(b.topic, []).get(b.topic)!).push(b);
  }
  const results = await Promise.allSettled(
    [...byLeader].map(async ([leader, topics]) => {
      const broker = meta.brokers.get(leader);
      if (broker === undefined) throw new Error(`broker ${leader} is not in the metadata`);
      const connection: Connection = await producer.connections.get(broker);
      await produceApi.async(connection, timeoutMs, [...topics]);
    }),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    producer.clearMetadata();
    throw failed.reason;
  }
}
