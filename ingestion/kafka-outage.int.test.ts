// The Kafka broker stopped for 10 s in the middle of the stream and started again: nothing is lost. This uses a
// second, private broker (own port and state folder, via scripts/services.sh) so that nobody else's broker stops.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinanceServer, expectedIds, loadRecording, missingRecordings } from '../test/binance-server.ts';
import { deliveredAll, idsBySymbol, ingestTestConfig, metricValue, readTopics, ticksOf, waitFor } from '../test/binance-topics.ts';
import { missing, testLog } from '../test/services.ts';
import { startIngestion } from './worker.ts';

const run = promisify(execFile);
const PRIVATE = {
  ...process.env,
  KAFKA_PORT: '19192',
  KAFKA_CONTROLLER_PORT: '19193',
  KAFKA_TLS_PORT: '19194',
  TICKWATCH_STATE: `/tmp/tickwatch-ingest-outage-${process.pid}`,
};
const services = (cmd: 'up' | 'down') => run('bash', ['scripts/services.sh', cmd, 'kafka'], { env: PRIVATE, timeout: 180_000 });

// The shared broker must exist too (it proves the machine can run Kafka); the private one is started here.
const skip = (await missing('kafka')) ?? missingRecordings();

describe.skipIf(skip)('ingestion: Kafka outage', () => {
  beforeAll(async () => {
    await services('up');
  });
  afterAll(async () => {
    await services('down').catch(() => undefined);
    await run('rm', ['-rf', PRIVATE.TICKWATCH_STATE]);
  });

  it('buffers, then stops reading the sockets, and backfills what it could not take: nothing lost', async () => {
    const rec = await loadRecording({ maxEvents: 30_000 });
    // Like Binance, the server drops a client that stops reading (the worker pauses its sockets when its buffer is full).
    const server = await BinanceServer.start({ recording: rec, rate: 2_000, autoplay: false, slowClientBytes: 1 << 20 });
    const config = await ingestTestConfig(server, { KAFKA_BROKERS: '127.0.0.1:19192', PRODUCER_BUFFER_MAX: '4000' });
    const w = await startIngestion(config, { log: testLog });
    try {
      await waitFor(() => server.openConnections === 1, 10_000, 'the connection');
      server.play();
      await waitFor(() => server.published >= 3_000, 30_000, 'the stream to start');
      await services('down');
      const downAt = Date.now();
      await waitFor(() => w.producer.depth > 0 && w.health().paused === true, 20_000, 'the buffer to fill and the sockets to pause');
      await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - downAt))));
      expect(w.producer.depth).toBeLessThanOrEqual(4000 + 2000);
      await services('up');
      await server.finished;
      await waitFor(() => w.feeds.every((f) => f.state === 'open'), 30_000, 'the connection to be open');
      await deliveredAll(w, config, rec);
      const t = config.kafka.topics;
      const topics = await readTopics(config, [t.trade, t.aggTrade]);
      // If the broker went down holding a written but unacknowledged batch, a new producer session resends it:
      // such repeats are allowed here (the writers drop them by id); a missing or reordered id is not.
      for (const [topic, type] of [[t.trade, 'trade'], [t.aggTrade, 'aggTrade']] as const) {
        const got = idsBySymbol(ticksOf(topics.get(topic)!));
        const firsts = new Map([...got].map(([s, ids]) => [s, [...new Set(ids)]]));
        expect(firsts).toEqual(expectedIds(rec, type));
        const repeats = [...got.values()].reduce((n, ids) => n + ids.length - new Set(ids).size, 0);
        console.info(`kafka outage: ${type} repeats after the broker restart: ${repeats}`);
      }
      expect(await metricValue(w.metrics.registry, 'tickwatch_ingestion_gap_ids_total', { outcome: 'lost' })).toBe(0);
    } finally {
      await w.stop('test over');
      await server.close();
    }
  });
});
