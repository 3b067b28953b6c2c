// Puts ticks into the raw tables the way the writer does (same columns, times rendered as the writer renders them),
// with parameterized INSERT ... SELECT FROM unnest(...): used by the metrics tests and benchmark, which must not
// depend on the Kafka writer.
import type { SqlSession } from '../common/db.ts';
import { rowTimeMs, type BookTicker, type Trade } from '../common/records.ts';
import { iso } from '../common/time.ts';

const isoUs = (us: number) => `${new Date(Math.floor(us / 1000)).toISOString().slice(0, 19)}.${String(us % 1_000_000).padStart(6, '0')}Z`;

const CHUNK = 5_000;

export async function insertTrades(db: SqlSession, trades: readonly Trade[]): Promise<void> {
  for (let i = 0; i < trades.length; i += CHUNK) {
    const part = trades.slice(i, i + CHUNK);
    await db.query(
      `INSERT INTO trades (exchange, market, symbol, time, trade_id, price, quantity, buyer_is_maker, side, event_time, receive_time)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[], $6::numeric[], $7::numeric[],
                            $8::boolean[], $9::text[], $10::timestamptz[], $11::timestamptz[])
       ON CONFLICT DO NOTHING`,
      [
        part.map((t) => t.exchange),
        part.map((t) => t.market),
        part.map((t) => t.symbol),
        part.map((t) => iso(t.exchangeTimeMs)),
        part.map((t) => String(t.tradeId)),
        part.map((t) => t.price),
        part.map((t) => t.quantity),
        part.map((t) => t.buyerIsMaker),
        part.map((t) => t.side),
        part.map((t) => iso(t.eventTimeMs)),
        part.map((t) => isoUs(t.receiveTimeUs)),
      ],
    );
  }
}

export async function insertBookTickers(db: SqlSession, quotes: readonly BookTicker[]): Promise<void> {
  for (let i = 0; i < quotes.length; i += CHUNK) {
    const part = quotes.slice(i, i + CHUNK);
    await db.query(
      `INSERT INTO book_tickers (exchange, market, symbol, time, update_id, bid_price, bid_qty, ask_price, ask_qty,
                                 exchange_time, event_time, receive_time)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[], $6::numeric[], $7::numeric[],
                            $8::numeric[], $9::numeric[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[])
       ON CONFLICT DO NOTHING`,
      [
        part.map((t) => t.exchange),
        part.map((t) => t.market),
        part.map((t) => t.symbol),
        part.map((t) => iso(rowTimeMs(t))),
        part.map((t) => String(t.updateId)),
        part.map((t) => t.bidPrice),
        part.map((t) => t.bidQty),
        part.map((t) => t.askPrice),
        part.map((t) => t.askQty),
        part.map((t) => (t.exchangeTimeMs === null ? null : iso(t.exchangeTimeMs))),
        part.map((t) => (t.eventTimeMs === null ? null : iso(t.eventTimeMs))),
        part.map((t) => isoUs(t.receiveTimeUs)),
      ],
    );
  }
}
