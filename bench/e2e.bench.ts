// `npm run bench:e2e`: the whole stack as child processes (ingest, write, metrics under the `run` supervisor's
// WorkerProcess), fed by the Binance stand-in (test/binance-server.ts) replaying the recorded captures, twice:
//   1. live speed: the captures' average live rate for --live-seconds (default 150) of traffic
//   2. max speed:  --max-events (default 500,000; the recording cycled with shifted ids and times) as fast as read
// With --symbols N (sizing, docs/sizing.md) it runs one phase instead: N synthetic symbols (test/synthetic-symbols.ts:
// the recorded streams under N names, rank r at r^-zipf of its source's recorded rate, x --rate-factor) streamed by
// rule (SYMBOLS=rule:quote=USDT) at their live rate for --seconds (default 120) of traffic.
// Printed per phase: messages/s offered and rows/s stored; receive-to-row latency p50/p99/max (rows polled every
// 200 ms: the row's receive_time against the poll that first saw it, so an upper bound by up to one poll; with
// --symbols on a sample of the symbols); bar-ready latency after each minute (from the first tick of the next minute
// arriving to bars_1m showing the minute's final trade count); the writers' Kafka lag; CPU seconds and peak RSS
// (VmHWM) of each process. Each phase uses a fresh database and fresh topics on the services of
// KAFKA_BROKERS / DATABASE_URL (eval "$(bash scripts/services.sh env)").
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/log.ts';
import { stackWorkers } from '../stack/cli.ts';
import { memoryOf, supervise } from '../stack/supervisor.ts';
import { tickwatchArgs } from '../common/paths.ts';
import { freePort } from '../test/ports.ts';
import { BinanceServer, loadRecording, type Recording } from '../test/binance-server.ts';
import { stackTopicEnv } from '../test/services.ts';
import { syntheticRecording } from '../test/synthetic-symbols.ts';
import { backendPids, CpuMeter, kafkaBrokerPids, writerBatches, writerLag } from './e2e-probes.ts';

const { values } = parseArgs({
  options: {
    'live-seconds': { type: 'string', default: '150' },
    'max-events': { type: 'string', default: '500000' },
    symbols: { type: 'string' },
    seconds: { type: 'string', default: '120' },
    zipf: { type: 'string', default: '0.7' },
    'rate-factor': { type: 'string', default: '1' },
  },
});
const LIVE_SECONDS = Number(values['live-seconds']);
const MAX_EVENTS = Number(values['max-events']);
const SYMBOLS = values.symbols === undefined ? undefined : Number(values.symbols);
const SECONDS = Number(values.seconds);
const ZIPF = Number(values.zipf);
const RATE_FACTOR = Number(values['rate-factor']);
for (const [k, v] of Object.entries({ symbols: SYMBOLS ?? 1, seconds: SECONDS, 'rate-factor': RATE_FACTOR })) {
  if (!(v > 0)) throw new Error(`--${k} must be a positive number`);
}
const brokers = process.env.KAFKA_BROKERS;
const baseUrl = process.env.DATABASE_URL;
if (!brokers || !baseUrl) {
  process.stderr.write('needs KAFKA_BROKERS and DATABASE_URL: eval "$(bash scripts/services.sh env)"\n');
  process.exit(1);
}
const log = createLogger('warn', 'bench');
const logDir = mkdtempSync(`${tmpdir()}/tickwatch-e2e-`);
process.stderr.write(`worker logs: ${logDir}/<worker>.log\n`);


const quantile = (sorted: readonly number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);
const ms = (v: number) => `${v.toFixed(0)} ms`;

const STREAM_TYPES = 3; // trade, aggTrade, bookTicker: the default STREAM_TYPES
const TABLES = { trade: 'trades', aggTrade: 'agg_trades', bookTicker: 'book_tickers' } as const;

