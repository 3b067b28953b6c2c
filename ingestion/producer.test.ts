// The producer buffer without a broker: bounded by bytes, records leave it only once acknowledged, a failed send is
// retried with the same records in the same order and sequence numbers, and each key keeps to one lane (one producer,
// so one order). The requests are read back from their bytes.
import { ProtocolError, Reader, readRecordsBatch, type Writer } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import type { KafkaClients } from '../common/kafka.ts';
import { createLogger } from '../common/log.ts';
import type { Trade } from '../common/records.ts';
import { tradeAt as trade } from '../common/tick-schema.fixture.ts';
import { createIngestMetrics } from './metrics.ts';
import { TickProducer } from './producer.ts';

const log = createLogger('silent', 'producer-test');

interface Sent {
  readonly lane: string;
  readonly ids: number[];
  /** The first sequence number of each batch of the request. */
  readonly sequences: number[];
  /** The producer id of each batch. */
  readonly producers: bigint[];
}

/** The trade ids and batch sequences of a Produce v9 request, read back with the client's reader. */
function readRequest(request: Writer): { ids: number[]; sequences: number[]; producers: bigint[] } {
  const r = Reader.from(request.buffer);
  expect(r.readNullableString()).toBe(null); // no transactional id
  expect(r.readInt16()).toBe(-1); // acks = all
  r.readInt32();
  const ids: number[] = [];
  const sequences: number[] = [];
  const producers: bigint[] = [];
  r.readArray((t) => {
    t.readString();
    t.readArray((p) => {
      p.readInt32();
      p.readUnsignedVarInt();
      const batch = readRecordsBatch(p);
      sequences.push(batch.firstSequence);
      producers.push(batch.producerId);
      for (const rec of batch.records) ids.push((JSON.parse(rec.value!.toString()) as Trade).tradeId);
    });
  });
  r.readTaggedFields();
  return { ids, sequences, producers };
}

/**
 * KafkaClients whose producers have one broker and one partition per topic and record every Produce request they are
 * sent; `answer` decides each request's fate (resolve, or throw).
 */
function fakeKafka(answer: (n: number) => Promise<void>) {
  const sends: Sent[] = [];
  let n = 0;
  let sessions = 0;
  const kafka = {
    producer: (opts: { clientSuffix?: string }) => ({
      listApis: async () => [{ apiKey: 0, name: 'Produce', minVersion: 3, maxVersion: 11 }],
      initIdempotentProducer: async () => ({ producerId: BigInt(++sessions), producerEpoch: 0 }),
      close: async () => {},
      clearMetadata: () => {},
      metadata: async ({ topics }: { topics: string[] }) => ({
        brokers: new Map([[1, { host: '127.0.0.1', port: 1 }]]),
        topics: new Map(topics.map((t) => [t, { partitionsCount: 1, partitions: [{ leader: 1 }] }])),
      }),
      connections: {
        get: async () => ({
          send: (_key: number, _version: number, create: () => Writer, _parse: unknown, _a: boolean, _b: boolean, done: (e: Error | null, r?: unknown) => void) => {
            sends.push({ lane: opts.clientSuffix ?? '', ...readRequest(create()) });
            answer(n++).then(() => done(null, { responses: [] }), (e: Error) => done(e));
          },
        }),
      },
    }),
  } as unknown as KafkaClients;
  return { kafka, sends };
}

