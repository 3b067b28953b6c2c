// `npm run bench:e2e`: the whole stack as child processes (ingest, write, metrics under the `run` supervisor's
// WorkerProcess), fed by the Binance stand-in (test/binance-server.ts) replaying the recorded captures, twice:
//   1. live speed: the captures' average live rate for --live-seconds (default 150) of traffic
//   2. max speed:  --max-events (default 500,000; the recording cycled with shifted ids and times) as fast as read
// Printed per phase: rows/s into the tables; receive-to-row latency p50/p99/max (rows polled every 200 ms: the row's
// receive_time against the poll that first saw it, so an upper bound by up to one poll); bar-ready latency after each
// minute (from the first tick of the next minute arriving to bars_1m showing the minute's final trade count); peak
// RSS (VmHWM) of each process. Each phase uses a fresh database and fresh topics on the services of
// KAFKA_BROKERS / DATABASE_URL (eval "$(bash scripts/services.sh env)").
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/log.ts';
import { stackWorkers } from '../stack/cli.ts';
import { memoryOf, supervise } from '../stack/supervisor.ts';
import { BinanceServer, loadRecording, type Recording } from '../test/binance-server.ts';
import { stackTopicEnv } from '../test/services.ts';

const { values } = parseArgs({ options: { 'live-seconds': { type: 'string', default: '150' }, 'max-events': { type: 'string', default: '500000' } } });
const LIVE_SECONDS = Number(values['live-seconds']);
const MAX_EVENTS = Number(values['max-events']);
const brokers = process.env.KAFKA_BROKERS;
const baseUrl = process.env.DATABASE_URL;
if (!brokers || !baseUrl) {
  process.stderr.write('needs KAFKA_BROKERS and DATABASE_URL: eval "$(bash scripts/services.sh env)"\n');
  process.exit(1);
}
const log = createLogger('warn', 'bench');
const logDir = mkdtempSync(`${tmpdir()}/tickwatch-e2e-`);
process.stderr.write(`worker logs: ${logDir}/<worker>.log\n`);

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

const quantile = (sorted: readonly number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);
const ms = (v: number) => `${v.toFixed(0)} ms`;

interface PhaseResult {
  readonly name: string;
  readonly rows: number;
  readonly seconds: number;
  readonly latencies: number[];
  readonly barReady: number[];
  readonly hwm: Record<string, number>;
}

