// Connection trouble against real Kafka and the local Binance stand-in: dropped connections (the hole backfilled
// over REST, through a 429), a silent socket (watchdog), serverShutdown and the 24-hour limit (make before break,
// with an injected clock). In every case the topics end up holding each trade and aggTrade id once, in order.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../common/config.ts';
import { createKafka, ensureTopics, kafkaMessage } from '../common/kafka.ts';
import { encodeRecord, tickKey, type Trade } from '../common/records.ts';
import { BinanceServer, expectedIds, loadRecording, missingRecordings, type Recording } from '../test/binance-server.ts';
import { deliveredAll, idsBySymbol, ingestTestConfig, metricValue, readTopics, ticksOf, waitFor } from '../test/binance-topics.ts';
import { missing, testLog } from '../test/services.ts';
import type { Clock } from './feed.ts';
import { startIngestion, type IngestionWorker } from './worker.ts';

const skip = (await missing('kafka')) ?? missingRecordings();

interface Run {
  server: BinanceServer;
  worker: IngestionWorker;
  topics: Map<string, import('../test/binance-topics.ts').TopicRecord[]>;
  trades: Map<string, number[]>;
  aggTrades: Map<string, number[]>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

/** Streams the recording at `rate` events/s through a worker; `scenario` acts on the server while it plays. */
async function run(
  rec: Recording,
  scenario: (server: BinanceServer, worker: IngestionWorker) => Promise<void>,
  opts: {
    env?: Record<string, string>;
    clock?: Clock;
    extraFrames?: (i: number) => readonly string[] | undefined;
    /** Runs before the worker starts (e.g. records already in its topics). */
    before?: (config: Config) => Promise<void>;
  } = {},
): Promise<Run> {
  const server = await BinanceServer.start({ recording: rec, rate: 5_000, autoplay: false, pingIntervalMs: 500, extraFrames: opts.extraFrames });
  const config = await ingestTestConfig(server, opts.env);
  await opts.before?.(config);
  const worker = await startIngestion(config, { log: testLog, clock: opts.clock });
  try {
    await waitFor(() => server.openConnections === 1, 10_000, 'the connection');
    server.play();
    await scenario(server, worker);
    await server.finished;
    await waitFor(() => worker.feeds.every((f) => f.state === 'open'), 20_000, 'the connection to be open');
    await deliveredAll(worker, config, rec);
    const t = config.kafka.topics;
    const topics = await readTopics(config, [t.trade, t.aggTrade, t.bookTicker, t.gap, t.deadLetter]);
    return {
      server,
      worker,
      topics,
      trades: idsBySymbol(ticksOf(topics.get(t.trade)!)),
      aggTrades: idsBySymbol(ticksOf(topics.get(t.aggTrade)!)),
      metric: (name, labels) => metricValue(worker.metrics.registry, name, labels),
    };
  } finally {
    await worker.stop('test over');
    await server.close();
  }
}

const at = (server: BinanceServer, n: number) => waitFor(() => server.published >= n, 30_000, `${n} events published`);

describe.skipIf(skip)('ingestion: connection trouble', () => {
  let rec: Recording;
  beforeAll(async () => {
    rec = await loadRecording({ maxEvents: 25_000 });
  });

  it('after the server drops the connection three times, every id is there once: the holes came over REST (through a 429)', async () => {
    const r = await run(rec, async (server) => {
      for (const n of [5_000, 11_000, 17_000]) {
        await at(server, n);
        if (n === 11_000) server.rateLimitNext(2, 1);
        server.dropConnections();
        // Let the exchange run on while the worker is away.
        await at(server, n + 1_500);
      }
    });
    expect(r.trades).toEqual(expectedIds(rec, 'trade'));
    expect(r.aggTrades).toEqual(expectedIds(rec, 'aggTrade'));
    expect(r.server.connectionsAccepted).toBe(4);
    expect(await r.metric('tickwatch_ingestion_reconnects_total', { reason: 'closed' })).toBe(3);
    expect(await r.metric('tickwatch_ingestion_gap_ids_total', { stream: 'trade', outcome: 'backfilled' })).toBeGreaterThan(0);
    expect(await r.metric('tickwatch_ingestion_gap_ids_total', { stream: 'aggTrade', outcome: 'backfilled' })).toBeGreaterThan(0);
    expect(await r.metric('tickwatch_ingestion_gap_ids_total', { outcome: 'lost' })).toBe(0);
    expect(r.server.rateLimited).toBe(2);
    expect(await r.metric('tickwatch_ingestion_backfill_requests_total', { status: '429' })).toBe(2);
    // Book tickers cannot be backfilled: their holes are gap events with a time span.
    const gaps = [...r.topics.values()][3]!.map((g) => JSON.parse(g.value) as { stream: string; fromTimeMs: number; toTimeMs: number });
    expect(gaps.length).toBeGreaterThanOrEqual(3);
    for (const g of gaps) {
      expect(g.stream).toBe('bookTicker');
      expect(g.toTimeMs).toBeGreaterThan(g.fromTimeMs);
    }
    expect(await r.metric('tickwatch_ingestion_gap_seconds_total', { stream: 'bookTicker' })).toBeGreaterThan(0);
  });

  it('replaces a socket that has gone silent (watchdog) and backfills what it missed', async () => {
    const r = await run(
      rec,
      async (server) => {
        await at(server, 6_000);
        server.silence();
      },
      { env: { WATCHDOG_SECONDS: '1' } },
    );
    expect(r.trades).toEqual(expectedIds(rec, 'trade'));
    expect(r.aggTrades).toEqual(expectedIds(rec, 'aggTrade'));
    expect(await r.metric('tickwatch_ingestion_reconnects_total', { reason: 'watchdog' })).toBe(1);
    expect(await r.metric('tickwatch_ingestion_gap_ids_total', { stream: 'trade', outcome: 'backfilled' })).toBeGreaterThan(0);
  });

  it('closes a socket that sends a frame far over MAX_FRAME_BYTES before buffering it, reconnects and backfills', async () => {
    const huge = `{"stream":"btcusdt@trade","data":{"pad":"${'x'.repeat(1024 * 1024)}"}}`;
    const near = `{"stream":"btcusdt@trade","data":{"pad":"${'x'.repeat(8_000)}"}}`;
    const r = await run(rec, async (server) => at(server, 12_000), {
      env: { MAX_FRAME_BYTES: '4096' },
      extraFrames: (i) => (i === 3_000 ? [near] : i === 6_000 ? [huge] : undefined),
    });
    expect(r.trades).toEqual(expectedIds(rec, 'trade'));
    expect(r.aggTrades).toEqual(expectedIds(rec, 'aggTrade'));
    expect(r.server.connectionsAccepted).toBe(2);
    expect(await r.metric('tickwatch_ingestion_reconnects_total', { reason: 'oversized' })).toBe(1);
    expect(await r.metric('tickwatch_ingestion_reconnects_total')).toBe(1);
    // The one a little over the limit stayed on its socket and was dead-lettered with its reason.
    const dead = [...r.topics.values()][4]!.map((d) => JSON.parse(d.value) as { reason: string });
    expect(dead.map((d) => d.reason)).toEqual([expect.stringMatching(/exceeds 4096 bytes/)]);
  });

  it('an id the exchange never issued erases nothing: not resumed from, dead-lettered live, no hole, no loss', async () => {
    const absurd = 9_000_000_000_000;
    const first = rec.events.find((e) => e.type === 'trade')!;
    const data = (JSON.parse(first.text) as { data: Record<string, unknown> }).data;
    const outlier = JSON.stringify({ stream: first.stream, data: { ...data, t: absurd } });
    const r = await run(rec, async (server) => at(server, 12_000), {
      // A bad record already in the trades topic (the last id a restart reads back), and the same id live mid-stream.
      before: async (config) => {
        const kafka = createKafka(config, testLog, 'outlier');
        const admin = kafka.admin();
        await ensureTopics(admin, [config.kafka.topics.trade], config);
        await admin.close();
        const producer = kafka.producer({ idempotent: true });
        const bad: Trade = {
          type: 'trade', exchange: 'binance', market: 'spot', symbol: first.symbol, receiveTimeUs: Date.now() * 1000, tradeId: absurd,
          price: '1', quantity: '1', buyerIsMaker: false, side: 'buy', exchangeTimeMs: Date.now(), eventTimeMs: Date.now(),
        };
        await producer.send({ messages: [kafkaMessage(config.kafka.topics.trade, { key: tickKey(bad), value: encodeRecord(bad) })] });
        await producer.close();
      },
      extraFrames: (i) => (i === 5_000 ? [outlier] : undefined),
    });
    const expected = expectedIds(rec, 'trade');
    expected.set(first.symbol, [absurd, ...expected.get(first.symbol)!]); // the pre-produced record, first in its partition
    expect(r.trades).toEqual(expected);
    expect(r.aggTrades).toEqual(expectedIds(rec, 'aggTrade'));
    expect(await r.metric('tickwatch_ingestion_gap_ids_total', { outcome: 'lost' })).toBe(0);
    const gaps = [...r.topics.values()][3]!.map((g) => JSON.parse(g.value) as { stream: string });
    expect(gaps.filter((g) => g.stream !== 'bookTicker')).toEqual([]);
    const dead = [...r.topics.values()][4]!.map((d) => JSON.parse(d.value) as { reason: string });
    expect(dead.map((d) => d.reason)).toEqual([`trade id ${absurd} is not confirmed by the exchange (REST has no such id)`]);
  });

  it('on serverShutdown opens the new connection first: nothing lost, nothing duplicated, nothing to backfill', async () => {
    const r = await run(rec, async (server) => {
      await at(server, 6_000);
      server.serverShutdown(3_000);
      await at(server, 12_000);
    });
    expect(r.trades).toEqual(expectedIds(rec, 'trade'));
    expect(r.aggTrades).toEqual(expectedIds(rec, 'aggTrade'));
    expect(r.server.connectionsAccepted).toBe(2);
    expect(await r.metric('tickwatch_ingestion_reconnects_total', { reason: 'serverShutdown' })).toBe(1);
    expect(await r.metric('tickwatch_ingestion_duplicates_dropped_total')).toBeGreaterThan(0);
    expect(r.server.restRequests).toBe(0);
    expect([...r.topics.values()][3]).toHaveLength(0);
  });

  it('switches over before the 24-hour limit (injected clock): nothing lost, nothing duplicated, nothing to backfill', async () => {
    let offsetMs = 0;
    const clock: Clock = { now: () => Date.now() + offsetMs };
    const r = await run(
      rec,
      async (server) => {
        await at(server, 6_000);
        offsetMs += 24 * 3_600_000;
        await at(server, 12_000);
      },
      { clock },
    );
    expect(r.trades).toEqual(expectedIds(rec, 'trade'));
    expect(r.aggTrades).toEqual(expectedIds(rec, 'aggTrade'));
    expect(r.server.connectionsAccepted).toBe(2);
    expect(await r.metric('tickwatch_ingestion_reconnects_total', { reason: 'max-age' })).toBe(1);
    expect(r.server.restRequests).toBe(0);
    expect([...r.topics.values()][3]).toHaveLength(0);
  });
});
