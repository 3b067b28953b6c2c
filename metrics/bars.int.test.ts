// Exactness of bars and quote metrics: the recorded Binance captures (spot BTCUSDT and ETHUSDT, USD-M BTCUSDT) are put
// into the raw tables, refreshed through the worker's refresh path, and every bar and quote metric is compared with an
// independent computation from the raw ticks in this file (BigInt decimals), to the last decimal; volatility and price
// standard deviation (irrational) to a relative 1e-9. The same on plain PostgreSQL 15 with the ticks INSERTed (the
// refresh summarizes them from the table), on plain PostgreSQL 15 with the ticks written by the writer's transaction
// (per-second slices made by the writer, merged by the refresh), and on native TimescaleDB (continuous aggregates) with
// the ticks INSERTed and with the ticks written by the writer's transaction.
// Then a gap is backfilled: only the affected bars change, and the rollups still equal bars computed directly.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgSession, type SqlSession } from '../common/db.ts';
import { rowTimeMs, type BookTicker, type Tick, type Trade } from '../common/records.ts';
import { migrate } from '../sql/migrate.ts';
import { capturesMissing, loadCaptureTicks } from '../test/capture-ticks.ts';
import { freshDatabase, freshDatabaseClient, missing, testConfig, testLog } from '../test/services.ts';
import { freshTimescale, timescaleMissing } from '../test/timescale.ts';
import { BATCH_TICKS, writing } from '../test/writer-batches.ts';
import { insertBookTickers, insertTrades } from './replay.ts';
import { Refresher } from './refresher.ts';
import { bucketStart } from './schedule.ts';
import { P, divRound, expectedBars, fixed, key, perSymbol, pow10, type ExpectedBar } from '../test/expected-bars.ts';

// ---------- the independent computation ----------

interface ExpectedQuote {
  quoteCount: number; meanSpread: bigint; minSpread: bigint; maxSpread: bigint; lastSpread: bigint; // 18, 8, 8, 8
  meanBps: bigint; minBps: bigint; maxBps: bigint; lastBps: bigint; // all 12
  meanMid: bigint; lastMid: bigint; // 18, 9
  meanBid: bigint; meanAsk: bigint; imbalance: bigint; lastBid: bigint; lastAsk: bigint; lastImbalance: bigint; // 18,18,18,16,16,18
  timeWeighted: bigint; // 18
}

function expectedQuotes(quotes: readonly BookTicker[]): Map<string, ExpectedQuote> {
  const out = new Map<string, ExpectedQuote>();
  for (const list of perSymbol(quotes, (a, b) => rowTimeMs(a) - rowTimeMs(b) || a.updateId - b.updateId)) {
    // time-weighted: each quote in force from its time until the next one, clipped to buckets
    const tw = new Map<number, { covered: bigint; sum: bigint }>();
    list.forEach((q, i) => {
      const from = rowTimeMs(q);
      const next = list[i + 1];
      const spread = fixed(q.askPrice, P) - fixed(q.bidPrice, P);
      const to = next ? rowTimeMs(next) : bucketStart(from, 60_000) + 60_000;
      for (let b = bucketStart(from, 60_000); b < to; b += 60_000) {
        const us = BigInt((Math.min(to, b + 60_000) - Math.max(from, b)) * 1000);
        const cur = tw.get(b) ?? { covered: 0n, sum: 0n };
        tw.set(b, { covered: cur.covered + us, sum: cur.sum + spread * us });
      }
    });
    const groups = new Map<number, BookTicker[]>();
    for (const q of list) {
      const b = bucketStart(rowTimeMs(q), 60_000);
      (groups.get(b) ?? groups.set(b, []).get(b)!).push(q);
    }
    for (const [b, g] of groups) {
      const n = BigInt(g.length);
      let sumSpread = 0n, sumBps = 0n, sumMid2 = 0n, sumBid = 0n, sumAsk = 0n;
      let minS: bigint | null = null, maxS: bigint | null = null, minB: bigint | null = null, maxB: bigint | null = null;
      let last = { spread: 0n, bps: 0n, mid2: 0n, bid: 0n, ask: 0n };
      for (const q of g) {
        const bid = fixed(q.bidPrice, P), ask = fixed(q.askPrice, P);
        const spread = ask - bid, mid2 = ask + bid;
        const bps = divRound(spread * 20000n * pow10(12), mid2);
        const bidN = bid * fixed(q.bidQty, P), askN = ask * fixed(q.askQty, P);
        sumSpread += spread; sumBps += bps; sumMid2 += mid2; sumBid += bidN; sumAsk += askN;
        if (minS === null || spread < minS) minS = spread;
        if (maxS === null || spread > maxS) maxS = spread;
        if (minB === null || bps < minB) minB = bps;
        if (maxB === null || bps > maxB) maxB = bps;
        last = { spread, bps, mid2, bid: bidN, ask: askN };
      }
      const w = tw.get(b)!;
      out.set(key(g[0]!, b), {
        quoteCount: g.length, meanSpread: divRound(sumSpread * pow10(10), n), minSpread: minS!, maxSpread: maxS!, lastSpread: last.spread,
        meanBps: divRound(sumBps, n), minBps: minB!, maxBps: maxB!, lastBps: last.bps,
        meanMid: divRound(sumMid2 * 5n * pow10(9), n), lastMid: last.mid2 * 5n,
        meanBid: divRound(sumBid * 100n, n), meanAsk: divRound(sumAsk * 100n, n),
        imbalance: divRound(sumBid * pow10(18), sumBid + sumAsk), lastBid: last.bid, lastAsk: last.ask,
        lastImbalance: divRound(last.bid * pow10(18), last.bid + last.ask),
        timeWeighted: divRound(w.sum * pow10(10), w.covered),
      });
    }
  }
  return out;
}

