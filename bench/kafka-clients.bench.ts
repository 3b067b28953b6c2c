// `npm run bench:kafka-clients`: the candidates for the product's Kafka client, producing the ingestion worker's real
// record stream (the recorded Binance frames mapped to ticks, encoded as the worker encodes them, keyed
// exchange:market:symbol) with the same delivery guarantees: idempotent producers, acks = all, one request in flight
// per producer (per-key order), records spread by key over PRODUCER_LANES (2) producers, 2,000 records per request,
// nothing counted before Kafka acknowledged it. Each candidate runs in its own child process (its own heap and RSS),
// into fresh topics; the parent checks that every record arrived (end offsets) and reads the bytes on disk from the
// broker (DescribeLogDirs). Prints records/s, CPU µs per record (all threads: gzip may run on libuv's pool), peak RSS
// and bytes on disk per record, the product's current producer first as the same-run baseline. The kafkajs candidates
// measured before the move (ingestion/README.md) are gone with kafkajs; the product's producer is now the lz4 one.
//   npm run bench:kafka-clients [-- --records N] [--rounds R] [--only name,name]
// Needs KAFKA_BROKERS (eval "$(bash scripts/services.sh env)").
import { spawn } from 'node:child_process';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Admin, Producer, ProduceAcks } from '@platformatic/kafka';
import { loadConfig } from '../common/config.ts';
import { cachedKeyPartitioner, createKafka, createTopics } from '../common/kafka.ts';
import { createLogger } from '../common/log.ts';
import { encodeRecord, tickKey, type Tick } from '../common/records.ts';
import { createBinanceMapper } from '../ingestion/binance/mapper.ts';
import { createIngestMetrics } from '../ingestion/metrics.ts';
import { TickProducer } from '../ingestion/producer.ts';
import { loadRecording, missingRecordings } from '../test/binance-server.ts';

const CANDIDATES = [
  'product', // the product's TickProducer as it is (@platformatic/kafka, lz4)
  'platformatic-none',
  'platformatic-gzip',
  'platformatic-lz4',
  'platformatic-snappy',
  'platformatic-zstd',
] as const;
type Candidate = (typeof CANDIDATES)[number];
const BATCH = 2_000;

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '400000' },
    rounds: { type: 'string', default: '1' },
    only: { type: 'string' },
    candidate: { type: 'string' },
    topics: { type: 'string' },
  },
});
const config = loadConfig({ ...(process.env.KAFKA_BROKERS ? { KAFKA_BROKERS: process.env.KAFKA_BROKERS } : {}), LOG_LEVEL: 'warn' });
const log = createLogger('warn', 'bench-kafka-clients');
const lanes = config.source.producerLanes;

interface Result {
  readonly candidate: Candidate;
  readonly records: number;
  readonly seconds: number;
  readonly cpuUs: number;
  readonly peakRssMb: number;
  /** Peak RSS less the RSS once the stream was loaded: what the client and its buffers added. */
  readonly addedRssMb: number;
}

/** The worker's stream: every recorded frame mapped as the worker maps it, cycled to `n` ticks. */
async function tickStream(n: number): Promise<Tick[]> {
  const rec = await loadRecording();
  const mapper = createBinanceMapper({ market: 'spot', maxFrameBytes: 65_536, streamTypes: ['trade', 'aggTrade', 'bookTicker'] });
  const ticks: Tick[] = [];
  for (const e of rec.events) {
    const r = mapper.map(e.text, 1_723_161_254_087_896);
    if (r.kind === 'tick') ticks.push(r.tick);
  }
  return Array.from({ length: n }, (_, i) => ticks[i % ticks.length]!);
}

/** The Java-compatible murmur2 partition of a key, computed once per key as the product does. */
function partitionOf(partitions: number): (key: Buffer) => number {
  const hash = cachedKeyPartitioner();
  return (key) => hash({ topic: '' }, key) % partitions;
}

