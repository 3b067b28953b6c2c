// Ingestion benchmark: a local Binance stand-in (child process) sends recorded messages as fast as the worker reads
// them; the worker maps, validates, sequences and produces them to Kafka (@platformatic/kafka's connections, the
// product's own lz4 record batches, idempotent, acks -1). Prints messages/s, p50/p99 receive-to-acknowledged latency,
// CPU per message and peak RSS, beside JSON.parse and parse + validate + normalize alone (their CPU per message too),
// measured in this run. The worker runs twice: in this process (for the latencies, under tsx), then as deployed, a
// process of its own (`node` with stack/supervisor.ts NODE_FLAGS.ingest, `dist/bin/tickwatch.js ingest`, built by
// `npm run build`), whose CPU and peak RSS come from /proc and judge the #14 targets, with what its highest sampled RSS
// was made of (its own memory against mapped files: the node binary and libraries); the same child under tsx is
// printed beside it, and under them the RSS floor: processes that only load node, the Kafka client and the worker's
// modules.
//   npm run bench:ingest   (REPEAT=N sends the recording N times, default 2 = 349,288 messages; PRODUCER_BUFFER_MAX, PRODUCER_BUFFER_MAX_BYTES and PRODUCER_LANES override)
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { projectPath, tickwatchArgs } from '../common/paths.ts';
import { freePort } from '../test/ports.ts';
import { cpuSecondsOf, memoryOf, memoryOfStatus, NODE_FLAGS, type ProcessMemory } from '../stack/supervisor.ts';
import { loadConfig } from '../common/config.ts';
import { createKafka, createTopics } from '../common/kafka.ts';
import { tickKey } from '../common/records.ts';
import { createLogger } from '../common/log.ts';
import { createBinanceMapper } from '../ingestion/binance/mapper.ts';
import { createIngestMetrics } from '../ingestion/metrics.ts';
import { TickProducer } from '../ingestion/producer.ts';
import { startIngestion } from '../ingestion/worker.ts';
import { loadRecording, missingRecordings } from '../test/binance-server.ts';
import { ingestionTopicEnv } from '../test/services.ts';

if (missingRecordings()) process.exit(0);
const repeat = Number(process.env.REPEAT ?? 2);
const log = createLogger(process.env.LOG_LEVEL ?? 'warn', 'bench-ingest');

/** The stand-in as a child process, paused until `play`. */
async function standIn() {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/binance-server.ts', '--rate=0', '--autoplay=0', `--repeat=${repeat}`], { stdio: ['pipe', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
  const { wsUrl, restUrl, events } = JSON.parse(first) as { wsUrl: string; restUrl: string; events: number };
  return { wsUrl, restUrl, total: events * repeat, play: () => child.stdin!.write('play\n'), close: () => child.stdin!.end() };
}

/** The worker's environment against a stand-in, with fresh topics. */
function workerEnv(s: { wsUrl: string; restUrl: string }, httpPort: number): Record<string, string> {
  return {
    ...(process.env.KAFKA_BROKERS ? { KAFKA_BROKERS: process.env.KAFKA_BROKERS } : {}),
    LOG_LEVEL: 'warn',
    BINANCE_WS_URL: s.wsUrl,
    BINANCE_REST_URL: s.restUrl,
    ...ingestionTopicEnv(`bench-ingest-${Date.now().toString(36)}`),
    HTTP_HOST: '127.0.0.1',
    INGESTION_HTTP_PORT: String(httpPort),
    ...(process.env.PRODUCER_BUFFER_MAX ? { PRODUCER_BUFFER_MAX: process.env.PRODUCER_BUFFER_MAX } : {}),
    ...(process.env.PRODUCER_BUFFER_MAX_BYTES ? { PRODUCER_BUFFER_MAX_BYTES: process.env.PRODUCER_BUFFER_MAX_BYTES } : {}),
    ...(process.env.PRODUCER_LANES ? { PRODUCER_LANES: process.env.PRODUCER_LANES } : {}),
  };
}

async function dropTopics(c: ReturnType<typeof loadConfig>): Promise<void> {
  const admin = createKafka(c, log, 'bench').admin();
  const t = c.kafka.topics;
  await admin.deleteTopics({ topics: [t.trade, t.aggTrade, t.bookTicker, t.gap, t.deadLetter] }).catch(() => undefined);
  await admin.close();
}