interface PhaseOptions {
  readonly name: string;
  readonly recording: Recording;
  /** Events per second offered; 0 = as fast as read. */
  readonly rate: number;
  readonly repeat: number;
  /** The stand-in paces by the clock (ServerOptions.byClock). */
  readonly byClock?: boolean;
  /** Stop offering after this long; undefined = when the recording (x repeat) is published. */
  readonly stopAfterMs: number | undefined;
  /** SYMBOLS of the ingestion worker. */
  readonly symbols: string;
  readonly symbolCount: number;
  /** The symbols whose rows and bars the poller follows (latency, bar ready). */
  readonly sample: readonly string[];
}

interface PhaseResult {
  readonly name: string;
  readonly symbolCount: number;
  /** Seconds from the first event offered to the last row stored (rows stable for 5 s after). */
  readonly seconds: number;
  /** Seconds of offering, events offered then per type, and rows stored by then. */
  readonly offerSeconds: number;
  readonly offered: Record<string, number>;
  readonly storedAtStop: number;
  /** Rows stored in the end, per table. */
  readonly stored: Record<string, number>;
  readonly latencies: number[];
  readonly barReady: number[];
  readonly maxLag: number | undefined;
  /** Transactions the writers committed over the phase. */
  readonly batches: number;
  readonly cpu: Map<string, number>;
  /** Seconds from the first event offered to the last CPU sample. */
  readonly cpuWindow: number;
  /** WAL bytes written by the server over the phase. */
  readonly wal: number;
  readonly hwm: Record<string, number>;
}