interface Rec {
  readonly topic: string;
  readonly key: Buffer;
  readonly value: Buffer;
  readonly partition: number;
}

/**
 * The same lane harness for every client except the product's own: records go to the lane of their key; each lane
 * sends up to BATCH records per request, one request in flight, and the caller waits while PRODUCER_BUFFER_MAX records
 * are unacknowledged.
 */
async function runLanes(ticks: readonly Tick[], topicOf: (t: Tick) => string, send: (lane: number, batch: Rec[]) => Promise<void>): Promise<void> {
  const part = partitionOf(config.kafka.partitions);
  const keys = new Map<string, { bytes: Buffer; partition: number; lane: number }>();
  const queues: Rec[][] = Array.from({ length: lanes }, () => []);
  const busy: (Promise<void> | undefined)[] = Array.from({ length: lanes }, () => undefined);
  let pending = 0;
  let wake: (() => void) | undefined;
  const pump = (lane: number): void => {
    if (busy[lane] || queues[lane]!.length === 0) return;
    const batch = queues[lane]!.splice(0, BATCH);
    busy[lane] = send(lane, batch).then(() => {
      pending -= batch.length;
      busy[lane] = undefined;
      pump(lane);
      wake?.();
    });
  };
  for (const t of ticks) {
    const k = tickKey(t);
    let key = keys.get(k);
    if (key === undefined) {
      const bytes = Buffer.from(k);
      keys.set(k, (key = { bytes, partition: part(bytes), lane: keys.size % lanes }));
    }
    queues[key.lane]!.push({ topic: topicOf(t), key: key.bytes, value: encodeRecord(t), partition: key.partition });
    pending++;
    pump(key.lane);
    while (pending >= config.source.producerBufferMax) await new Promise<void>((r) => (wake = r));
  }
  while (pending > 0) await new Promise<void>((r) => (wake = r));
}

async function runCandidate(candidate: Candidate, topicNames: readonly string[], n: number): Promise<Result> {
  const ticks = await tickStream(n);
  const topics = { trade: topicNames[0]!, aggTrade: topicNames[1]!, bookTicker: topicNames[2]! };
  const topicOf = (t: Tick): string => topics[t.type];
  const start = process.memoryUsage().rss;
  let peak = start;
  const rssTimer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 25);
  let run: () => Promise<void>;
  let close: () => Promise<void>;
  if (candidate === 'product') {
    const producer = new TickProducer(createKafka(config, log, 'bench'), { bufferMaxBytes: config.source.producerBufferMaxBytes, lanes, log, metrics: createIngestMetrics() });
    await producer.connect();
    run = async () => {
      for (const t of ticks) {
        if (producer.full) await producer.writable();
        producer.produce(topicOf(t), tickKey(t), t);
      }
      await producer.flush();
    };
    close = () => producer.stop();
  } else {
    const compression = candidate.slice('platformatic-'.length) as 'none' | 'gzip' | 'lz4' | 'snappy' | 'zstd';
    const producers = Array.from(
      { length: lanes },
      (_, i) => new Producer({ clientId: `bench-${i}`, bootstrapBrokers: config.kafka.brokers, idempotent: true, acks: ProduceAcks.ALL, compression, retries: 5 }),
    );
    run = () =>
      runLanes(ticks, topicOf, async (lane, batch) => {
        await producers[lane]!.send({ messages: batch });
      });
    close = async () => void (await Promise.all(producers.map((p) => p.close())));
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(rssTimer);
  await close();
  return { candidate, records: n, seconds, cpuUs: (cpu.user + cpu.system) / n, peakRssMb: peak / 2 ** 20, addedRssMb: (peak - start) / 2 ** 20 };
}

// --- child: one candidate ---
if (args.candidate) {
  const topics = args.topics!.split(',');
  const r = await runCandidate(args.candidate as Candidate, topics, Number(args.records));
  process.stdout.write(`${JSON.stringify(r)}\n`);
  process.exit(0);
}

