// The worker killed (SIGKILL) and started again: the new process finds the last ids in Kafka, sees the time it was
// down as a hole in the ids and backfills it over REST. Runs the real CLI (`tickwatch ingest`) as a child process.
import { describe, expect, it } from 'vitest';
import type { Config } from '../common/config.ts';
import { BinanceServer, expectedIds, loadRecording, missingRecordings } from '../test/binance-server.ts';
import { idsBySymbol, ingestTestConfig, readTopics, ticksOf, waitFor } from '../test/binance-topics.ts';
import { health, ingestEnv, producedTo, spawnIngest as spawnWorker } from '../test/ingest-process.ts';
import { freePort } from '../test/ports.ts';
import { missing } from '../test/services.ts';

const skip = (await missing('kafka')) ?? missingRecordings();

describe.skipIf(skip)('ingestion: worker killed and restarted', () => {
  it('backfills the hole the dead worker left: every id once, in order', async () => {
    const rec = await loadRecording({ maxEvents: 30_000 });
    const server = await BinanceServer.start({ recording: rec, rate: 3_000, autoplay: false });
    const config: Config = await ingestTestConfig(server);
    const port = await freePort();
    const t = config.kafka.topics;
    const env: Record<string, string> = ingestEnv(config, server, port);
    let worker = spawnWorker(env);
    try {
      await waitFor(() => server.openConnections === 1, 60_000, 'the first worker to connect');
      server.play();
      await waitFor(() => server.published >= 8_000, 30_000, 'the stream to run');
      worker.kill('SIGKILL');
      await new Promise((r) => worker.once('exit', r));
      await waitFor(() => server.published >= 14_000, 30_000, 'the stream to run on without the worker');
      worker = spawnWorker(env);
      await server.finished;
      await waitFor(
        async () => {
          const h = await health(port);
          return h !== undefined && h.producerBufferDepth === 0 && h.heldTicks === 0 && h.backfilling === 0 && (h.connections as string[])[0] === 'open';
        },
        60_000,
        'the second worker to catch up',
      );
      // The last frames may still be on their way through the second worker: read until the topics stop growing.
      let topics = await readTopics(config, [t.trade, t.aggTrade]);
      for (let n = 0, last = -1; n < 10; n++) {
        const size = topics.get(t.trade)!.length + topics.get(t.aggTrade)!.length;
        if (size === last && size >= (await producedTo(port, t.trade)) + (await producedTo(port, t.aggTrade))) break;
        last = size;
        await new Promise((r) => setTimeout(r, 1000));
        topics = await readTopics(config, [t.trade, t.aggTrade]);
      }
      expect(idsBySymbol(ticksOf(topics.get(t.trade)!))).toEqual(expectedIds(rec, 'trade'));
      expect(idsBySymbol(ticksOf(topics.get(t.aggTrade)!))).toEqual(expectedIds(rec, 'aggTrade'));
      expect(server.restRequests).toBeGreaterThan(0);
      expect(server.connectionsAccepted).toBe(2);
    } finally {
      if (worker.exitCode === null) {
        worker.kill('SIGTERM');
        await new Promise((r) => worker.once('exit', r));
      }
      await server.close();
    }
  });
});
