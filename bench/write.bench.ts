// `npm run bench:write`: the tick writer against the database's own limit and a tutorial-style baseline, side by side
// on the same ticks (the recorded Binance captures, cycled with shifted ids and times to reach the count):
//   1. limit:    COPY of the same rows, pre-encoded in memory, into fresh tables (no Kafka), one stream per table, in
//                the format the writer sends (binary for ticks: COPY_FORMAT), and in text beside it for comparison
//   2. writer:   `tickwatch write` as a child process, end to end from a Kafka backlog (records as ingestion produces
//                them: encodeRecord JSON, no headers, lz4 batches of 2,000), offsets stored with the rows
//   3. baseline: a group member (the same client, common/kafka-partitions.ts) per family, 500-row multi-row
//                INSERT ... ON CONFLICT DO NOTHING, Kafka commit after each batch
// plus the end-to-end latency of 2 and 3 at a steady live rate, the writer's peak RSS, and a measurement of the two
// exactly-once candidates (offsets in the database vs. COPY with a conflict fallback). These run on the database
// TIMESCALEDB (default auto) gives on this server; the summary names it. Beside them, on both databases in this run:
//   ts: the writer's transaction (writeBatch), pre-encoded rows as in 1, into plain tables (TIMESCALEDB=off) and into
//       hypertables (TIMESCALEDB=on: COPY into the staging table, then INSERT), the same rows, COPY rows/s side by side
// Flags: --sections eo,1,ts,2,3 (default all; 3 runs with 2), --ticks N (default 1,000,000), --live-rate R ticks/s (default 20,000), --live-seconds S (default 10),
// --writer-flags "V8 flags" for the writer child (default: stack/supervisor.ts NODE_FLAGS.write, as `tickwatch run`; its PROCESS_ENV.write too, under the environment).
// Needs KAFKA_BROKERS and DATABASE_URL (eval "$(bash scripts/services.sh env)").
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig, type Config } from '../common/config.ts';
import { createClient, pgSession } from '../common/db.ts';
import { createKafka, ensureTopics, kafkaMessage } from '../common/kafka.ts';
import { PartitionReader } from '../common/kafka-partitions.ts';
import type { MessageToProduce } from '@platformatic/kafka';
import { createLogger } from '../common/log.ts';
import { decodeTick, encodeRecord, tickKey, type Tick } from '../common/records.ts';
import { CopyBinaryEncoder } from '../consumer/copy-binary.ts';
import { copyIn, copySql, COPY_SQL, STAGE_SQL, readOffset } from '../consumer/copy.ts';
import { COLUMNS, COPY_FORMAT, CopyTextEncoder, TABLE_OF, type TickTable } from '../consumer/copy-rows.ts';
import { TickTextEncoder } from '../consumer/tick-text.fixture.ts';
import { writeBatch } from '../consumer/write-batch.fixture.ts';
import { CopyRowBuffer } from '../consumer/tick-rows.ts';
import { cpuSecondsOf, NODE_FLAGS, PROCESS_ENV } from '../stack/supervisor.ts';
import { tickwatchArgs } from '../common/paths.ts';
import { migrate } from '../sql/migrate.ts';
import { mixedTicks } from '../test/capture-ticks.ts';
import { sleep } from '../common/time.ts';
import { freePort } from '../test/ports.ts';

const { values: args } = parseArgs({
  options: {
    ticks: { type: 'string', default: '1000000' },
    'live-rate': { type: 'string', default: '20000' },
    'live-seconds': { type: 'string', default: '10' },
    'writer-flags': { type: 'string', default: (NODE_FLAGS.write ?? []).join(' ') },
    // The writer as deployed runs compiled (dist/, `npm run build`, which `npm run bench:write` does first).
    'writer-tsx': { type: 'boolean', default: false },
    // Some sections only (comparing one figure over many runs, e.g. `--sections 2` for the writer's peak RSS).
    sections: { type: 'string', default: 'eo,1,ts,2,3' },
  },
});
const SECTIONS = new Set(args.sections.split(','));
for (const s of SECTIONS) if (!['eo', '1', 'ts', '2', '3'].includes(s)) throw new Error(`--sections: no section ${s} (eo, 1, ts, 2, 3)`);
const WRITER_FLAGS = args['writer-flags'].split(/\s+/).filter((f) => f !== '');
const N = Number(args.ticks);
const LIVE_RATE = Number(args['live-rate']);
const LIVE_SECONDS = Number(args['live-seconds']);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const log = createLogger(process.env.LOG_LEVEL ?? 'warn', 'bench-write');
const base = loadConfig(process.env);
const run = `${Date.now().toString(36)}`;
const say = (s: string) => process.stdout.write(`${s}\n`);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

