// Upgrading a TimescaleDB database whose continuous aggregates read the raw ticks (the earlier series up to 0024) to the
// ones that read the per-second slices (its 0026), then to this release (which adopts the series): the caggs are
// rebuilt, every minute with ticks is listed for the worker, and its next pass gives exact bars again, on native
// TimescaleDB, from ticks stored before the upgrade (no slices).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Trade } from '../common/records.ts';
import { EARLIER_SERIES, migrate } from '../sql/migrate.ts';
import { capturesMissing, loadCaptureTicks } from '../test/capture-ticks.ts';
import { earlierReleaseMissing, migrateAsEarlierRelease } from '../test/earlier-series.ts';
import { barMismatches, expectedBars } from '../test/expected-bars.ts';
import { testConfig, testLog } from '../test/services.ts';
import { freshTimescale, timescaleMissing, type TimescaleDatabase } from '../test/timescale.ts';
import { Refresher } from './refresher.ts';
import { insertBookTickers, insertTrades } from './replay.ts';

const skip = capturesMissing() ?? (await timescaleMissing()) ?? earlierReleaseMissing();
const WIDTHS = [['bars_1m', 60_000], ['bars_5m', 300_000], ['bars_1h', 3_600_000]] as const;

describe.skipIf(skip)('upgrading TimescaleDB aggregates from raw ticks to slices', () => {
  let db: TimescaleDatabase;
  let trades: Trade[];
  const count = async (sql: string) => Number((await db.query<{ n: string }>(sql)).rows[0]!.n);
  const rows = async (view: string) => (await db.query(`SELECT * FROM ${view} ORDER BY market, symbol, bucket`)).rows;

  beforeAll(async () => {
    db = await freshTimescale('ts_upgrade');
    const ticks = loadCaptureTicks();
    trades = ticks.trades;
    const config = await testConfig({ TIMESCALEDB: 'on' });
    await migrateAsEarlierRelease(db, config, '0024');
    await insertTrades(db, trades);
    await insertBookTickers(db, ticks.bookTickers);
    await new Refresher(db, 10_000).runOnce(Date.now());
  }, 180_000);
  afterAll(async () => db?.close());

  it('the old release had materialized bars and no slices', async () => {
    expect(await count('SELECT count(*) AS n FROM bars_1m')).toBeGreaterThan(0);
    expect(await count('SELECT count(*) AS n FROM trade_slices')).toBe(0);
    expect(await count('SELECT count(*) AS n FROM metric_invalidations')).toBe(0);
  });

  it('after the upgrade every minute with ticks is listed raw, and one worker pass makes every bar exact', async () => {
    const config = await testConfig({ TIMESCALEDB: 'on' });
    const upgraded = await migrateAsEarlierRelease(db, config);
    // Everything after 0024: 0025 (one slice per second) and 0026 (the caggs on the slices) first.
    expect(upgraded).toEqual(EARLIER_SERIES.map((m) => m.slice(0, 4)).filter((v) => v > '0024'));
    expect(upgraded.slice(0, 2)).toEqual(['0025', '0026']);
    expect((await migrate(db, config, testLog)).adopted).toBe(true);
    const minutes = await count(
      `SELECT count(DISTINCT (exchange, market, symbol, date_bin('1 minute', time, '2000-01-03 00:00:00+00'))) AS n FROM trades`,
    );
    expect(await count(`SELECT count(*) AS n FROM metric_invalidations WHERE stream = 'trade' AND raw`)).toBe(minutes);

    const pass = await new Refresher(db, 10_000).runOnce(Date.now());
    expect(pass.minutes.length).toBeGreaterThan(0);
    for (const [view, width] of WIDTHS) expect(barMismatches(await rows(view), expectedBars(trades, width), view), view).toEqual([]);
    expect(await count('SELECT count(*) AS n FROM quote_metrics_1m')).toBe(
      await count(`SELECT count(DISTINCT (exchange, market, symbol, date_bin('1 minute', time, '2000-01-03 00:00:00+00'))) AS n FROM book_tickers`),
    );
    expect(await count('SELECT count(*) AS n FROM metric_invalidations')).toBe(0);
    // The slices now hold every trade once.
    expect(await count('SELECT sum(trade_count) AS n FROM trade_slices')).toBe(trades.length);
  });
});
