// Soak and chaos: the whole stack on a PRIVATE Kafka + PostgreSQL (scripts/services.sh with its own ports and state
// folder; the shared instance is never touched), fed by the Binance stand-in (test/binance-server.ts) replaying the
// captures at N x their average live rate (rounds cycled with ids shifted and times shifted by an hour), while faults
// run on a schedule: kill -9 of the writer and of the metrics worker (the `run` supervisor restarts them), restart of
// the broker, restart of PostgreSQL, drop of the exchange connection. Then the checks, each printed, exit 1 on any
// failure: raw tables == the set produced to Kafka (zero lost, zero duplicate), every 1-minute bar == the independent
// computation from the produced trades, RSS flat (slope of a least-squares line), every fault visible in /metrics.
//
//   npm run soak -- --minutes 30 [--rate-x 10] [--keep]      (--minutes 2 is the CI form)
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../common/config.ts';
import { createKafka, topicOffsets } from '../common/kafka.ts';
import { readRanges, type PartitionRange } from '../common/kafka-read.ts';
import { createLogger } from '../common/log.ts';
import { PROJECT_ROOT, TICKWATCH_ARGS } from '../common/paths.ts';
import { decodeTick, type Trade } from '../common/records.ts';
import { BinanceServer, loadRecording } from '../test/binance-server.ts';
import { barMismatches, expectedBars } from '../test/expected-bars.ts';
import { stackWorkers } from './cli.ts';
import { memoryOf, supervise, type WorkerProcess } from './supervisor.ts';
import { freePort } from '../test/ports.ts';

const run = promisify(execFile);
const ROOT = PROJECT_ROOT;

export interface SoakOptions {
  readonly minutes: number;
  readonly rateX: number;
  readonly keep: boolean;
  readonly out: (line: string) => void;
}

type FaultKind = 'writer-kill' | 'metrics-kill' | 'kafka-restart' | 'postgres-restart' | 'exchange-drop';
const FAULTS: readonly FaultKind[] = ['writer-kill', 'metrics-kill', 'kafka-restart', 'postgres-restart', 'exchange-drop'];

interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** Sum of every sample of each metric name in a Prometheus text exposition. */
export function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const v = Number(match[3]);
    if (Number.isFinite(v)) m.set(match[1]!, (m.get(match[1]!) ?? 0) + v);
  }
  return m;
}

async function scrape(port: number): Promise<Map<string, number> | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
    return r.ok ? parseMetrics(await r.text()) : undefined;
  } catch {
    return undefined;
  }
}

/** Least-squares slope of y over x. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** The fault times: `rounds` of the five kinds spread evenly from 10% to 80% of the traffic phase. */
export function faultSchedule(trafficMs: number): { atMs: number; kind: FaultKind }[] {
  const rounds = Math.max(1, Math.floor(trafficMs / 360_000));
  const n = rounds * FAULTS.length;
  const from = trafficMs * 0.1;
  const to = trafficMs * 0.8;
  return Array.from({ length: n }, (_, i) => ({ atMs: Math.round(from + ((to - from) * i) / Math.max(1, n - 1)), kind: FAULTS[i % FAULTS.length]! }));
}