async function countRows(db: pg.Client): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of Object.values(TABLES)) out[t] = Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${t}`)).rows[0]!.n);
  return out;
}
const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

async function phase(o: PhaseOptions): Promise<PhaseResult> {
  const { name } = o;
  const dbName = `bench_e2e_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(baseUrl!);
  url.pathname = `/${dbName}`;
  const server = await BinanceServer.start({ recording: o.recording, rate: o.rate, byClock: o.byClock, repeat: o.repeat, repeatShiftMs: 3_600_000, autoplay: false });
  const ports = { ingestion: await freePort(), writer: await freePort(), metrics: await freePort() };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LOG_LEVEL: 'warn',
    DATABASE_URL: url.toString(),
    BINANCE_MARKET: 'spot',
    BINANCE_WS_URL: server.wsUrl,
    BINANCE_REST_URL: server.restUrl,
    SYMBOLS: o.symbols,
    ...stackTopicEnv(`e2e-${Date.now().toString(36)}`),
    HTTP_HOST: '127.0.0.1',
    INGESTION_HTTP_PORT: String(ports.ingestion), WRITER_HTTP_PORT: String(ports.writer), METRICS_HTTP_PORT: String(ports.metrics),
  };
  const { execFileSync } = await import('node:child_process');
  // The workers as deployed: compiled (dist/, built by `npm run bench:e2e` first), not under this process's tsx.
  execFileSync(process.execPath, [...tickwatchArgs(true), 'migrate'], { env, stdio: 'ignore' });
  const sup = supervise(stackWorkers(loadConfig(env), { kind: 'live' }), env, log, logDir, tickwatchArgs(true));
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  try {
    const streams = o.symbolCount * STREAM_TYPES;
    for (let i = 0; i < 360 && server.subscribedStreams().size < streams; i++) await sleep(500);
    const subscribed = `${server.subscribedStreams().size} of ${streams} streams subscribed on ${server.openConnections} connection(s)`;
    if (server.subscribedStreams().size < streams) throw new Error(`[${name}] only ${subscribed} after 3 minutes (worker logs: ${logDir})`);
    process.stderr.write(`[${name}] ${subscribed}\n`);
    await sleep(3000);
    const hwm: Record<string, number> = {};
    const meter = new CpuMeter();
    const brokers = kafkaBrokerPids();
    const sampleProcesses = async () => {
      for (const w of sup.workers) {
        const m = memoryOf(w.pid);
        if (m) hwm[w.spec.name] = Math.max(hwm[w.spec.name] ?? 0, m.hwm);
      }
      const me = memoryOf(process.pid);
      if (me) hwm['bench (stand-in + poller)'] = me.hwm;
      const groups: Record<string, number[]> = { 'bench (stand-in + poller)': [process.pid], ...(await backendPids(db)), 'kafka broker': brokers };
      for (const w of sup.workers) if (w.pid !== undefined) groups[w.spec.name] = [w.pid];
      meter.sample(groups);
    };
    await sampleProcesses();
    const batches0 = (await writerBatches(`http://127.0.0.1:${ports.writer}/metrics`)) ?? 0;
    const wal0 = (await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
    const t0 = Date.now();
    server.play();
    process.stderr.write(`[${name}] publishing at ${o.rate === 0 ? 'max speed' : `${o.rate}/s`}\n`);

    // Poll the sample's new rows every 200 ms: latency = first seen - receive_time. A cursor per table and symbol on
    // `time` (trade time, or receive time for spot book tickers): a symbol's rows are written in its stream's order,
    // in which `time` does not decrease; rows at the cursor's own time are read again and told apart by `seen`.
    const latencies: number[] = [];
    const seen = new Set<string>();
    const cursor = { trades: new Map<string, Date>(), book_tickers: new Map<string, Date>() };
    const barsSeen = new Map<string, { t: number; count: number }[]>();
    // After the offer stops: all rows counted every second until the count holds for 5 s.
    let lastTotal = -1;
    let stableSince = t0;
    let lastT = Date.now();
    let lastLagT = 0;
    let maxLag: number | undefined;
    let stop: { at: number; published: number; stored: number } | undefined;
    for (;;) {
      await sleep(200);
      const now = Date.now();
      for (const [table, id] of [['trades', 'trade_id'], ['book_tickers', 'update_id']] as const) {
        const since = o.sample.map((x) => cursor[table].get(x) ?? new Date(0));
        const r = await db.query<{ s: string; k: string; rt: Date; t: Date }>(
          `SELECT x.symbol AS s, x.symbol || '|' || x.${id} AS k, x.receive_time AS rt, x.time AS t
             FROM unnest($1::text[], $2::timestamptz[]) AS c(symbol, since)
             JOIN ${table} x ON x.exchange = 'binance' AND x.market = 'spot' AND x.symbol = c.symbol AND x.time >= c.since`,
          [o.sample, since],
        );
        for (const row of r.rows) {
          const k = `${table}|${row.k}`;
          if (seen.has(k)) continue;
          seen.add(k);
          latencies.push(now - row.rt.getTime());
          if (row.t > (cursor[table].get(row.s) ?? 0)) cursor[table].set(row.s, row.t);
        }
      }
      const b = await db.query<{ k: string; n: string }>(
        "SELECT market || '|' || symbol || '|' || bucket::text AS k, trade_count::text AS n FROM bars_1m WHERE symbol = ANY($1)",
        [o.sample],
      );
      for (const row of b.rows) {
        const h = barsSeen.get(row.k) ?? barsSeen.set(row.k, []).get(row.k)!;
        if (h.at(-1)?.count !== Number(row.n)) h.push({ t: now, count: Number(row.n) });
      }
      if (now - lastLagT >= 1000) {
        lastLagT = now;
        await sampleProcesses();
        const lag = await writerLag(`http://127.0.0.1:${ports.writer}/metrics`);
        if (lag !== undefined) maxLag = Math.max(maxLag ?? 0, lag);
        if (stop) {
          const total = sum(await countRows(db));
          if (total !== lastTotal) {
            lastTotal = total;
            stableSince = now;
          }
        }
      }
      if (now - lastT > 10_000) {
        lastT = now;
        const s = (now - t0) / 1000;
        process.stderr.write(`[${name}] ${s.toFixed(0)} s: offered ${server.published.toLocaleString('en')} (${Math.round(server.published / s).toLocaleString('en')}/s), sample rows ${seen.size.toLocaleString('en')}, writer lag max ${maxLag ?? '?'}\n`);
      }
      const publishing = o.stopAfterMs !== undefined ? now - t0 < o.stopAfterMs : !server.done;
      if (!publishing && !stop) {
        server.pause();
        stop = { at: now, published: server.published, stored: sum(await countRows(db)) };
        stableSince = now;
      }
      if (!publishing && now - stableSince > 5000) break;
      if (now - t0 > 900_000) break;
    }
    await sampleProcesses();
    const cpuWindow = (Date.now() - t0) / 1000;
    // The whole server's WAL: other databases are idle while the benchmark holds /tmp/bench.lock.
    const wal = Number((await db.query<{ b: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::text AS b', [wal0])).rows[0]!.b);
    const batches = ((await writerBatches(`http://127.0.0.1:${ports.writer}/metrics`)) ?? NaN) - batches0;
    const offered: Record<string, number> = {};
    const evs = o.recording.events;
    for (let i = 0; i < stop!.published; i++) {
      const type = evs[i % evs.length]!.type;
      offered[type] = (offered[type] ?? 0) + 1;
    }
    // Bar ready: the minute's final trade count visible, measured from the first trade of the next minute arriving.
    const firstOfMinute = await db.query<{ k: string; rt: Date }>(
      `SELECT market || '|' || symbol || '|' || (date_trunc('minute', time) - interval '1 minute')::text AS k, min(receive_time) AS rt
         FROM trades WHERE symbol = ANY($1) GROUP BY 1`,
      [o.sample],
    );
    const closeAt = new Map(firstOfMinute.rows.map((r) => [r.k, r.rt.getTime()]));
    const barReady: number[] = [];
    for (const [k, h] of barsSeen) {
      const close = closeAt.get(k);
      const final = h.at(-1)!;
      const firstFinal = h.find((x) => x.count === final.count)!;
      if (close !== undefined && close >= t0) barReady.push(Math.max(0, firstFinal.t - close));
    }
    const sorted = (a: number[]) => a.sort((x, y) => x - y);
    return {
      name, symbolCount: o.symbolCount, seconds: (stableSince - t0) / 1000, offerSeconds: (stop!.at - t0) / 1000, offered, storedAtStop: stop!.stored,
      stored: await countRows(db), latencies: sorted(latencies), barReady: sorted(barReady), maxLag, batches, cpu: meter.seconds(), cpuWindow, wal, hwm,
    };
  } finally {
    await sup.stop();
    await server.close();
    await db.end();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

const int = (n: number) => Math.round(n).toLocaleString('en');

function report(r: PhaseResult): string[] {
  const l = r.latencies;
  const offered = sum(r.offered);
  const stored = sum(r.stored);
  const cpuTotal = [...r.cpu.values()].reduce((a, b) => a + b, 0);
  return [
    `${r.name}: ${r.symbolCount} symbols, ${r.symbolCount * STREAM_TYPES} streams, ${r.latencies.length.toLocaleString('en')} sampled rows`,
    `  offered ${int(offered)} messages in ${r.offerSeconds.toFixed(1)} s = ${int(offered / r.offerSeconds)}/s (${Object.entries(r.offered).map(([k, v]) => `${k} ${int(v / r.offerSeconds)}/s`).join(', ')})`,
    `  stored  ${int(r.storedAtStop)} rows by the end of the offer = ${int(r.storedAtStop / r.offerSeconds)}/s; in the end ${int(stored)} rows (${Object.entries(r.stored).map(([k, v]) => `${k} ${int(v)}`).join(', ')}), the last ${r.seconds.toFixed(1)} s after the first offer`,
    `  receive-to-row p50 ${ms(quantile(l, 0.5))}  p99 ${ms(quantile(l, 0.99))}  max ${ms(l.at(-1) ?? NaN)}  (poll 200 ms)`,
    `  bar ready after the minute: ${r.barReady.length} bars, p50 ${ms(quantile(r.barReady, 0.5))}  p99 ${ms(quantile(r.barReady, 0.99))}  max ${ms(r.barReady.at(-1) ?? NaN)}`,
    `  WAL: ${(r.wal / 1e6).toFixed(0)} MB = ${int(r.wal / stored)} bytes per stored row (the whole PostgreSQL server)`,
    `  writer Kafka lag: max ${r.maxLag === undefined ? 'n/a' : int(r.maxLag)} records (sampled every second); ${int(r.batches)} batches committed, ${int(stored / r.batches)} rows per batch`,
    `  CPU over ${r.cpuWindow.toFixed(1)} s from the first offer (% of one core; µs per stored row):`,
    ...[...r.cpu].map(([k, v]) => `    ${k.padEnd(26)} ${v.toFixed(1).padStart(7)} s  ${((100 * v) / r.cpuWindow).toFixed(1).padStart(5)} %  ${((v * 1e6) / stored).toFixed(1).padStart(6)} µs`),
    `    ${'all of these'.padEnd(26)} ${cpuTotal.toFixed(1).padStart(7)} s  ${((100 * cpuTotal) / r.cpuWindow).toFixed(1).padStart(5)} %  (the machine has 2 cores)`,
    `  peak RSS: ${Object.entries(r.hwm).map(([k, v]) => `${k} ${(v / 1e6).toFixed(0)} MB`).join(', ')}`,
  ];
}

const recorded = await loadRecording({ bothDays: true });
const evs = recorded.events;
const spanS = Number(evs[evs.length - 1]!.receiveNs - evs[0]!.receiveNs) / 1e9;
const liveRate = Math.round(evs.length / spanS);
process.stderr.write(`recording: ${evs.length.toLocaleString('en')} events over ${spanS.toFixed(0)} s (${liveRate}/s live)\n`);
const out: string[] = [''];
if (SYMBOLS !== undefined) {
  const synthetic = syntheticRecording(recorded, { symbols: SYMBOLS, seconds: SECONDS, exponent: ZIPF, rateFactor: RATE_FACTOR });
  const n = synthetic.recording.events.length;
  const ranks = synthetic.symbols;
  const step = Math.max(1, Math.floor(SYMBOLS / 20));
  const sample = ranks.filter((_, i) => i < 3 || (i + 1) % step === 0).map((s) => s.symbol);
  out.push(
    `end-to-end sizing: ${SYMBOLS} synthetic symbols (rank r at r^-${ZIPF} of its source's recorded rate${RATE_FACTOR === 1 ? '' : `, x ${RATE_FACTOR}`}), ${n.toLocaleString('en')} events over ${SECONDS} s`,
    `  rates: rank 1 ${ranks[0]!.source} x ${ranks[0]!.factor.toFixed(3)}, rank ${ranks.length} ${ranks.at(-1)!.source} x ${ranks.at(-1)!.factor.toFixed(4)}; latency and bars on ${sample.length} symbols (ranks 1-3 and one in ${step})`,
  );
  const r = await phase({ name: `symbols ${SYMBOLS}`, recording: synthetic.recording, rate: Math.round(n / SECONDS), byClock: true, repeat: 1, stopAfterMs: SECONDS * 1000, symbols: 'rule:quote=USDT', symbolCount: SYMBOLS, sample });
  out.push(...report(r));
} else {
  const all = ['BTCUSDT', 'ETHUSDT', 'BNBUSDT'];
  const common = { recording: recorded, symbols: all.join(','), symbolCount: all.length, sample: all };
  out.push(`end-to-end, ${evs.length.toLocaleString('en')}-event recording; latency on trades + book tickers seen by the poller`);
  out.push(...report(await phase({ ...common, name: 'live', rate: liveRate, repeat: 2, stopAfterMs: LIVE_SECONDS * 1000 })));
  out.push(...report(await phase({ ...common, name: 'max', rate: 0, repeat: Math.max(1, Math.ceil(MAX_EVENTS / evs.length)), stopAfterMs: undefined })));
}
process.stdout.write(`${out.join('\n')}\n`);
process.exit(0);
