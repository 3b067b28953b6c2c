// The one place integration tests get their real services from. KAFKA_BROKERS and DATABASE_URL name running
// services (scripts/services.sh up provides them); when unset and a Docker engine exists, containers are started with
// testcontainers; otherwise the test is skipped with a message naming what is missing, except under CI=true, where
// a missing service fails the run.
import pg from 'pg';
import { loadConfig, type Config } from '../common/config.ts';
import { createKafka, ensureTopics, type Admin, type KafkaClients } from '../common/kafka.ts';
import { createLogger } from '../common/log.ts';
import { freePort } from './ports.ts';

const inCi = process.env.CI === 'true';

export interface Services {
  readonly kafkaBrokers?: string[];
  readonly databaseUrl?: string;
}

type Stop = () => Promise<void>;
const stops: Stop[] = [];

async function dockerAvailable(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

async function startKafkaContainer(): Promise<string[]> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const port = await freePort();
  const c = await new GenericContainer('apache/kafka:3.9.1')
    .withExposedPorts({ container: 9092, host: port })
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: 'PLAINTEXT://:9092,CONTROLLER://:9093',
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${port}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .start();
  stops.push(async () => void (await c.stop()));
  return [`127.0.0.1:${port}`];
}

async function startPostgresContainer(): Promise<string> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const c = await new GenericContainer('timescale/timescaledb:latest-pg15')
    .withExposedPorts(5432)
    .withEnvironment({ POSTGRES_USER: 'tickwatch', POSTGRES_PASSWORD: 'tickwatch', POSTGRES_DB: 'tickwatch' })
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();
  stops.push(async () => void (await c.stop()));
  return `postgres://tickwatch:tickwatch@${c.getHost()}:${c.getMappedPort(5432)}/tickwatch`;
}

let found: Promise<Services> | undefined;

/** Finds (or starts) the services once per test process. */
export function findServices(): Promise<Services> {
  found ??= (async () => {
    let kafkaBrokers = process.env.KAFKA_BROKERS ? process.env.KAFKA_BROKERS.split(',') : undefined;
    let databaseUrl = process.env.DATABASE_URL || undefined;
    if ((!kafkaBrokers || !databaseUrl) && (await dockerAvailable())) {
      kafkaBrokers ??= await startKafkaContainer();
      databaseUrl ??= await startPostgresContainer();
    }
    return { kafkaBrokers, databaseUrl };
  })();
  return found;
}

/**
 * For `describe.skipIf(...)`: the reason a test cannot run here, or undefined when it can.
 * Under CI=true a missing service throws instead, so CI never passes by skipping.
 */
export async function missing(...needs: ('kafka' | 'postgres')[]): Promise<string | undefined> {
  const s = await findServices();
  const absent = needs.filter((n) => (n === 'kafka' ? !s.kafkaBrokers : !s.databaseUrl));
  if (absent.length === 0) return undefined;
  const what = absent.map((n) => (n === 'kafka' ? 'KAFKA_BROKERS (a Kafka broker)' : 'DATABASE_URL (a PostgreSQL server)')).join(' and ');
  const msg = `needs ${what}: run 'bash scripts/services.sh up' and 'eval "$(bash scripts/services.sh env)"', or install Docker`;
  if (inCi) throw new Error(`CI=true but a service is missing: ${msg}`);
  console.warn(`[skipped] ${msg}`);
  return msg;
}

/** A validated config pointing at the test services, with overrides (env variable names). */
export async function testConfig(overrides: Record<string, string> = {}): Promise<Config> {
  const s = await findServices();
  return loadConfig({
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    // scripts/test.sh runs the suite once per database: TIMESCALEDB=on (native TimescaleDB), then off (plain).
    ...(process.env.TIMESCALEDB ? { TIMESCALEDB: process.env.TIMESCALEDB } : {}),
    // The tests store the recorded captures of 2024: a retention policy would drop them at its first run.
    TICK_RETENTION: process.env.TICK_RETENTION ?? 'none',
    ...(s.kafkaBrokers ? { KAFKA_BROKERS: s.kafkaBrokers.join(',') } : {}),
    ...(s.databaseUrl ? { DATABASE_URL: s.databaseUrl } : {}),
    ...overrides,
  });
}

export const testLog = createLogger(process.env.TEST_LOG_LEVEL ?? 'warn', 'test');

