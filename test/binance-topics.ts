// Test helpers around the ingestion worker and its topics: a config pointing at the local Binance stand-in with
// fresh topic names, reading a run's topics back from Kafka, and waiting for a condition.
import type { Config } from '../common/config.ts';
import { createKafka, topicOffsets, type KafkaClients } from '../common/kafka.ts';
import { readRanges, type PartitionRange } from '../common/kafka-read.ts';
import { decodeTick, type Tick } from '../common/records.ts';
import type { BinanceServer, Recording } from './binance-server.ts';
import { ingestionTopicEnv, testConfig, testLog, uniqueName } from './services.ts';

/** Config for one ingestion test run: the local server, fresh topics, short timers, an ephemeral HTTP port. */
export async function ingestTestConfig(server: BinanceServer, overrides: Record<string, string> = {}): Promise<Config> {
  return testConfig({
    BINANCE_WS_URL: server.wsUrl,
    BINANCE_REST_URL: server.restUrl,
    ...ingestionTopicEnv(uniqueName('ingest')),
    KAFKA_PARTITIONS: '3',
    WATCHDOG_SECONDS: '5',
    RECONNECT_MIN_MS: '50',
    RECONNECT_MAX_MS: '1000',
    HTTP_HOST: '127.0.0.1',
    INGESTION_HTTP_PORT: '0',
    ...overrides,
  });
}

export interface TopicRecord {
  readonly partition: number;
  readonly offset: number;
  readonly key: string;
  readonly value: string;
  readonly headers: Record<string, string>;
}

/** Everything in the topics up to their current end, per topic, in partition order. */
export async function readTopics(config: Config, topics: readonly string[], kafka: KafkaClients = createKafka(config, testLog, 'test-reader')): Promise<Map<string, TopicRecord[]>> {
  const admin = kafka.admin();
  const ranges: PartitionRange[] = [];
  try {
    for (const topic of topics) for (const p of await topicOffsets(admin, topic)) if (p.high > p.low) ranges.push({ topic, partition: p.partition, from: p.low, to: p.high });
  } finally {
    await admin.close();
  }
  const out = new Map<string, TopicRecord[]>(topics.map((t) => [t, []]));
  await readRanges(
    kafka,
    ranges,
    testLog,
    (topic, partition, m) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = String(v);
      out.get(topic)!.push({ partition, offset: Number(m.offset), key: m.key?.toString() ?? '', value: m.value?.toString() ?? '', headers });
    },
    { timeoutMs: 60_000 },
  );
  return out;
}

/** Ticks of a topic decoded (every one must pass decodeTick), in topic order per partition. */
export function ticksOf(records: readonly TopicRecord[]): Tick[] {
  return records.map((r) => decodeTick(Buffer.from(r.value), r.headers['schema-version']));
}

/** Ids per symbol as they sit in the topic (each symbol lives in one partition, so this is its order). */
export function idsBySymbol(ticks: readonly Tick[]): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const t of ticks) {
    if (t.type === 'bookTicker') continue;
    let l = m.get(t.symbol);
    if (!l) m.set(t.symbol, (l = []));
    l.push(t.type === 'trade' ? t.tradeId : t.aggId);
  }
  return m;
}

/** Book tickers the worker should pass on: the recording's, without repeated update ids. */
export function expectedBookTickers(rec: Recording): Map<string, number> {
  const last = new Map<string, number>();
  const count = new Map<string, number>();
  for (const e of rec.events) {
    if (e.type !== 'bookTicker' || e.id <= (last.get(e.symbol) ?? -1)) continue;
    last.set(e.symbol, e.id);
    count.set(e.symbol, (count.get(e.symbol) ?? 0) + 1);
  }
  return count;
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Reads one counter or gauge value from a prom-client registry ('' label filter = sum over all). */
export async function metricValue(registry: import('prom-client').Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const data = await m.get();
  return data.values
    .filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
    .reduce((s, v) => s + v.value, 0);
}

/**
 * Waits until the stand-in has sent everything and the worker has delivered it all: nothing buffered, held or being
 * backfilled, and the received count no longer moving (frames can still sit in the socket).
 */
export async function drained(
  w: { metrics: { registry: import('prom-client').Registry }; producer: { depth: number }; pipeline: { held: number; backfilling: number } },
  server: BinanceServer,
  timeoutMs = 60_000,
): Promise<void> {
  await server.finished;
  await waitFor(() => w.producer.depth === 0 && w.pipeline.held === 0 && w.pipeline.backfilling === 0, timeoutMs, 'the worker to deliver everything');
  let last = -1;
  await waitFor(async () => {
    const n = await metricValue(w.metrics.registry, 'tickwatch_ingestion_messages_received_total');
    const still = n === last && w.producer.depth === 0;
    last = n;
    return still;
  }, 30_000, 'the stream to settle');
}

/**
 * Waits until the worker has had Kafka acknowledge at least as many trades and aggTrades as the recording holds
 * (frames can still sit unread in a socket that was paused when the server has long finished), and holds nothing.
 */
export async function deliveredAll(
  worker: { metrics: { registry: import('prom-client').Registry }; producer: { depth: number }; pipeline: { held: number; backfilling: number } },
  config: Config,
  rec: Recording,
  timeoutMs = 90_000,
): Promise<void> {
  const want = (type: 'trade' | 'aggTrade') => rec.events.filter((e) => e.type === type).length;
  const t = config.kafka.topics;
  await waitFor(
    async () =>
      worker.producer.depth === 0 &&
      worker.pipeline.held === 0 &&
      worker.pipeline.backfilling === 0 &&
      (await metricValue(worker.metrics.registry, 'tickwatch_ingestion_records_produced_total', { topic: t.trade })) >= want('trade') &&
      (await metricValue(worker.metrics.registry, 'tickwatch_ingestion_records_produced_total', { topic: t.aggTrade })) >= want('aggTrade'),
    timeoutMs,
    'every recorded trade and aggTrade to be acknowledged by Kafka',
  );
}