describe('TickProducer', () => {
  it('is full by bytes, keeps records until acknowledged, and frees them at once', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { kafka } = fakeKafka(() => gate);
    const producer = new TickProducer(kafka, { bufferMaxBytes: 4_000, lanes: 1, log, metrics: createIngestMetrics({ defaultMetrics: false }) });
    await producer.connect();
    let i = 0;
    while (!producer.full) producer.produce('trades', 'binance:spot:BTCUSDT', trade('BTCUSDT', ++i));
    expect(producer.bytes).toBeGreaterThanOrEqual(4_000);
    expect(producer.bytes).toBeLessThan(4_000 + 400); // one record past the bound at most
    expect(producer.depth).toBe(i);
    await new Promise((r) => setImmediate(r)); // the send is under way, not acknowledged
    expect(producer.depth).toBe(i);
    release();
    await producer.flush();
    expect(producer.depth).toBe(0);
    expect(producer.bytes).toBe(0);
    expect(producer.full).toBe(false);
    await producer.stop();
  });

  it('retries a failed send with the same records in the same order, then goes on', async () => {
    const { kafka, sends } = fakeKafka(async (n) => {
      if (n < 2) throw new Error('broker away');
    });
    const producer = new TickProducer(kafka, { bufferMaxBytes: 1 << 20, lanes: 1, batchMax: 5, log, metrics: createIngestMetrics({ defaultMetrics: false }) });
    await producer.connect();
    for (let id = 1; id <= 7; id++) producer.produce('trades', 'binance:spot:BTCUSDT', trade('BTCUSDT', id));
    await new Promise((r) => setTimeout(r, 50));
    expect(producer.health.failures).toBeGreaterThan(0);
    await producer.flush();
    expect(sends.map((s) => s.ids)).toEqual([
      [1, 2, 3, 4, 5],
      [1, 2, 3, 4, 5],
      [1, 2, 3, 4, 5],
      [6, 7],
    ]);
    // The same bytes again, same sequence number (the broker drops what it already has); the next batch goes on from 5.
    expect(sends.map((s) => s.sequences)).toEqual([[0], [0], [0], [5]]);
    expect(producer.health).toEqual({ failures: 0, lastError: undefined });
    await producer.stop();
  }, 10_000);

  it('sends each key through one lane, in produce order', async () => {
    const { kafka, sends } = fakeKafka(async () => {});
    const producer = new TickProducer(kafka, { bufferMaxBytes: 1 << 20, lanes: 3, log, metrics: createIngestMetrics({ defaultMetrics: false }) });
    await producer.connect();
    const symbols = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'BNBUSDT', 'XRPUSDT'];
    for (let id = 1; id <= 500; id++) {
      const s = symbols[id % symbols.length]!;
      producer.produce('trades', `binance:spot:${s}`, trade(s, id));
    }
    await producer.flush();
    await producer.stop();
    const laneOf = new Map<number, string>();
    for (const s of sends) for (const id of s.ids) laneOf.set(id, s.lane);
    for (const s of symbols) {
      const ids = [...laneOf.keys()].filter((id) => symbols[id % symbols.length] === s);
      expect(new Set(ids.map((id) => laneOf.get(id))).size).toBe(1);
    }
    const order = sends.flatMap((s) => s.ids);
    for (const s of symbols) {
      const ids = order.filter((id) => symbols[id % symbols.length] === s);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
    }
    expect(order.length).toBe(500);
  });

  it('sends a batch the broker finds too large again in halves, for a new session', async () => {
    const tooLarge = () => Promise.reject(new ProtocolError('MESSAGE_TOO_LARGE'));
    const { kafka, sends } = fakeKafka((n) => (n === 0 || n === 3 ? tooLarge() : Promise.resolve()));
    const metrics = createIngestMetrics({ defaultMetrics: false });
    const producer = new TickProducer(kafka, { bufferMaxBytes: 1 << 20, lanes: 1, batchMax: 8, log, metrics });
    await producer.connect();
    for (let id = 1; id <= 8; id++) producer.produce('trades', 'binance:spot:BTCUSDT', trade('BTCUSDT', id));
    await producer.flush();
    expect(sends.map((s) => s.ids)).toEqual([[1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4], [5, 6, 7, 8]]);
    // Re-encoded for a new producer id, its sequences from 0 (the refused bytes are never sent again).
    expect(sends.map((s) => [s.producers[0], s.sequences[0]])).toEqual([[1n, 0], [2n, 0], [2n, 4]]);
    // Refused again later (request 3, two records under batchMax 4): halved again, one by one, nothing dropped.
    producer.produce('trades', 'binance:spot:BTCUSDT', trade('BTCUSDT', 9));
    producer.produce('trades', 'binance:spot:BTCUSDT', trade('BTCUSDT', 10));
    await producer.flush();
    expect(sends.slice(3).map((s) => s.ids)).toEqual([[9, 10], [9], [10]]);
    const dropped = (await metrics.registry.getSingleMetric('tickwatch_ingestion_dead_letters_total')!.get()).values.reduce((a, v) => a + v.value, 0);
    expect(dropped).toBe(0);
    await producer.stop();
  });

  it('drops a single record larger than the broker takes, and goes on', async () => {
    const { kafka, sends } = fakeKafka((n) => (n === 0 ? Promise.reject(new ProtocolError('MESSAGE_TOO_LARGE')) : Promise.resolve()));
    const metrics = createIngestMetrics({ defaultMetrics: false });
    const producer = new TickProducer(kafka, { bufferMaxBytes: 1 << 20, lanes: 1, batchMax: 1, log, metrics });
    await producer.connect();
    producer.produce('trades', 'binance:spot:BTCUSDT', trade('BTCUSDT', 1));
    producer.produce('trades', 'binance:spot:BTCUSDT', trade('BTCUSDT', 2));
    await producer.flush();
    expect(sends.map((s) => s.ids)).toEqual([[1], [2]]);
    const dropped = (await metrics.registry.getSingleMetric('tickwatch_ingestion_dead_letters_total')!.get()).values.reduce((a, v) => a + v.value, 0);
    expect(dropped).toBe(1);
    await producer.stop();
  });

  it('stops at once while waiting to retry a failed send', async () => {
    const { kafka } = fakeKafka(() => Promise.reject(new Error('broker away')));
    const producer = new TickProducer(kafka, { bufferMaxBytes: 1 << 20, lanes: 1, log, metrics: createIngestMetrics({ defaultMetrics: false }) });
    await producer.connect();
    producer.produce('trades', 'binance:spot:BTCUSDT', trade('BTCUSDT', 1));
    await new Promise((r) => setTimeout(r, 100));
    expect(producer.health.failures).toBeGreaterThan(0);
    const t0 = Date.now();
    await producer.stop(50);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(producer.depth).toBe(1); // kept, not claimed: the next start backfills it
  });
});
