// `npm run bench:metrics`: the metrics worker on a wall clock while the recorded Binance captures (spot BTCUSDT and
// ETHUSDT, USD-M BTCUSDT: trades and book tickers) are replayed into a fresh database as their shifted exchange time
// passes, in 250 ms batches like the writer's, through the writer's own transaction (writeBatch: COPY binary rows, their
// per-second summaries, the offset claim; on TimescaleDB the COPY goes through the staging table and an INSERT). Each
// run on both databases, one after the other in this process, each on its own fresh database: plain PostgreSQL
// (TIMESCALEDB=off: tables, refreshed from the tick slices) and TimescaleDB (TIMESCALEDB=on: hypertables, continuous
// aggregates and their policies). Run 1 at the recorded (live-like) rate, run 2 at 100 x (each stream replayed as 100
// symbols), and run 3, plain PostgreSQL's same-run baseline, at 100 x with the ticks inserted unsummarized (plain
// INSERTs, as a hand-made load would), so that the refresh rebuilds every slice from the raw ticks: the cost of
// re-reading every tick. One crafted 1 % price jump per minute makes the priceJump rule fire and mail (cooldown 0)
// through a local SMTP server. Prints one table, the databases side by side: p50/p99 of bucket close -> bar readable
// (published to Kafka), for 10 s and 1-minute bars, and of 1-minute bucket close -> alert mail accepted by SMTP; the
// refresh cost as a share of one core: CPU seconds per minute of wall time of the database backend that runs the
// refreshes, of its parallel workers, and on TimescaleDB of the extension's scheduler and policy jobs (they refresh the
// aggregates too); the CPU of the backend that inserts the ticks (insert triggers run there, so work moved from the
// refresh into them shows) and the writer's own CPU time summarizing the rows (consumer/tick-slices.ts). Then the
// targets, met or not: bar readable within 2 s + the allowed lateness of close at 1 x, refresh under 5 % of one core
// at 100 x (stated for TimescaleDB; plain PostgreSQL is judged beside it).
// Flags (environment): LIVE_MINUTES (default 2.5, at most 4), FAST_MINUTES (default 1.5, at most 4), FAST_COPIES (default 100),
// BASELINE (default 1; 0 skips run 3), KEEP_DATABASES (1 keeps each run's database for a look afterwards),
// ALLOWED_LATENESS_SECONDS (default 2). Needs DATABASE_URL on a server that preloads TimescaleDB; KAFKA_BROKERS is used
// when set (bars and alerts are published), otherwise publishing is skipped.
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { loadConfig } from '../common/config.ts';
import { pgSession } from '../common/db.ts';
import { createKafka, ensureTopics } from '../common/kafka.ts';
import { createLogger } from '../common/log.ts';
import { rowTimeMs, type BookTicker, type Tick, type Trade } from '../common/records.ts';
import { CopyBinaryEncoder } from '../consumer/copy-binary.ts';
import { writeBatch } from '../consumer/write-batch.fixture.ts';
import type { TickTable } from '../consumer/copy-rows.ts';
import { CopyRowBuffer } from '../consumer/tick-rows.ts';
import { AlertMailer } from '../metrics/alerts-mail.ts';
import { insertBookTickers, insertTrades } from '../metrics/replay.ts';
import { MINUTE_MS, bucketStart } from '../metrics/schedule.ts';
import { MetricsEngine, type MetricsSink } from '../metrics/engine.ts';
import { kafkaSink } from '../metrics/worker.ts';
import { migrate } from '../sql/migrate.ts';
import { capturesMissing, loadCaptureTicks } from '../test/capture-ticks.ts';
import { freshDatabase } from '../test/services.ts';
import { cpuSecondsOf } from '../stack/supervisor.ts';

if (capturesMissing()) process.exit(0);
if (!process.env.DATABASE_URL) {
  console.error('needs DATABASE_URL: eval "$(bash scripts/services.sh env)"');
  process.exit(1);
}
const env = process.env;
// The three streams overlap for 5 minutes of capture; a run may start up to a minute into it.
const LIVE_MINUTES = Math.min(4, Number(env.LIVE_MINUTES ?? 2.5));
const FAST_MINUTES = Math.min(4, Number(env.FAST_MINUTES ?? 1.5));
const FAST_COPIES = Number(env.FAST_COPIES ?? 100);
const LATENESS_S = env.ALLOWED_LATENESS_SECONDS ?? '2';
const log = createLogger(env.LOG_LEVEL ?? 'warn', 'bench-metrics');