// ---------- comparing with the database ----------

type Row = Record<string, unknown>;
const str = (v: unknown) => String(v);
const rowKey = (r: Row) => `${r.market}|${r.symbol}|${new Date(r.bucket as string).getTime()}`;

function closeTo(actual: unknown, expected: number | null, what: string): void {
  if (expected === null) return void expect(actual, what).toBeNull();
  const a = Number(actual);
  expect(Math.abs(a - expected), `${what}: ${a} vs ${expected}`).toBeLessThanOrEqual(Math.abs(expected) * 1e-9 + 1e-15);
}

function checkBars(rows: Row[], expected: Map<string, ExpectedBar>, width: string): void {
  expect(rows.length, `${width}: bar count`).toBe(expected.size);
  for (const r of rows) {
    const k = rowKey(r);
    const e = expected.get(k);
    expect(e, `${width} ${k}: unexpected bar`).toBeDefined();
    const w = `${width} ${k}`;
    expect(fixed(str(r.open), P), `${w} open`).toBe(e!.open);
    expect(fixed(str(r.high), P), `${w} high`).toBe(e!.high);
    expect(fixed(str(r.low), P), `${w} low`).toBe(e!.low);
    expect(fixed(str(r.close), P), `${w} close`).toBe(e!.close);
    expect(fixed(str(r.volume), P), `${w} volume`).toBe(e!.volume);
    expect(fixed(str(r.quote_volume), 16), `${w} quote_volume`).toBe(e!.quoteVolume);
    expect(fixed(str(r.vwap), 18), `${w} vwap`).toBe(e!.vwap);
    expect(Number(r.trade_count), `${w} trade_count`).toBe(e!.tradeCount);
    expect(fixed(str(r.taker_buy_volume), P), `${w} taker_buy_volume`).toBe(e!.takerBuyVolume);
    expect(fixed(str(r.taker_buy_quote_volume), 16), `${w} taker_buy_quote_volume`).toBe(e!.takerBuyQuoteVolume);
    expect(Number(r.first_trade_id), `${w} first_trade_id`).toBe(e!.firstTradeId);
    expect(Number(r.last_trade_id), `${w} last_trade_id`).toBe(e!.lastTradeId);
    expect(Number(r.return_count), `${w} return_count`).toBe(e!.returnCount);
    expect(r.max_move === null ? null : fixed(str(r.max_move), P), `${w} max_move`).toBe(e!.maxMove);
    expect(r.max_move_bps === null ? null : fixed(str(r.max_move_bps), 12), `${w} max_move_bps`).toBe(e!.maxMoveBps);
    closeTo(r.volatility, e!.volatility, `${w} volatility`);
    closeTo(r.price_stddev, e!.priceStddev, `${w} price_stddev`);
  }
}