async function phase(name: string, recording: Recording, rate: number, repeat: number, stopAfterMs: number | undefined): Promise<PhaseResult> {
  const dbName = `bench_e2e_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(baseUrl!);
  url.pathname = `/${dbName}`;
  const server = await BinanceServer.start({ recording, rate, repeat, repeatShiftMs: 3_600_000, autoplay: false });
  const ports = { ingestion: await freePort(), writer: await freePort(), metrics: await freePort() };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LOG_LEVEL: 'warn',
    DATABASE_URL: url.toString(),
    BINANCE_MARKET: 'spot',
    BINANCE_WS_URL: server.wsUrl,
    BINANCE_REST_URL: server.restUrl,
    SYMBOLS: 'BTCUSDT,ETHUSDT,BNBUSDT',
    ...stackTopicEnv(`e2e-${Date.now().toString(36)}`),
    HTTP_HOST: '127.0.0.1',
    INGESTION_HTTP_PORT: String(ports.ingestion), WRITER_HTTP_PORT: String(ports.writer), METRICS_HTTP_PORT: String(ports.metrics),
  };
  const { execFileSync } = await import('node:child_process');
  execFileSync(process.execPath, ['--import', 'tsx', 'bin/tickwatch.ts', 'migrate'], { env, stdio: 'ignore' });
  const sup = supervise(stackWorkers(loadConfig(env), { kind: 'live' }), env, log, logDir);
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  try {
    for (let i = 0; i < 120 && server.openConnections === 0; i++) await sleep(500);
    await sleep(3000);
    const hwm: Record<string, number> = {};
    const sampleHwm = () => {
      for (const w of sup.workers) {
        const m = memoryOf(w.pid);
        if (m) hwm[w.spec.name] = Math.max(hwm[w.spec.name] ?? 0, m.hwm);
      }
      const me = memoryOf(process.pid);
      if (me) hwm['bench (stand-in + poller)'] = me.hwm;
    };
    const t0 = Date.now();
    server.play();
    process.stderr.write(`[${name}] publishing at ${rate === 0 ? 'max speed' : `${rate}/s`}\n`);

    // Poll new rows every 200 ms: latency = first seen - receive_time.
    const latencies: number[] = [];
    const seen = new Set<string>();
    let watermark = new Date(0);
    const barsSeen = new Map<string, { t: number; count: number }[]>();
    let rows = 0;
    let lastRows = -1;
    let stableSince = 0;
    let lastT = Date.now();
    for (;;) {
      await sleep(200);
      const now = Date.now();
      const r = await db.query<{ k: string; rt: Date }>(
        `SELECT 't' || symbol || trade_id AS k, receive_time AS rt FROM trades WHERE receive_time > $1
         UNION ALL SELECT 'b' || symbol || update_id, receive_time FROM book_tickers WHERE receive_time > $1`,
        [new Date(watermark.getTime() - 15_000)],
      );
      for (const row of r.rows) {
        if (seen.has(row.k)) continue;
        seen.add(row.k);
        latencies.push(now - row.rt.getTime());
        if (row.rt > watermark) watermark = row.rt;
      }
      const b = await db.query<{ k: string; n: string }>("SELECT market || '|' || symbol || '|' || bucket::text AS k, trade_count::text AS n FROM bars_1m");
      for (const row of b.rows) {
        const h = barsSeen.get(row.k) ?? barsSeen.set(row.k, []).get(row.k)!;
        if (h.at(-1)?.count !== Number(row.n)) h.push({ t: now, count: Number(row.n) });
      }
      sampleHwm();
      rows = seen.size;
      if (rows !== lastRows) {
        lastRows = rows;
        stableSince = now;
      }
      if (now - lastT > 10_000) {
        lastT = now;
        process.stderr.write(`[${name}] ${((now - t0) / 1000).toFixed(0)} s: published ${server.published.toLocaleString('en')}, rows ${rows.toLocaleString('en')}\n`);
      }
      if (stopAfterMs !== undefined && now - t0 >= stopAfterMs) server.pause();
      const publishing = stopAfterMs !== undefined ? now - t0 < stopAfterMs : !server.done;
      if (!publishing && now - stableSince > 5000) break;
      if (now - t0 > 600_000) break;
    }
    const seconds = (stableSince - t0) / 1000;
    // Bar ready: the minute's final trade count visible, measured from the first trade of the next minute arriving.
    const firstOfMinute = await db.query<{ k: string; rt: Date }>(
      "SELECT market || '|' || symbol || '|' || (date_trunc('minute', time) - interval '1 minute')::text AS k, min(receive_time) AS rt FROM trades GROUP BY 1",
    );
    const closeAt = new Map(firstOfMinute.rows.map((r) => [r.k, r.rt.getTime()]));
    const barReady: number[] = [];
    for (const [k, h] of barsSeen) {
      const close = closeAt.get(k);
      const final = h.at(-1)!;
      const firstFinal = h.find((x) => x.count === final.count)!;
      if (close !== undefined && close >= t0) barReady.push(Math.max(0, firstFinal.t - close));
    }
    return { name, rows, seconds, latencies: latencies.sort((a, b) => a - b), barReady: barReady.sort((a, b) => a - b), hwm };
  } finally {
    await sup.stop();
    await server.close();
    await db.end();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

const recording = await loadRecording({ bothDays: true });
const evs = recording.events;
const spanS = Number(evs[evs.length - 1]!.receiveNs - evs[0]!.receiveNs) / 1e9;
const liveRate = Math.round(evs.length / spanS);
process.stderr.write(`recording: ${evs.length.toLocaleString('en')} events over ${spanS.toFixed(0)} s (${liveRate}/s live)\n`);
const results = [
  await phase('live', recording, liveRate, 2, LIVE_SECONDS * 1000),
  await phase('max', recording, 0, Math.max(1, Math.ceil(MAX_EVENTS / evs.length)), undefined),
];
const out: string[] = ['', `end-to-end, ${evs.length.toLocaleString('en')}-event recording; rows = trades + book tickers seen by the poller`];
for (const r of results) {
  const l = r.latencies;
  out.push(
    `${r.name.padEnd(5)} ${r.rows.toLocaleString('en')} rows in ${r.seconds.toFixed(1)} s = ${Math.round(r.rows / r.seconds).toLocaleString('en')} rows/s`,
    `      receive-to-row p50 ${ms(quantile(l, 0.5))}  p99 ${ms(quantile(l, 0.99))}  max ${ms(l.at(-1) ?? NaN)}  (poll 200 ms)`,
    `      bar ready after the minute: ${r.barReady.length} bars, p50 ${ms(quantile(r.barReady, 0.5))}  p99 ${ms(quantile(r.barReady, 0.99))}  max ${ms(r.barReady.at(-1) ?? NaN)}`,
    `      peak RSS: ${Object.entries(r.hwm).map(([k, v]) => `${k} ${(v / 1e6).toFixed(0)} MB`).join(', ')}`,
  );
}
process.stdout.write(`${out.join('\n')}\n`);
process.exit(0);
