// Where a restarted worker resumes, read from Kafka: a quiet symbol whose last trade lies far behind a busy symbol's
// on the same partition is still found (the scan steps back), and a bound on the scan is honoured.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaMessage } from '../common/kafka.ts';
import { encodeRecord, type Trade } from '../common/records.ts';
import { tradeAt as trade } from '../common/tick-schema.fixture.ts';
import { missing, testKafka, testLog, uniqueName, type TestKafka } from '../test/services.ts';
import { readLastIds, type LastId } from './resume.ts';

const skip = await missing('kafka');

describe.skipIf(skip)('resume point from the tail of the topics (real Kafka)', () => {
  let broker: TestKafka;
  const topic = uniqueName('resume-trades');

  beforeAll(async () => {
    broker = await testKafka('resume-test', [topic], { KAFKA_PARTITIONS: '2' });
    const producer = broker.kafka.producer({ idempotent: true });
    const send = (partition: number, ts: Trade[]) =>
      producer.send({ messages: ts.map((t) => kafkaMessage(topic, { partition, key: `binance:spot:${t.symbol}`, value: encodeRecord(t) })) });
    // Partition 0: the quiet symbol's 3 trades, then 30,000 of the busy one. Partition 1: 500 of a third symbol.
    await send(0, [trade('QUIETUSDT', 7), trade('QUIETUSDT', 8), trade('QUIETUSDT', 9)]);
    for (let i = 0; i < 30; i++) await send(0, Array.from({ length: 1000 }, (_, j) => trade('BUSYUSDT', 1 + i * 1000 + j)));
    await send(1, Array.from({ length: 500 }, (_, j) => trade('THIRDUSDT', 100 + j)));
    await producer.close();
  });
  afterAll(() => broker?.close());

  const wanted = new Set(['trade:QUIETUSDT', 'trade:BUSYUSDT', 'trade:THIRDUSDT']);
  const byKey = (ids: readonly LastId[]) => Object.fromEntries(ids.map((l) => [`${l.type}:${l.symbol}`, l.lastId]));

  it('steps back past the busy symbol until the quiet one is found', async () => {
    const point = await readLastIds(broker.kafka, broker.admin, [topic], 'spot', testLog, { wanted, window: 1000 });
    expect(byKey(point.lastIds)).toEqual({ 'trade:QUIETUSDT': 9, 'trade:BUSYUSDT': 30_000, 'trade:THIRDUSDT': 599 });
    expect(point.notFound).toEqual([]);
    expect(point.recordsRead).toBe(30_003 + 500);
  });

  it('reads only the newest window when every wanted symbol is in it', async () => {
    const point = await readLastIds(broker.kafka, broker.admin, [topic], 'spot', testLog, { wanted: new Set(['trade:BUSYUSDT', 'trade:THIRDUSDT']), window: 1000 });
    expect(byKey(point.lastIds)).toEqual({ 'trade:BUSYUSDT': 30_000, 'trade:THIRDUSDT': 599 });
    expect(point.recordsRead).toBe(1000 + 500);
  });

  it('gives up on a symbol beyond the per-partition bound (a fresh start for it)', async () => {
    const point = await readLastIds(broker.kafka, broker.admin, [topic], 'spot', testLog, { wanted, window: 1000, maxRecordsPerPartition: 10_000 });
    expect(byKey(point.lastIds)).toEqual({ 'trade:BUSYUSDT': 30_000, 'trade:THIRDUSDT': 599 });
    expect(point.notFound).toEqual(['trade:QUIETUSDT']);
    expect(point.recordsRead).toBe(10_000 + 500);
  });
});