function checkQuotes(rows: Row[], expected: Map<string, ExpectedQuote>): void {
  expect(rows.length, 'quote metric count').toBe(expected.size);
  for (const r of rows) {
    const k = rowKey(r);
    const e = expected.get(k)!;
    expect(e, `quotes ${k}: unexpected row`).toBeDefined();
    const cols: [string, number, bigint][] = [
      ['mean_spread', 18, e.meanSpread], ['min_spread', P, e.minSpread], ['max_spread', P, e.maxSpread], ['last_spread', P, e.lastSpread],
      ['time_weighted_spread', 18, e.timeWeighted],
      ['mean_spread_bps', 12, e.meanBps], ['min_spread_bps', 12, e.minBps], ['max_spread_bps', 12, e.maxBps], ['last_spread_bps', 12, e.lastBps],
      ['mean_mid', 18, e.meanMid], ['last_mid', 9, e.lastMid],
      ['mean_bid_notional', 18, e.meanBid], ['mean_ask_notional', 18, e.meanAsk], ['imbalance', 18, e.imbalance],
      ['last_bid_notional', 16, e.lastBid], ['last_ask_notional', 16, e.lastAsk], ['last_imbalance', 18, e.lastImbalance],
    ];
    expect(Number(r.quote_count), `quotes ${k} quote_count`).toBe(e.quoteCount);
    for (const [col, scale, value] of cols) expect(fixed(str(r[col]), scale), `quotes ${k} ${col}`).toBe(value);
  }
}

const BAR_VIEWS = ['bars_short', 'bars_1m', 'bars_5m', 'bars_1h'] as const;
const WIDTH_MS: Record<(typeof BAR_VIEWS)[number], number> = { bars_short: 10_000, bars_1m: 60_000, bars_5m: 300_000, bars_1h: 3_600_000 };

async function readAll(db: SqlSession, view: string): Promise<Row[]> {
  return (await db.query(`SELECT * FROM ${view} ORDER BY market, symbol, bucket`)).rows;
}

// ---------- the scenario, run on each database ----------

const capturesAbsent = capturesMissing();
const pgAbsent = capturesAbsent ?? (await missing('postgres'));

const tsAbsent = capturesAbsent ?? (await timescaleMissing());

const PLAIN = 'plain PostgreSQL 15';
const WRITER = 'plain PostgreSQL 15 through the writer';
const TS = 'native TimescaleDB';
const TS_WRITER = 'native TimescaleDB through the writer';

interface Target {
  db: SqlSession;
  /** How ticks reach the raw tables: plain INSERTs (unsummarized), or the writer's transaction with its slices. */
  trades(list: readonly Trade[]): Promise<void>;
  quotes(list: readonly BookTicker[]): Promise<void>;
  /** True when trades() goes through the writer (slices merged by the refresh, not rebuilt from the raw ticks). */
  summarized: boolean;
  /** The worker's refresh runs in a loop while the ticks are written (as in production: the captures are history). */
  refreshWhileWriting?: boolean;
  close(): Promise<void>;
}

/** INSERTs, as the metrics tests and a hand-made load put ticks in: every minute is summarized by the refresh itself. */
const inserting = (db: SqlSession) => ({ trades: (l: readonly Trade[]) => insertTrades(db, l), quotes: (l: readonly BookTicker[]) => insertBookTickers(db, l), summarized: false });

