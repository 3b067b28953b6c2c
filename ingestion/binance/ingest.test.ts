// Binance's order-book path without servers: depth frames go to the books, a snapshot older than the diffs held is
// asked for again until one fits, and with BOOK_PUBLISH_INTERVAL_MS the timer publishes the latest book of an interval.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../common/config.ts';
import { createLogger } from '../../common/log.ts';
import type { Book } from '../../common/records.ts';
import type { RestBackfiller } from '../backfill.ts';
import { createIngestMetrics } from '../metrics.ts';
import type { RecordSink } from '../router.ts';
import { BinanceIngest } from './ingest.ts';
import { createBinanceMapper } from './mapper.ts';

const diff = (U: number, u: number, bid: string) =>
  `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":${U},"u":${u},"b":[["${bid}","1.0"]],"a":[["200.0","1.0"]]}}`;
const snapshot = (lastUpdateId: number) => ({ lastUpdateId, bids: [['100.0', '2.0']], asks: [['200.0', '1.0']] });
const nowUs = () => Date.now() * 1000;

function setup(intervalMs: number, answers: unknown[]) {
  const config = loadConfig({ SYMBOLS: 'BTCUSDT', STREAM_TYPES: 'trade,depth', BOOK_PUBLISH_INTERVAL_MS: String(intervalMs), TOPIC_BOOKS: 'books' });
  const produced: { topic: string; key: string; record: unknown }[] = [];
  const sink: RecordSink = { produce: (topic, key, record) => void produced.push({ topic, key, record }), writable: async () => {} };
  const requests: string[] = [];
  const backfiller = { depthSnapshot: async (symbol: string) => (requests.push(symbol), answers.shift()) } as unknown as RestBackfiller;
  const src = config.source;
  const pipeline = new BinanceIngest({
    source: src,
    topics: config.kafka.topics,
    mapper: createBinanceMapper({ market: src.market, maxFrameBytes: src.maxFrameBytes, streamTypes: src.streamTypes, symbols: src.symbols }),
    sink,
    backfiller,
    metrics: createIngestMetrics({ defaultMetrics: false }),
    log: createLogger('silent', 'test'),
    books: config.books,
  });
  const books = () => produced.filter((p) => p.topic === 'books').map((p) => p.record as Book);
  return { pipeline, produced, requests, books };
}

let stop: (() => void) | undefined;
afterEach(() => stop?.());

describe('pipeline order books', () => {
  it('asks again while the snapshot is older than the diffs held, then syncs and publishes', async () => {
    const p = setup(0, [snapshot(5), snapshot(11)]);
    stop = () => p.pipeline.stop();
    p.pipeline.frame(diff(10, 12, '101.0'), nowUs());
    p.pipeline.frame(diff(13, 15, '102.0'), nowUs());
    await vi.waitFor(() => expect(p.books().at(-1)?.sequence).toBe(15), { timeout: 5_000 });
    expect(p.requests).toEqual(['BTCUSDT', 'BTCUSDT']);
    expect(p.books().at(-1)).toMatchObject({ symbol: 'BTC-USDT', venueSymbol: 'BTCUSDT', bids: [['102.0', '1.0'], ['101.0', '1.0'], ['100.0', '2.0']] });
    expect(p.produced.filter((x) => x.topic !== 'books')).toEqual([]);
    expect(p.pipeline.snapshotting).toBe(0);
  });

  it('publishes at most once per interval, the timer sending the latest book', async () => {
    const p = setup(100, [snapshot(11)]);
    stop = () => p.pipeline.stop();
    p.pipeline.frame(diff(10, 12, '101.0'), nowUs());
    await vi.waitFor(() => expect(p.books().map((b) => b.sequence)).toEqual([12]), { timeout: 5_000 });
    p.pipeline.frame(diff(13, 13, '102.0'), nowUs());
    p.pipeline.frame(diff(14, 14, '103.0'), nowUs());
    expect(p.books().map((b) => b.sequence)).toEqual([12]);
    await vi.waitFor(() => expect(p.books().map((b) => b.sequence)).toEqual([12, 14]), { timeout: 5_000 });
    expect(p.books().at(-1)!.bids[0]).toEqual(['103.0', '1.0']);
  });
});
