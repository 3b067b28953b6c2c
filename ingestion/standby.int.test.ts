// Two ingestion shards (SHARD=0/2, 1/2) and a standby for shard 0, as real `tickwatch ingest` processes, with the real
// writers storing into PostgreSQL. The active shard 0 is killed (SIGKILL) while the stand-in streams: the standby,
// which had not connected to the exchange, takes over within seconds, resumes from Kafka and backfills the gap; in
// the end Kafka and the database hold every trade and aggTrade id once, and at no moment were two processes streaming
// the same shard.
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { pgSession, createClient } from '../common/db.ts';
import { createKafka, createTopics } from '../common/kafka.ts';
import { createWriterMetrics } from '../consumer/metrics.ts';
import { startWriters } from '../consumer/writer.ts';
import { migrate } from '../sql/migrate.ts';
import { BinanceServer, expectedIds, loadRecording, missingRecordings } from '../test/binance-server.ts';
import { idsBySymbol, ingestTestConfig, readTopics, ticksOf, waitFor } from '../test/binance-topics.ts';
import { health, ingestEnv, spawnIngest, stopChild } from '../test/ingest-process.ts';
import { freePort } from '../test/ports.ts';
import { freshDatabase, missing, testLog, uniqueName } from '../test/services.ts';
import { shardOf } from './shard.ts';
import { ingestionTopics } from './worker.ts';

const skip = (await missing('kafka', 'postgres')) ?? missingRecordings();
const SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'BNBUSDT'];
const SESSION_MS = 6_000;

const drainedHealth = (h: Record<string, unknown> | undefined) =>
  h !== undefined && h.producerBufferDepth === 0 && h.heldTicks === 0 && h.backfilling === 0 && (h.connections as string[]).every((c) => c === 'open');

