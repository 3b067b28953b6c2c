// `npm run bench:metrics`: the metrics worker on a wall clock while the recorded Binance captures (spot BTCUSDT and
// ETHUSDT, USD-M BTCUSDT: trades and book tickers) are replayed into a fresh database as their shifted exchange time
// passes, in 250 ms batches like the writer's, through the writer's own transaction (writeBatch: COPY binary rows, their
// per-second summaries, the offset claim). Run 1 at the recorded (live-like) rate, run 2 at 100 x (each stream replayed
// as 100 symbols), and run 3, the same-run baseline, at 100 x with the ticks inserted unsummarized (plain INSERTs, as a
// hand-made load would), so that the refresh rebuilds every slice from the raw ticks: the cost of re-reading every tick. One crafted 1 % price jump per minute makes the priceJump rule fire and mail (cooldown 0)
// through a local SMTP server. Prints p50/p99/max of: bucket close -> bar readable (published to Kafka), for 10 s and
// 1-minute bars; 1-minute bucket close -> alert mail accepted by SMTP; and the refresh cost: CPU seconds of the
// database backend that runs the refreshes per minute of wall time, as a share of one core; and the same for the
// backend that inserts the ticks (insert triggers run there, so work moved from the refresh into them shows), and the
// writer's own CPU time summarizing the rows (consumer/tick-slices.ts).
// Flags (environment): LIVE_MINUTES (default 2.5, at most 4), FAST_MINUTES (default 1.5, at most 4), FAST_COPIES (default 100),
// BASELINE (default 1; 0 skips run 3),
// ALLOWED_LATENESS_SECONDS (default 2). Needs DATABASE_URL; KAFKA_BROKERS is used when set (bars and alerts are
// published), otherwise publishing is skipped.
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Partitioners } from 'kafkajs';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { loadConfig } from '../common/config.ts';
import { pgSession } from '../common/db.ts';
import { createKafka, ensureTopics } from '../common/kafka.ts';
import { createLogger } from '../common/log.ts';
import { tickTimeMs, type BookTicker, type Tick, type Trade } from '../common/records.ts';
import { CopyBinaryEncoder } from '../consumer/copy-binary.ts';
import { writeBatch } from '../consumer/copy.ts';
import type { TickTable } from '../consumer/copy-rows.ts';
import { CopyRowBuffer } from '../consumer/tick-rows.ts';
import { AlertMailer } from '../metrics/alerts-mail.ts';
import { insertBookTickers, insertTrades } from '../metrics/replay.ts';
import { MINUTE_MS, bucketStart } from '../metrics/schedule.ts';
import { MetricsEngine, kafkaSink, type MetricsSink } from '../metrics/worker.ts';
import { migrate } from '../sql/migrate.ts';
import { capturesMissing, loadCaptureTicks } from '../test/capture-ticks.ts';
import { freshDatabase } from '../test/services.ts';

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
const srcQuotes = ticks.bookTickers.filter((q) => tickTimeMs(q) >= CAPTURE_FROM && tickTimeMs(q) < CAPTURE_TO);

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const fmt = (xs: number[]) => (xs.length === 0 ? 'n/a' : `p50 ${pct(xs, 50).toFixed(0)} ms  p99 ${pct(xs, 99).toFixed(0)} ms  max ${Math.max(...xs).toFixed(0)} ms  (n=${xs.length})`);