export async function soak(opts: SoakOptions): Promise<number> {
  const say = (s: string) => opts.out(`[soak ${new Date().toISOString().slice(11, 19)}] ${s}`);
  const dir = await mkdtemp(`${tmpdir()}/tickwatch-soak-`);
  const svcEnv: NodeJS.ProcessEnv = {
    ...process.env,
    TICKWATCH_STATE: `${dir}/state`,
    KAFKA_PORT: String(await freePort()),
    KAFKA_CONTROLLER_PORT: String(await freePort()),
    KAFKA_TLS_PORT: String(await freePort()),
    PGPORT_TICKWATCH: String(await freePort()),
    PROMETHEUS_PORT: String(await freePort()),
    KAFKA_HEAP_OPTS: '-Xms256m -Xmx512m',
    // The private cluster preloads TimescaleDB when installed, unless the run is on plain PostgreSQL.
    ...(process.env.TIMESCALEDB === 'off' ? { TICKWATCH_TIMESCALEDB: 'off' } : {}),
  };
  const services = (...args: string[]) => run('bash', [`${ROOT}/scripts/services.sh`, ...args], { env: svcEnv, timeout: 180_000, maxBuffer: 1 << 24 });
  const checks: Check[] = [];
  let server: BinanceServer | undefined;
  let sup: ReturnType<typeof supervise> | undefined;
  let checkDb: pg.Client | undefined;
  const log = createLogger('warn', 'soak');
  try {
    say(`private services in ${dir} (kafka :${svcEnv.KAFKA_PORT}, postgres :${svcEnv.PGPORT_TICKWATCH})`);
    await services('up', 'kafka', 'postgres');
    const brokers = `127.0.0.1:${svcEnv.KAFKA_PORT}`;
    const databaseUrl = `postgres://tickwatch:tickwatch@127.0.0.1:${svcEnv.PGPORT_TICKWATCH}/tickwatch`;

    const recording = await loadRecording({ bothDays: true });
    const evs = recording.events;
    const spanS = Number(evs[evs.length - 1]!.receiveNs - evs[0]!.receiveNs) / 1e9;
    const liveRate = evs.length / spanS;
    const rate = Math.round(liveRate * opts.rateX);
    const trafficMs = opts.minutes * 60_000;
    const repeat = Math.ceil((rate * trafficMs) / 1000 / evs.length) + 1;
    server = await BinanceServer.start({ recording, rate, repeat, repeatShiftMs: 3_600_000, autoplay: false });
    say(`exchange stand-in ${server.wsUrl}: ${evs.length.toLocaleString('en')} recorded events over ${spanS.toFixed(0)} s = ${liveRate.toFixed(0)}/s live; publishing ${rate}/s (${opts.rateX} x) for ${opts.minutes} min`);

    const ports = { ingestion: await freePort(), writer: await freePort(), metrics: await freePort() };
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      LOG_LEVEL: 'info',
      KAFKA_BROKERS: brokers,
      DATABASE_URL: databaseUrl,
      BINANCE_MARKET: 'spot',
      BINANCE_WS_URL: server.wsUrl,
      BINANCE_REST_URL: server.restUrl,
      SYMBOLS: 'BTCUSDT,ETHUSDT,BNBUSDT',
      HTTP_HOST: '127.0.0.1',
      INGESTION_HTTP_PORT: String(ports.ingestion),
      WRITER_HTTP_PORT: String(ports.writer),
      METRICS_HTTP_PORT: String(ports.metrics),
      WRITER_RETRY_MAX_MS: '2000',
    // The traffic is recorded 2024 traffic: a retention policy would drop it at its first run.
    TICK_RETENTION: 'none',
      RECONNECT_MAX_MS: '5000',
    };
    const config = loadConfig(env);
    await run(process.execPath, [...TICKWATCH_ARGS, 'migrate'], { env, timeout: 60_000 });
    sup = supervise(stackWorkers(config, { kind: 'live' }), env, log, dir);
    const worker = (name: string) => sup!.workers.find((w) => w.spec.name === name)!;
    say(`workers started, logs in ${dir}/<worker>.log; waiting for ingestion to connect`);
    for (let i = 0; i < 120 && server.openConnections === 0; i++) await sleep(500);
    await sleep(3000); // the writers join their groups
    server.play();

    // Sampling: RSS of each worker every 5 s (per incarnation), and /metrics scrapes.
    const rss = new Map<string, { pid: number; points: { x: number; y: number }[] }[]>();
    const t0 = Date.now();
    const sampler = setInterval(() => {
      for (const w of sup!.workers) {
        const pid = w.pid;
        const m = memoryOf(pid);
        if (!pid || !m) continue;
        const list = rss.get(w.spec.name) ?? rss.set(w.spec.name, []).get(w.spec.name)!;
        let inc = list.at(-1);
        if (!inc || inc.pid !== pid) list.push((inc = { pid, points: [] }));
        inc.points.push({ x: (Date.now() - t0) / 60_000, y: m.rss / 1e6 });
      }
    }, 5000);

    const evidence: { kind: FaultKind; atS: number; seen: boolean; detail: string }[] = [];
    const waitFor = async (what: () => Promise<boolean>, timeoutMs: number) => {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        if (await what()) return true;
        await sleep(500);
      }
      return false;
    };
    const startTime = (w: WorkerProcess, port: number) =>
      scrape(port).then((m) => m?.get(w.spec.name === 'writer' ? 'tickwatch_writer_process_start_time_seconds' : 'process_start_time_seconds'));

    // Each fault hits a working stack: every /healthz answers 200 and the writer is writing (a restarted writer first
    // waits out its dead predecessor's group session), so its effect has something to show up in.
    const healthy = async (port: number) => (await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined))?.status === 200;
    const settle = () =>
      waitFor(async () => {
        if (!(await healthy(ports.ingestion)) || !(await healthy(ports.writer)) || !(await healthy(ports.metrics))) return false;
        const a = (await scrape(ports.writer))?.get('tickwatch_writer_rows_written_total') ?? 0;
        await sleep(1500);
        return ((await scrape(ports.writer))?.get('tickwatch_writer_rows_written_total') ?? 0) > a;
      }, 90_000);
    const fault = async (kind: FaultKind) => {
      if (!(await settle())) say(`stack not settled after 90 s before ${kind}: injecting anyway`);
      const atS = (Date.now() - t0) / 1000;
      if (kind === 'writer-kill' || kind === 'metrics-kill') {
        const w = worker(kind === 'writer-kill' ? 'writer' : 'metrics');
        const port = kind === 'writer-kill' ? ports.writer : ports.metrics;
        const before = await startTime(w, port);
        const pid = w.pid;
        if (pid) process.kill(pid, 'SIGKILL');
        // The supervisor restarts it; the new process reports a later start time.
        const seen = await waitFor(async () => {
          const after = await startTime(w, port);
          return after !== undefined && before !== undefined && after > before;
        }, 60_000);
        evidence.push({ kind, atS, seen, detail: `pid ${pid} killed; ${w.spec.name} /metrics process start time ${seen ? 'moved forward (restarted)' : 'did not change within 60 s'}` });
      } else if (kind === 'exchange-drop') {
        const before = (await scrape(ports.ingestion))?.get('tickwatch_ingestion_reconnects_total') ?? 0;
        server!.dropConnections();
        const seen = await waitFor(async () => ((await scrape(ports.ingestion))?.get('tickwatch_ingestion_reconnects_total') ?? 0) > before, 30_000);
        evidence.push({ kind, atS, seen, detail: `tickwatch_ingestion_reconnects_total ${before} -> ${(await scrape(ports.ingestion))?.get('tickwatch_ingestion_reconnects_total')}` });
      } else {
        const svc = kind === 'kafka-restart' ? 'kafka' : 'postgres';
        const metric = kind === 'kafka-restart' ? 'tickwatch_ingestion_producer_buffer_depth' : 'tickwatch_writer_retries_total';
        const port = kind === 'kafka-restart' ? ports.ingestion : ports.writer;
        const before = (await scrape(port))?.get(metric) ?? 0;
        let peak = before;
        const poll = setInterval(() => void scrape(port).then((m) => (peak = Math.max(peak, m?.get(metric) ?? 0))), 500);
        const t = Date.now();
        await services('down', svc);
        await sleep(3000);
        await services('up', svc);
        const downS = (Date.now() - t) / 1000;
        await waitFor(async () => peak > before, 30_000);
        clearInterval(poll);
        evidence.push({ kind, atS, seen: peak > before, detail: `${svc} down for ${downS.toFixed(0)} s; ${metric} ${before} -> peak ${peak}` });
      }
      say(`fault ${kind} at ${atS.toFixed(0)} s: ${evidence.at(-1)!.seen ? 'visible' : 'NOT visible'} in /metrics (${evidence.at(-1)!.detail})`);
    };

    const schedule = faultSchedule(trafficMs);
    say(`traffic for ${opts.minutes} min with ${schedule.length} faults: ${schedule.map((f) => `${f.kind}@${(f.atMs / 1000).toFixed(0)}s`).join(' ')}`);
    let lastProgress = 0;
    for (const f of schedule) {
      while (Date.now() - t0 < f.atMs) {
        await sleep(500);
        if (Date.now() - lastProgress > 15_000) {
          lastProgress = Date.now();
          const wm = await scrape(ports.writer);
          say(`${((Date.now() - t0) / 1000).toFixed(0)} s / ${trafficMs / 1000} s: published ${server.published.toLocaleString('en')}, rows written ${(wm?.get('tickwatch_writer_rows_written_total') ?? 0).toLocaleString('en')} (this writer)`);
        }
      }
      await fault(f.kind);
    }
    while (Date.now() - t0 < trafficMs) await sleep(500);
    server.pause();
    const published = server.published;
    say(`traffic over: ${published.toLocaleString('en')} events published; draining`);

    // Drain: the produced set is what the broker holds; wait until the tables have all of it.
    const db = new pg.Client({ connectionString: databaseUrl });
    checkDb = db;
    // The harness's own connection must not take it down when something ends it: the checks still get printed.
    db.on('error', (err) => say(`check connection lost: ${err.message}`));
    await db.connect();
    const tables = { trade: 'trades', aggTrade: 'agg_trades', bookTicker: 'book_tickers' } as const;
    const idCol = { trade: 'trade_id', aggTrade: 'agg_id', bookTicker: 'update_id' } as const;
    let stored = new Map<string, Set<number>>();
    let rowCounts = new Map<string, number>();
    // Drained: nothing waits in the producer, no writer lag, and the row count has stopped moving.
    let lastRows = -1;
    // A backlog left by the last faults drains at the writer's pace: allow a fifth of the traffic time, at least 5 min.
    const drainMs = Math.max(300_000, trafficMs / 5);
    let lastDrainSay = Date.now();
    const drained = await waitFor(async () => {
      await sleep(4500);
      const [im, wm] = [await scrape(ports.ingestion), await scrape(ports.writer)];
      const rows = Number((await db.query<{ n: string }>('SELECT (SELECT count(*) FROM trades) + (SELECT count(*) FROM agg_trades) + (SELECT count(*) FROM book_tickers) AS n')).rows[0]!.n);
      const still = rows === lastRows;
      lastRows = rows;
      const depth = im?.get('tickwatch_ingestion_producer_buffer_depth');
      const lag = wm?.get('tickwatch_writer_lag_messages');
      if (Date.now() - lastDrainSay > 30_000) {
        lastDrainSay = Date.now();
        say(`draining: ${rows.toLocaleString('en')} rows, producer buffer ${depth ?? 'unreadable'}, writer lag ${lag ?? 'unreadable'} messages`);
      }
      return still && depth === 0 && lag === 0;
    }, drainMs);
    const produced = await readProduced(brokers, [config.kafka.topics.trade, config.kafka.topics.aggTrade, config.kafka.topics.bookTicker], say);
    say(`drain ${drained ? 'complete' : `timed out after ${drainMs / 1000} s`} (${lastRows.toLocaleString('en')} rows); waiting for the metrics worker to refresh every touched minute`);
    // Minutes still open on the wall clock (spot book tickers are bucketed on receive time) are not due yet.
    const due = "SELECT count(*) AS n FROM metric_invalidations WHERE bucket < now() - interval '1 minute' - make_interval(secs => $1)";
    await waitFor(async () => Number((await db.query<{ n: string }>(due, [config.metrics.allowedLatenessMs / 1000 + 3])).rows[0]!.n) === 0, 120_000);
    await sleep(3000);
    clearInterval(sampler);

    // Check 1: raw tables == produced set, no duplicates.
    ({ stored, rowCounts } = await readStored(db, tables, idCol));
    let lost = 0;
    let extra = 0;
    let producedTotal = 0;
    for (const [k, ids] of produced.ids) {
      producedTotal += ids.size;
      const s = stored.get(k) ?? new Set<number>();
      for (const id of ids) if (!s.has(id)) lost++;
    }
    let storedDistinct = 0;
    for (const [k, s] of stored) {
      storedDistinct += s.size;
      const p = produced.ids.get(k) ?? new Set<number>();
      for (const id of s) if (!p.has(id)) extra++;
    }
    const rowsTotal = [...rowCounts.values()].reduce((a, b) => a + b, 0);
    const duplicates = rowsTotal - storedDistinct;
    checks.push({
      name: 'raw tables == produced set',
      ok: lost === 0 && extra === 0 && duplicates === 0 && producedTotal > 0,
      detail: `exchange published ${published.toLocaleString('en')} events; produced ${producedTotal.toLocaleString('en')} distinct ticks (${produced.messages.toLocaleString('en')} Kafka records), stored ${rowsTotal.toLocaleString('en')} rows: lost ${lost}, not produced ${extra}, duplicate ${duplicates}`,
    });

    // Check 2: every 1-minute bar == the independent computation from the produced trades.
    const expected = expectedBars(produced.trades, 60_000);
    const bars = (await db.query('SELECT * FROM bars_1m ORDER BY market, symbol, bucket')).rows;
    const mismatches = barMismatches(bars, expected, 'bars_1m');
    checks.push({ name: 'bars_1m == independent computation', ok: mismatches.length === 0 && bars.length > 0, detail: `${bars.length} bars compared, ${mismatches.length} differ${mismatches.length ? `: ${mismatches.slice(0, 5).join('; ')}` : ''}` });
    await db.end();
    checkDb = undefined;

    // Check 3: RSS flat. Judged on incarnations that ran at least 5 minutes, after a 2-minute warm-up.
    const SLOPE_LIMIT_MB_PER_MIN = 2;
    const rssLines: string[] = [];
    let rssOk = true;
    for (const [name, incs] of rss) {
      for (const inc of incs) {
        const span = (inc.points.at(-1)?.x ?? 0) - (inc.points[0]?.x ?? 0);
        const peak = Math.max(...inc.points.map((p) => p.y));
        if (span < 5) {
          rssLines.push(`${name} pid ${inc.pid}: ${span.toFixed(1)} min, peak ${peak.toFixed(0)} MB (too short to judge a trend)`);
          continue;
        }
        const warm = inc.points.filter((p) => p.x >= inc.points[0]!.x + 2);
        const s = slope(warm);
        if (s > SLOPE_LIMIT_MB_PER_MIN) rssOk = false;
        rssLines.push(`${name} pid ${inc.pid}: ${span.toFixed(1)} min, peak ${peak.toFixed(0)} MB, slope ${s.toFixed(2)} MB/min (limit ${SLOPE_LIMIT_MB_PER_MIN})`);
      }
    }
    checks.push({ name: 'RSS flat', ok: rssOk, detail: rssLines.join('; ') });

    // Check 4: every fault visible in the metrics.
    const unseen = evidence.filter((e) => !e.seen);
    checks.push({ name: 'every fault visible in /metrics', ok: unseen.length === 0 && evidence.length === schedule.length, detail: `${evidence.length - unseen.length} of ${schedule.length}${unseen.length ? `; not visible: ${unseen.map((e) => `${e.kind}@${e.atS.toFixed(0)}s`).join(', ')}` : ''}` });

    // Check 5: the workers stop cleanly at the end.
    const clean = await sup.stop();
    sup = undefined;
    checks.push({ name: 'workers stop cleanly on SIGTERM', ok: clean, detail: clean ? 'all exited 0' : `see ${dir}/<worker>.log` });
  } catch (err) {
    say(`harness failed: ${(err as Error).message}`);
    checks.push({ name: 'harness', ok: false, detail: (err as Error).stack ?? String(err) });
  } finally {
    await checkDb?.end().catch(() => undefined);
    await sup?.stop().catch(() => false);
    await server?.close().catch(() => {});
    await services('down').catch(() => {});
    if (!opts.keep && checks.every((c) => c.ok)) {
      // As root, services.sh may have put the cluster outside the state folder (it records where in postgres.dir).
      const pgDir = await readFile(`${dir}/state/postgres.dir`, 'utf8').then((t) => t.trim(), () => '');
      if (/^\/var\/tmp\/tickwatch-postgres-[0-9a-f]+$/.test(pgDir)) await rm(pgDir, { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
    }
    else say(`kept ${dir} (logs, private service state)`);
  }
  opts.out('');
  for (const c of checks) opts.out(`${c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`);
  const ok = checks.every((c) => c.ok);
  opts.out(`\nsoak ${ok ? 'passed' : 'FAILED'}`);
  return ok ? 0 : 1;
}

interface Produced {
  /** `type|market|symbol` -> distinct ids */
  ids: Map<string, Set<number>>;
  /** Distinct trades (for the bar computation). */
  trades: Trade[];
  messages: number;
}

/**
 * Reads every record of the topics up to their current end with a throwaway consumer group. One partition can hold
 * millions of records after a long run and is read by one consumer in order: the time allowed grows with the count
 * (at least 5,000 records/s), and progress is said every 30 s.
 */
async function readProduced(brokers: string, topics: readonly string[], say: (s: string) => void): Promise<Produced> {
  const kafka = createKafka(loadConfig({ KAFKA_BROKERS: brokers, KAFKA_CLIENT_ID: 'soak-check', LOG_LEVEL: 'warn' }), createLogger('warn', 'soak-check'));
  const admin = kafka.admin();
  const ranges: PartitionRange[] = [];
  for (const t of topics) for (const p of await topicOffsets(admin, t)) ranges.push({ topic: t, partition: p.partition, from: p.low, to: p.high });
  await admin.close();
  const total = ranges.reduce((n, r) => n + Number(r.to - r.from), 0);
  const timeoutMs = Math.max(300_000, (total / 5_000) * 1000);
  const out: Produced = { ids: new Map(), trades: [], messages: 0 };
  const progress = setInterval(() => say(`reading the produced records: ${out.messages.toLocaleString('en')} of ${total.toLocaleString('en')}`), 30_000);
  const seenTrade = new Set<string>();
  try {
    await readRanges(
      kafka,
      ranges,
      createLogger('warn', 'soak-check'),
      (_topic, _partition, m) => {
        out.messages++;
        const tick = decodeTick(m.value, m.headers?.['schema-version']?.toString());
        const id = tick.type === 'trade' ? tick.tradeId : tick.type === 'aggTrade' ? tick.aggId : tick.updateId;
        const k = `${tick.type}|${tick.market}|${tick.symbol}`;
        (out.ids.get(k) ?? out.ids.set(k, new Set()).get(k)!).add(id);
        if (tick.type === 'trade' && !seenTrade.has(`${k}|${id}`)) {
          seenTrade.add(`${k}|${id}`);
          out.trades.push(tick);
        }
      },
      { timeoutMs },
    );
  } catch (err) {
    throw new Error(`reading the produced records failed: ${(err as Error).message}`);
  } finally {
    clearInterval(progress);
  }
  return out;
}

async function readStored(
  db: pg.Client,
  tables: Record<'trade' | 'aggTrade' | 'bookTicker', string>,
  idCol: Record<'trade' | 'aggTrade' | 'bookTicker', string>,
): Promise<{ stored: Map<string, Set<number>>; rowCounts: Map<string, number> }> {
  const stored = new Map<string, Set<number>>();
  const rowCounts = new Map<string, number>();
  for (const type of ['trade', 'aggTrade', 'bookTicker'] as const) {
    const r = await db.query<{ market: string; symbol: string; id: string }>(`SELECT market, symbol, ${idCol[type]}::text AS id FROM ${tables[type]}`);
    for (const row of r.rows) {
      const k = `${type}|${row.market}|${row.symbol}`;
      (stored.get(k) ?? stored.set(k, new Set()).get(k)!).add(Number(row.id));
      rowCounts.set(k, (rowCounts.get(k) ?? 0) + 1);
    }
  }
  return { stored, rowCounts };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { minutes: { type: 'string', default: '30' }, 'rate-x': { type: 'string', default: '10' }, keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write('usage: npm run soak -- [--minutes 30] [--rate-x 10] [--keep]\n\nSoak and chaos test on private services; exit 1 on any failed check.\n');
    process.exit(0);
  }
  const minutes = Number(values.minutes);
  const rateX = Number(values['rate-x']);
  if (!(minutes > 0) || !(rateX > 0)) {
    process.stderr.write('--minutes and --rate-x must be positive numbers\n');
    process.exit(1);
  }
  process.exit(await soak({ minutes, rateX, keep: values.keep === true, out: (l) => process.stdout.write(`${l}\n`) }));
}
