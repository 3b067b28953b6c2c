// The book writer against real Kafka and PostgreSQL: books rebuilt from the recorded captures (Binance depth, Coinbase
// level2) become one `books` row and one `top_of_book` row each, in the batch's one transaction, exactly once across a
// restart in the middle of the stream and books produced a second time; a poison book is dead-lettered.
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { recordHeaders, rowTimeMs, type Book } from '../common/records.ts';
import { BinanceBooks } from '../ingestion/book/binance-depth.ts';
import { readCryptofeedCapture } from '../ingestion/book/cryptofeed-capture.ts';
import type { VenueOutput } from '../ingestion/book/output.ts';
import { readCapture } from '../ingestion/capture.ts';
import { CoinbaseSession } from '../ingestion/coinbase/session.ts';
import { topOfBook } from './top-of-book.ts';
import { CAPTURE_DIR, capturesMissing } from '../test/capture-ticks.ts';
import { missing, testLog } from '../test/services.ts';
import { createWriterMetrics } from './metrics.ts';
import { createScenario, type Scenario } from './scenario.ts';
import { startWriters, type WriterSet } from './writer.ts';
import { sleep } from '../common/time.ts';

const skip = (await missing('kafka', 'postgres')) ?? capturesMissing();

/** Books as ingestion publishes them: the first Binance BTCUSDT depth diffs after the snapshot, and Coinbase's books. */
async function recordedBooks(binanceDiffs: number, coinbaseBooks: number): Promise<Book[]> {
  const out: VenueOutput[] = [];
  const binance = new BinanceBooks({ market: 'spot', depth: 20, intervalMs: 0 });
  let diffs = 0;
  for await (const f of readCapture(`${CAPTURE_DIR}/binance-spot/btcusdt_20240808.gz`)) {
    if (f.text.startsWith('{"lastUpdateId"')) binance.snapshot('BTCUSDT', f.text, f.receiveTimeUs, out);
    else if (f.text.includes('@depth') && diffs++ < binanceDiffs) binance.frame(f.text, f.receiveTimeUs, out);
  }
  const coinbase = new CoinbaseSession({ depth: 20, intervalMs: 0 });
  const cb: VenueOutput[] = [];
  for (const f of readCryptofeedCapture(`${CAPTURE_DIR}/cryptofeed/COINBASE.ws.28.0`).frames) coinbase.frame(f.text, f.receiveTimeUs, cb);
  const books = [...out, ...cb.filter((o) => o.kind === 'book').slice(0, coinbaseBooks)].flatMap((o) => (o.kind === 'book' ? [o.record] : []));
  return books;
}


describe.skipIf(skip)('book writer (real Kafka, real PostgreSQL)', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
  });

  it('writes each book once with its top of book, across a restart mid-stream and books produced twice', async () => {
    const books = await recordedBooks(1500, 1500);
    expect(books.filter((b) => b.exchange === 'binance').length).toBeGreaterThan(1000);
    expect(books.filter((b) => b.exchange === 'coinbase').length).toBe(1500);
    const s: Scenario = await createScenario('books', { env: { BATCH_SIZE: '200' } });
    cleanup.push(() => s.close());
    const registry = new Registry();
    const metrics = createWriterMetrics(registry);
    const start = (member: string) => startWriters({ config: s.config, log: testLog, kafka: s.kafka, metrics, families: ['book'], memberName: member });

    // One poison book among them: crossed levels are fine for the writer, a negative price is not.
    const poison = { ...books[10]!, bids: [['-1', '1']] };
    let first: WriterSet | undefined = await start('a');
    cleanup.push(() => first?.stop() ?? Promise.resolve());
    const half = Math.floor(books.length / 2);
    await s.produce(books.slice(0, 400));
    await s.produceRaw(s.config.books.topic, [{ key: 'binance:spot:BTC-USDT', value: JSON.stringify(poison), headers: recordHeaders('book') }]);
    const stored = async () => Number((await s.query<{ n: string }>('SELECT count(*)::text AS n FROM books'))[0]!.n);
    const deadline = Date.now() + 30_000;
    while ((await stored()) === 0 && Date.now() < deadline) await sleep(50);
    const producing = (async () => {
      for (let i = 400; i < books.length; i += 300) {
        await s.produce(books.slice(i, i + 300));
        await sleep(100);
      }
    })();
    // Restart while records keep arriving: graceful stop, a new member of the same group takes over.
    await sleep(200);
    await first.stop();
    first = undefined;
    const atRestart = await stored();
    expect(atRestart).toBeGreaterThan(0);
    const second = await start('b');
    cleanup.push(() => second.stop());
    await producing;
    // A re-publication (ingestion resending after a reconnect): the same books again, later in the stream.
    await s.produce(books.slice(half - 200, half + 200));
    await s.waitUntilWritten(90_000);

    const distinct = new Map(books.map((b) => [`${b.exchange}|${b.symbol}|${rowTimeMs(b)}|${b.sequence}`, b]));
    const rows = await s.query<{ k: string; bids: string; asks: string; qtys: string; venue: string }>(
      `SELECT exchange || '|' || symbol || '|' || (extract(epoch FROM time) * 1000)::bigint || '|' || sequence AS k,
              bid_prices::text AS bids, ask_prices::text AS asks, bid_qtys::text AS qtys, venue_symbol AS venue FROM books`,
    );
    expect(rows.length).toBe(distinct.size);
    expect(atRestart).toBeLessThan(distinct.size);
    const problems: string[] = [];
    for (const r of rows) {
      const b = distinct.get(r.k);
      if (!b) problems.push(`unexpected ${r.k}`);
      else if (r.bids !== `{${b.bids.map((l) => l[0]).join(',')}}` || r.asks !== `{${b.asks.map((l) => l[0]).join(',')}}` || r.qtys !== `{${b.bids.map((l) => l[1]).join(',')}}` || r.venue !== b.venueSymbol) {
        problems.push(`${r.k}: ${r.bids.slice(0, 60)}`);
      }
    }
    expect(problems.slice(0, 5)).toEqual([]);

    const tops = await s.query<{ k: string; mid: string; spread: string; crossed: boolean }>(
      `SELECT exchange || '|' || symbol || '|' || (extract(epoch FROM time) * 1000)::bigint || '|' || sequence AS k, mid::text AS mid,
              spread::text AS spread, bid_price >= ask_price AS crossed FROM top_of_book`,
    );
    expect(tops.length).toBe(distinct.size);
    expect(tops.filter((t) => t.crossed)).toEqual([]);
    for (const t of tops) {
      const want = topOfBook(distinct.get(t.k)!)!;
      if (Number(t.mid) !== Number(want.mid) || Number(t.spread) !== Number(want.spread)) problems.push(`${t.k}: mid ${t.mid} spread ${t.spread}`);
    }
    expect(problems.slice(0, 5)).toEqual([]);

    const text = await registry.metrics();
    expect(text).toMatch(/tickwatch_writer_duplicates_skipped_total\{table="books"\} [1-9]/);
    expect(text).toMatch(/tickwatch_writer_rows_written_total\{table="top_of_book"\} [1-9]/);
    expect(text).toMatch(/tickwatch_writer_dead_letters_total\{topic="[^"]+"\} 1\b/);
  });
});
