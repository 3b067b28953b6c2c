// Test scenarios for the writers against real Kafka and PostgreSQL: a fresh database and unique topics and groups per
// run, ticks produced the way ingestion produces them, and the tables read back independently of the COPY encoder
// (values rendered by PostgreSQL itself) to compare with the produced ticks.
import pg from 'pg';
import type { Config } from '../common/config.ts';
import { createClient, pgSession } from '../common/db.ts';
import { createKafka, ensureTopics, kafkaMessage, topicOffsets, type KafkaClients, type KafkaProducer, type OutgoingRecord } from '../common/kafka.ts';
import { followTopics } from '../common/kafka-read.ts';
import { encodeRecord, recordHeaders, rowTimeMs, tickKey, type Book, type DeadLetter, type Tick } from '../common/records.ts';
import { migrate } from '../sql/migrate.ts';
import { freshDatabase, testConfig, testLog, testTopic, uniqueName } from '../test/services.ts';

export interface Scenario {
  readonly config: Config;
  readonly kafka: KafkaClients;
  readonly producer: KafkaProducer;
  /** Environment for a writer child process with the same settings. */
  readonly env: Record<string, string>;
  /** Produces records to their family's topic (books to TOPIC_BOOKS), as ingestion does. */
  produce(records: readonly (Tick | Book)[]): Promise<void>;
  produceRaw(topic: string, messages: OutgoingRecord[]): Promise<void>;
  /** Resolves when writer_offsets covers every record produced so far on every family topic. */
  waitUntilWritten(timeoutMs: number): Promise<void>;
  readRows(): Promise<Set<string>>;
  query<R extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

/**
 * A scenario with its own database and topics. `databaseUrl` points it at another server (the private PostgreSQL);
 * `env` are extra configuration variables.
 */
export async function createScenario(name: string, opts: { env?: Record<string, string>; databaseUrl?: string } = {}): Promise<Scenario> {
  let dropDb: (() => Promise<void>) | undefined;
  let url = opts.databaseUrl;
  if (!url) {
    const db = await freshDatabase(`writer_${name}`);
    url = db.url;
    dropDb = db.drop;
  }
  const env: Record<string, string> = {
    DATABASE_URL: url,
    TOPIC_TRADES: testTopic(`${name}-trades`),
    TOPIC_AGG_TRADES: testTopic(`${name}-aggtrades`),
    TOPIC_BOOK_TICKERS: testTopic(`${name}-booktickers`),
    TOPIC_DEAD_LETTER: testTopic(`${name}-deadletter`),
    TOPIC_BOOKS: testTopic(`${name}-books`),
    TOPIC_GAPS: testTopic(`${name}-gaps`),
    WRITER_GROUP_PREFIX: uniqueName(`${name}-writer`),
    WRITER_SESSION_TIMEOUT_MS: '6000',
    WRITER_RETRY_MIN_MS: '100',
    WRITER_RETRY_MAX_MS: '2000',
    BATCH_MAX_WAIT_MS: '100',
    WRITER_HTTP_PORT: '0',
    ...opts.env,
  };
  const config = await testConfig(env);
  const fullEnv = { ...env, KAFKA_BROKERS: config.kafka.brokers.join(','), LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn' };

  const client = createClient(config, 'writer-test-migrate');
  await client.connect();
  await migrate(pgSession(client), config, testLog);
  await client.end();

  const kafka = createKafka(config, testLog, 'writer-test');
  const admin = kafka.admin();
  const { trade, aggTrade, bookTicker, deadLetter, gap } = config.kafka.topics;
  await ensureTopics(admin, [trade, aggTrade, bookTicker, deadLetter, gap, config.books.topic], config);
  // Not idempotent (several requests in flight), acks = all, keys placed as ingestion places them.
  const producer = kafka.producer({ idempotent: false });
  const produced = new Map<string, number>();

  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => {});
  const query = async <R extends Record<string, unknown>>(sql: string, params?: unknown[]) => (await pool.query<R>(sql, params)).rows;

  const produceRaw = async (topic: string, messages: OutgoingRecord[]) => {
    // 1,000 records per request stays under the broker's message size limit; a few requests in flight.
    const chunks: OutgoingRecord[][] = [];
    for (let i = 0; i < messages.length; i += 1_000) chunks.push(messages.slice(i, i + 1_000));
    for (let i = 0; i < chunks.length; i += 8) {
      await Promise.all(chunks.slice(i, i + 8).map((chunk) => producer.send({ messages: chunk.map((m) => kafkaMessage(topic, m)) })));
    }
    // Counted from the broker, so records of any origin (raw, poison) are covered.
    const offsets = await topicOffsets(admin, topic);
    produced.set(topic, offsets.reduce((n, o) => n + Number(o.high), 0));
  };

  return {
    config,
    kafka,
    producer,
    env: fullEnv,
    produce: async (ticks) => {
      const byTopic = new Map<string, OutgoingRecord[]>();
      for (const t of ticks) {
        const topic = t.type === 'book' ? config.books.topic : config.kafka.topics[t.type];
        let list = byTopic.get(topic);
        if (!list) byTopic.set(topic, (list = []));
        list.push({ key: tickKey(t), value: encodeRecord(t), headers: recordHeaders(t.type) });
      }
      for (const [topic, messages] of byTopic) await produceRaw(topic, messages);
    },
    produceRaw,
    waitUntilWritten: async (timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        let ok = true;
        let rows: { topic: string; next: string }[] = [];
        try {
          rows = await query<{ topic: string; next: string }>('SELECT topic, sum(next_offset)::text AS next FROM writer_offsets GROUP BY topic');
        } catch {
          ok = false; // the database may be down in a test
        }
        const stored = new Map(rows.map((r) => [r.topic, Number(r.next)]));
        for (const [topic, n] of produced) if ((stored.get(topic) ?? 0) < n) ok = false;
        if (ok) return;
        if (Date.now() > deadline) {
          throw new Error(`not all records written after ${timeoutMs} ms: produced ${JSON.stringify([...produced])}, stored ${JSON.stringify([...stored])}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    readRows: () => readRows(pool),
    query,
    close: async () => {
      await producer.close();
      await admin.close();
      await pool.end();
      await dropDb?.();
    },
  };
}

// Every column rendered by PostgreSQL: times as exact epoch ms / µs, numerics as their stored text.
const READ_SQL = {
  trades: `SELECT 'trade|' || exchange || '|' || market || '|' || symbol || '|' || (extract(epoch FROM time) * 1000)::bigint || '|' || trade_id
      || '|' || price || '|' || quantity || '|' || buyer_is_maker || '|' || side || '|' || (extract(epoch FROM event_time) * 1000)::bigint
      || '|' || (extract(epoch FROM receive_time) * 1000000)::bigint AS r FROM trades`,
  agg_trades: `SELECT 'aggTrade|' || exchange || '|' || market || '|' || symbol || '|' || (extract(epoch FROM time) * 1000)::bigint || '|' || agg_id
      || '|' || first_trade_id || '|' || last_trade_id || '|' || price || '|' || quantity || '|' || buyer_is_maker || '|' || side
      || '|' || (extract(epoch FROM event_time) * 1000)::bigint || '|' || (extract(epoch FROM receive_time) * 1000000)::bigint AS r FROM agg_trades`,
  book_tickers: `SELECT 'bookTicker|' || exchange || '|' || market || '|' || symbol || '|' || (extract(epoch FROM time) * 1000)::bigint
      || '|' || update_id || '|' || bid_price || '|' || bid_qty || '|' || ask_price || '|' || ask_qty
      || '|' || coalesce((extract(epoch FROM exchange_time) * 1000)::bigint::text, 'null')
      || '|' || coalesce((extract(epoch FROM event_time) * 1000)::bigint::text, 'null')
      || '|' || (extract(epoch FROM receive_time) * 1000000)::bigint AS r FROM book_tickers`,
} as const;

async function readRows(pool: pg.Pool): Promise<Set<string>> {
  const out = new Set<string>();
  for (const sql of Object.values(READ_SQL)) {
    const res = await pool.query<{ r: string }>(sql);
    for (const row of res.rows) {
      if (out.has(row.r)) throw new Error(`duplicate row in the database: ${row.r}`);
      out.add(row.r);
    }
  }
  return out;
}

/** The row a tick must become, in the READ_SQL rendering. */
export function expectedRow(t: Tick): string {
  const b = `${t.type}|${t.exchange}|${t.market}|${t.symbol}`;
  switch (t.type) {
    case 'trade':
      return `${b}|${t.exchangeTimeMs}|${t.tradeId}|${t.price}|${t.quantity}|${t.buyerIsMaker}|${t.side}|${t.eventTimeMs}|${t.receiveTimeUs}`;
    case 'aggTrade':
      return (
        `${b}|${t.exchangeTimeMs}|${t.aggId}|${t.firstTradeId}|${t.lastTradeId}|${t.price}|${t.quantity}|${t.buyerIsMaker}|${t.side}` +
        `|${t.eventTimeMs}|${t.receiveTimeUs}`
      );
    case 'bookTicker':
      return (
        `${b}|${rowTimeMs(t)}|${t.updateId}|${t.bidPrice}|${t.bidQty}|${t.askPrice}|${t.askQty}` +
        `|${t.exchangeTimeMs ?? 'null'}|${t.eventTimeMs ?? 'null'}|${t.receiveTimeUs}`
      );
  }
}

/** Compares table contents with the distinct produced ticks; returns counts of missing and unexpected rows, with samples. */
export function compareRows(actual: Set<string>, ticks: readonly Tick[]) {
  const expected = new Set(ticks.map(expectedRow));
  const missing = [...expected].filter((r) => !actual.has(r));
  const unexpected = [...actual].filter((r) => !expected.has(r));
  return { expected: expected.size, actual: actual.size, missing: missing.length, unexpected: unexpected.length, samples: [...missing.slice(0, 3), ...unexpected.slice(0, 3)] };
}

/** The first `n` dead letters of the scenario's dead-letter topic, then half a second to show there are no more. */
export async function readDeadLetters(s: Scenario, n: number): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  let enough!: () => void;
  const reached = new Promise<void>((resolve) => (enough = resolve));
  const reader = await followTopics(s.kafka, [s.config.kafka.topics.deadLetter], testLog, (_topic, _partition, m) => {
    out.push(JSON.parse(m.value!.toString()) as DeadLetter);
    if (out.length >= n) enough();
  });
  try {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([reached, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`only ${out.length} dead letters after 30 s`)), 30_000)))]);
    clearTimeout(timer);
    await new Promise((r) => setTimeout(r, 500)); // no extra letters beyond n
  } finally {
    await reader.stop();
  }
  return out;
}
