// One fetched batch through a tick writer without any server: the database is a stand-in that fails its first call
// (after noting what the writer still held then), Kafka is never reached.
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { createKafka } from '../common/kafka.ts';
import type { BatchPayload, FetchedMessage, PartitionBatch } from '../common/kafka-partitions.ts';
import { batchOfMessages } from '../common/kafka-records.fixture.ts';
import { RecordList } from '../common/kafka-records.ts';
import { createLogger } from '../common/log.ts';
import { encodeRecord } from '../common/records.ts';
import { loadCaptureTicks } from '../test/capture-ticks.ts';
import type { DeadLetterSink, PoisonRecord } from './dead-letters.ts';
import { createWriterMetrics } from './metrics.ts';
import { partitionState } from './positions.ts';
import { TickWriter } from './tick-writer.ts';

const log = createLogger('silent', 'test');
const config = loadConfig({ KAFKA_BROKERS: '127.0.0.1:1', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', WRITER_RETRY_MIN_MS: '60000' });
const FIRST = 100n;

/** The writer's private parts these tests reach into: its pool, its partition states, the batch handler, the re-read. */
interface Inside {
  pool: { query(): Promise<never>; connect(): Promise<never>; end(): Promise<void> };
  states: Map<number, ReturnType<typeof partitionState>>;
  reread: (partition: number, from: bigint, to: bigint) => Promise<FetchedMessage[]>;
  onBatch(payload: BatchPayload): Promise<void>;
}

const records = (): FetchedMessage[] =>
  loadCaptureTicks()
    .trades.slice(0, 3)
    .map((t, i) => ({ offset: String(FIRST + BigInt(i)), key: Buffer.from('k'), value: Buffer.from(encodeRecord(t)) }));

function batchOf(messages: FetchedMessage[]): PartitionBatch {
  const last = messages.at(-1)!.offset;
  const records = new RecordList(batchOfMessages(messages), BigInt(messages[0]!.offset));
  return { topic: config.kafka.topics.trade, partition: 0, records, highWatermark: String(BigInt(last) + 1n), lastOffset: () => last };
}

let writer: TickWriter | undefined;
afterEach(async () => {
  await writer?.stop();
  writer = undefined;
});

/** A trade writer whose database fails every call with `err`; `atFirstCall` runs at the first one. */
function tradeWriter(err: Error & { code?: string }, atFirstCall: () => void, letters: PoisonRecord[]) {
  const deadLetters = { send: async (r: readonly PoisonRecord[]) => void letters.push(...r) } as unknown as DeadLetterSink;
  writer = new TickWriter({ config, log, kafka: createKafka(config, log), family: 'trade', metrics: createWriterMetrics(new Registry()), deadLetters });
  const inside = writer as unknown as Inside;
  let calls = 0;
  const fail = async (): Promise<never> => {
    if (calls++ === 0) atFirstCall();
    throw err;
  };
  // The pool object the writer and its run writer share, its methods replaced.
  Object.assign(inside.pool, { query: fail, connect: fail, end: async () => {} });
  inside.states.set(0, partitionState(FIRST));
  return inside;
}

const payload = (batch: PartitionBatch): BatchPayload => ({ batch, resolveOffset: () => {}, isStale: () => false, heartbeat: async () => {} });

describe('tick writer', () => {
  it('lets the fetched records go before the database is reached: the batch it was handed is empty by then', async () => {
    const batch = batchOf(records());
    let heldAtFirstCall = -1;
    const inside = tradeWriter(Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' }), () => (heldAtFirstCall = batch.records.length), []);
    await inside.onBatch(payload(batch));
    expect(heldAtFirstCall).toBe(0);
  });

  it('reads a run the database refuses again from Kafka, [first offset, next), and dead-letters the record refused', async () => {
    const original = records();
    const letters: PoisonRecord[] = [];
    const inside = tradeWriter(Object.assign(new Error('violates check constraint'), { code: '23514' }), () => {}, letters);
    const reads: [number, bigint, bigint][] = [];
    inside.reread = async (partition, from, to) => {
      reads.push([partition, from, to]);
      return records();
    };
    const batch = batchOf(original);
    await inside.onBatch(payload(batch));
    expect(batch.records.length).toBe(0);
    expect(reads).toEqual([[0, FIRST, FIRST + 3n]]);
    // Every write fails here: the halving reaches the first record, dead-letters it, and stops at its own write.
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ partition: 0, offset: String(FIRST), reason: expect.stringMatching(/^refused by the database \(23514\)/) });
    expect(letters[0]!.value).toEqual(Buffer.from(encodeRecord(loadCaptureTicks().trades[0]!)));
  });
});