// --- The worker in this process, end to end. ---
const server = await standIn();
const total = server.total;
const config = loadConfig(workerEnv(server, 0));

const latencies: number[] = [];
let acked = 0;
const metrics = createIngestMetrics();
const worker = await startIngestion(config, {
  log,
  metrics,
  resume: false,
  onAck: (us) => {
    // Every 16th acknowledgement is enough for the percentiles.
    if ((acked++ & 15) === 0) latencies.push(us);
  },
});
// The peak RSS and what it was made of at that moment (V8 heap vs. buffers outside it).
let peak = process.memoryUsage();
let peakRss = peak.rss;
const rssTimer = setInterval(() => {
  const m = process.memoryUsage();
  if (m.rss > peakRss) [peak, peakRss] = [m, m.rss];
}, 50);
const received = async () => {
  const m = await metrics.registry.getSingleMetric('tickwatch_ingestion_messages_received_total')!.get();
  return m.values.reduce((s, v) => s + v.value, 0);
};
while (worker.feeds[0]!.state !== 'open') await new Promise((r) => setTimeout(r, 20));
const t0 = performance.now();
// CPU per message (every thread of the process: gzip runs on libuv's pool) moves less than messages/s when the broker
// and other work share the cores.
const cpu0 = process.cpuUsage();
server.play();
let lastProgress = 0;
for (;;) {
  const n = await received();
  if (n >= total && worker.producer.depth === 0 && worker.pipeline.held === 0) break;
  if (performance.now() - lastProgress > 1000) {
    lastProgress = performance.now();
    process.stderr.write(`\r  ${n.toLocaleString('en')} / ${total.toLocaleString('en')} received, buffer ${worker.producer.depth}   `);
  }
  await new Promise((r) => setTimeout(r, 5));
}
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
clearInterval(rssTimer);
process.stderr.write('\n');
const reconnects = (await metrics.registry.getSingleMetric('tickwatch_ingestion_reconnects_total')!.get()).values.reduce((s, v) => s + v.value, 0);
await worker.stop('benchmark over');
server.close();
await dropTopics(config);

// --- The worker as deployed: a process of its own, compiled (then the same under tsx). Done when its /metrics says
// every message was received and nothing waits for Kafka (scraped every 100 ms, so the time is up to 0.1 s long). ---
/** A /proc sample of the worker's memory: resident in all, its own (anonymous) pages, and mapped files' pages. */
type Resident = Pick<ProcessMemory, 'rss' | 'anon' | 'file'>;
async function workerProcess(compiled: boolean): Promise<{ rate: number; cpuUs: number; hwm: number; idle: number; top: Resident }> {
  const s = await standIn();
  const port = await freePort();
  const env = workerEnv(s, port);
  const child = spawn(process.execPath, [...(NODE_FLAGS.ingest ?? []), ...tickwatchArgs(compiled), 'ingest'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  const sum = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(name)).reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  const scrape = async () => {
    const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()).catch(() => '');
    const open = text.split('\n').filter((l) => l.startsWith('tickwatch_ingestion_connection_state{'));
    return {
      open: open.length > 0 && open.every((l) => l.endsWith(' 2')),
      received: sum(text, 'tickwatch_ingestion_messages_received_total{'),
      waiting: sum(text, 'tickwatch_ingestion_producer_buffer_depth') + sum(text, 'tickwatch_ingestion_ticks_held'),
    };
  };
  for (let i = 0; i < 600 && !(await scrape()).open; i++) await new Promise((r) => setTimeout(r, 100));
  const idle = memoryOf(child.pid)!.rss;
  const cpu0 = cpuSecondsOf(child.pid)!;
  const t0 = performance.now();
  s.play();
  // VmHWM is the exact peak; the samples (every 100 ms) say what the highest of them was made of.
  let top: Resident = { rss: 0, anon: 0, file: 0 };
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const now = memoryOf(child.pid);
    if (now && now.rss > top.rss) top = now;
    const m = await scrape();
    if (m.received >= s.total && m.waiting === 0) break;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSecondsOf(child.pid)! - cpu0;
  const hwm = memoryOf(child.pid)!.hwm;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  s.close();
  await dropTopics(loadConfig(env));
  return { rate: s.total / seconds, cpuUs: (cpu * 1e6) / s.total, hwm, idle, top };
}
const deployed = await workerProcess(true);
const underTsx = await workerProcess(false);