function scenario(name: string, skip: string | undefined, timescaledb: 'on' | 'off', open: () => Promise<Target>) {
  describe.skipIf(skip)(`bars and quote metrics from the captures on ${name}`, () => {
    let target: Target;
    const results: Record<string, Row[]> = {};
    let trades: Trade[];
    let gap: Trade[];
    let gapMinute: number;

    beforeAll(async () => {
      target = await open();
      const config = await testConfig({ TIMESCALEDB: timescaledb });
      expect((await migrate(target.db, config, testLog)).timescaledb).toBe(timescaledb === 'on');
      const ticks = loadCaptureTicks();
      trades = ticks.trades;
      // Every touched minute is long closed: each pass refreshes whatever the writer committed so far.
      let writing = true;
      let passes = 0;
      const concurrent = target.refreshWhileWriting
        ? (async () => {
            const refresher = new Refresher(target.db, 10_000);
            while (writing) {
              await refresher.runOnce(Date.now());
              passes++;
            }
          })()
        : undefined;
      // A gap in spot BTCUSDT: 40 trades from the middle of 23:57, missing at first, backfilled later.
      gapMinute = Date.UTC(2024, 7, 8, 23, 57);
      const inMinute = trades.filter((t) => t.market === 'spot' && t.symbol === 'BTCUSDT' && bucketStart(t.exchangeTimeMs, 60_000) === gapMinute);
      gap = inMinute.slice(Math.floor(inMinute.length / 2) - 20, Math.floor(inMinute.length / 2) + 20);
      const gapIds = new Set(gap.map((t) => t.tradeId));
      await target.trades(trades.filter((t) => !(t.market === 'spot' && t.symbol === 'BTCUSDT' && gapIds.has(t.tradeId))));
      // aggTrades are stored too, and must not add to the bars.
      await target.db.query(
        `INSERT INTO agg_trades SELECT exchange, market, symbol, time, trade_id, trade_id, trade_id, price, quantity, buyer_is_maker, side,
                event_time, receive_time FROM trades`,
      );
      await target.quotes(ticks.bookTickers);
      writing = false;
      await concurrent;
      if (concurrent) expect(passes, 'refresh passes while writing').toBeGreaterThan(10);
      if (target.summarized) {
        // Everything came with its slices: the refresh merges them and rebuilds nothing from the raw ticks.
        const raw = await target.db.query<{ n: string }>('SELECT count(*) AS n FROM metric_invalidations WHERE raw');
        expect(Number(raw.rows[0]!.n)).toBe(0);
        // One row per stream and second; seconds with more ticks than a batch holds were merged from several batches'
        // summaries (written in order: none interleaved).
        const merged = await target.db.query<{ big: string; interleaved: string }>(
          `SELECT count(*) FILTER (WHERE trade_count > ${BATCH_TICKS}) AS big, count(*) FILTER (WHERE interleaved) AS interleaved FROM trade_slices`,
        );
        expect(Number(merged.rows[0]!.big)).toBeGreaterThan(0);
        expect(Number(merged.rows[0]!.interleaved)).toBe(0);
      }
      const r = await new Refresher(target.db, 10_000).runOnce(Date.now());
      if (!concurrent) expect(r.minutes.length).toBeGreaterThan(0);
    }, 600_000);

    afterAll(async () => {
      await target?.close();
    });

    it('every bar equals the independent computation from the trades (with the gap)', async () => {
      const gapIds = new Set(gap.map((t) => t.tradeId));
      const present = trades.filter((t) => !(t.market === 'spot' && t.symbol === 'BTCUSDT' && gapIds.has(t.tradeId)));
      for (const view of BAR_VIEWS) {
        const rows = await readAll(target.db, view);
        results[`${view}:before`] = rows;
        expect(rows.length, `${view} has bars`).toBeGreaterThanOrEqual(view === 'bars_1h' ? 2 : 10);
        checkBars(rows, expectedBars(present, WIDTH_MS[view]), view);
      }
    });

    it('quote metrics equal the independent computation from the book tickers', async () => {
      const rows = await readAll(target.db, 'quote_metrics_1m');
      checkQuotes(rows, expectedQuotes(loadCaptureTicks().bookTickers));
    });

    it('a backfill changes the affected bars and only those; rollups still equal direct 5m/1h bars', async () => {
      await target.trades(gap);
      const interleaved = async () => Number((await target.db.query<{ n: string }>('SELECT count(*) AS n FROM trade_slices WHERE interleaved')).rows[0]!.n);
      // Through the writer, the backfilled trades fall between trades of seconds already summarized: those rows are
      // flagged, and the refresh rebuilds them from the raw ticks.
      if (target.summarized) expect(await interleaved()).toBeGreaterThan(0);
      const r = await new Refresher(target.db, 10_000).runOnce(Date.now());
      expect(await interleaved()).toBe(0);
      expect(r.minutes).toEqual([{ fromMs: gapMinute, toMs: gapMinute + 120_000 }]); // the gap minute and the next
      for (const view of BAR_VIEWS) {
        const rows = await readAll(target.db, view);
        results[`${view}:after`] = rows;
        checkBars(rows, expectedBars(trades, WIDTH_MS[view]), view);
        const before = new Map(results[`${view}:before`]!.map((x) => [rowKey(x), JSON.stringify(x)]));
        const changed = rows.filter((x) => before.get(rowKey(x)) !== JSON.stringify(x)).map((x) => `${x.symbol}@${new Date(x.bucket as string).toISOString()}`);
        const gapBuckets = [...new Set(gap.map((t) => bucketStart(t.exchangeTimeMs, WIDTH_MS[view])))].map((b) => `BTCUSDT@${new Date(b).toISOString()}`);
        expect(changed.sort(), `${view}: changed bars`).toEqual(gapBuckets.sort());
      }
      const rows = await readAll(target.db, 'bars_1m');
      expect(rows.filter((x) => x.market === 'spot' && x.symbol === 'BTCUSDT').every((x, i, a) => i === 0 || Number(x.first_trade_id) === Number(a[i - 1]!.last_trade_id) + 1)).toBe(true);
    });

    if (name === WRITER || name === TS_WRITER) it('a batch with re-delivered ticks goes in through the merge path, unsummarized: its minutes are summarized from the table, nothing counts twice', async () => {
      const usdm = trades.filter((t) => t.market === 'usdm');
      const again = usdm.slice(1_000, 1_150);
      // Three new trades among them (ids no exchange uses), so the merge path inserts something.
      const added = [0, 50, 100].map((i, k) => ({ ...again[i]!, tradeId: 9_000_000_000 + k, quantity: '0.123' }));
      await target.trades([...again, ...added]);
      const raw = await target.db.query<{ n: string }>('SELECT count(*) AS n FROM metric_invalidations WHERE raw');
      expect(Number(raw.rows[0]!.n)).toBeGreaterThan(0);
      const r = await new Refresher(target.db, 10_000).runOnce(Date.now());
      expect(r.minutes.length).toBeGreaterThan(0);
      trades = [...trades, ...added];
      for (const view of BAR_VIEWS) checkBars(await readAll(target.db, view), expectedBars(trades, WIDTH_MS[view]), view);
    });

    if (name === WRITER || name === TS_WRITER) it('minutes before the slices existed (an upgraded database) are summarized from the raw ticks', async () => {
      // As after migrating a database that already held ticks: no slices, slices_since after all of them.
      await target.db.query('DELETE FROM trade_slices');
      await target.db.query('DELETE FROM quote_slices');
      await target.db.query(`UPDATE metric_settings SET slices_since = '2024-08-09 01:00:00+00'`);
      await target.db.query(`CALL refresh_metrics('2024-08-08 23:00:00+00', '2024-08-09 01:00:00+00')`);
      for (const view of BAR_VIEWS) checkBars(await readAll(target.db, view), expectedBars(trades, WIDTH_MS[view]), view);
      checkQuotes(await readAll(target.db, 'quote_metrics_1m'), expectedQuotes(loadCaptureTicks().bookTickers));
    });

    it('records the rows for the cross-database comparison', () => {
      allResults[name] = { ...results };
    });
  });
}