const CAPTURE_FROM = Date.UTC(2024, 7, 8, 23, 55);
const CAPTURE_TO = Date.UTC(2024, 7, 9, 0, 0); // the span all three streams cover
const ticks = loadCaptureTicks();
const srcTrades = ticks.trades.filter((t) => t.exchangeTimeMs >= CAPTURE_FROM && t.exchangeTimeMs < CAPTURE_TO);
const srcQuotes = ticks.bookTickers.filter((q) => rowTimeMs(q) >= CAPTURE_FROM && rowTimeMs(q) < CAPTURE_TO);

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

type Database = 'plain' | 'timescaledb';
const DATABASE_LABEL: Record<Database, string> = { plain: 'plain PostgreSQL', timescaledb: 'TimescaleDB' };

type Owner = 'refresh' | 'writer' | 'jobs';

/**
 * The CPU of a database's other server processes during a run, sampled from /proc every 50 ms: parallel workers,
 * charged to their leader (the refresh or the writer backend), and everything else of the database but autovacuum:
 * TimescaleDB's scheduler and the policy jobs it starts (continuous-aggregate refresh, compression, retention). These
 * processes come and go: one that exits between two samples loses its last 50 ms at most, so the sum is a lower bound
 * (a job's runs and wall time, from TimescaleDB's own job statistics, are printed beside it).
 */
class BackgroundCpu {
  private readonly seen = new Map<number, { owner: Owner; base: number; last: number }>();
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  private jobs0 = { runs: 0, seconds: 0 };

  constructor(
    private readonly client: pg.Client,
    private readonly refreshPid: number,
    private readonly writerPid: number,
  ) {}

  /** Job runs and their summed wall time so far (TimescaleDB's catalog; none on plain PostgreSQL). */
  private async jobStats(): Promise<{ runs: number; seconds: number }> {
    const ext = await this.client.query(`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`);
    if (ext.rows.length === 0) return { runs: 0, seconds: 0 };
    const r = await this.client.query<{ runs: number; seconds: number }>(
      `SELECT coalesce(sum(total_runs), 0)::int AS runs, coalesce(sum(extract(epoch FROM total_duration)), 0)::float8 AS seconds
         FROM _timescaledb_internal.bgw_job_stat`,
    );
    return r.rows[0]!;
  }

  private async sample(first: boolean): Promise<void> {
    const r = await this.client.query<{ pid: number; leader_pid: number | null }>(
      `SELECT pid, leader_pid FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> ALL($1::int[])
          AND backend_type NOT IN ('client backend', 'autovacuum worker')`,
      [[this.refreshPid, this.writerPid]],
    );
    for (const { pid, leader_pid } of r.rows) {
      const cpu = cpuSecondsOf(pid);
      if (cpu === undefined) continue;
      const known = this.seen.get(pid);
      if (known) known.last = cpu;
      else {
        const owner: Owner = leader_pid === this.refreshPid ? 'refresh' : leader_pid === this.writerPid ? 'writer' : 'jobs';
        // A process already there when the run starts counts from then; a later one from its start.
        this.seen.set(pid, { owner, base: first ? cpu : 0, last: cpu });
      }
    }
  }

  async start(): Promise<void> {
    this.jobs0 = await this.jobStats();
    await this.sample(true);
    this.loop = (async () => {
      while (!this.stopped) {
        await new Promise((r) => setTimeout(r, 50));
        await this.sample(false);
      }
    })();
    // Reported by stop(); a run that fails before it ends the connection under the loop, and that error is not news.
    this.loop.catch(() => {});
  }

