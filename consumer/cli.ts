// `tickwatch write`: the tick writers, one consumer group per table family, with /metrics and /healthz.
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Command } from '../common/cli.ts';
import type { Config } from '../common/config.ts';
import { createClient, pgSession } from '../common/db.ts';
import { startHttpEndpoint } from '../common/http.ts';
import { createKafka, ensureTopics } from '../common/kafka.ts';
import { runWorker } from '../common/lifecycle.ts';
import type { Logger } from '../common/log.ts';
import { migrate } from '../sql/migrate.ts';
import { retryDelayMs } from './backoff.ts';
import { createWriterMetrics } from './metrics.ts';
import { familyCodec } from './families.ts';
import { FAMILIES, startWriters, type Family } from './writer.ts';

/** The schema (writer_offsets included) must exist before the first batch; the database may still be starting. */
async function migrateWithRetry(config: Config, log: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const client = createClient(config, 'tickwatch-writer-migrate');
    client.on('error', () => {});
    try {
      await client.connect();
      await migrate(pgSession(client), config, log);
      return;
    } catch (err) {
      const delayMs = retryDelayMs(attempt, config.writer.retryMinMs, config.writer.retryMaxMs);
      log.warn({ err, attempt, delayMs }, 'database not ready for migration: retrying');
      await sleep(delayMs);
    } finally {
      await client.end().catch(() => {});
    }
  }
}

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
      const admin = kafka.admin();
      await admin.connect();
      try {
        await ensureTopics(admin, [...families.map((f) => familyCodec(f).topic(config)), config.kafka.topics.deadLetter], config);
      } finally {
        await admin.disconnect();
      }
      await migrateWithRetry(config, log);
      const set = await startWriters({ config, log, kafka, metrics, families });
      const http = await startHttpEndpoint({ host: config.http.host, port: config.http.ports.writer, registry, health: () => set.health() });
      log.info({ families, port: http.port }, 'writers running');
      return {
        done: set.done,
        stop: async () => {
          await set.stop();
          await http.close();
        },
      };
    });
  },
};