const allResults: Record<string, Record<string, Row[]>> = {};

scenario(PLAIN, pgAbsent, 'off', async () => {
  const fresh = await freshDatabaseClient('bars');
  const db = pgSession(fresh.client);
  return { db, ...inserting(db), close: () => fresh.close() };
});

scenario(WRITER, pgAbsent, 'off', async () => {
  const fresh = await freshDatabase('bars_writer');
  const pool = new pg.Pool({ connectionString: fresh.url, max: 2 });
  const db = pgSession(pool);
  return { db, ...writing(pool), summarized: true, refreshWhileWriting: true, close: async () => { await pool.end(); await fresh.drop(); } };
});

scenario(TS, tsAbsent, 'on', async () => {
  const ts = await freshTimescale('bars_ts');
  return { db: ts, ...inserting(ts), close: () => ts.close() };
});

// The writer's transaction on hypertables, refreshed while it writes: its slices feed the continuous aggregates.
scenario(TS_WRITER, tsAbsent, 'on', async () => {
  const fresh = await freshDatabase('bars_ts_writer');
  const pool = new pg.Pool({ connectionString: fresh.url, max: 2 });
  const db = pgSession(pool);
  return { db, ...writing(pool), summarized: true, refreshWhileWriting: true, close: async () => { await pool.end(); await fresh.drop(); } };
});

describe.skipIf(tsAbsent ?? pgAbsent)('both databases', () => {
  it('give the same bars', () => {
    const [a, b, c, d] = [allResults[PLAIN], allResults[TS], allResults[WRITER], allResults[TS_WRITER]];
    expect(a && b && c && d, 'every scenario ran').toBeTruthy();
    for (const view of BAR_VIEWS) for (const other of [b, c, d]) {
      const ra = a![`${view}:after`]!, rb = other![`${view}:after`]!;
      expect(ra.length).toBe(rb.length);
      ra.forEach((x, i) => {
        const y = rb[i]!;
        for (const col of Object.keys(x)) {
          if (col === 'volatility' || col === 'price_stddev') closeTo(y[col], x[col] === null ? null : Number(x[col]), `${view} ${col}`);
          else expect(str(y[col] instanceof Date ? (y[col] as Date).getTime() : y[col]), `${view} ${rowKey(x)} ${col}`).toBe(str(x[col] instanceof Date ? (x[col] as Date).getTime() : x[col]));
        }
      });
    }
  });
});