  /** CPU seconds per owner since start, and the job runs finished meanwhile with their wall time. */
  async stop(): Promise<Record<Owner, number> & { jobRuns: number; jobWallSeconds: number }> {
    this.stopped = true;
    await this.loop;
    await this.sample(false);
    const cpu: Record<Owner, number> = { refresh: 0, writer: 0, jobs: 0 };
    for (const p of this.seen.values()) cpu[p.owner] += p.last - p.base;
    const jobs = await this.jobStats();
    return { ...cpu, jobRuns: jobs.runs - this.jobs0.runs, jobWallSeconds: jobs.seconds - this.jobs0.seconds };
  }
}

interface RunResult {
  name: string;
  database: Database;
  copies: number;
  summarized: boolean;
  tradesPerSecond: number;
  quotesPerSecond: number;
  shortDelays: number[];
  minuteDelays: number[];
  mailDelays: number[];
  /** CPU seconds per minute of wall time: the refresh backend, its parallel workers, TimescaleDB's jobs. */
  refreshCpuPerMinute: number;
  refreshParallelCpuPerMinute: number;
  jobCpuPerMinute: number;
  jobRunsPerMinute: number;
  jobWallPerMinute: number;
  writerCpuPerMinute: number;
  summarizeCpuPerMinute: number;
  insertLagMs: number[];
}

const encoder = new CopyBinaryEncoder();

