// A database filled the way the running pipeline fills it, from the recorded captures: the raw trades and book tickers
// (as the writer stores them), one book-ticker hole found by ingestion's own tracker around a simulated reconnect (as
// gap_events), then one pass of the metrics worker's engine on a clock five minutes after the last tick, which
// refreshes every bar and quote metric, computes the indicators and records the anomaly firings (stale streams
// included). Used by the Grafana query tests; works on plain PostgreSQL and in-process TimescaleDB.
import { loadConfig, type Config } from '../common/config.ts';
import type { SqlSession } from '../common/db.ts';
import { rowTimeMs, type BookTicker, type GapEvent } from '../common/records.ts';
import { BookTickerTracker } from '../ingestion/gaps.ts';
import { insertBookTickers, insertTrades } from '../metrics/replay.ts';
import { MetricsEngine } from '../metrics/engine.ts';
import { loadCaptureTicks } from './capture-ticks.ts';
import { testLog } from './services.ts';

export interface FilledMarket {
  /** Whole minutes from the first to just after the last replayed tick. */
  readonly range: { readonly from: Date; readonly to: Date };
  readonly gaps: readonly GapEvent[];
}

const MINUTE = 60_000;
const LOST_MS = 3_000;

/** Passes the book tickers through ingestion's tracker, losing LOST_MS of spot BTCUSDT quotes after a reconnect at `atMs`. */
function withReconnect(quotes: readonly BookTicker[], atMs: number): { kept: BookTicker[]; gaps: GapEvent[] } {
  const tracker = new BookTickerTracker();
  const kept: BookTicker[] = [];
  const gaps: GapEvent[] = [];
  let lostUntil: number | undefined;
  for (const q of quotes) {
    const t = rowTimeMs(q);
    const target = q.market === 'spot' && q.symbol === 'BTCUSDT';
    if (target && lostUntil === undefined && t >= atMs) {
      tracker.disconnected(['BTCUSDT'], 'replay: simulated reconnect');
      lostUntil = t + LOST_MS;
    }
    if (target && lostUntil !== undefined && t < lostUntil) continue; // never arrived
    const r = tracker.offer(q, q.market, q.receiveTimeUs);
    if (r.gap) gaps.push(r.gap);
    if (r.pass) kept.push(q);
  }
  return { kept, gaps };
}

export async function fillMarket(db: SqlSession, config: Config = loadConfig({})): Promise<FilledMarket> {
  const { trades, bookTickers } = loadCaptureTicks();
  let first = Infinity;
  let last = -Infinity;
  for (const t of [...trades.map((x) => x.exchangeTimeMs), ...bookTickers.map(rowTimeMs)]) {
    first = Math.min(first, t);
    last = Math.max(last, t);
  }
  const { kept, gaps } = withReconnect(bookTickers, first + Math.floor((last - first) / 2));
  await insertTrades(db, trades);
  await insertBookTickers(db, kept);
  for (const g of gaps) {
    await db.query(
      `INSERT INTO gap_events (exchange, market, symbol, stream, from_time, to_time, from_id, to_id, reason, detected_at)
       VALUES ($1, $2, $3, $4, $5::timestamptz, $6::timestamptz, $7, $8, $9, $10::timestamptz)`,
      [g.exchange, g.market, g.symbol, g.stream, new Date(g.fromTimeMs).toISOString(), new Date(g.toTimeMs).toISOString(), g.fromId, g.toId, g.reason, new Date(g.detectedAtUs / 1000).toISOString()],
    );
  }
  const now = last + 5 * MINUTE;
  const engine = new MetricsEngine({
    db,
    config,
    log: testLog,
    sink: { publishBars: async () => {}, publishAnomalies: async () => {} },
    clock: () => now,
    staleStreams: [
      { exchange: 'binance', market: 'spot', symbol: 'BTCUSDT' },
      { exchange: 'binance', market: 'spot', symbol: 'ETHUSDT' },
    ],
  });
  await engine.start();
  await engine.step();
  return { range: { from: new Date(Math.floor(first / MINUTE) * MINUTE), to: new Date(Math.ceil(last / MINUTE) * MINUTE) }, gaps };
}