/** CPU seconds (user + system) of a local process, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

interface RunResult {
  name: string;
  tradesPerSecond: number;
  quotesPerSecond: number;
  shortDelays: number[];
  minuteDelays: number[];
  mailDelays: number[];
  refreshCpuShare: number;
  refreshCpuPerMinute: number;
  writerCpuPerMinute: number;
  summarizeCpuPerMinute: number;
  insertLagMs: number[];
}

const encoder = new CopyBinaryEncoder();

async function run(name: string, minutes: number, copies: number, summarized: boolean): Promise<RunResult> {
  const fresh = await freshDatabase('bench_metrics');
  const client = new pg.Client({ connectionString: fresh.url, application_name: 'bench-metrics-refresh' });
  // One connection that stays open, so its backend's CPU can be read.
  const writer = new pg.Pool({ connectionString: fresh.url, application_name: 'bench-metrics-writer', max: 1, idleTimeoutMillis: 0 });
  await client.connect();
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
    ...(env.KAFKA_BROKERS ? { KAFKA_BROKERS: env.KAFKA_BROKERS } : {}),
    TOPIC_BARS: `${runId}.bars`, TOPIC_ALERTS: `${runId}.alerts`,
    ALLOWED_LATENESS_SECONDS: LATENESS_S, ALERT_COOLDOWN_SECONDS: '0', LOG_LEVEL: 'warn',
    SMTP_HOST: '127.0.0.1', SMTP_PORT: String((smtp.server.address() as AddressInfo).port),
  });
  try {
    const db = pgSession(client);
    await migrate(db, config, log);
    const backendPid = Number((await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
    const writerPid = Number((await writer.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);

    let sink: MetricsSink = { publishBars: async () => {}, publishAnomalies: async () => {} };
    let disconnect = async () => {};
    if (env.KAFKA_BROKERS) {
      const kafka = createKafka(config, log, 'bench');
      const admin = kafka.admin();
      await admin.connect();
      await ensureTopics(admin, [config.kafka.topics.bar, config.kafka.topics.alert], config);
      await admin.disconnect();
      const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      sink = kafkaSink(producer, config.kafka.topics);
      disconnect = () => producer.disconnect();
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
        for (const q of srcQuotes) if (inRange(tickTimeMs(q))) for (let c = 0; c < copies; c++) {
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
    const cpu0 = cpuSeconds(backendPid);
    const writerCpu0 = cpuSeconds(writerPid);
    const summarize0 = summarizeMs;
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
    const cpu = cpuSeconds(backendPid) - cpu0;
    const writerCpu = cpuSeconds(writerPid) - writerCpu0;
    const summarizeCpu = (summarizeMs - summarize0) / 1000;
    const wallMin = (Date.now() - wall0) / MINUTE_MS;
    await mailer.close();
    await disconnect();
    const seconds = (Date.now() - startMs) / 1000;
    return {
      name, tradesPerSecond: trades / seconds, quotesPerSecond: quotes / seconds, shortDelays, minuteDelays, mailDelays,
      refreshCpuShare: cpu / 60 / wallMin, refreshCpuPerMinute: cpu / wallMin, writerCpuPerMinute: writerCpu / wallMin, summarizeCpuPerMinute: summarizeCpu / wallMin, insertLagMs,
    };
  } finally {
    await client.end();
    await writer.end();
    await new Promise<void>((r) => smtp.close(() => r()));
    await fresh.drop();
  }
}

const results = [
  await run('live-like (1 x)', LIVE_MINUTES, 1, true),
  await run(`${FAST_COPIES} x`, FAST_MINUTES, FAST_COPIES, true),
  ...(env.BASELINE === '0' ? [] : [await run(`${FAST_COPIES} x, baseline: ticks unsummarized, the refresh re-reads them all`, FAST_MINUTES, FAST_COPIES, false)]),
];
console.log(`\nmetrics worker benchmark (allowed lateness ${LATENESS_S} s, short bars 10 s; target: bar readable within 2 s + lateness of close at 1 x, refresh < 5 % of one core at 100 x)`);
for (const r of results) {
  console.log(`\n${r.name}: ${r.tradesPerSecond.toFixed(0)} trades/s, ${r.quotesPerSecond.toFixed(0)} book tickers/s replayed (insert batch p50 ${pct(r.insertLagMs, 50)} ms, p99 ${pct(r.insertLagMs, 99)} ms)`);
  console.log(`  10 s bar readable after close:   ${fmt(r.shortDelays)}`);
  console.log(`  1 min bar readable after close:  ${fmt(r.minuteDelays)}`);
  console.log(`  alert mail sent after close:     ${fmt(r.mailDelays)}`);
  console.log(`  refresh cost (database backend): ${r.refreshCpuPerMinute.toFixed(2)} CPU s per minute = ${(r.refreshCpuShare * 100).toFixed(2)} % of one core`);
  console.log(`  insert cost (writer backend):    ${r.writerCpuPerMinute.toFixed(2)} CPU s per minute = ${((r.writerCpuPerMinute / 60) * 100).toFixed(2)} % of one core`);
  console.log(`  summarizing (writer process):    ${r.summarizeCpuPerMinute.toFixed(2)} s per minute = ${((r.summarizeCpuPerMinute / 60) * 100).toFixed(2)} % of one core`);
}
process.exit(0);
