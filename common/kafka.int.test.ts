// The real broker round trip every stage relies on: keyed messages come back complete and in order per key.
import { Partitioners, type Admin, type Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics } from './kafka.ts';
import { missing, testConfig, testKafka, uniqueName, type TestKafka } from '../test/services.ts';

const skip = await missing('kafka');

describe.skipIf(skip)('Kafka round trip', () => {
  let broker: TestKafka;
  let admin: Admin;
  let kafka: Kafka;
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
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    for (let start = 0; start < total; start += 1_000) {
      const messages = Array.from({ length: 1_000 }, (_, j) => {
        const n = start + j;
        return { key: keys[n % keys.length]!, value: JSON.stringify({ n, seq: Math.floor(n / keys.length) }) };
      });
      await producer.send({ topic, acks: -1, messages });
    }
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: uniqueName('roundtrip-group') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen = new Map<string, number[]>();
    const partitionsOfKey = new Map<string, Set<number>>();
    let count = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${count} messages`)), 60_000);
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const key = message.key!.toString();
            const { seq } = JSON.parse(message.value!.toString()) as { seq: number };
            seen.set(key, [...(seen.get(key) ?? []), seq]);
            partitionsOfKey.set(key, (partitionsOfKey.get(key) ?? new Set()).add(partition));
            if (++count === total) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();

    expect(count).toBe(total);
    for (const key of keys) {
      const seqs = seen.get(key)!;
      expect(seqs).toEqual(Array.from({ length: total / keys.length }, (_, i) => i));
      expect(partitionsOfKey.get(key)!.size).toBe(1);
    }
    // The keys really were spread over the partitions, so per-key order was not a one-partition accident.
    expect(new Set([...partitionsOfKey.values()].flatMap((s) => [...s])).size).toBeGreaterThan(1);
  });

  it('lets two processes ensure the same new topics at once; both return with leaders in place', async () => {
    const config = await testConfig({ KAFKA_PARTITIONS: '3' });
    const other = kafka.admin();
    await other.connect();
    const topics = [uniqueName('race-a'), uniqueName('race-b')];
    try {
      const [a, b] = await Promise.all([ensureTopics(admin, topics, config), ensureTopics(other, topics, config)]);
      expect([...a, ...b].sort()).toEqual(expect.arrayContaining([...topics].sort()));
      const meta = await admin.fetchTopicMetadata({ topics });
      for (const t of meta.topics) {
        expect(t.partitions).toHaveLength(3);
        expect(t.partitions.every((p) => p.leader >= 0)).toBe(true);
      }
    } finally {
      await admin.deleteTopics({ topics }).catch(() => undefined);
      await other.disconnect();
    }
  });
});