/**
 * The floor under the deployed worker's RSS: a process with its flags that only loads `modules` (none: node alone),
 * collects its garbage and does nothing else.
 */
async function loadedRss(modules: readonly string[]): Promise<Resident> {
  const code = `for (const m of ${JSON.stringify(modules)}) await import(m); gc(); await new Promise((r) => setTimeout(r, 200)); gc(); process.stdout.write((await import('node:fs')).readFileSync('/proc/self/status', 'utf8'));`;
  const child = spawn(process.execPath, [...(NODE_FLAGS.ingest ?? []), '--expose-gc', '--input-type=module', '-e', code], { cwd: projectPath(), stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = await new Promise<number | null>((r) => child.once('exit', r));
  const r = memoryOfStatus(out);
  if (exit !== 0 || ![r.rss, r.anon, r.file].every(Number.isFinite)) throw new Error(`measuring the RSS floor failed (exit ${exit}): ${out}`);
  return r;
}
const floor = { node: await loadedRss([]), client: await loadedRss(['@platformatic/kafka']), worker: await loadedRss([pathToFileURL(projectPath('dist/ingestion/cli.js')).href]) };

// --- Baseline, after the worker run so its data does not count in the worker's RSS: JSON.parse alone, then parse + validate + normalize (the mapper), over the same frames. ---
const rec = await loadRecording();
const texts = rec.events.map((e) => e.text);
const spanS = Number(rec.events.at(-1)!.receiveNs - rec.events[0]!.receiveNs) / 1e9;
const liveRate = rec.events.length / spanS;
/** Messages/s and CPU µs per message of `fn` over the frames, best of 3 rounds (one thread: CPU ~ wall time). */
function rate(fn: (t: string) => unknown): { rate: number; cpuUs: number } {
  let best = { rate: 0, cpuUs: Infinity };
  for (let round = 0; round < 3; round++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (const t of texts) fn(t);
    const r = texts.length / ((performance.now() - t0) / 1000);
    const c = process.cpuUsage(c0);
    if (r > best.rate) best = { rate: r, cpuUs: (c.user + c.system) / texts.length };
  }
  return best;
}
const mapper = createBinanceMapper({ market: 'spot', maxFrameBytes: 65_536, streamTypes: ['trade', 'aggTrade', 'bookTicker'] });
const parseOnly = rate((t) => JSON.parse(t));
const parseValidate = rate((t) => mapper.map(t, 1_723_161_254_087_896));

// --- The Kafka side alone: the worker's producer (same lanes, buffer, acks and compression) fed the same ticks from
// memory, no socket and no parsing: the most the worker could reach on this machine with this Kafka client. ---
const ticks = texts.flatMap((t) => {
  const r = mapper.map(t, 1_723_161_254_087_896);
  return r.kind === 'tick' ? [r.tick] : [];
});
const kafkaOnly = await (async () => {
  const kafka = createKafka(config, log, 'bench-producer');
  const run = `bench-ingest-${Date.now().toString(36)}`;
  const topics = { trade: `${run}.p.trades`, aggTrade: `${run}.p.aggtrades`, bookTicker: `${run}.p.booktickers` } as const;
  await createTopics(kafka, Object.values(topics), config);
  const producer = new TickProducer(kafka, { bufferMaxBytes: config.source.producerBufferMaxBytes, lanes: config.source.producerLanes, log, metrics: createIngestMetrics() });
  await producer.connect();
  const n = ticks.length * repeat;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let r = 0; r < repeat; r++) {
    for (const t of ticks) {
      if (producer.full) await producer.writable();
      producer.produce(topics[t.type as keyof typeof topics], tickKey(t), t);
    }
  }
  await producer.flush();
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  await producer.stop();
  const admin = kafka.admin();
  await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
  await admin.close();
  return { rate: n / s, cpuUs: (c.user + c.system) / n };
})();

latencies.sort((a, b) => a - b);
const pct = (p: number) => (latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))]! / 1000).toFixed(1);
const e2e = total / seconds;
const workerCpuUs = (cpu.user + cpu.system) / total;
const fmt = (n: number) => Math.round(n).toLocaleString('en').padStart(10);
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
const rows = [
  ['JSON.parse only (same frames)', `${fmt(parseOnly.rate)} msg/s (${parseOnly.cpuUs.toFixed(2)} µs CPU per message)`],
  ['parse + validate + normalize (mapper)', `${fmt(parseValidate.rate)} msg/s (${parseValidate.cpuUs.toFixed(2)} µs CPU per message)`],
  ['producer alone: memory -> Kafka acknowledged', `${fmt(kafkaOnly.rate)} msg/s (${kafkaOnly.cpuUs.toFixed(1)} µs CPU per message)`],
  ['worker: socket -> Kafka acknowledged', `${fmt(e2e)} msg/s`],
  ['  receive -> ack latency p50 / p99', `${pct(50)} ms / ${pct(99)} ms`],
  ['  peak RSS (this process: worker + benchmark, tsx)', `${(peakRss / 2 ** 20).toFixed(0)} MB`],
  ['    at the peak: V8 heap total / used', `${(peak.heapTotal / 2 ** 20).toFixed(0)} / ${(peak.heapUsed / 2 ** 20).toFixed(0)} MB, external ${(peak.external / 2 ** 20).toFixed(0)} MB (array buffers ${(peak.arrayBuffers / 2 ** 20).toFixed(0)} MB)`],
  ['  CPU per message (this process)', `${workerCpuUs.toFixed(1)} µs = ${(workerCpuUs / parseValidate.cpuUs).toFixed(1)}x parse + validate + normalize (${(config.source.producerBufferMaxBytes / 2 ** 20).toFixed(0)} MiB buffer, ${config.source.producerLanes} producer lane(s), lz4)`],
  ['  messages / seconds / reconnects', `${total.toLocaleString('en')} / ${seconds.toFixed(2)} s / ${reconnects}`],
  ['worker process as deployed (dist/, compiled)', `${fmt(deployed.rate)} msg/s, ${deployed.cpuUs.toFixed(1)} µs CPU per message = ${(deployed.cpuUs / parseValidate.cpuUs).toFixed(1)}x the mapper`],
  ['  peak RSS (VmHWM) / RSS before the first message', `${(deployed.hwm / 2 ** 20).toFixed(0)} MB / ${(deployed.idle / 2 ** 20).toFixed(0)} MB`],
  ['    highest RSS sampled: its own / mapped files', `${mb(deployed.top.rss)} MB: ${mb(deployed.top.anon)} MB anonymous / ${mb(deployed.top.file)} MB files (the node binary and libraries, shared by every process running them)`],
  ['  RSS floor: node alone / + @platformatic/kafka / + the worker modules', `${[floor.node, floor.client, floor.worker].map((r) => mb(r.rss)).join(' / ')} MB (loaded, garbage collected, idle)`],
  ['    of which mapped files', `${[floor.node, floor.client, floor.worker].map((r) => mb(r.file)).join(' / ')} MB`],
  ['the same process under tsx', `${fmt(underTsx.rate)} msg/s, ${underTsx.cpuUs.toFixed(1)} µs CPU per message, peak RSS ${(underTsx.hwm / 2 ** 20).toFixed(0)} MB (before the first message ${(underTsx.idle / 2 ** 20).toFixed(0)} MB)`],
  ['live rate of the recorded streams', `${fmt(liveRate)} msg/s (worker = ${(e2e / liveRate).toFixed(0)}x live)`],
];
const w = Math.max(...rows.map((r) => r[0]!.length));
process.stdout.write(`\ningestion benchmark (${total.toLocaleString('en')} recorded messages, 9 streams, @platformatic/kafka, acks -1 + lz4)\n`);
for (const [k, v] of rows) process.stdout.write(`  ${k!.padEnd(w)}  ${v}\n`);
process.stdout.write(`  target: >= 100,000 msg/s, >= 50x live, RSS < 200 MB -> ${e2e >= 100_000 ? 'met' : 'NOT met'} / ${e2e / liveRate >= 50 ? 'met' : 'NOT met'} / ${peakRss < 200 * 2 ** 20 ? 'met' : 'NOT met'}\n`);
process.stdout.write(`  target (#14, the deployed worker process): CPU per message <= 4x parse + validate + normalize, peak RSS <= 100 MB -> ${deployed.cpuUs <= 4 * parseValidate.cpuUs ? 'met' : 'NOT met'} / ${deployed.hwm <= 100 * 2 ** 20 ? 'met' : 'NOT met'}\n`);
process.exit(0);
