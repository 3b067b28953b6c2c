// The real broker round trip every stage relies on: keyed messages come back complete and in order per key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics, kafkaMessage, topicOffsets, type Admin, type KafkaClients } from './kafka.ts';
import { readRanges } from './kafka-read.ts';
import { missing, testConfig, testKafka, testLog, uniqueName, type TestKafka } from '../test/services.ts';

const skip = await missing('kafka');

describe.skipIf(skip)('Kafka round trip', () => {
  let broker: TestKafka;
  let admin: Admin;
  let kafka: KafkaClients;
  const topic = uniqueName('roundtrip');

  beforeAll(async () => {
    broker = await testKafka('roundtrip', [topic], { KAFKA_PARTITIONS: '4' });
    expect(broker.created).toEqual([topic]);
    ({ kafka, admin } = broker);
    expect(await ensureTopics(admin, [topic], broker.config)).toEqual([]);
  });
  afterAll(() => broker?.close());

  it('produces 10,000 keyed messages and consumes them all back, in order per key', async () => {
    const keys = Array.from({ length: 16 }, (_, i) => `binance:spot:SYM${i}`);
    const total = 10_000;
    const producer = kafka.producer({ idempotent: true });
    for (let start = 0; start < total; start += 1_000) {
      const messages = Array.from({ length: 1_000 }, (_, j) => {
        const n = start + j;
        return kafkaMessage(topic, { key: keys[n % keys.length]!, value: JSON.stringify({ n, seq: Math.floor(n / keys.length) }) });
      });
      await producer.send({ messages });
    }
    await producer.close();

    const seen = new Map<string, number[]>();
    const partitionsOfKey = new Map<string, Set<number>>();
    let count = 0;
    const ranges = (await topicOffsets(admin, topic)).map((p) => ({ topic, partition: p.partition, from: p.low, to: p.high }));
    await readRanges(
      kafka,
      ranges,
      testLog,
      (_topic, partition, message) => {
        const key = message.key!.toString();
        const { seq } = JSON.parse(message.value!.toString()) as { seq: number };
        seen.set(key, [...(seen.get(key) ?? []), seq]);
        partitionsOfKey.set(key, (partitionsOfKey.get(key) ?? new Set()).add(partition));
        count++;
      },
      { timeoutMs: 60_000 },
    );

    expect(count).toBe(total);
    for (const key of keys) {
      const seqs = seen.get(key)!;
      expect(seqs).toEqual(Array.from({ length: total / keys.length }, (_, i) => i));
      expect(partitionsOfKey.get(key)!.size).toBe(1);
    }
    // The keys really were spread over the partitions, so per-key order was not a one-partition accident.
    expect(new Set([...partitionsOfKey.values()].flatMap((s) => [...s])).size).toBeGreaterThan(1);
  });

  it('honours an explicit partition over the key', async () => {
    const producer = kafka.producer({ idempotent: true });
    const before = await topicOffsets(admin, topic);
    for (const partition of [0, 1, 2, 3]) {
      await producer.send({ messages: [kafkaMessage(topic, { key: 'binance:spot:BTCUSDT', value: '{}', partition })] });
    }
    await producer.close();
    const after = await topicOffsets(admin, topic);
    expect(after.map((p, i) => Number(p.high - before[i]!.high))).toEqual([1, 1, 1, 1]);
  });

  it('lets two processes ensure the same new topics at once; both return with leaders in place', async () => {
    const config = await testConfig({ KAFKA_PARTITIONS: '3' });
    const other = kafka.admin();
    const topics = [uniqueName('race-a'), uniqueName('race-b')];
    try {
      const [a, b] = await Promise.all([ensureTopics(admin, topics, config), ensureTopics(other, topics, config)]);
      expect([...a, ...b].sort()).toEqual(expect.arrayContaining([...topics].sort()));
      const meta = await admin.metadata({ topics, forceUpdate: true });
      for (const name of topics) {
        const t = meta.topics.get(name)!;
        expect(t.partitions).toHaveLength(3);
        expect(t.partitions.every((p) => p.leader >= 0)).toBe(true);
      }
    } finally {
      await admin.deleteTopics({ topics }).catch(() => undefined);
      await other.close();
    }
  });

  it('moves a read below the log start up to it, and still hands out the other partitions of the same fetch', async () => {
    // Partition 1's log start moves past the range's start: its fetch comes back OFFSET_OUT_OF_RANGE inside a response
    // that also holds partition 2's records.
    const offsets = await topicOffsets(admin, topic);
    const [p1, p2] = [offsets[1]!, offsets[2]!];
    expect(p1.high - p1.low).toBeGreaterThan(10n);
    const logStart = p1.high - 10n;
    await admin.deleteRecords({ topics: [{ name: topic, partitions: [{ partition: 1, offset: logStart }] }] });
    const read = new Map<number, bigint[]>([[1, []], [2, []]]);
    const n = await readRanges(
      kafka,
      [
        { topic, partition: 1, from: p1.low, to: p1.high },
        { topic, partition: 2, from: p2.low, to: p2.high },
      ],
      testLog,
      (_t, partition, m) => read.get(partition)!.push(BigInt(m.offset)),
      { timeoutMs: 30_000 },
    );
    const range = (from: bigint, to: bigint) => Array.from({ length: Number(to - from) }, (_, i) => from + BigInt(i));
    expect(read.get(1)).toEqual(range(logStart, p1.high));
    expect(read.get(2)).toEqual(range(p2.low, p2.high));
    expect(n).toBe(10 + Number(p2.high - p2.low));
  });

  it('reads ranges that end in a transaction marker, and a range holding only an aborted transaction', async () => {
    // Partition 0 gets a committed transaction (records, then its commit marker) and an aborted one (records, then its
    // abort marker): a range's last offset is then a control record, which no fetch hands out.
    const producer = kafka.producer({ idempotent: true, transactionalId: uniqueName('read-txn') });
    const [start] = await topicOffsets(admin, topic);
    // The coordinator writes a transaction's marker after the commit or abort returns: wait for the offset after it.
    const highOnceAt = async (high: bigint) => {
      for (let i = 0; i < 100 && (await topicOffsets(admin, topic))[0]!.high < high; i++) await new Promise((r) => setTimeout(r, 100));
      return (await topicOffsets(admin, topic))[0]!.high;
    };
    try {
      const committed = await producer.beginTransaction({ producerId: -1n, producerEpoch: -1 });
      await committed.send({ messages: Array.from({ length: 5 }, (_, i) => kafkaMessage(topic, { key: 'k', value: `committed ${i}`, partition: 0 })) });
      await committed.commit();
      // 5 records and a marker; then 3 records and a marker.
      const afterCommit = await highOnceAt(start!.high + 6n);
      expect(afterCommit).toBe(start!.high + 6n);
      const aborted = await producer.beginTransaction();
      await aborted.send({ messages: Array.from({ length: 3 }, (_, i) => kafkaMessage(topic, { key: 'k', value: `aborted ${i}`, partition: 0 })) });
      await aborted.abort();
      const afterAbort = await highOnceAt(afterCommit + 4n);
      expect(afterAbort).toBe(afterCommit + 4n);

      const values: string[] = [];
      const read = (from: bigint, to: bigint) => readRanges(kafka, [{ topic, partition: 0, from, to }], testLog, (_t, _p, m) => void values.push(m.value!.toString()), { timeoutMs: 20_000 });
      expect(await read(start!.high, afterCommit)).toBe(5);
      expect(values).toEqual(['committed 0', 'committed 1', 'committed 2', 'committed 3', 'committed 4']);
      expect(await read(afterCommit, afterAbort)).toBe(0);
      expect(values).toHaveLength(5);
    } finally {
      await producer.close();
    }
  });
});
