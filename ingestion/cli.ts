// The ingestion stage's commands: `ingest` (the worker), `replay` and `record` (capture files), `backfill` (by hand).
import type { Command } from '../common/cli.ts';
import type { Config } from '../common/config.ts';
import { startHttpEndpoint, type Health } from '../common/http.ts';
import { createKafka } from '../common/kafka.ts';
import { runWorker, type Worker } from '../common/lifecycle.ts';
import type { Logger } from '../common/log.ts';
import { tickKey } from '../common/records.ts';
import { RestBackfiller } from './backfill.ts';
import { streamNames } from './binance/mapper.ts';
import { CaptureWriter } from './capture.ts';
import { binanceFeeds, systemClock } from './feed.ts';
import { resolveSymbols } from './instruments.ts';
import { ShardLease } from './lease.ts';
import { createIngestMetrics } from './metrics.ts';
import { replay } from './replay.ts';
import { connectProducer, startIngestion } from './worker.ts';

export const ingestCommand: Command = {
  name: 'ingest',
  summary: 'stream Binance trades, aggTrades, book tickers and order books (and Coinbase, Gemini) into Kafka (the ingestion worker)',
  usage: [
    'usage: tickwatch ingest',
    '',
    'Connects to BINANCE_WS_URL (combined streams for SYMBOLS x STREAM_TYPES), produces to the TOPIC_* topics,',
    'backfills holes over BINANCE_REST_URL and serves /metrics and /healthz on INGESTION_HTTP_PORT. With `depth` in',
    'STREAM_TYPES it keeps order books from the diff streams and REST snapshots and publishes them to TOPIC_BOOKS.',
    'COINBASE_PRODUCTS and GEMINI_SYMBOLS add one connection per venue (trades, book tickers, books to the same topics).',
    'SYMBOLS may be a rule (rule:quote=USDT, re-resolved every SYMBOLS_REFRESH_SECONDS); SHARD=i/N streams this shard\'s',
    'part; INGEST_LEASE=true makes the process wait for its shard\'s lease (a standby) and stream while it holds it.',
  ].join('\n'),
  options: {},
  run: ({ config, log }) => runWorker(log, () => (config.source.lease ? startWithLease(config, log) : startIngestion(config, { log }))),
};

/**
 * INGEST_LEASE=true: wait for this shard's lease (ingestion/lease.ts), then stream. A lost lease ends the process at
 * once, without flushing: whatever it still held is produced by the successor (resume and backfill), never by both.
 * A graceful stop stops producing first and leaves the group after, so the standby takes over at once. A waiting
 * standby serves /metrics (lease_active 0) and a /healthz that says it waits; once active, the worker's own.
 */
async function startWithLease(config: Config, log: Logger): Promise<Worker> {
  const metrics = createIngestMetrics({ streams: [...streamNames(config.source.symbols, config.source.streamTypes, config.source.market), 'coinbase', 'gemini'] });
  let active: (() => Health) | undefined;
  const http = await startHttpEndpoint({
    host: config.http.host,
    port: config.http.ports.ingestion,
    registry: metrics.registry,
    health: () => (active ? { ...active(), role: 'active' } : { ok: true, role: 'standby', shard: `${config.source.shard.index}/${config.source.shard.count}` }),
  });
  const lease = new ShardLease({
    kafka: createKafka(config, log, 'ingest-lease'),
    config,
    log,
    metrics,
    onLost: () => process.exit(3),
  });
  await lease.start();
  await lease.acquired;
  const worker = await startIngestion(config, { log, metrics, admit: () => lease.check(), http: false });
  active = worker.health;
  return {
    done: worker.done,
    stop: async (reason) => {
      await worker.stop(reason);
      await lease.release();
      await http.close();
    },
  };
}

