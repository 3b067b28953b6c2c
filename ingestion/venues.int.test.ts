// Coinbase and Gemini end to end, real Kafka and PostgreSQL: the worker subscribes to local stand-ins replaying the
// cryptofeed recordings; every recorded trade lands once in `trades` under its venue and canonical symbol, the rebuilt
// books reach `books`/`top_of_book` uncrossed, Gemini's book tickers reach `book_tickers`, and malformed venue frames
// are dead-lettered under the venue's name without a reconnect.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createKafka, topicOffsets } from '../common/kafka.ts';
import type { DeadLetter } from '../common/records.ts';
import { BinanceServer, SHARED_DATA } from '../test/binance-server.ts';
import { metricValue, readTopics, waitFor } from '../test/binance-topics.ts';
import { missing, testLog } from '../test/services.ts';
import { VenueServer } from '../test/venue-server.ts';
import { readCryptofeedCapture } from './book/cryptofeed-capture.ts';
import { startEndToEnd } from './end-to-end.ts';
import { canonicalSymbol } from './venues.ts';

const COINBASE = `${SHARED_DATA}/cryptofeed/COINBASE.ws.28.0`;
const GEMINI = `${SHARED_DATA}/cryptofeed/GEMINI.ws.1.0`;
const noCaptures = existsSync(COINBASE) && existsSync(GEMINI) ? undefined : `needs the cryptofeed recordings in ${SHARED_DATA}/cryptofeed`;
const skip = (await missing('kafka', 'postgres')) ?? noCaptures;

const BAD = {
  coinbase: ['not json at all', '{"type":"match","product_id":"SKL-USD","trade_id":"x"}', '{"type":"l2update","product_id":"SKL-USD","time":"2021-04-17T16:43:40.000Z","changes":"none"}'],
  gemini: [
    'not json at all',
    '{"type":"trade","symbol":"BTCGBP","event_id":1,"timestamp":1624493666000,"price":"-1","quantity":"1","side":"buy"}',
    '{"type":"l2_updates","symbol":"BTCGBP","changes":"none"}',
  ],
};

/** Product or symbol list of the recorded subscription. */
function subscribed(sent: readonly string[]): string[] {
  const m = JSON.parse(sent[0]!) as { product_ids?: string[]; subscriptions?: { symbols: string[] }[] };
  return m.product_ids ?? m.subscriptions![0]!.symbols;
}