describe.skipIf(skip)('ingestion: two shards and a standby', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  it('the standby takes over a killed shard: no trade id missing, none stored twice, never two active', async () => {
    // Shard 0 must carry symbols of its own for the test to mean anything.
    expect(SYMBOLS.filter((s) => shardOf(s, 2) === 0).length).toBeGreaterThan(0);
    expect(SYMBOLS.filter((s) => shardOf(s, 2) === 1).length).toBeGreaterThan(0);
    const rec = await loadRecording({ maxEvents: 30_000, types: ['trade', 'aggTrade'] });
    const server = await BinanceServer.start({ recording: rec, rate: 2_000, autoplay: false, pingIntervalMs: 1_000 });
    cleanup.push(() => server.close());
    const db = await freshDatabase('standby');
    cleanup.push(() => db.drop());
    const config = await ingestTestConfig(server, { DATABASE_URL: db.url, WRITER_GROUP_PREFIX: uniqueName('standby'), BATCH_MAX_WAIT_MS: '100', SYMBOLS: SYMBOLS.join(',') });
    const client = createClient(config, 'standby-migrate');
    await client.connect();
    await migrate(pgSession(client), config, testLog);
    await client.end();
    await createTopics(createKafka(config, testLog, 'standby-topics'), ingestionTopics(config), config);
    const writers = await startWriters({ config, log: testLog, kafka: createKafka(config, testLog, 'standby-writer'), metrics: createWriterMetrics(new Registry()), families: ['trade', 'aggTrade'] });
    cleanup.push(() => writers.stop());
    const q = new pg.Pool({ connectionString: db.url, max: 1 });
    cleanup.push(() => q.end());

    const lease = { SYMBOLS: SYMBOLS.join(','), STREAM_TYPES: 'trade,aggTrade', INGEST_LEASE: 'true', INGEST_LEASE_PREFIX: uniqueName('lease'), INGEST_LEASE_SESSION_MS: String(SESSION_MS) };
    const [pA, pB, pS] = [await freePort(), await freePort(), await freePort()];
    const a = spawnIngest({ ...ingestEnv(config, server, pA), ...lease, SHARD: '0/2' });
    const b = spawnIngest({ ...ingestEnv(config, server, pB), ...lease, SHARD: '1/2' });
    for (const c of [a, b]) cleanup.push(() => stopChild(c));
    await waitFor(async () => (await health(pA))?.role === 'active' && (await health(pB))?.role === 'active' && server.openConnections === 2, 60_000, 'both shards to stream');
    const s = spawnIngest({ ...ingestEnv(config, server, pS), ...lease, SHARD: '0/2' });
    cleanup.push(() => stopChild(s));
    // Most connections open at once: one per active shard, never the standby's beside its active one.
    let maxOpen = 0;
    const watch = setInterval(() => (maxOpen = Math.max(maxOpen, server.openConnections)), 10);
    cleanup.push(async () => clearInterval(watch));

    await new Promise((r) => setTimeout(r, 2 * SESSION_MS));
    // The waiting standby says so on /healthz and /metrics, and has not connected.
    expect(await health(pS)).toEqual({ ok: true, role: 'standby', shard: '0/2' });
    expect(await (await fetch(`http://127.0.0.1:${pS}/metrics`)).text()).toMatch(/^tickwatch_ingestion_lease_active 0$/m);
    expect(server.connectionsAccepted).toBe(2);

    server.play();
    await waitFor(() => server.published >= 8_000, 30_000, 'the stream to run');
    const killedAt = Date.now();
    a.kill('SIGKILL');
    await new Promise((r) => a.once('exit', r));
    await waitFor(async () => (await health(pS))?.role === 'active' && server.openConnections === 2, 30_000, 'the standby to take over');
    const takeoverMs = Date.now() - killedAt;
    console.info(JSON.stringify({ takeoverMs, publishedAtKill: 8_000 }));
    expect(takeoverMs).toBeLessThan(SESSION_MS + 10_000);

    await server.finished;
    await waitFor(async () => drainedHealth(await health(pS)) && drainedHealth(await health(pB)), 90_000, 'both shards to catch up');
    const t = config.kafka.topics;
    const want = { trade: expectedIds(rec, 'trade'), aggTrade: expectedIds(rec, 'aggTrade') };
    const total = (m: Map<string, number[]>) => [...m.values()].reduce((n, ids) => n + ids.length, 0);
    // Kafka: each id once, in order, for every symbol of both shards.
    let topics = await readTopics(config, [t.trade, t.aggTrade]);
    await waitFor(
      async () => {
        topics = await readTopics(config, [t.trade, t.aggTrade]);
        return topics.get(t.trade)!.length >= total(want.trade) && topics.get(t.aggTrade)!.length >= total(want.aggTrade);
      },
      60_000,
      'every id in Kafka',
    );
    expect(idsBySymbol(ticksOf(topics.get(t.trade)!))).toEqual(want.trade);
    expect(idsBySymbol(ticksOf(topics.get(t.aggTrade)!))).toEqual(want.aggTrade);

    // The database: every id of every symbol, once.
    const count = async (table: string) => Number((await q.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);
    await waitFor(async () => (await count('trades')) >= total(want.trade) && (await count('agg_trades')) >= total(want.aggTrade), 120_000, 'the writers to store every id');
    for (const [table, id, type] of [['trades', 'trade_id', 'trade'], ['agg_trades', 'agg_id', 'aggTrade']] as const) {
      const rows = (await q.query<{ symbol: string; ids: string[] }>(`SELECT symbol, array_agg(${id} ORDER BY ${id}) AS ids FROM ${table} GROUP BY symbol`)).rows;
      expect(new Map(rows.map((r) => [r.symbol, r.ids.map(Number)]))).toEqual(want[type]);
      const twice = (await q.query(`SELECT symbol, ${id}, count(*) FROM ${table} GROUP BY 1, 2 HAVING count(*) > 1`)).rows;
      expect(twice).toEqual([]);
    }
    expect(maxOpen).toBe(2);
    expect(server.connectionsAccepted).toBe(3);
    // The gap the dead shard left was backfilled over REST.
    expect(server.restRequests).toBeGreaterThan(0);
  });
});
