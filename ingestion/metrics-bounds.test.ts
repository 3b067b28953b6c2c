// Bounded metrics: frames choose neither label values nor the number of series. 10,000 recorded frames with random
// stream names, corrupted fields and random event types go through the real mapper and pipeline; afterwards every label
// value is a subscribed stream, `other` or a fixed code, and a second 10,000 stay within the same fixed sets.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/log.ts';
import type { DeadLetter } from '../common/records.ts';
import { capturesMissing, CAPTURE_DIR } from '../test/capture-ticks.ts';
import { BinanceIngest } from './binance/ingest.ts';
import { createBinanceMapper, streamNames } from './binance/mapper.ts';
import { DEAD_LETTER_CODES, boundedLabel, createIngestMetrics, deadLetterCode } from './metrics.ts';
import type { RecordSink } from './router.ts';

/** mulberry32: the same corruption on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TYPES = ['trade', 'aggTrade', 'bookTicker', 'depth', 'kline_1m', 'x'];
function corrupt(frame: string, rnd: () => number): string {
  const word = () => rnd().toString(36).slice(2, 3 + Math.floor(rnd() * 12));
  switch (Math.floor(rnd() * 6)) {
    case 0: // a random stream name, the payload's symbol made to match half of the time
      return frame.replace(/"stream":"[^"]*"/, `"stream":"${word()}@${TYPES[Math.floor(rnd() * TYPES.length)]}"`);
    case 1: // a random value in a random field
      return frame.replace(/"([a-zA-Z])":("[^"]*"|-?\d+|true|false)/, (_m, k: string) => `"${k}":${JSON.stringify(word())}`);
    case 2: // a random event type
      return frame.replace(/"e":"[^"]*"/, `"e":"${word()}"`);
    case 3: // cut short
      return frame.slice(0, Math.floor(rnd() * frame.length));
    case 4: // one character changed
      return ((i) => frame.slice(0, i) + String.fromCharCode(32 + Math.floor(rnd() * 90)) + frame.slice(i + 1))(Math.floor(rnd() * frame.length));
    default: // a field removed
      return frame.replace(/,"[a-zA-Z]":("[^"]*"|-?\d+|true|false)/, '');
  }
}

describe.skipIf(capturesMissing())('bounded ingestion metrics', () => {
  it('10,000 corrupted frames leave every label in its fixed set, and 10,000 more stay within it', async () => {
    const config = loadConfig({ SYMBOLS: 'BTCUSDT,ETHUSDT' });
    const src = config.source;
    const streams = streamNames(src.symbols, src.streamTypes, src.market);
    const metrics = createIngestMetrics({ defaultMetrics: false, streams });
    const deadLetters: DeadLetter[] = [];
    const sink: RecordSink = {
      produce: (topic, _key, record) => void (topic === config.kafka.topics.deadLetter && deadLetters.push(record as DeadLetter)),
      writable: async () => {},
    };
    const newPipeline = () =>
      new BinanceIngest({
        source: src,
        topics: config.kafka.topics,
        mapper: createBinanceMapper({ market: src.market, maxFrameBytes: src.maxFrameBytes, streamTypes: src.streamTypes, symbols: src.symbols }),
        sink,
        metrics,
        log: createLogger('silent', 'test'),
      });
    const pipeline = newPipeline();
    const frames = gunzipSync(readFileSync(`${CAPTURE_DIR}/binance-spot/btcusdt_20240808.gz`))
      .toString('utf8')
      .split('\n', 5_000)
      .filter((l) => l.length > 0 && !l.includes('@depth'))
      .map((l) => l.slice(l.indexOf(' ') + 1));
    const rnd = random(42);
    const feed = (n: number) => {
      for (let i = 0; i < n; i++) pipeline.frame(corrupt(frames[i % frames.length]!, rnd), Date.now() * 1000);
    };
    const series = async () => {
      const out = new Map<string, Record<string, string | number>[]>();
      for (const m of await metrics.registry.getMetricsAsJSON()) out.set(m.name, (m as { values: { labels: Record<string, string | number> }[] }).values.map((v) => v.labels));
      return out;
    };

    const allowedStreams = new Set([...streams, 'other']);
    const withinBounds = (all: Map<string, Record<string, string | number>[]>) => {
      const values = (name: string, label: string) => new Set(all.get(name)!.map((l) => String(l[label])));
      expect([...values('tickwatch_ingestion_messages_received_total', 'stream')].filter((s) => !allowedStreams.has(s))).toEqual([]);
      expect([...values('tickwatch_ingestion_duplicates_dropped_total', 'stream')].filter((s) => !allowedStreams.has(s))).toEqual([]);
      expect([...values('tickwatch_ingestion_dead_letters_total', 'reason')].sort()).toEqual([...DEAD_LETTER_CODES].sort());
      expect(values('tickwatch_ingestion_messages_ignored_total', 'why').size).toBeLessThanOrEqual(64);
    };

    feed(10_000);
    pipeline.stop();
    const after = await series();
    withinBounds(after);

    // The corruption reached the dead letters (with their full reasons), and every reason has a code of its own.
    expect(deadLetters.length).toBeGreaterThan(2_000);
    expect(new Set(deadLetters.map((d) => d.reason)).size).toBeGreaterThan(500);
    const unclassified = deadLetters.filter((d) => deadLetterCode(d.reason) === 'other').map((d) => d.reason);
    expect(unclassified).toEqual([]);

    // A second pipeline (a restarted socket slot) on the same registry.
    const pipeline2 = newPipeline();
    for (let i = 0; i < 10_000; i++) pipeline2.frame(corrupt(frames[i % frames.length]!, rnd), Date.now() * 1000);
    pipeline2.stop();
    withinBounds(await series());
  });

  it('a bounded label keeps known values, turns the rest into other, and caps an open set', () => {
    const known = boundedLabel(['btcusdt@trade']);
    expect([known('btcusdt@trade'), known('evil@trade'), known('BTCUSDT@trade')]).toEqual(['btcusdt@trade', 'other', 'other']);
    const open = boundedLabel(undefined, 2);
    expect(['a', 'b', 'c', 'a', 'd'].map(open)).toEqual(['a', 'b', 'other', 'a', 'other']);
  });
});