describe.skipIf(skip)('Coinbase and Gemini end to end', () => {
  it('stores every recorded trade once under its canonical symbol, writes uncrossed books, dead-letters bad frames', async () => {
    const cb = readCryptofeedCapture(COINBASE);
    const gm = readCryptofeedCapture(GEMINI);
    const coinbase = await VenueServer.start({ frames: cb.frames, extraFrames: (i) => (i === 500 ? BAD.coinbase : undefined) });
    const gemini = await VenueServer.start({ frames: gm.frames, extraFrames: (i) => (i === 100 ? BAD.gemini : undefined) });
    const binance = await BinanceServer.start({ recording: { events: [], trades: new Map(), aggTrades: new Map(), depthSnapshots: new Map() } });
    const { config, db, w, writers, q } = await startEndToEnd('venues', binance, ['trade', 'bookTicker', 'book'], {
      SYMBOLS: 'BTCUSDT',
      STREAM_TYPES: 'trade',
      COINBASE_PRODUCTS: subscribed(cb.sent).join(','),
      COINBASE_WS_URL: coinbase.wsUrl,
      GEMINI_SYMBOLS: subscribed(gm.sent).join(','),
      GEMINI_WS_URL: gemini.wsUrl,
    });
    const query = async <R extends Record<string, unknown>>(sql: string) => (await q.query<R>(sql)).rows;
    try {
      await waitFor(() => coinbase.connectionsAccepted === 1 && gemini.connectionsAccepted === 1, 10_000, 'both venue connections');
      await coinbase.finished();
      await gemini.finished();
      const received = () => metricValue(w.metrics.registry, 'tickwatch_ingestion_messages_received_total');
      await waitFor(async () => (await received()) >= coinbase.sent + gemini.sent && w.producer.depth === 0, 30_000, 'every venue frame to be handled');
      expect(await received()).toBe(coinbase.sent + gemini.sent);

      // Subscriptions as the venues want them.
      expect(JSON.parse(coinbase.received[0]!)).toEqual({ type: 'subscribe', product_ids: subscribed(cb.sent), channels: ['level2_batch', 'ticker', 'matches'] });
      expect(JSON.parse(gemini.received[0]!)).toEqual({ type: 'subscribe', subscriptions: [{ name: 'l2', symbols: subscribed(gm.sent) }] });

      // Every recorded trade, once: Coinbase matches, Gemini live trades and those embedded in the initial l2 message.
      const want = new Set<string>();
      for (const f of cb.frames) {
        const m = JSON.parse(f.text) as { type: string; product_id: string; trade_id: number };
        if (m.type === 'match' || m.type === 'last_match') want.add(`coinbase|${m.product_id}|${m.trade_id}`);
      }
      for (const f of gm.frames) {
        const m = JSON.parse(f.text) as { type: string; symbol?: string; event_id?: number; trades?: { event_id: number }[] };
        if (m.symbol === undefined) continue; // heartbeats
        const symbol = canonicalSymbol('gemini', m.symbol);
        if (m.type === 'trade') want.add(`gemini|${symbol}|${m.event_id}`);
        for (const t of m.trades ?? []) want.add(`gemini|${symbol}|${t.event_id}`);
      }
      expect([...want].filter((k) => k.startsWith('gemini')).length).toBeGreaterThan(50);

      const t = config.kafka.topics;
      const offsets = async () => Number((await query<{ n: string }>('SELECT coalesce(sum(next_offset), 0)::text AS n FROM writer_offsets'))[0]!.n);
      const admin = createKafka(config, testLog, 'venues-admin').admin();
      const ends = async () => {
        let n = 0;
        for (const topic of [t.trade, t.bookTicker, config.books.topic]) for (const p of await topicOffsets(admin, topic)) n += Number(p.high);
        return n;
      };
      const produced = await ends();
      await admin.close();
      await waitFor(async () => (await offsets()) >= produced, 60_000, 'the writers to catch up');

      const trades = await query<{ k: string }>(`SELECT exchange || '|' || symbol || '|' || trade_id AS k FROM trades`);
      expect(trades.length).toBe(want.size);
      expect(new Set(trades.map((r) => r.k))).toEqual(want);

      const books = await query<{ exchange: string; books: string; symbols: string }>(
        'SELECT exchange, count(*)::text AS books, count(DISTINCT symbol)::text AS symbols FROM books GROUP BY exchange ORDER BY exchange',
      );
      expect(books.map((b) => [b.exchange, b.symbols])).toEqual([
        ['coinbase', '10'],
        ['gemini', '10'],
      ]);
      expect(Number(books[0]!.books)).toBeGreaterThan(1000);
      const tops = await query<{ n: string; crossed: string }>('SELECT count(*)::text AS n, count(*) FILTER (WHERE bid_price >= ask_price)::text AS crossed FROM top_of_book');
      expect(tops[0]!.crossed).toBe('0');
      expect(Number(tops[0]!.n)).toBeGreaterThan(1000);
      const tickers = await query<{ n: string }>(`SELECT count(*)::text AS n FROM book_tickers WHERE exchange = 'gemini' AND symbol LIKE '%-%'`);
      expect(Number(tickers[0]!.n)).toBeGreaterThan(0);

      // Bad frames: dead letters named after their venue; nothing reconnected.
      const topics = await readTopics(config, [t.deadLetter]);
      const dead = topics.get(t.deadLetter)!.map((r) => JSON.parse(r.value) as DeadLetter);
      expect(dead.map((d) => `${d.source}:${d.raw}`).sort()).toEqual([...BAD.coinbase.map((b) => `coinbase:${b}`), ...BAD.gemini.map((b) => `gemini:${b}`)].sort());
      for (const d of dead) expect(d.reason.length).toBeGreaterThan(3);
      expect(coinbase.connectionsAccepted).toBe(1);
      expect(gemini.connectionsAccepted).toBe(1);
      expect(await metricValue(w.metrics.registry, 'tickwatch_ingestion_reconnects_total')).toBe(0);
    } finally {
      await writers.stop();
      await w.stop('test over');
      await Promise.all([coinbase.close(), gemini.close(), binance.close()]);
      await q.end();
      await db.drop();
    }
  });
});
