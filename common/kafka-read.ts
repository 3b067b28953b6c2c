// Reading given partitions of topics without a consumer group (PartitionReader without a group): a range of offsets
// (ingestion's resume point, the soak check, tests), or everything from the log start on until stopped (tests).
import { kafkaErrorText, topicOffsets, type KafkaClients } from './kafka.ts';
import { partitionKey, PartitionReader, type FetchedMessage, type PartitionBatch, type TopicPartition } from './kafka-partitions.ts';
import type { Logger } from './log.ts';

/** Offsets [from, to) of one partition. */
export interface PartitionRange extends TopicPartition {
  readonly from: bigint;
  readonly to: bigint;
}

/**
 * Reads the ranges without a consumer group (each partition from `from`, stopping at `to`) and resolves with the
 * number of records handed to `onMessage` once every range is read; rejects after `timeoutMs`.
 */
export async function readRanges(
  kafka: KafkaClients,
  ranges: readonly PartitionRange[],
  log: Logger,
  onMessage: (topic: string, partition: number, m: FetchedMessage) => void,
  opts: { timeoutMs?: number; maxBytes?: number } = {},
): Promise<number> {
  const todo = ranges.filter((r) => r.to > r.from);
  if (todo.length === 0) return 0;
  const ends = new Map(todo.map((r) => [partitionKey(r.topic, r.partition), r.to]));
  const maxBytes = opts.maxBytes ?? 16 << 20;
  let seen = 0;
  let reader: PartitionReader | undefined;
  const done = new Promise<void>((resolve, reject) => {
    /** Whether the partition of `batch` has reached its end: paused, and the read resolved with the last one. */
    const reached = (batch: PartitionBatch): void => {
      const k = partitionKey(batch.topic, batch.partition);
      const to = ends.get(k);
      if (to === undefined || BigInt(batch.lastOffset()) < to - 1n) return;
      ends.delete(k);
      reader!.pause(batch.topic, batch.partition);
      if (ends.size === 0) {
        clearTimeout(timer);
        resolve();
      }
    };
    const timer = setTimeout(() => reject(new Error(`reading ${todo.length} partition range(s) timed out: ${ends.size} left after ${seen} records`)), opts.timeoutMs ?? 120_000);
    reader = new PartitionReader({
      kafka,
      topics: [...new Set(todo.map((r) => r.topic))],
      log,
      start: todo.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.from })),
      fetch: { minBytes: 1, maxBytes, maxBytesPerPartition: Math.max(1 << 20, Math.ceil(maxBytes / todo.length)), maxWaitMs: 100 },
      eachBatch: async ({ batch, resolveOffset }) => {
        const to = ends.get(partitionKey(batch.topic, batch.partition));
        if (to === undefined) return;
        const { records } = batch;
        for (let i = 0; i < records.length && records.offset(i) < to; i++) {
          seen++;
          onMessage(batch.topic, batch.partition, records.message(i));
        }
        resolveOffset(batch.lastOffset());
        reached(batch);
      },
      // A range may end in control records or an aborted transaction's: nothing handed out, but the end is reached.
      onSkip: reached,
      onCrash: (err) => {
        clearTimeout(timer);
        reject(err);
      },
    });
  });
  try {
    await reader!.start();
    await done;
  } finally {
    await reader!.stop();
  }
  return seen;
}

/**
 * Reads every partition of the topics from its start, without a consumer group, and goes on with what arrives until
 * stopped (tests and tools that watch a topic).
 */
export async function followTopics(
  kafka: KafkaClients,
  topics: readonly string[],
  log: Logger,
  onMessage: (topic: string, partition: number, m: FetchedMessage) => void,
): Promise<{ stop(): Promise<void> }> {
  const admin = kafka.admin();
  const start: (TopicPartition & { offset: bigint })[] = [];
  try {
    for (const topic of topics) for (const p of await topicOffsets(admin, topic)) start.push({ topic, partition: p.partition, offset: p.low });
  } finally {
    await admin.close();
  }
  const reader = new PartitionReader({
    kafka,
    topics,
    log,
    start,
    fetch: { minBytes: 1, maxBytes: 16 << 20, maxBytesPerPartition: 4 << 20, maxWaitMs: 100 },
    eachBatch: async ({ batch, resolveOffset }) => {
      const { records } = batch;
      for (let i = 0; i < records.length; i++) onMessage(batch.topic, batch.partition, records.message(i));
      resolveOffset(batch.lastOffset());
    },
    onCrash: (err) => log.warn({ err: kafkaErrorText(err) }, 'following the topics failed'),
  });
  await reader.start();
  return { stop: () => reader.stop() };
}