async function run(name: string, database: Database, minutes: number, copies: number, summarized: boolean): Promise<RunResult> {
  const fresh = await freshDatabase('bench_metrics');
  const client = new pg.Client({ connectionString: fresh.url, application_name: 'bench-metrics-refresh' });
  // One connection that stays open, so its backend's CPU can be read.
  const writer = new pg.Pool({ connectionString: fresh.url, application_name: 'bench-metrics-writer', max: 1, idleTimeoutMillis: 0 });
  const observer = new pg.Client({ connectionString: fresh.url, application_name: 'bench-metrics-observer' });
  await client.connect();
  await observer.connect();
  const offsets: Record<string, bigint | null> = { trades: null, book_tickers: null };
  let summarizeMs = 0;
  /** The ticks as the writer stores them: one transaction with their COPY rows, summaries and offset claim. */
  const write = async (table: TickTable, ticks: readonly Tick[]) => {
    if (ticks.length === 0) return;
    const out = new CopyRowBuffer(ticks.length * 200, ticks.length);
    for (const t of ticks) encoder.row(t, out);
    const expected = offsets[table]!;
    const next = (expected ?? 0n) + BigInt(ticks.length);
    const r = await writeBatch(writer, table, out.bytes(), ticks.length, { groupId: 'bench', topic: table, partition: 0, expected, next });
    if (r.outcome !== 'written') throw new Error(`bench batch not written: ${r.outcome}`);
    offsets[table] = next;
    summarizeMs += r.summarizeMs;
  };
  const smtp = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], logger: false, onData: (s, _x, cb) => s.on('data', () => {}).on('end', () => cb()) });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
  const runId = `bench-metrics-${Date.now().toString(36)}`;
  const config = loadConfig({
    DATABASE_URL: fresh.url,
    TIMESCALEDB: database === 'timescaledb' ? 'on' : 'off',
    ...(env.KAFKA_BROKERS ? { KAFKA_BROKERS: env.KAFKA_BROKERS } : {}),
    TOPIC_BARS: `${runId}.bars`, TOPIC_ALERTS: `${runId}.alerts`,
    ALLOWED_LATENESS_SECONDS: LATENESS_S, ALERT_COOLDOWN_SECONDS: '0', LOG_LEVEL: 'warn',
    SMTP_HOST: '127.0.0.1', SMTP_PORT: String((smtp.server.address() as AddressInfo).port),
  });
  try {
    const db = pgSession(client);
    const migrated = await migrate(db, config, log);
    if (migrated.timescaledb !== (database === 'timescaledb')) throw new Error(`${name}: migrate gave timescaledb=${migrated.timescaledb}`);
    const backendPid = Number((await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
    const writerPid = Number((await writer.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);

    let sink: MetricsSink = { publishBars: async () => {}, publishAnomalies: async () => {} };
    let disconnect = async () => {};
    if (env.KAFKA_BROKERS) {
      const kafka = createKafka(config, log, 'bench');
      const admin = kafka.admin();
      await ensureTopics(admin, [config.kafka.topics.bar, config.kafka.topics.alert], config);
      await admin.close();
      const producer = kafka.producer({ idempotent: true });
      sink = kafkaSink(producer, config.kafka.topics);
      disconnect = () => producer.close();
    }
    const startMs = Date.now();
    const shortDelays: number[] = [];
    const minuteDelays: number[] = [];
    const mailDelays: number[] = [];
    const seen = new Set<string>();
    const measured: MetricsSink = {
      publishBars: async (bars) => {
        await sink.publishBars(bars);
        const at = Date.now();
        for (const b of bars) {
          const end = b.bucketMs + b.widthSeconds * 1000;
          // One series (spot BTCUSDT), buckets that closed during the run, first publication only (a short bar is
          // published again with its minute: the minute refresh re-reads it).
          if (end <= startMs + 1_000 || b.symbol !== 'BTCUSDT' || b.market !== 'spot') continue;
          const id = `${b.width}@${b.bucketMs}`;
          if (seen.has(id)) continue;
          seen.add(id);
          (b.width === '1m' ? minuteDelays : b.width === 'short' ? shortDelays : []).push(at - end);
        }
      },
      publishAnomalies: (e) => sink.publishAnomalies(e),
    };
    const mailer = new AlertMailer({
      smtp: config.smtp, dashboardUrl: config.metrics.dashboardUrl, log,
      onSent: (m, at) => {
        if (m.kind === 'firing' && m.rule === 'priceJump') mailDelays.push(at - (m.firings[0]!.bucketMs + MINUTE_MS));
      },
    });
    const engine = new MetricsEngine({ db, config, log, sink: measured, mail: (m) => mailer.send(m), staleStreams: [] });
    await engine.start();

    // Capture time CAPTURE_FROM + x plays at wall time floor_minute(start) + x, so buckets line up.
    const shift = bucketStart(startMs, MINUTE_MS) - CAPTURE_FROM;
    const span = CAPTURE_TO - CAPTURE_FROM;
    const endMs = startMs + minutes * MINUTE_MS;
    const suffix = (c: number) => (c === 0 ? '' : `X${c}`);
    let cursor = startMs - shift - CAPTURE_FROM; // capture offset already replayed
    const insertLagMs: number[] = [];
    let trades = 0;
    let quotes = 0;
    const jumped = new Set<number>();
    let lastBtc: Trade | undefined;
    const replay = (async () => {
      while (Date.now() < endMs) {
        const until = Math.min(span, Date.now() - shift - CAPTURE_FROM);
        const inRange = (t: number) => t - CAPTURE_FROM >= cursor && t - CAPTURE_FROM < until;
        const tr: Trade[] = [];
        const qs: BookTicker[] = [];
        for (const t of srcTrades) if (inRange(t.exchangeTimeMs)) for (let c = 0; c < copies; c++) {
          tr.push({ ...t, symbol: t.symbol + suffix(c), exchangeTimeMs: t.exchangeTimeMs + shift, eventTimeMs: t.eventTimeMs + shift });
        }
        for (const q of srcQuotes) if (inRange(rowTimeMs(q))) for (let c = 0; c < copies; c++) {
          qs.push({ ...q, symbol: q.symbol + suffix(c), receiveTimeUs: q.receiveTimeUs + shift * 1000, exchangeTimeMs: q.exchangeTimeMs === null ? null : q.exchangeTimeMs + shift });
        }
        lastBtc = tr.filter((t) => t.symbol === 'BTCUSDT' && t.market === 'spot').pop() ?? lastBtc;
        // One crafted jump per minute (spot BTCUSDT, from second 30): priceJump fires and a mail goes out.
        const nowWall = Date.now();
        const minute = bucketStart(nowWall, MINUTE_MS);
        if (lastBtc && nowWall - minute >= 30_000 && !jumped.has(minute)) {
          jumped.add(minute);
          tr.push({ ...lastBtc, tradeId: 9_000_000_000 + jumped.size, price: (Number(lastBtc.price) * 1.01).toFixed(2), quantity: '0.001' });
        }
        cursor = until;
        const t0 = Date.now();
        if (summarized) {
          await write('trades', tr);
          await write('book_tickers', qs);
        } else {
          await insertTrades(pgSession(writer), tr);
          await insertBookTickers(pgSession(writer), qs);
        }
        insertLagMs.push(Date.now() - t0);
        trades += tr.length;
        quotes += qs.length;
        await new Promise((r) => setTimeout(r, Math.max(0, 250 - (Date.now() - t0))));
      }
    })();
    const cpu0 = cpuSecondsOf(backendPid) ?? NaN;
    const writerCpu0 = cpuSecondsOf(writerPid) ?? NaN;
    const summarize0 = summarizeMs;
    const background = new BackgroundCpu(observer, backendPid, writerPid);
    await background.start();
    const wall0 = Date.now();
    let stop = false;
    const worker = (async () => {
      while (!stop) {
        await engine.step();
        await new Promise((r) => setTimeout(r, Math.max(20, Math.min(1_000, engine.nextWakeMs() - Date.now()))));
      }
    })();
    await replay;
    // Let the last buckets close and be refreshed.
    await new Promise((r) => setTimeout(r, config.metrics.allowedLatenessMs + 1_500));
    stop = true;
    await worker;
    const cpu = (cpuSecondsOf(backendPid) ?? NaN) - cpu0;
    const writerCpu = (cpuSecondsOf(writerPid) ?? NaN) - writerCpu0;
    const summarizeCpu = (summarizeMs - summarize0) / 1000;
    const bg = await background.stop();
    const wallMin = (Date.now() - wall0) / MINUTE_MS;
    await mailer.close();
    await disconnect();
    const seconds = (Date.now() - startMs) / 1000;
    return {
      name, database, copies, summarized, tradesPerSecond: trades / seconds, quotesPerSecond: quotes / seconds, shortDelays, minuteDelays, mailDelays,
      refreshCpuPerMinute: cpu / wallMin, refreshParallelCpuPerMinute: bg.refresh / wallMin,
      jobCpuPerMinute: bg.jobs / wallMin, jobRunsPerMinute: bg.jobRuns / wallMin, jobWallPerMinute: bg.jobWallSeconds / wallMin,
      writerCpuPerMinute: (writerCpu + bg.writer) / wallMin, summarizeCpuPerMinute: summarizeCpu / wallMin, insertLagMs,
    };
  } finally {
    await client.end();
    await observer.end();
    await writer.end();
    await new Promise<void>((r) => smtp.close(() => r()));
    if (env.KEEP_DATABASES !== '1') await fresh.drop();
  }
}

// Plain PostgreSQL, then TimescaleDB, at each rate; the baseline (plain PostgreSQL only: unsummarized ticks are
// rebuilt into slices the same way on both) last.
const results: RunResult[] = [];
for (const [label, minutes, copies] of [['1 x', LIVE_MINUTES, 1], [`${FAST_COPIES} x`, FAST_MINUTES, FAST_COPIES]] as const) {
  for (const database of ['plain', 'timescaledb'] as const) {
    console.error(`bench:metrics: ${DATABASE_LABEL[database]} ${label} for ${minutes} min ...`);
    results.push(await run(`${DATABASE_LABEL[database]} ${label}`, database, minutes, copies, true));
  }
}
if (env.BASELINE !== '0') {
  console.error(`bench:metrics: plain PostgreSQL ${FAST_COPIES} x baseline for ${FAST_MINUTES} min ...`);
  results.push(await run(`plain ${FAST_COPIES} x baseline*`, 'plain', FAST_MINUTES, FAST_COPIES, false));
}

// --- the table ----------------------------------------------------------------------------------------------------

const TARGET_READABLE_MS = 2_000 + Number(LATENESS_S) * 1000;
const TARGET_REFRESH_SHARE = 0.05;
const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const share = (cpuPerMinute: number) => `${((cpuPerMinute / 60) * 100).toFixed(2)} %`;
const p5099 = (xs: number[]) => (xs.length === 0 ? 'n/a' : `${int(pct(xs, 50))} / ${int(pct(xs, 99))} (n=${xs.length})`);
const refreshTotal = (r: RunResult) => r.refreshCpuPerMinute + r.refreshParallelCpuPerMinute + r.jobCpuPerMinute;
const ts = (r: RunResult, text: string) => (r.database === 'timescaledb' ? text : '-');

const rows: [string, (r: RunResult) => string][] = [
  ['trades + book tickers replayed per s', (r) => `${int(r.tradesPerSecond)} + ${int(r.quotesPerSecond)}`],
  ['insert batch p50 / p99 ms', (r) => p5099(r.insertLagMs)],
  ['10 s bar readable after close p50 / p99 ms', (r) => p5099(r.shortDelays)],
  ['1 min bar readable after close p50 / p99 ms', (r) => p5099(r.minuteDelays)],
  ['alert mail sent after close p50 / p99 ms', (r) => p5099(r.mailDelays)],
  ['refresh: worker backend, % of one core', (r) => share(r.refreshCpuPerMinute)],
  ['refresh: its parallel workers (sampled)', (r) => share(r.refreshParallelCpuPerMinute)],
  ['refresh: TimescaleDB jobs (sampled CPU)', (r) => ts(r, share(r.jobCpuPerMinute))],
  ['  job runs per min, wall s per min', (r) => ts(r, `${r.jobRunsPerMinute.toFixed(1)}, ${r.jobWallPerMinute.toFixed(2)} s`)],
  ['refresh total, % of one core', (r) => share(refreshTotal(r))],
  ['refresh total, CPU s per minute', (r) => refreshTotal(r).toFixed(2)],
  ['insert: writer backend, % of one core', (r) => share(r.writerCpuPerMinute)],
  ['summarizing (writer process), % of one core', (r) => (r.summarized ? share(r.summarizeCpuPerMinute) : '-')],
];
const header = ['', ...results.map((r) => r.name)];
const cells = [header, ...rows.map(([label, f]) => [label, ...results.map(f)])];
const widths = header.map((_, c) => Math.max(...cells.map((row) => row[c]!.length)));
const line = (row: string[]) => `  ${row.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ')}`;

console.log(`\nmetrics worker benchmark: plain PostgreSQL (TIMESCALEDB=off) and TimescaleDB (TIMESCALEDB=on) in the same run, each on a fresh database`);
console.log(`allowed lateness ${LATENESS_S} s, short bars 10 s, bars of spot BTCUSDT; runs of ${LIVE_MINUTES} min (1 x) and ${FAST_MINUTES} min (${FAST_COPIES} x)\n`);
console.log(line(header));
for (const row of cells.slice(1)) console.log(line(row));
if (env.BASELINE !== '0') console.log(`\n  * baseline: ticks inserted unsummarized, the refresh re-reads them all (plain PostgreSQL only)`);

const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
console.log(`\ntargets (stated for TimescaleDB; plain PostgreSQL judged beside it)`);
console.log(`  bar readable within 2 s + lateness = ${int(TARGET_READABLE_MS)} ms of close at 1 x (p99 of the 10 s and of the 1-minute bars):`);
for (const r of results.filter((x) => x.copies === 1)) {
  const widths = [['10 s', r.shortDelays], ['1 min', r.minuteDelays]] as const;
  const measured = widths.filter(([, xs]) => xs.length > 0);
  const worst = Math.max(...measured.map(([, xs]) => pct(xs, 99)));
  const which = measured.length === widths.length ? '' : ` (${measured.map(([w]) => w).join(', ')} bars only: no other bar closed during the run)`;
  console.log(`    ${r.name.padEnd(24)} ${measured.length === 0 ? 'not measured: no bar closed during the run' : `p99 ${int(worst)} ms: ${verdict(worst <= TARGET_READABLE_MS)}${which}`}`);
}
console.log(`  refresh under ${TARGET_REFRESH_SHARE * 100} % of one core at ${FAST_COPIES} x (worker backend + parallel workers + TimescaleDB jobs):`);
for (const r of results.filter((x) => x.copies !== 1 && x.summarized)) {
  const s = refreshTotal(r) / 60;
  console.log(`    ${r.name.padEnd(24)} ${(s * 100).toFixed(2)} %: ${verdict(s < TARGET_REFRESH_SHARE)}`);
}
process.exit(0);
