// Stores the per-second tick summaries (trade-slices.ts, quote-slices.ts) next to their ticks, in the same transaction
// (thin adapter): one row per stream and second, a batch's summary merged into the row an earlier batch left
// (merge_trade_slices, merge_quote_slices in sql/slices.sql).
// The setting tickwatch.ticks_summarized tells the invalidation trigger that the ticks COPYed with it are covered by
// summaries (invalidate_metric_buckets in sql/slices.sql); without it their minute is rebuilt from the raw ticks.
import type pg from 'pg';
import { askOnce } from '../common/db.ts';
import type { TickTable } from './copy-rows.ts';
import { summarizeBookTickers, type QuoteSlice } from './quote-slices.ts';
import { summarizeTrades, type TradeSlice } from './trade-slices.ts';

const US = `'1970-01-01 00:00:00+00'::timestamptz + interval '1 microsecond' *`;

const INSERT_TRADE_SLICES = `INSERT INTO trade_slices (slice, exchange, market, symbol, first_time, first_id, first_price,
  last_time, last_id, last_price, trade_count, high, low, volume, quote_volume, taker_buy_volume, taker_buy_quote_volume,
  sum_price, sum_price_sq, sum_log_return, sum_log_return_sq, max_move, max_move_bps)
SELECT ${US} s, e, m, y, ${US} ft, fi, fp, ${US} lt, li, lp, n, hi, lo, v, qv, tv, tqv, sp, sp2, lr, lr2, mv, mvb
  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::numeric[], $8::bigint[],
              $9::bigint[], $10::numeric[], $11::bigint[], $12::numeric[], $13::numeric[], $14::numeric[], $15::numeric[],
              $16::numeric[], $17::numeric[], $18::numeric[], $19::numeric[], $20::float8[], $21::float8[], $22::numeric[],
              $23::numeric[])
    AS u(s, e, m, y, ft, fi, fp, lt, li, lp, n, hi, lo, v, qv, tv, tqv, sp, sp2, lr, lr2, mv, mvb)
ON CONFLICT (slice, exchange, market, symbol) DO UPDATE SET
  (first_time, first_id, first_price, last_time, last_id, last_price, trade_count, high, low, volume, quote_volume,
   taker_buy_volume, taker_buy_quote_volume, sum_price, sum_price_sq, sum_log_return, sum_log_return_sq, max_move,
   max_move_bps, interleaved) =
  (SELECT m.first_time, m.first_id, m.first_price, m.last_time, m.last_id, m.last_price, m.trade_count, m.high, m.low,
          m.volume, m.quote_volume, m.taker_buy_volume, m.taker_buy_quote_volume, m.sum_price, m.sum_price_sq,
          m.sum_log_return, m.sum_log_return_sq, m.max_move, m.max_move_bps, m.interleaved
     FROM merge_trade_slices(trade_slices, excluded) m)`;

const INSERT_QUOTE_SLICES = `INSERT INTO quote_slices (slice, exchange, market, symbol, first_time, first_id, last_time,
  last_id, quote_count, sum_spread, min_spread, max_spread, last_spread, sum_spread_bps, min_spread_bps, max_spread_bps,
  last_spread_bps, sum_mid, last_mid, sum_bid_notional, sum_ask_notional, last_bid_notional, last_ask_notional, tw_us,
  tw_spread_us)
SELECT ${US} s, e, m, y, ${US} ft, fi, ${US} lt, li, n, ss, mins, maxs, ls, sb, minb, maxb, lb, sm, lm, sbn, san, lbn, lan, tw, tws
  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
              $9::bigint[], $10::numeric[], $11::numeric[], $12::numeric[], $13::numeric[], $14::numeric[], $15::numeric[],
              $16::numeric[], $17::numeric[], $18::numeric[], $19::numeric[], $20::numeric[], $21::numeric[], $22::numeric[],
              $23::numeric[], $24::bigint[], $25::numeric[])
    AS u(s, e, m, y, ft, fi, lt, li, n, ss, mins, maxs, ls, sb, minb, maxb, lb, sm, lm, sbn, san, lbn, lan, tw, tws)
ON CONFLICT (slice, exchange, market, symbol) DO UPDATE SET
  (first_time, first_id, last_time, last_id, quote_count, sum_spread, min_spread, max_spread, last_spread,
   sum_spread_bps, min_spread_bps, max_spread_bps, last_spread_bps, sum_mid, last_mid, sum_bid_notional,
   sum_ask_notional, last_bid_notional, last_ask_notional, tw_us, tw_spread_us, interleaved) =
  (SELECT m.first_time, m.first_id, m.last_time, m.last_id, m.quote_count, m.sum_spread, m.min_spread, m.max_spread,
          m.last_spread, m.sum_spread_bps, m.min_spread_bps, m.max_spread_bps, m.last_spread_bps, m.sum_mid, m.last_mid,
          m.sum_bid_notional, m.sum_ask_notional, m.last_bid_notional, m.last_ask_notional, m.tw_us, m.tw_spread_us,
          m.interleaved
     FROM merge_quote_slices(quote_slices, excluded) m)`;