// --- parent ---
if (missingRecordings()) process.exit(0);
const n = Number(args.records);
const rounds = Number(args.rounds);
let chosen = args.only ? (args.only.split(',') as Candidate[]) : [...CANDIDATES];
for (const c of chosen) if (!CANDIDATES.includes(c)) throw new Error(`unknown candidate ${c}; known: ${CANDIDATES.join(', ')}`);
if (typeof (zlib as { zstdCompressSync?: unknown }).zstdCompressSync !== 'function' && chosen.includes('platformatic-zstd')) {
  process.stderr.write(`  platformatic-zstd left out: Node ${process.versions.node} has no zstd in zlib (Node 22.15+ has)\n`);
  chosen = chosen.filter((c) => c !== 'platformatic-zstd');
}
const admin = new Admin({ clientId: 'bench-admin', bootstrapBrokers: config.kafka.brokers });
const kafka = createKafka(config, log, 'bench-admin');
const script = fileURLToPath(import.meta.url);
const runId = `bench-clients-${Date.now().toString(36)}`;

interface Row extends Result {
  readonly delivered: number;
  readonly bytesOnDisk: number;
}
const rows: Row[] = [];
for (let round = 1; round <= rounds; round++) {
  for (const candidate of chosen) {
    const topics = ['trades', 'aggtrades', 'booktickers'].map((t) => `${runId}.${round}.${candidate}.${t}`);
    await createTopics(kafka, topics, config);
    process.stderr.write(`  round ${round}: ${candidate} ...`);
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, '--candidate', candidate, '--topics', topics.join(','), '--records', String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`${candidate} exited ${code}`))));
    }).catch((err: Error) => {
      process.stderr.write(` ${err.message}\n`);
      return undefined;
    });
    if (out === undefined) continue;
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as Result;
    const partitions = Array.from({ length: config.kafka.partitions }, (_, p) => p);
    const offsets = await admin.listOffsets({ topics: topics.map((name) => ({ name, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp: -1n })) })) });
    const delivered = offsets.reduce((s, t) => s + t.partitions.reduce((a, p) => a + Number(p.offset), 0), 0);
    const dirs = await admin.describeLogDirs({ topics: topics.map((name) => ({ name, partitions })) });
    let bytesOnDisk = 0;
    for (const b of dirs) for (const r of b.results) for (const t of r.topics) for (const p of t.partitions) bytesOnDisk += Number(p.partitionSize);
    await admin.deleteTopics({ topics });
    rows.push({ ...result, delivered, bytesOnDisk });
    process.stderr.write(` ${Math.round(result.records / result.seconds).toLocaleString('en')} records/s\n`);
  }
}
await admin.close();

const fmt = (x: number, d = 0) => x.toLocaleString('en', { minimumFractionDigits: d, maximumFractionDigits: d });
process.stdout.write(`\nKafka client candidates: ${fmt(n)} ticks of the recorded stream per run, ${lanes} idempotent producers, acks all, ${BATCH} per request\n`);
process.stdout.write(`  ${'candidate'.padEnd(20)} ${'records/s'.padStart(10)} ${'CPU µs/rec'.padStart(11)} ${'peak RSS (added)'.padStart(17)} ${'disk B/rec'.padStart(11)}  delivered\n`);
for (const r of rows) {
  process.stdout.write(
    `  ${r.candidate.padEnd(20)} ${fmt(r.records / r.seconds).padStart(10)} ${fmt(r.cpuUs, 1).padStart(11)} ${`${fmt(r.peakRssMb)} (${fmt(r.addedRssMb)}) MB`.padStart(17)} ${fmt(r.bytesOnDisk / r.records, 1).padStart(11)}  ${r.delivered === r.records ? 'all' : `${fmt(r.delivered)} of ${fmt(r.records)}`}\n`,
  );
}
process.exit(rows.every((r) => r.delivered === r.records) ? 0 : 1);