/** A fresh, empty database on the test server, dropped by the returned function. */
export async function freshDatabase(prefix = 'test'): Promise<{ url: string; drop: Stop }> {
  const s = await findServices();
  if (!s.databaseUrl) throw new Error('freshDatabase needs DATABASE_URL');
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`.toLowerCase();
  const admin = new pg.Client({ connectionString: s.databaseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(s.databaseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: s.databaseUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface ConnectedDatabase {
  readonly url: string;
  readonly client: pg.Client;
  /** Ends the client and drops the database. */
  close(): Promise<void>;
}

/** A fresh database with a client connected to it. */
export async function freshDatabaseClient(prefix = 'test'): Promise<ConnectedDatabase> {
  const fresh = await freshDatabase(prefix);
  const client = new pg.Client({ connectionString: fresh.url });
  try {
    await client.connect();
  } catch (err) {
    await fresh.drop();
    throw err;
  }
  return {
    url: fresh.url,
    client,
    close: async () => {
      await client.end();
      await fresh.drop();
    },
  };
}

/** A unique topic or group name per test run, so reruns never read old data. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/**
 * Topics named for one test (ingestionTopicEnv, stackTopicEnv, testTopic): deleted after each integration test file
 * (test/cleanup.ts). Left behind, they pile up on a developer's broker run after run; each partition holds an open file,
 * and about 20,000 of them stopped one (Too many open files).
 */
const madeTopics = new Set<string>();

/** A topic name of this test's own, deleted with the others after the test file. */
export function testTopic(prefix: string): string {
  const name = uniqueName(prefix);
  madeTopics.add(name);
  return name;
}

/** The ingestion topics of one run (env variables), each named `<run>.<kind>`, so no run reads another's ticks. */
export function ingestionTopicEnv(run: string): Record<string, string> {
  const env = {
    TOPIC_TRADES: `${run}.trades`,
    TOPIC_AGG_TRADES: `${run}.aggtrades`,
    TOPIC_BOOK_TICKERS: `${run}.booktickers`,
    TOPIC_GAPS: `${run}.gaps`,
    TOPIC_DEAD_LETTER: `${run}.deadletter`,
  };
  for (const t of Object.values(env)) madeTopics.add(t);
  return env;
}

/** Every topic of one run of the whole stack, and its writers' consumer groups, named after the run. */
export function stackTopicEnv(run: string): Record<string, string> {
  madeTopics.add(`${run}.bars`).add(`${run}.alerts`);
  return { ...ingestionTopicEnv(run), TOPIC_BARS: `${run}.bars`, TOPIC_ALERTS: `${run}.alerts`, WRITER_GROUP_PREFIX: run };
}

/** Deletes the topics named for this file's tests (those never made, or gone already, are fine). */
export async function deleteTestTopics(): Promise<void> {
  const topics = [...madeTopics];
  madeTopics.clear();
  if (topics.length === 0 || !process.env.KAFKA_BROKERS) return;
  const admin = createKafka(await testConfig(), testLog, 'test-cleanup').admin();
  try {
    const existing = new Set(await admin.listTopics());
    const gone = topics.filter((t) => existing.has(t));
    if (gone.length > 0) await admin.deleteTopics({ topics: gone });
  } catch (err) {
    testLog.warn({ err: (err as Error).message, topics: topics.length }, 'deleting the test topics failed');
  } finally {
    await admin.close();
  }
}

export interface TestKafka {
  readonly config: Config;
  readonly kafka: KafkaClients;
  readonly admin: Admin;
  /** The topics ensureTopics created (all of the test's, unless they existed already). */
  readonly created: string[];
  /** Deletes the test's topics (those already gone are fine) and disconnects the admin. */
  close(): Promise<void>;
}

/** A client of the test broker with a connected admin, and the test's own `topics` ensured. */
export async function testKafka(clientId: string, topics: readonly string[], overrides: Record<string, string> = {}): Promise<TestKafka> {
  const config = await testConfig(overrides);
  const kafka = createKafka(config, testLog, clientId);
  const admin = kafka.admin();
  return {
    config,
    kafka,
    admin,
    created: await ensureTopics(admin, topics, config),
    close: async () => {
      await admin.deleteTopics({ topics: [...topics] }).catch(() => undefined);
      await admin.close();
    },
  };
}

export async function stopServices(): Promise<void> {
  for (const stop of stops.splice(0)) await stop();
}