export const replayCommand: Command = {
  name: 'replay',
  summary: 'feed capture files (<receive ns> <json> lines, gzip or not) through the ingestion pipeline into Kafka',
  usage: [
    'usage: tickwatch replay [--speed N] [--backfill] [--symbols A,B] FILE...',
    '',
    '  --speed N      1 = recorded speed (default), N = N times faster, 0 = as fast as possible',
    '  --backfill     fill id holes over BINANCE_REST_URL (default: record them as gap events)',
    '  --symbols A,B  only these symbols (default: every symbol in the files)',
    '',
    'Files are merged by receive time. BINANCE_MARKET must match the files (spot or usdm).',
  ].join('\n'),
  options: { speed: { type: 'string' }, backfill: { type: 'boolean' }, symbols: { type: 'string' } },
  async run({ config, log, values, positionals }) {
    const speed = values.speed === undefined ? 1 : Number(values.speed);
    if (!Number.isFinite(speed) || speed < 0) {
      process.stderr.write(`--speed must be a number >= 0, got ${String(values.speed)}\n`);
      return 1;
    }
    if (positionals.length === 0) {
      process.stderr.write(`${this.usage}\n`);
      return 1;
    }
    const symbols = typeof values.symbols === 'string' ? values.symbols.split(',').map((s) => s.trim().toUpperCase()) : undefined;
    const s = await replay(config, log, { files: positionals, speed, backfill: values.backfill === true, symbols, progress: process.stderr });
    const lines = [
      `replayed ${s.frames.toLocaleString('en')} frames in ${s.seconds.toFixed(1)} s (${s.framesPerSecond.toLocaleString('en')}/s)${s.badLines ? `, ${s.badLines} unreadable lines` : ''}`,
      ...Object.entries(s.produced).map(([topic, n]) => `  ${topic.padEnd(32)} ${n.toLocaleString('en')}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  },
};

export const recordCommand: Command = {
  name: 'record',
  summary: 'record live Binance frames to capture files (<receive ns> <json>), one gzip file per symbol and UTC day',
  usage: ['usage: tickwatch record --dir DIR', '', 'Subscribes like `ingest` (SYMBOLS x STREAM_TYPES, a rule resolved once, this SHARD) and writes DIR/<symbol>_<yyyymmdd>.gz until stopped.'].join('\n'),
  options: { dir: { type: 'string' } },
  async run({ config, log, values }) {
    if (typeof values.dir !== 'string') {
      process.stderr.write(`${this.usage}\n`);
      return 1;
    }
    const dir = values.dir;
    const src = config.source;
    return runWorker(log, async () => {
      const writer = new CaptureWriter(dir);
      const metrics = createIngestMetrics({ defaultMetrics: false });
      // A rule is resolved once (a recording keeps the streams it started with).
      const symbols = await resolveSymbols(src, new RestBackfiller({ restUrl: src.restUrl, market: src.market, weightPerMinute: src.restWeightPerMinute, log }));
      const streams = streamNames(symbols, src.streamTypes, src.market);
      const feeds = binanceFeeds(src, streams, 'record', { clock: systemClock, log, metrics }, () => ({
        frame: (text, receiveTimeUs) => writer.write(BigInt(receiveTimeUs) * 1000n, text),
        disconnected: (reason) => log.warn({ reason }, 'recording interrupted: the capture has a hole here'),
      }));
      feeds.forEach((f) => f.start());
      log.info({ dir, streams: streams.length }, 'recording');
      let resolveDone!: () => void;
      const done = new Promise<void>((r) => (resolveDone = r));
      return {
        done,
        stop: async () => {
          await Promise.all(feeds.map((f) => f.stop()));
          await writer.close();
          log.info({ frames: writer.written }, 'recording closed');
          resolveDone();
        },
      };
    });
  },
};

export const backfillCommand: Command = {
  name: 'backfill',
  summary: 'fetch a range of trade or aggTrade ids over REST and produce them (repairs a recorded gap by hand)',
  usage: 'usage: tickwatch backfill --symbol BTCUSDT --type trade|aggTrade --from-id N --to-id M',
  options: { symbol: { type: 'string' }, type: { type: 'string' }, 'from-id': { type: 'string' }, 'to-id': { type: 'string' } },
  async run({ config, log, values }) {
    const symbol = String(values.symbol ?? '').toUpperCase();
    const type = values.type;
    const from = Number(values['from-id']);
    const to = Number(values['to-id']);
    if (!/^[A-Z0-9]{2,20}$/.test(symbol) || (type !== 'trade' && type !== 'aggTrade') || !Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from > to) {
      process.stderr.write(`${this.usage}\n`);
      return 1;
    }
    const src = config.source;
    const metrics = createIngestMetrics({ defaultMetrics: false });
    const producer = await connectProducer(config, log, 'backfill', metrics);
    const rest = new RestBackfiller({ restUrl: src.restUrl, market: src.market, weightPerMinute: src.restWeightPerMinute, log, metrics });
    const topic = type === 'trade' ? config.kafka.topics.trade : config.kafka.topics.aggTrade;
    let next = from;
    let count = 0;
    while (next <= to) {
      const rows = type === 'trade' ? await rest.trades(symbol, next, to - next + 1) : await rest.aggTrades(symbol, next, to - next + 1);
      const inRange = rows.filter((r) => (r.type === 'trade' ? r.tradeId : r.aggId) >= next && (r.type === 'trade' ? r.tradeId : r.aggId) <= to);
      if (inRange.length === 0) break;
      for (const r of inRange) producer.produce(topic, tickKey(r), r, r.receiveTimeUs);
      count += inRange.length;
      const last = inRange[inRange.length - 1]!;
      next = (last.type === 'trade' ? last.tradeId : last.aggId) + 1;
      await producer.writable();
    }
    await producer.stop();
    process.stdout.write(`backfilled ${count} ${type}s of ${symbol} (ids ${from}..${Math.min(to, next - 1)}) into ${topic}\n`);
    return next > to ? 0 : 3;
  },
};

export const ingestionCommands: readonly Command[] = [ingestCommand, replayCommand, recordCommand, backfillCommand];