// --- databases and topics -------------------------------------------------------------------------------------------

const dbs: string[] = [];
/** Whether the databases made with the configured TIMESCALEDB (sections eo, 1-3) have TimescaleDB. */
let defaultTimescale: boolean | undefined;
/** A fresh, migrated database; `storage` overrides the configured storage settings (TIMESCALEDB, TICK_RETENTION...). */
async function freshDb(name: string, storage: Record<string, string> = {}): Promise<string> {
  const db = `bench_write_${run}_${name}`;
  const admin = new pg.Client({ connectionString: base.database.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${db}"`);
  await admin.end();
  dbs.push(db);
  const url = new URL(base.database.url);
  url.pathname = `/${db}`;
  const database = { ...(Object.keys(storage).length === 0 ? base : loadConfig({ ...process.env, ...storage })).database, url: url.toString() };
  const client = createClient({ database }, 'bench-migrate');
  await client.connect();
  const { timescaledb } = await migrate(pgSession(client), { database }, log);
  await client.end();
  if (storage.TIMESCALEDB === undefined) defaultTimescale = timescaledb;
  else if (timescaledb !== (storage.TIMESCALEDB === 'on')) throw new Error(`${db}: TIMESCALEDB=${storage.TIMESCALEDB} but migrate gave timescaledb=${timescaledb}`);
  return url.toString();
}
/** The run's topics (benchConfig names them after the run): left behind, they would pile up on the broker. */
async function dropTopics(): Promise<void> {
  const admin = createKafka(base, log, 'bench-admin').admin();
  try {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(`bench-${run}-`));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  } finally {
    await admin.close();
  }
}

async function dropDbs(): Promise<void> {
  const admin = new pg.Client({ connectionString: base.database.url });
  await admin.connect();
  for (const db of dbs) await admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
  await admin.end();
}

function benchConfig(databaseUrl: string, extra: Record<string, string> = {}): { config: Config; env: Record<string, string> } {
  const env: Record<string, string> = {
    KAFKA_BROKERS: base.kafka.brokers.join(','),
    DATABASE_URL: databaseUrl,
    TOPIC_TRADES: `bench-${run}-trades`,
    TOPIC_AGG_TRADES: `bench-${run}-aggtrades`,
    TOPIC_BOOK_TICKERS: `bench-${run}-booktickers`,
    TOPIC_DEAD_LETTER: `bench-${run}-deadletter`,
    LOG_LEVEL: 'warn',
    ...extra,
  };
  return { config: loadConfig(env), env };
}

type Outgoing = MessageToProduce<Buffer, Buffer, Buffer, Buffer>;

// Records as ingestion produces them (ingestion/producer.ts): the JSON of encodeRecord, no headers, lz4 batches.
async function produce(config: Config, ticks: readonly Tick[]): Promise<void> {
  const kafka = createKafka(config, log, 'bench-producer');
  const producer = kafka.producer({ idempotent: false, compression: 'lz4' });
  const byTopic = new Map<string, Outgoing[]>();
  for (const t of ticks) {
    const topic = config.kafka.topics[t.type];
    let l = byTopic.get(topic);
    if (!l) byTopic.set(topic, (l = []));
    l.push(kafkaMessage(topic, { key: tickKey(t), value: encodeRecord(t) }));
  }
  for (const messages of byTopic.values()) {
    for (let i = 0; i < messages.length; i += 8_000) {
      const group = [];
      for (let j = i; j < Math.min(i + 8_000, messages.length); j += 2_000) group.push(producer.send({ messages: messages.slice(j, j + 2_000) }));
      await Promise.all(group);
    }
  }
  await producer.close();
}

/** Produces ticks at a steady rate with their times set to the moment they are produced (a live market). */
async function produceLive(config: Config, template: readonly Tick[], rate: number, seconds: number, idShift: number): Promise<number> {
  const kafka = createKafka(config, log, 'bench-live');
  const producer = kafka.producer({ idempotent: false, compression: 'lz4' });
  const tickMs = 20;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  const start = Date.now();
  let sent = 0;
  while (Date.now() - start < seconds * 1000) {
    const nowMs = Date.now();
    const batch: Outgoing[] = [];
    for (let i = 0; i < perTick; i++) {
      const t = live(template[(sent + i) % template.length]!, nowMs, idShift + sent + i);
      batch.push(kafkaMessage(config.kafka.topics[t.type], { key: tickKey(t), value: encodeRecord(t) }));
    }
    await producer.send({ messages: batch });
    sent += perTick;
    const due = start + (sent / rate) * 1000;
    if (due > Date.now()) await sleep(due - Date.now());
  }
  await producer.close();
  return sent;
}

function live(t: Tick, nowMs: number, id: number): Tick {
  const us = nowMs * 1000;
  switch (t.type) {
    case 'trade':
      return { ...t, tradeId: 9e12 + id, exchangeTimeMs: nowMs, eventTimeMs: nowMs, receiveTimeUs: us };
    case 'aggTrade':
      return { ...t, aggId: 9e12 + id, firstTradeId: 9e12 + id, lastTradeId: 9e12 + id, exchangeTimeMs: nowMs, eventTimeMs: nowMs, receiveTimeUs: us };
    case 'bookTicker':
      return { ...t, updateId: 9e12 + id, exchangeTimeMs: t.exchangeTimeMs === null ? null : nowMs, eventTimeMs: t.eventTimeMs === null ? null : nowMs, receiveTimeUs: us };
  }
}

function percentile(sorted: number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** p-quantile from Prometheus histogram buckets (linear inside the bucket), from the difference of two scrapes. */
function histogramQuantile(before: string, after: string, name: string, labels: string, q: number): number {
  const parse = (text: string) => {
    const out = new Map<number, number>();
    const re = new RegExp(`^${name}_bucket\\{le="([^"]+)",${labels}\\} (\\d+)`, 'gm');
    for (const m of text.matchAll(re)) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
    return out;
  };
  const a = parse(before);
  const b = parse(after);
  const bounds = [...b.keys()].sort((x, y) => x - y);
  const counts = bounds.map((le) => (b.get(le) ?? 0) - (a.get(le) ?? 0));
  const total = counts.at(-1) ?? 0;
  if (total === 0) return NaN;
  const target = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (let i = 0; i < bounds.length; i++) {
    if (counts[i]! >= target) {
      const le = bounds[i]!;
      if (!Number.isFinite(le)) return prevLe;
      return prevLe + ((target - prevCount) / (counts[i]! - prevCount || 1)) * (le - prevLe);
    }
    prevLe = bounds[i]!;
    prevCount = counts[i]!;
  }
  return prevLe;
}

/** CPU seconds per backend of the other sessions on this database (PostgreSQL runs on this machine). */
async function backendCpu(db: pg.Pool | pg.ClientBase): Promise<Map<number, number>> {
  const res = await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
  return new Map(res.rows.map((r) => [r.pid, cpuSecondsOf(r.pid) ?? 0]));
}
const cpuSince = (before: Map<number, number>, after: Map<number, number>) => [...after].reduce((n, [pid, c]) => n + c - (before.get(pid) ?? 0), 0);

async function waitFor(
  what: () => Promise<number>,
  target: number,
  timeoutMs: number,
  onFirst?: () => Promise<void>,
): Promise<{ t0: number; t1: number; atT0: number }> {
  const deadline = Date.now() + timeoutMs;
  let t0 = 0;
  let atT0 = 0;
  for (;;) {
    const n = await what();
    if (t0 === 0 && n > 0) {
      t0 = Date.now();
      atT0 = n;
      await onFirst?.();
    }
    if (n >= target) return { t0, t1: Date.now(), atT0 };
    if (Date.now() > deadline) throw new Error(`timed out at ${n} of ${target}`);
    await sleep(50);
  }
}

// --- 1. the limit -----------------------------------------------------------------------------------------------------

type Format = 'text' | 'binary';

function encodeBatches(ticks: readonly Tick[], batchSize: number, format: Format): Map<TickTable, { rows: Buffer; count: number }[]> {
  const byTable = new Map<TickTable, Tick[]>();
  for (const t of ticks) {
    const table = TABLE_OF[t.type];
    let l = byTable.get(table);
    if (!l) byTable.set(table, (l = []));
    l.push(t);
  }
  const out = new Map<TickTable, { rows: Buffer; count: number }[]>();
  for (const [table, list] of byTable) {
    const text = new TickTextEncoder();
    const binary = new CopyBinaryEncoder();
    const batches = [];
    for (let i = 0; i < list.length; i += batchSize) {
      const slice = list.slice(i, i + batchSize);
      if (format === 'text') {
        batches.push({ rows: Buffer.from(text.rows(slice)), count: slice.length });
      } else {
        const out = new CopyRowBuffer(slice.length * 160, slice.length);
        for (const t of slice) binary.row(t, out);
        batches.push({ rows: Buffer.from(out.bytes()), count: slice.length });
      }
    }
    out.set(table, batches);
  }
  return out;
}

async function limit(ticks: readonly Tick[], batchSize: number, format: Format): Promise<{ rate: number; serverUs: number }> {
  const url = await freshDb(`limit_${format}`);
  const batches = encodeBatches(ticks, batchSize, format);
  let serverCpu = 0;
  const t0 = performance.now();
  await Promise.all(
    [...batches].map(async ([table, list]) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() pid')).rows[0]!.pid;
      const cpu0 = (cpuSecondsOf(pid) ?? 0);
      for (const b of list) {
        await client.query('BEGIN');
        await copyIn(client, copySql(table, table, format), b.rows, format);
        await client.query('COMMIT');
      }
      serverCpu += (cpuSecondsOf(pid) ?? 0) - cpu0;
      await client.end();
    }),
  );
  return { rate: ticks.length / ((performance.now() - t0) / 1000), serverUs: (serverCpu / ticks.length) * 1e6 };
}

// --- hypertables vs plain tables --------------------------------------------------------------------------------------

/**
 * The writer's transaction, writeBatch, on a fresh database of one kind: the offset claim, then the COPY (on
 * TimescaleDB into the staging table and an INSERT from it, ticks_copied_via_stage in sql/slices.sql) and, on plain
 * PostgreSQL, the per-second summaries; one connection per table as the writer's families, the given batches in order.
 */
async function writerTransactions(batches: Map<TickTable, { rows: Buffer; count: number }[]>, timescaledb: 'on' | 'off') {
  // The captures are from 2024: no retention (it would drop them) and no compression policy while they go in.
  const url = await freshDb(`tx_${timescaledb === 'on' ? 'hypertables' : 'plain'}`, { TIMESCALEDB: timescaledb, TICK_RETENTION: 'none', TICK_COMPRESS_AFTER: 'none' });
  const streams = await Promise.all(
    [...batches].map(async ([table, list]) => {
      // max 1 and no idle timeout: one backend for the whole stream, so its CPU can be read.
      const pool = new pg.Pool({ connectionString: url, max: 1, idleTimeoutMillis: 0 });
      const pid = (await pool.query<{ pid: number }>('SELECT pg_backend_pid() pid')).rows[0]!.pid;
      return { table, list, pool, pid };
    }),
  );
  let rows = 0;
  let serverCpu = 0;
  let summarizeMs = 0;
  const t0 = performance.now();
  await Promise.all(
    streams.map(async ({ table, list, pool, pid }) => {
      const cpu0 = (cpuSecondsOf(pid) ?? 0);
      let expected: bigint | null = null;
      for (const b of list) {
        const next: bigint = (expected ?? 0n) + BigInt(b.count);
        const r = await writeBatch(pool, table, b.rows, b.count, { groupId: 'bench', topic: table, partition: 0, expected, next });
        if (r.outcome !== 'written' || r.path !== 'copy' || r.rowsInserted !== b.count) {
          throw new Error(`${table} batch at offset ${expected}: ${r.outcome === 'written' ? `${r.path} path, ${r.rowsInserted} of ${b.count} rows` : r.outcome}`);
        }
        summarizeMs += r.summarizeMs;
        rows += b.count;
        expected = next;
      }
      serverCpu += (cpuSecondsOf(pid) ?? 0) - cpu0;
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  for (const s of streams) await s.pool.end();
  return { rate: rows / seconds, serverUs: (serverCpu / rows) * 1e6, summarizeUs: ((summarizeMs / 1000) / rows) * 1e6 };
}

// --- 2. the writer ----------------------------------------------------------------------------------------------------

async function writer(ticks: readonly Tick[]) {
  const url = await freshDb('writer');
  const port = await freePort();
  const { config, env } = benchConfig(url, { WRITER_GROUP_PREFIX: `bench-${run}-writer`, WRITER_HTTP_PORT: String(port), HTTP_HOST: '127.0.0.1' });
  const kafka = createKafka(config, log, 'bench-admin');
  const admin = kafka.admin();
  await ensureTopics(admin, Object.values(config.kafka.topics), config);
  await admin.close();
  const tp = performance.now();
  await produce(config, ticks);
  say(`   produced ${fmt(ticks.length)} ticks to Kafka in ${((performance.now() - tp) / 1000).toFixed(1)} s (not timed below)`);

  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const stored = async () => Number((await pool.query<{ n: string }>('SELECT coalesce(sum(next_offset), 0)::text n FROM writer_offsets')).rows[0]!.n);
  const child = spawn(process.execPath, [...WRITER_FLAGS, ...tickwatchArgs(!args['writer-tsx']), 'write'], { cwd: REPO, env: { ...PROCESS_ENV.write, ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  let peakRss = 0;
  const rssTimer = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakRss = Math.max(peakRss, Number(m[1]) * 1024);
    } catch {}
  }, 200);
  // CPU per row over the same span as the rate: the writer process and the database backends serving it.
  let writerCpu0 = 0;
  let backends0 = new Map<number, number>();
  const { t0, t1, atT0 } = await waitFor(stored, ticks.length, 600_000, async () => {
    writerCpu0 = (cpuSecondsOf(child.pid) ?? 0);
    backends0 = await backendCpu(pool);
  });
  const rate = (ticks.length - atT0) / ((t1 - t0) / 1000);
  const cpuUs = {
    writer: (((cpuSecondsOf(child.pid) ?? 0) - writerCpu0) / (ticks.length - atT0)) * 1e6,
    server: (cpuSince(backends0, await backendCpu(pool)) / (ticks.length - atT0)) * 1e6,
  };

  // Live phase: steady arrivals with current times; latency from the histogram difference.
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  const before = await (await fetch(metricsUrl)).text();
  const sent = await produceLive(config, ticks, LIVE_RATE, LIVE_SECONDS, 1e9);
  await waitFor(stored, ticks.length + sent, 120_000);
  await sleep(300);
  const after = await (await fetch(metricsUrl)).text();
  const p99 = {} as Record<string, number>;
  for (const since of ['receive', 'exchange']) {
    p99[since] = Math.max(
      ...(['trades', 'agg_trades', 'book_tickers'] as const).map((t) =>
        histogramQuantile(before, after, 'tickwatch_writer_commit_latency_seconds', `table="${t}",since="${since}"`, 0.99),
      ).filter(Number.isFinite),
    );
  }
  const copyP99 = histogramQuantile('', after, 'tickwatch_writer_copy_seconds', 'table="book_tickers"', 0.99);
  clearInterval(rssTimer);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await pool.end();
  return { rate, cpuUs, peakRss, p99, copyP99, sent, config };
}

// --- 3. the baseline --------------------------------------------------------------------------------------------------

const INSERT_COLUMNS = COLUMNS;
function insertSql(table: TickTable, rows: number): string {
  const cols = INSERT_COLUMNS[table];
  const values: string[] = [];
  for (let r = 0; r < rows; r++) values.push(`(${cols.map((_, c) => `$${r * cols.length + c + 1}`).join(', ')})`);
  return `INSERT INTO ${table} (${cols.join(', ')}) VALUES ${values.join(', ')} ON CONFLICT DO NOTHING`;
}
function params(t: Tick): unknown[] {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const recv = new CopyTextEncoder().timeUs(t.receiveTimeUs);
  switch (t.type) {
    case 'trade':
      return [t.exchange, t.market, t.symbol, iso(t.exchangeTimeMs), t.tradeId, t.price, t.quantity, t.buyerIsMaker, t.side, iso(t.eventTimeMs), recv];
    case 'aggTrade':
      return [t.exchange, t.market, t.symbol, iso(t.exchangeTimeMs), t.aggId, t.firstTradeId, t.lastTradeId, t.price, t.quantity, t.buyerIsMaker, t.side, iso(t.eventTimeMs), recv];
    case 'bookTicker':
      return [t.exchange, t.market, t.symbol, iso(t.exchangeTimeMs ?? Math.floor(t.receiveTimeUs / 1000)), t.updateId, t.bidPrice, t.bidQty, t.askPrice, t.askQty, iso(t.exchangeTimeMs), iso(t.eventTimeMs), recv];
  }
}

async function baseline(config0: Config, total: number, template: readonly Tick[]) {
  const url = await freshDb('baseline');
  const { config } = benchConfig(url);
  const kafka = createKafka(config, log, 'bench-baseline');
  const pool = new pg.Pool({ connectionString: url, max: 9 });
  let written = 0;
  let recording = false;
  const latencies: number[] = [];
  const consumers = await Promise.all(
    (['trade', 'aggTrade', 'bookTicker'] as const).map(async (family) => {
      const table = TABLE_OF[family];
      const session = config.writer.sessionTimeoutMs;
      const consumer: PartitionReader = new PartitionReader({
        kafka,
        topics: [config0.kafka.topics[family]],
        log,
        group: { groupId: `bench-${run}-baseline-${family}`, sessionTimeout: session, heartbeatInterval: Math.min(3_000, Math.floor(session / 5)), rebalanceTimeout: 60_000 },
        fetch: { minBytes: 1, maxBytes: 10 << 20, maxBytesPerPartition: 1 << 20, maxWaitMs: 250 },
        eachBatch: async ({ batch, resolveOffset }) => {
          const { records } = batch;
          for (let i = 0; i < records.length; i += 500) {
            const msgs = Array.from({ length: Math.min(500, records.length - i) }, (_, j) => records.message(i + j));
            const ticks = msgs.map((m) => decodeTick(m.value, m.headers?.['schema-version']?.toString()));
            await pool.query(insertSql(table, ticks.length), ticks.flatMap(params));
            const last = msgs.at(-1)!.offset;
            resolveOffset(last);
            await consumer.commit(batch.topic, batch.partition, BigInt(last) + 1n);
            written += ticks.length;
            if (recording) {
              const now = Date.now();
              for (const t of ticks) latencies.push(now - t.receiveTimeUs / 1000);
            }
          }
        },
      });
      await consumer.start();
      return consumer;
    }),
  );
  const { t0, t1, atT0 } = await waitFor(async () => written, total, 1_200_000);
  const rate = (total - atT0) / ((t1 - t0) / 1000);
  recording = true;
  const sent = await produceLive(config0, template, LIVE_RATE, LIVE_SECONDS, 2e9);
  const liveTarget = total + sent; // the writer's live records are on the same topics: the baseline reads them too
  await waitFor(async () => written, liveTarget, 300_000).catch(() => undefined);
  latencies.sort((a, b) => a - b);
  for (const c of consumers) await c.stop();
  await pool.end();
  return { rate, p99: percentile(latencies, 0.99) / 1000 };
}

// --- exactly-once candidates --------------------------------------------------------------------------------------

async function exactlyOnceCandidates(ticks: readonly Tick[], batchSize: number) {
  const trades = ticks.filter((t) => t.type === 'bookTicker').slice(0, 200_000);
  const format = COPY_FORMAT.book_tickers;
  const batches = encodeBatches(trades, batchSize, format).get('book_tickers')!;
  const res: Record<string, number> = {};
  // A: offsets claimed in the same transaction (the writer's path).
  {
    const url = await freshDb('eo_a');
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    let next = 0n;
    let expected: bigint | null = null;
    const t0 = performance.now();
    for (const b of batches) {
      next += BigInt(b.count);
      await writeBatch(pool, 'book_tickers', b.rows, b.count, { groupId: 'g', topic: 't', partition: 0, expected, next });
      expected = next;
    }
    res.aSteady = trades.length / ((performance.now() - t0) / 1000);
    // Replay after a crash: the last 10 batches come again; A reads its offset and skips them without touching the table.
    const t1 = performance.now();
    const stored = await readOffset(pool, 'g', 't', 0);
    if (stored !== next) throw new Error('offset mismatch');
    res.aReplayMs = performance.now() - t1;
    await pool.end();
  }
  // B: COPY straight in, no offsets; a batch that conflicts is redone via staging + ON CONFLICT DO NOTHING.
  {
    const url = await freshDb('eo_b');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const copyB = async (b: { rows: Buffer }) => {
      await client.query('BEGIN');
      try {
        await copyIn(client, COPY_SQL.book_tickers, b.rows, format);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        if ((err as { code?: string }).code !== '23505') throw err;
        await client.query('BEGIN');
        await client.query(STAGE_SQL.book_tickers.create);
        await copyIn(client, STAGE_SQL.book_tickers.copy, b.rows, format);
        await client.query(STAGE_SQL.book_tickers.merge);
        await client.query('COMMIT');
      }
    };
    const t0 = performance.now();
    for (const b of batches) await copyB(b);
    res.bSteady = trades.length / ((performance.now() - t0) / 1000);
    const replay = batches.slice(-10);
    const t1 = performance.now();
    for (const b of replay) await copyB(b);
    res.bReplayMs = performance.now() - t1;
    res.replayRows = replay.reduce((n, b) => n + b.count, 0);
    await client.end();
  }
  return res;
}

// --- main -------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  say(`tickwatch bench:write — ${fmt(N)} ticks (recorded Binance spot + USD-M captures, cycled with ids +k*1e10 and times +k h)`);
  const ticks = mixedTicks(N);
  const counts = { trade: 0, aggTrade: 0, bookTicker: 0 };
  for (const t of ticks) counts[t.type]++;
  say(`   mix: ${fmt(counts.trade)} trades, ${fmt(counts.aggTrade)} aggTrades, ${fmt(counts.bookTicker)} bookTickers; BATCH_SIZE=${base.writer.batchSize}, WRITER_FETCH_MAX_BYTES=${base.writer.fetchMaxBytes}, partitions=${base.kafka.partitions}`);

  if (SECTIONS.has('eo')) {
    say(`\n[eo] exactly-once candidates (200,000 bookTickers, 5,000-row batches, one connection, COPY ${COPY_FORMAT.book_tickers})`);
    const eo = await exactlyOnceCandidates(ticks, 5_000);
    say(`   A offsets in the same transaction:  ${fmt(eo.aSteady!)} rows/s steady; replay of ${fmt(eo.replayRows!)} stored rows after a crash: ${eo.aReplayMs!.toFixed(1)} ms (one offset read, rows skipped)`);
    say(`   B COPY + conflict fallback:         ${fmt(eo.bSteady!)} rows/s steady; replay of ${fmt(eo.replayRows!)} stored rows: ${eo.bReplayMs!.toFixed(0)} ms (failed COPY + staging + ON CONFLICT)`);
  }

  // The writer's own format is the limit; text beside it shows what the format is worth on this machine today.
  const format = COPY_FORMAT.trades;
  const other: Format = format === 'binary' ? 'text' : 'binary';
  let lim = NaN;
  let limOther = NaN;
  if (SECTIONS.has('1')) {
    say(`\n[1] limit: COPY ${format} from memory, pre-encoded, one stream per table, BATCH_SIZE rows per transaction`);
    const limits = await limit(ticks, base.writer.batchSize, format);
    lim = limits.rate;
    say(`   ${fmt(lim)} rows/s, database backends ${limits.serverUs.toFixed(2)} CPU µs per row`);
    const others = await limit(ticks, base.writer.batchSize, other);
    limOther = others.rate;
    say(`   ${other} for comparison: ${fmt(limOther)} rows/s, database backends ${others.serverUs.toFixed(2)} CPU µs per row`);
  }

  let tx: { plain: number; hyper: number } | undefined;
  if (SECTIONS.has('ts')) {
    say(`\n[ts] the writer's transaction (writeBatch) on plain tables and on hypertables: the same ${fmt(ticks.length)} rows, COPY ${format}, BATCH_SIZE rows per transaction, one connection per table`);
    const txBatches = encodeBatches(ticks, base.writer.batchSize, format);
    const txPlain = await writerTransactions(txBatches, 'off');
    say(`   plain tables (TIMESCALEDB=off): ${fmt(txPlain.rate)} rows/s, database backends ${txPlain.serverUs.toFixed(2)} CPU µs per row, summarizing ${txPlain.summarizeUs.toFixed(2)} µs per row (this process)`);
    const txHyper = await writerTransactions(txBatches, 'on');
    say(`   hypertables  (TIMESCALEDB=on):  ${fmt(txHyper.rate)} rows/s, database backends ${txHyper.serverUs.toFixed(2)} CPU µs per row, summarizing ${txHyper.summarizeUs.toFixed(2)} µs per row (this process)`);
    say(`   hypertables / plain tables = ${(txHyper.rate / txPlain.rate).toFixed(2)}`);
    tx = { plain: txPlain.rate, hyper: txHyper.rate };
  }

  let w: Awaited<ReturnType<typeof writer>> | undefined;
  if (SECTIONS.has('2') || SECTIONS.has('3')) {
    // The baseline reads the backlog the writer's section produced.
    say(`\n[2] writer: tickwatch write (child process, ${args['writer-tsx'] ? 'under tsx' : 'compiled'}${WRITER_FLAGS.length ? `, ${WRITER_FLAGS.join(' ')}` : ''}), end to end from a Kafka backlog`);
    w = await writer(ticks);
    say(`   ${fmt(w.rate)} rows/s, peak RSS ${(w.peakRss / 2 ** 20).toFixed(0)} MB; CPU µs per row: writer ${w.cpuUs.writer.toFixed(2)}, database backends ${w.cpuUs.server.toFixed(2)}`);
    say(`   live ${fmt(LIVE_RATE)} ticks/s for ${LIVE_SECONDS} s: p99 commit - receive ${(w.p99.receive! * 1000).toFixed(0)} ms, commit - exchange ${(w.p99.exchange! * 1000).toFixed(0)} ms (histogram buckets, interpolated)`);
  }

  let b: Awaited<ReturnType<typeof baseline>> | undefined;
  if (w && SECTIONS.has('3')) {
    say('\n[3] baseline: 500-row multi-row INSERT ... ON CONFLICT DO NOTHING, Kafka commit per batch');
    b = await baseline(w.config, N + w.sent, ticks);
    say(`   ${fmt(b.rate)} rows/s; live ${fmt(LIVE_RATE)} ticks/s: p99 commit - receive ${(b.p99 * 1000).toFixed(0)} ms`);
  }

  say('\nsummary');
  const rate = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '-' : fmt(n));
  say(`   limit (${format}) ${rate(lim)} rows/s [${other} ${rate(limOther)}] | writer ${rate(w?.rate)} rows/s | baseline ${rate(b?.rate)} rows/s`);
  if (w && SECTIONS.has('1') && b) {
    say(
      `   writer/limit = ${(w.rate / lim).toFixed(2)} (target >= 0.5; against the ${other} limit ${(w.rate / limOther).toFixed(2)})   ` +
        `writer/baseline = ${(w.rate / b.rate).toFixed(1)} (target >= 5)`,
    );
  }
  if (tx) say(`   writer transaction (writeBatch), COPY rows/s: plain tables ${fmt(tx.plain)} | hypertables ${fmt(tx.hyper)} (hypertables / plain = ${(tx.hyper / tx.plain).toFixed(2)})`);
  say(`   sections ${[...SECTIONS].join(', ')} ran on ${defaultTimescale ? 'TimescaleDB' : 'plain PostgreSQL'} (TIMESCALEDB=${base.database.timescaledb})`);
  if (w) say(`   writer p99 end-to-end (commit - receive) ${(w.p99.receive! * 1000).toFixed(0)} ms; peak RSS ${(w.peakRss / 2 ** 20).toFixed(0)} MB (target <= 150 MB)`);
}

main()
  .catch((err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await dropDbs().catch(() => {});
    await dropTopics().catch(() => {});
    process.exit();
  });
