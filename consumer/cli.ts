// `tickwatch write`: the tick writers, one consumer group per table family, with /metrics and /healthz.
import { Registry, collectDefaultMetrics } from 'prom-client';
import { retryUntilReady } from '../common/backoff.ts';
import type { Command } from '../common/cli.ts';
import type { Config } from '../common/config.ts';
import { createClient, hasOwnRole, pgSession } from '../common/db.ts';
import { startHttpEndpoint } from '../common/http.ts';
import { createKafka, createTopics } from '../common/kafka.ts';
import { runWorker } from '../common/lifecycle.ts';
import { migrate } from '../sql/migrate.ts';
import { createWriterMetrics } from './metrics.ts';
import { familyCodec, FAMILIES, type Family } from './families.ts';
import { startWriters, type WriterSet } from './writer.ts';

export const writeCommand: Command = {
  name: 'write',
  summary: 'write ticks and order books from Kafka into the database (COPY, exactly-once effect)',
  usage: [
    'usage: tickwatch write [--family trade|aggTrade|bookTicker|book|gap]...',
    '',
    'Consumes the trade, aggTrade, bookTicker, book and gap topics (one consumer group per family, WRITER_GROUP_PREFIX-<family>)',
    'and COPYs the records into trades, agg_trades, book_tickers, books with their top_of_book analytics, and gap_events. The offsets',
    'of each partition are stored in the same transaction as its rows (writer_offsets). Serves /metrics and /healthz on',
    'HTTP_HOST:WRITER_HTTP_PORT.',
    '',
    '  --family <name>   run only this family (repeatable); default: all five',
  ].join('\n'),
  options: { family: { type: 'string', multiple: true } },
  async run({ config, log, values }) {
    const asked = (values.family as string[] | undefined) ?? [...FAMILIES];
    const unknown = asked.filter((f) => !FAMILIES.includes(f as Family));
    if (unknown.length > 0) {
      process.stderr.write(`unknown family: ${unknown.join(', ')} (choose from ${FAMILIES.join(', ')})\n`);
      return 1;
    }
    const families = [...new Set(asked)] as Family[];
    return runWorker(log, async () => {
      const registry = new Registry();
      collectDefaultMetrics({ register: registry, prefix: 'tickwatch_writer_' });
      const metrics = createWriterMetrics(registry);
      const kafka = createKafka(config, log, 'writer');
      let set: WriterSet | undefined;
      // Up from the start: while the writer waits for its dependencies, /healthz says so and /metrics counts the waits.
      const http = await startHttpEndpoint({
        host: config.http.host,
        port: config.http.ports.writer,
        registry,
        health: () => set?.health() ?? { ok: false, writers: [], starting: true },
      });
      // Started before the broker or the database is up (or during a restart of either), the writer waits for them;
      // the database waits count as writer retries, so a restart during start-up shows in /metrics too.
      const startupRetry = { minMs: config.writer.retryMinMs, maxMs: config.writer.retryMaxMs, log };
      const topics = [...families.map((f) => familyCodec(f).topic(config)), config.kafka.topics.deadLetter];
      await retryUntilReady('creating the topics', () => createTopics(kafka, topics, config), startupRetry);
      // The schema (writer_offsets included) must exist before the first batch. With a role of its own the writer
      // cannot migrate (that is DATABASE_URL's owner's job: `tickwatch migrate`); it waits until the schema is there.
      const ownRole = hasOwnRole(config, 'writer');
      await retryUntilReady(
        ownRole ? 'waiting for the schema (tickwatch migrate)' : 'migrating the database',
        async () => {
          const client = createClient(config, 'tickwatch-writer-migrate', log, ownRole ? 'writer' : undefined); // a connection lost fails the attempt, retried
          try {
            await client.connect();
            if (!ownRole) await migrate(pgSession(client), config, log);
            // Its rights are granted last (sql/roles.sql, after every table, function and trigger): having them means
            // migrate has finished in this database, whatever a role of the same name may hold elsewhere on the server.
            else if ((await client.query("SELECT CASE WHEN to_regclass('writer_offsets') IS NULL THEN false ELSE has_table_privilege('writer_offsets', 'INSERT') END AS ready")).rows[0]?.ready !== true) {
              throw new Error('the schema is not there yet: run tickwatch migrate');
            }
          } finally {
            await client.end().catch(() => {});
          }
        },
        { ...startupRetry, onRetry: () => metrics.retries.inc({ table: 'schema_migrations' }) },
      );
      const writers = await startWriters({ config, log, kafka, metrics, families });
      set = writers;
      log.info({ families, port: http.port }, 'writers running');
      return {
        done: writers.done,
        stop: async () => {
          await writers.stop();
          await http.close();
        },
      };
    });
  },
};
