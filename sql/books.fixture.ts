// Shared by the books migration tests on real PostgreSQL and in-process TimescaleDB: two venues' books over two
// minutes, inserted as the book writer would (ON CONFLICT DO NOTHING), then the per-minute top-of-book refresh.
import type { SqlSession } from '../common/db.ts';
import type { Book } from '../common/records.ts';
import { topOfBook } from '../consumer/top-of-book.ts';
import { iso } from '../common/time.ts';

const T0 = Date.UTC(2024, 7, 8, 23, 58, 0);

function book(exchange: 'binance' | 'coinbase', sequence: number, timeMs: number, bid: string, ask: string): Book {
  const binance = exchange === 'binance';
  return {
    type: 'book', exchange, market: 'spot', symbol: binance ? 'BTC-USDT' : 'BTC-USD', venueSymbol: binance ? 'BTCUSDT' : 'BTC-USD',
    sequence, depth: 3,
    bids: [[bid, '1.50000000'], [String(Number(bid) - 5), '2']],
    asks: [[ask, '0.25000000'], [String(Number(ask) + 5), '3']],
    exchangeTimeMs: timeMs, receiveTimeUs: timeMs * 1000 + 1234,
  };
}

export const BOOKS: Book[] = [
  book('binance', 50093239218, T0 + 1_000, '61837.63000000', '61837.64000000'),
  book('binance', 50093239230, T0 + 30_000, '61840.00000000', '61840.02000000'),
  book('binance', 50093239299, T0 + 61_000, '61850.10000000', '61850.11000000'),
  book('coinbase', 1, T0 + 2_000, '61900.01', '61900.50'),
  book('coinbase', 2, T0 + 62_000, '61901.00', '61901.20'),
];
export const MINUTE_MS = T0;


export async function insertBooks(db: SqlSession, books: readonly Book[]): Promise<number> {
  let inserted = 0;
  for (const b of books) {
    const t = topOfBook(b)!;
    const time = iso(t.timeMs);
    const r1 = await db.query<{ n: number }>(
      `WITH i AS (INSERT INTO books (exchange, market, symbol, venue_symbol, time, sequence, depth, bid_prices, bid_qtys, ask_prices, ask_qtys, exchange_time, receive_time)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8::numeric[], $9::numeric[], $10::numeric[], $11::numeric[], $12, $13) ON CONFLICT DO NOTHING RETURNING 1)
       SELECT count(*)::int AS n FROM i`,
      [b.exchange, b.market, b.symbol, b.venueSymbol, time, b.sequence, b.depth, b.bids.map((l) => l[0]), b.bids.map((l) => l[1]),
        b.asks.map((l) => l[0]), b.asks.map((l) => l[1]), b.exchangeTimeMs === null ? null : iso(b.exchangeTimeMs), iso(b.receiveTimeUs / 1000)],
    );
    inserted += r1.rows[0]!.n;
    await db.query(
      `INSERT INTO top_of_book (exchange, market, symbol, venue_symbol, time, sequence, bid_price, bid_qty, ask_price, ask_qty, mid, spread,
         spread_pct, spread_bps, bid_depth_10bps, ask_depth_10bps, bid_depth_50bps, ask_depth_50bps, depth_complete_10bps,
         depth_complete_50bps, imbalance, depth_imbalance_50bps, receive_time)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) ON CONFLICT DO NOTHING`,
      [t.exchange, t.market, t.symbol, t.venueSymbol, time, t.sequence, t.bidPrice, t.bidQty, t.askPrice, t.askQty, t.mid, t.spread,
        t.spreadPct, t.spreadBps, t.bidDepth10Bps, t.askDepth10Bps, t.bidDepth50Bps, t.askDepth50Bps, t.depthComplete10Bps,
        t.depthComplete50Bps, t.imbalance, t.depthImbalance50Bps, iso(t.receiveTimeUs / 1000)],
    );
  }
  return inserted;
}

export type MinuteRow = {
  exchange: string;
  symbol: string;
  bucket: string;
  book_count: number;
  mean_spread: string;
  last_mid: string;
  mean_spread_bps: number;
};

export async function minuteRows(db: SqlSession): Promise<MinuteRow[]> {
  return (
    await db.query<MinuteRow>(
      `SELECT exchange, symbol, to_char(bucket AT TIME ZONE 'UTC', 'HH24:MI') AS bucket, book_count::int AS book_count,
              mean_spread::text AS mean_spread, last_mid::text AS last_mid, mean_spread_bps
         FROM top_of_book_metrics_1m ORDER BY exchange, bucket`,
    )
  ).rows;
}

/** What the refresh must produce from BOOKS: per venue and minute, counts, exact mean spread and last mid. */
export const EXPECTED_MINUTES = [
  { exchange: 'binance', symbol: 'BTC-USDT', bucket: '23:58', book_count: 2, mean_spread: '0.015000000000000000', last_mid: '61840.01' },
  { exchange: 'binance', symbol: 'BTC-USDT', bucket: '23:59', book_count: 1, mean_spread: '0.010000000000000000', last_mid: '61850.105' },
  { exchange: 'coinbase', symbol: 'BTC-USD', bucket: '23:58', book_count: 1, mean_spread: '0.490000000000000000', last_mid: '61900.255' },
  { exchange: 'coinbase', symbol: 'BTC-USD', bucket: '23:59', book_count: 1, mean_spread: '0.200000000000000000', last_mid: '61901.1' },
];
