// Replay: capture files fed through the same path as live traffic (map, validate, sequence, dead-letter, produce),
// at recorded speed, N times faster or as fast as possible, with a progress line on stderr and a summary at the end.
import { statSync } from 'node:fs';
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/log.ts';
import { RestBackfiller } from './backfill.ts';
import { BinanceIngest } from './binance/ingest.ts';
import { createBinanceMapper } from './binance/mapper.ts';
import { mergeCaptures, readCapture } from './capture.ts';
import { createIngestMetrics } from './metrics.ts';
import type { RecordSink } from './router.ts';
import { connectProducer } from './worker.ts';
import { sleep } from '../common/time.ts';

export interface ReplayOptions {
  readonly files: readonly string[];
  /** 1 = recorded speed, N = N times faster, 0 = as fast as possible. */
  readonly speed: number;
  /** Backfill holes over REST (config.source.restUrl); otherwise they are recorded as gap events. */
  readonly backfill: boolean;
  /** Only these symbols (default: every symbol in the files). */
  readonly symbols?: readonly string[];
  readonly progress?: NodeJS.WritableStream | undefined;
}

export interface ReplaySummary {
  readonly frames: number;
  readonly badLines: number;
  readonly produced: Readonly<Record<string, number>>;
  readonly seconds: number;
  readonly framesPerSecond: number;
}


export async function replay(config: Config, log: Logger, opts: ReplayOptions): Promise<ReplaySummary> {
  const src = config.source;
  const metrics = createIngestMetrics({ defaultMetrics: false });
  const producer = await connectProducer(config, log, 'replay', metrics);
  const produced: Record<string, number> = {};
  const out: RecordSink = producer;
  const sink: RecordSink = {
    produce: (topic, key, record, receiveTimeUs) => {
      produced[topic] = (produced[topic] ?? 0) + 1;
      out.produce(topic, key, record, receiveTimeUs);
    },
    writable: () => producer.writable(),
  };
  const pipeline = new BinanceIngest({
    source: src,
    topics: config.kafka.topics,
    mapper: createBinanceMapper({ market: src.market, maxFrameBytes: src.maxFrameBytes, streamTypes: src.streamTypes, symbols: opts.symbols }),
    sink,
    backfiller: opts.backfill ? new RestBackfiller({ restUrl: src.restUrl, market: src.market, weightPerMinute: src.restWeightPerMinute, log, metrics }) : undefined,
    metrics,
    log,
    backfillAttempts: opts.backfill ? 5 : 1,
  });

  const readers = opts.files.map((f) => readCapture(f));
  const totalBytes = opts.files.reduce((s, f) => s + statSync(f).size, 0);
  const readBytes = () => readers.reduce((s, r) => s + r.bytesRead(), 0);
  const started = performance.now();
  let frames = 0;
  let firstUs: number | undefined;
  let lastDraw = 0;
  const draw = (final = false) => {
    if (!opts.progress) return;
    const elapsed = (performance.now() - started) / 1000;
    const frac = totalBytes > 0 ? Math.min(1, readBytes() / totalBytes) : 1;
    const width = 30;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const rate = elapsed > 0 ? Math.round(frames / elapsed) : 0;
    const eta = frac > 0 && !final ? Math.round((elapsed / frac) * (1 - frac)) : 0;
    opts.progress.write(`\rreplay [${bar}] ${(frac * 100).toFixed(0).padStart(3)}%  ${frames.toLocaleString('en')} frames  ${rate.toLocaleString('en')}/s  eta ${eta}s  kafka buffer ${producer.depth}   ${final ? '\n' : ''}`);
  };

  for await (const f of mergeCaptures(readers)) {
    if (opts.speed > 0) {
      firstUs ??= f.receiveTimeUs;
      const dueMs = (f.receiveTimeUs - firstUs) / 1000 / opts.speed;
      const aheadMs = dueMs - (performance.now() - started);
      if (aheadMs > 5) await sleep(aheadMs);
    }
    pipeline.frame(f.text, f.receiveTimeUs);
    frames++;
    if (producer.full || producer.depth + pipeline.held >= src.producerBufferMax) await producer.writable();
    if ((frames & 1023) === 0) {
      const now = performance.now();
      if (now - lastDraw > 250) {
        lastDraw = now;
        draw();
      }
      // Let timers (producer, progress) run during an as-fast-as-possible replay.
      await new Promise<void>((r) => setImmediate(r));
    }
  }
  await pipeline.idle();
  await producer.flush();
  draw(true);
  pipeline.stop();
  await producer.stop();
  const seconds = (performance.now() - started) / 1000;
  return { frames, badLines: readers.reduce((s, r) => s + r.badLines(), 0), produced, seconds, framesPerSecond: Math.round(frames / seconds) };
}
