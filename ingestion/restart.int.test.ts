// The worker killed (SIGKILL) and started again: the new process finds the last ids in Kafka, sees the time it was
// down as a hole in the ids and backfills it over REST. Runs the real CLI (`tickwatch ingest`) as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ENV_VARIABLES, type Config } from '../common/config.ts';
import { BinanceServer, expectedIds, loadRecording, missingRecordings } from '../test/binance-server.ts';
import { idsBySymbol, ingestTestConfig, readTopics, ticksOf, waitFor } from '../test/binance-topics.ts';
import { missing } from '../test/services.ts';

const skip = (await missing('kafka')) ?? missingRecordings();

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function spawnWorker(env: Record<string, string>): ChildProcess {
  // Only the variables of the config, so the child sees exactly what the test chose.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !(ENV_VARIABLES as string[]).includes(k)));
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/tickwatch.ts', 'ingest'], { env: { ...base, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  return child;
}

/** `tickwatch_ingestion_records_produced_total` of one topic, from the child's /metrics. */
async function producedTo(port: number, topic: string): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`tickwatch_ingestion_records_produced_total{topic="${topic}"}`));
    return line ? Number(line.split(' ').at(-1)) : 0;
  } catch {
    return 0;
  }
}

async function health(port: number): Promise<Record<string, unknown> | undefined> {
  try {
    return (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

describe.skipIf(skip)('ingestion: worker killed and restarted', () => {
  it('backfills the hole the dead worker left: every id once, in order', async () => {
    const rec = await loadRecording({ maxEvents: 30_000 });
    const server = await BinanceServer.start({ recording: rec, rate: 3_000, autoplay: false });
    const config: Config = await ingestTestConfig(server);
    const port = await freePort();
    const t = config.kafka.topics;
    const env: Record<string, string> = {
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      KAFKA_BROKERS: config.kafka.brokers.join(','),
      BINANCE_WS_URL: server.wsUrl,
      BINANCE_REST_URL: server.restUrl,
      TOPIC_TRADES: t.trade,
      TOPIC_AGG_TRADES: t.aggTrade,
      TOPIC_BOOK_TICKERS: t.bookTicker,
      TOPIC_GAPS: t.gap,
      TOPIC_DEAD_LETTER: t.deadLetter,
      KAFKA_PARTITIONS: '3',
      RECONNECT_MIN_MS: '50',
      HTTP_HOST: '127.0.0.1',
      INGESTION_HTTP_PORT: String(port),
    };
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
