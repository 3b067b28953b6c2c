// While the metrics worker is down, TimescaleDB's own refresh policies keep the bar aggregates right; when the worker
// comes back it repairs what only it computes (the tick-to-tick returns behind volatility). On native TimescaleDB, with
// the USD-M capture moved to the last hours (the policies look back 6 hours) and stored by the writer's own transaction
// (ticks with their per-second slices, which the aggregates read), half of it after the minutes were first
// materialized, as late ticks arrive; the policy jobs are run the way the scheduler runs them (run_job), so the test
// does not wait for their schedule (that the scheduler runs every policy: sql/migrate.timescale.int.test.ts).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Trade } from '../common/records.ts';
import { migrate } from '../sql/migrate.ts';
import { capturesMissing, loadCaptureTicks } from '../test/capture-ticks.ts';
import { barMismatches, expectedBars } from '../test/expected-bars.ts';
import { testConfig, testLog } from '../test/services.ts';
import { freshTimescale, timescaleMissing, type TimescaleDatabase } from '../test/timescale.ts';
import { writing } from '../test/writer-batches.ts';
import { Refresher } from './refresher.ts';

const HOUR = 3_600_000;
const skip = capturesMissing() ?? (await timescaleMissing());

describe.skipIf(skip)('bar aggregates on TimescaleDB while the metrics worker is down', () => {
  let db: TimescaleDatabase;
  let pool: pg.Pool;
  let trades: Trade[];

  beforeAll(async () => {
    db = await freshTimescale('ts_policies');
    await migrate(db, await testConfig({ TIMESCALEDB: 'on' }), testLog);
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
    // The test runs the refresh policies itself: the scheduler running the same job at that moment would refuse one of
    // them ("concurrent refresh").
    await db.query(`SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs WHERE proc_name = 'policy_refresh_continuous_aggregate'`);
    const usdm = loadCaptureTicks().trades.filter((t) => t.market === 'usdm');
    // Whole hours, so every bucket boundary stays where it was; the last trade lands two to three hours ago.
    const shift = Math.floor((Date.now() - 2 * HOUR - usdm[usdm.length - 1]!.exchangeTimeMs) / HOUR) * HOUR;
    trades = usdm.map((t) => ({ ...t, exchangeTimeMs: t.exchangeTimeMs + shift, eventTimeMs: t.eventTimeMs + shift, receiveTimeUs: t.receiveTimeUs + shift * 1000 }));
  }, 120_000);
  afterAll(async () => {
    await pool?.end();
    await db?.close();
  });

  const policy = async (view: string) =>
    (await db.query<{ job_id: number }>(
      `SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_name = $1`,
      [view],
    )).rows[0]!.job_id;
  const runPolicies = async () => {
    for (const view of ['trade_bars_1m', 'trade_bars_5m', 'trade_bars_1h']) await db.exec(`CALL run_job(${await policy(view)})`);
  };
  const rows = async (view: string) => (await db.query(`SELECT * FROM ${view} ORDER BY market, symbol, bucket`)).rows;
  // What the aggregates alone give: every column but the returns (volatility, return count, max move).
  const aggregateMismatches = (list: string[]) => list.filter((m) => !/^\S+ \S+: (return_count|max_move|max_move_bps|volatility)(, (max_move|max_move_bps|volatility))* differ$/.test(m));

  it('the refresh policies alone give exact aggregates, late ticks included', async () => {
    const writer = writing(pool);
    const half = trades.filter((_, i) => i % 2 === 0);
    await writer.trades(half);
    await runPolicies();
    expect(aggregateMismatches(barMismatches(await rows('bars_1m'), expectedBars(half, 60_000), 'bars_1m'))).toEqual([]);
    // The other half arrives late, into minutes already materialized; nobody but the policies refreshes.
    await writer.trades(trades.filter((_, i) => i % 2 === 1));
    await runPolicies();
    for (const [view, width] of [['bars_1m', 60_000], ['bars_5m', 300_000], ['bars_1h', HOUR]] as const) {
      expect(aggregateMismatches(barMismatches(await rows(view), expectedBars(trades, width), view)), view).toEqual([]);
    }
  });

  it('the worker, back, repairs the rest from its work list: every column exact', async () => {
    const r = await new Refresher(db, 10_000).runOnce(Date.now());
    expect(r.minutes.length).toBeGreaterThan(0);
    for (const [view, width] of [['bars_1m', 60_000], ['bars_5m', 300_000], ['bars_1h', HOUR]] as const) {
      expect(barMismatches(await rows(view), expectedBars(trades, width), view), view).toEqual([]);
    }
  });
});