/** The summaries of one COPYed batch, ready to insert. */
export type SliceBatch =
  | { readonly table: 'trade_slices'; readonly slices: readonly TradeSlice[] }
  | { readonly table: 'quote_slices'; readonly slices: readonly QuoteSlice[] };

/** The summaries of a tick table's COPY binary rows, or null for a table that has none (aggTrades). */
export function summarizeRows(table: TickTable, rows: Uint8Array): SliceBatch | null {
  if (table === 'trades') return { table: 'trade_slices', slices: summarizeTrades(rows) };
  if (table === 'book_tickers') return { table: 'quote_slices', slices: summarizeBookTickers(rows) };
  return null;
}

// The unnest() parameters of each INSERT, in its order: one array per slice field.
const TRADE_PARAMS: readonly (keyof TradeSlice)[] = [
  'sliceUs', 'exchange', 'market', 'symbol', 'firstUs', 'firstId', 'firstPrice', 'lastUs', 'lastId', 'lastPrice', 'tradeCount',
  'high', 'low', 'volume', 'quoteVolume', 'takerBuyVolume', 'takerBuyQuoteVolume', 'sumPrice', 'sumPriceSq', 'sumLogReturn',
  'sumLogReturnSq', 'maxMove', 'maxMoveBps',
];
const QUOTE_PARAMS: readonly (keyof QuoteSlice)[] = [
  'sliceUs', 'exchange', 'market', 'symbol', 'firstUs', 'firstId', 'lastUs', 'lastId', 'quoteCount', 'sumSpread', 'minSpread',
  'maxSpread', 'lastSpread', 'sumSpreadBps', 'minSpreadBps', 'maxSpreadBps', 'lastSpreadBps', 'sumMid', 'lastMid',
  'sumBidNotional', 'sumAskNotional', 'lastBidNotional', 'lastAskNotional', 'twUs', 'twSpreadUs',
];

const columns = <T>(rows: readonly T[], keys: readonly (keyof T)[]): unknown[] => keys.map((k) => rows.map((r) => r[k]));

function params(b: SliceBatch): unknown[] {
  return b.table === 'trade_slices' ? columns(b.slices, TRADE_PARAMS) : columns(b.slices, QUOTE_PARAMS);
}

/** Marks the ticks COPYed from here to the end of the transaction as summarized. */
export async function markSummarized(client: pg.ClientBase): Promise<void> {
  await client.query(`SELECT set_config('tickwatch.ticks_summarized', 'on', true)`);
}

export async function insertSlices(client: pg.ClientBase, batch: SliceBatch): Promise<void> {
  if (batch.slices.length === 0) return;
  await client.query(batch.table === 'trade_slices' ? INSERT_TRADE_SLICES : INSERT_QUOTE_SLICES, params(batch));
}

/** Whether the schema reads summaries (every schema since 0026; older ones on TimescaleDB aggregated the raw ticks). */
export const slicesWanted = (db: pg.Pool | pg.ClientBase): Promise<boolean> => askOnce(db, 'SELECT tick_slices_wanted() AS yes');
