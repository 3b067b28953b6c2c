// What the ingestion end-to-end tests (books, venues) run on: a fresh migrated database, the ingestion worker on the
// stand-in exchange with its own topics, the writers of the families under test, and a pool to read what they stored.
import pg from 'pg';
import { Registry } from 'prom-client';
import type { Config } from '../common/config.ts';
import { createClient, pgSession } from '../common/db.ts';
import { createKafka } from '../common/kafka.ts';
import type { Family } from '../consumer/families.ts';
import { createWriterMetrics } from '../consumer/metrics.ts';
import { startWriters } from '../consumer/writer.ts';
import { migrate } from '../sql/migrate.ts';
import type { BinanceServer } from '../test/binance-server.ts';
import { ingestTestConfig } from '../test/binance-topics.ts';
import { freshDatabase, testLog, testTopic, uniqueName } from '../test/services.ts';
import { startIngestion, type IngestionWorker } from './worker.ts';

export interface EndToEnd {
  readonly config: Config;
  readonly db: Awaited<ReturnType<typeof freshDatabase>>;
  readonly w: IngestionWorker;
  readonly writers: Awaited<ReturnType<typeof startWriters>>;
  readonly q: pg.Pool;
}

/** `name` names the database, the writer group and the Kafka clients; `overrides` adds to the test configuration. */
export async function startEndToEnd(name: string, server: BinanceServer, families: readonly Family[], overrides: Record<string, string>): Promise<EndToEnd> {
  const db = await freshDatabase(`${name}_e2e`);
  const config = await ingestTestConfig(server, {
    ...overrides,
    TOPIC_BOOKS: testTopic('ingest-books'),
    DATABASE_URL: db.url,
    WRITER_GROUP_PREFIX: uniqueName(`${name}-e2e`),
    BATCH_MAX_WAIT_MS: '100',
  });
  const client = createClient(config, `${name}-e2e-migrate`);
  await client.connect();
  await migrate(pgSession(client), config, testLog);
  await client.end();

  const w = await startIngestion(config, { log: testLog, http: false });
  const writers = await startWriters({ config, log: testLog, kafka: createKafka(config, testLog, `${name}-writer`), metrics: createWriterMetrics(new Registry()), families });
  const q = new pg.Pool({ connectionString: db.url, max: 1 });
  return { config, db, w, writers, q };
}
