// Binance order books end to end, real Kafka and PostgreSQL: the worker subscribes the recorded depth stream of the
// local stand-in, syncs the book from its REST snapshot, publishes top-20 books that never cross and end equal to the
// exchange's book; a depth frame the stand-in drops yields a gap event and a second snapshot request; a malformed depth
// frame is dead-lettered without a reconnect; the book writer stores one books and one top_of_book row per book.
import { describe, expect, it } from 'vitest';
import { decodeBook, type BookGapEvent, type DeadLetter } from '../common/records.ts';
import { BinanceServer, loadRecording, missingRecordings } from '../test/binance-server.ts';
import { metricValue, readTopics, waitFor } from '../test/binance-topics.ts';
import { missing } from '../test/services.ts';
import { startEndToEnd } from './end-to-end.ts';

const skip = (await missing('kafka', 'postgres')) ?? missingRecordings();

const BAD_DEPTH = '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":12,"u":10,"b":[],"a":[]}}';

describe.skipIf(skip)('order books: Binance depth end to end', () => {
  it('syncs from REST, re-snapshots after a dropped diff, never crosses, and the writer stores every book once', async () => {
    const rec = await loadRecording({ symbols: ['BTCUSDT'], types: ['depth'], maxEvents: 1200 });
    expect(rec.depthSnapshots.has('BTCUSDT')).toBe(true);
    // Drop one diff 200 events after the first snapshot was served: well inside the synced stretch, however slow the run.
    let dropAt: number | undefined;
    const server: BinanceServer = await BinanceServer.start({
      recording: rec,
      rate: 1000,
      autoplay: false,
      skip: (i) => {
        if (dropAt === undefined && server.depthRequests > 0) dropAt = i + 200;
        return i === dropAt;
      },
      extraFrames: (i) => (i === 300 ? [BAD_DEPTH] : undefined),
    });
    const { config, db, w, writers, q } = await startEndToEnd('books', server, ['book'], { SYMBOLS: 'BTCUSDT', STREAM_TYPES: 'depth' });
    try {
      await waitFor(() => server.openConnections === 1, 10_000, 'the connection');
      server.play();
      await server.finished;
      await waitFor(() => w.producer.depth === 0 && w.pipeline.snapshotting === 0, 30_000, 'the books to be produced');
      const booksProduced = async () => metricValue(w.metrics.registry, 'tickwatch_ingestion_records_produced_total', { topic: config.books.topic });
      let last = -1;
      await waitFor(async () => {
        const n = await booksProduced();
        const still = n === last && w.producer.depth === 0;
        last = n;
        return still;
      }, 30_000, 'the book stream to settle');

      const t = config.kafka.topics;
      const topics = await readTopics(config, [config.books.topic, t.gap, t.deadLetter]);
      const books = topics.get(config.books.topic)!.map((r) => decodeBook(Buffer.from(r.value), r.headers['schema-version']));
      expect(books.length).toBeGreaterThan(500);

      // The dropped diff: one gap event naming its ids, and a second snapshot.
      expect(server.skipped).toHaveLength(1);
      const dropped = JSON.parse(server.skipped[0]!.text) as { data: { U: number; u: number } };
      const gaps = topics.get(t.gap)!.map((r) => JSON.parse(r.value) as BookGapEvent);
      expect(gaps).toHaveLength(1);
      expect(gaps[0]).toMatchObject({ type: 'gap', stream: 'book', exchange: 'binance', market: 'spot', symbol: 'BTC-USDT', fromId: dropped.data.U, toId: dropped.data.u });
      expect(topics.get(t.gap)![0]!.key).toBe('binance:spot:BTC-USDT');
      expect(server.depthRequests).toBe(2);

      // Published books: in sequence, never crossed, none from the broken stretch, and the last one is the exchange's top 20.
      const problems: string[] = [];
      let prev = 0;
      for (const b of books) {
        if (b.sequence <= prev) problems.push(`sequence ${b.sequence} after ${prev}`);
        prev = b.sequence;
        if (!(Number(b.bids[0]![0]) < Number(b.asks[0]![0]))) problems.push(`${b.sequence} crossed`);
        if (b.sequence >= dropped.data.U && b.sequence < dropped.data.u) problems.push(`${b.sequence} published from a broken book`);
      }
      expect(problems).toEqual([]);
      expect(books.some((b) => b.sequence > dropped.data.u)).toBe(true);
      const exchange = server.bookTop('BTCUSDT', 20)!;
      const lastBook = books.at(-1)!;
      expect({ bids: lastBook.bids, asks: lastBook.asks }).toEqual({ bids: exchange.bids, asks: exchange.asks });
      expect(lastBook).toMatchObject({ exchange: 'binance', market: 'spot', symbol: 'BTC-USDT', venueSymbol: 'BTCUSDT', depth: 20 });

      // The malformed frame: dead-lettered with its reason, the connection kept.
      const dead = topics.get(t.deadLetter)!.map((r) => JSON.parse(r.value) as DeadLetter);
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ source: 'binance-spot', stream: 'btcusdt@depth@100ms', raw: BAD_DEPTH });
      expect(dead[0]!.reason).toMatch(/U exceeds/);
      expect(server.connectionsAccepted).toBe(1);

      // The writer: one books row and one top_of_book row per published book, none crossed.
      await waitFor(async () => {
        const r = await q.query<{ n: string }>('SELECT coalesce(sum(next_offset), 0)::text AS n FROM writer_offsets');
        return Number(r.rows[0]!.n) >= books.length;
      }, 60_000, 'the book writer to catch up');
      const counts = await q.query<{ books: string; tops: string; crossed: string; seqs: string }>(
        `SELECT (SELECT count(*) FROM books)::text AS books, (SELECT count(*) FROM top_of_book)::text AS tops,
                (SELECT count(*) FROM top_of_book WHERE bid_price >= ask_price)::text AS crossed,
                (SELECT count(DISTINCT sequence) FROM books)::text AS seqs`,
      );
      expect(counts.rows[0]).toEqual({ books: String(books.length), tops: String(books.length), crossed: '0', seqs: String(books.length) });
    } finally {
      await writers.stop();
      await w.stop('test over');
      await server.close();
      await q.end();
      await db.drop();
    }
  });
});
