// Migrations on native TimescaleDB: hypertables, compression, retention, idempotence, dedup.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { compressAll, freshTimescale, timescaleMissing, type TimescaleDatabase } from '../test/timescale.ts';
import { testLog } from '../test/services.ts';
import { migrate, TimescaleUnavailableError } from './migrate.ts';
import { schemaSnapshot } from '../test/schema-snapshot.ts';

describe.skipIf(await timescaleMissing())('migrations on native TimescaleDB', () => {
  let db: TimescaleDatabase;
  const config = loadConfig({ TIMESCALEDB: 'on', TICK_CHUNK_INTERVAL: '6 hours', TICK_RETENTION: '30 days' });

  beforeAll(async () => {
    db = await freshTimescale();
  });
  afterAll(async () => db?.close());

  it('creates hypertables with compression and retention, and a second run changes nothing', async () => {
    const first = await migrate(db, config, testLog);
    expect(first.timescaledb).toBe(true);
    expect(first.applied.length).toBeGreaterThan(0);
    const before = await schemaSnapshot(db);

    const second = await migrate(db, config, testLog);
    expect(second.applied).toEqual([]);
    expect(await schemaSnapshot(db)).toEqual(before);

    const hypertables = await db.query<{ hypertable_name: string; compression_enabled: boolean }>(
      `SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables ORDER BY 1`,
    );
    expect(hypertables.rows).toEqual(expect.arrayContaining([
      { hypertable_name: 'agg_trades', compression_enabled: true },
      { hypertable_name: 'book_tickers', compression_enabled: true },
      { hypertable_name: 'trades', compression_enabled: true },
      { hypertable_name: 'trade_slices', compression_enabled: true },
      { hypertable_name: 'quote_slices', compression_enabled: true },
    ]));
    const dims = await db.query<{ hypertable_name: string; time_interval: unknown }>(
      `SELECT hypertable_name, time_interval::text AS time_interval FROM timescaledb_information.dimensions
        WHERE hypertable_name IN ('trades', 'agg_trades', 'book_tickers') ORDER BY 1`,
    );
    expect(dims.rows.map((r) => r.time_interval)).toEqual(['06:00:00', '06:00:00', '06:00:00']);
    const segmentBy = await db.query<{ hypertable_name: string; attname: string }>(
      `SELECT hypertable_name, attname FROM timescaledb_information.compression_settings
        WHERE segmentby_column_index IS NOT NULL AND hypertable_name = 'trades' ORDER BY segmentby_column_index`,
    );
    expect(segmentBy.rows.map((r) => r.attname)).toEqual(['exchange', 'market', 'symbol']);
    const jobs = await db.query<{ hypertable_name: string; proc_name: string; setting: string }>(
      `SELECT hypertable_name, proc_name, coalesce(config->>'drop_after', config->>'compress_after') AS setting
         FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL ORDER BY 1, 2`,
    );
    for (const t of ['agg_trades', 'book_tickers', 'trades', 'trade_slices', 'quote_slices']) {
      expect(jobs.rows).toContainEqual({ hypertable_name: t, proc_name: 'policy_retention', setting: '30 days' });
      expect(jobs.rows).toContainEqual({ hypertable_name: t, proc_name: 'policy_compression', setting: '2 days' });
    }
  });

  it('gives the bar aggregates refresh, compression and retention policies, and the scheduler runs every policy', async () => {
    const jobs = await db.query<{ job_id: number; view: string; proc_name: string; config: Record<string, string> }>(
      `SELECT j.job_id, c.view_name AS view, j.proc_name, j.config FROM timescaledb_information.jobs j
         JOIN timescaledb_information.continuous_aggregates c ON c.view_name = j.hypertable_name
        ORDER BY 2, 3`,
    );
    const byView = (v: string) => Object.fromEntries(jobs.rows.filter((j) => j.view === v).map((j) => [j.proc_name, j.config]));
    for (const view of ['trade_bars_1m', 'quote_stats_1m', 'top_of_book_stats_1m', 'trade_bars_5m', 'trade_bars_1h']) {
      const p = byView(view);
      expect(p.policy_refresh_continuous_aggregate, `${view} refresh policy`).toMatchObject({ start_offset: expect.any(String), end_offset: expect.any(String) });
      expect(p.policy_compression?.compress_after, `${view} compression`).toBe('7 days');
      expect(p.policy_retention?.drop_after, `${view} retention`).toBe('5 years');
    }
    expect(byView('trade_bars_1m').policy_refresh_continuous_aggregate).toMatchObject({ start_offset: '06:00:00', end_offset: '00:01:00' });
    // Every job of this database: started by TimescaleDB's scheduler (background workers) and successful.
    const deadline = Date.now() + 60_000;
    let stats: { job_id: number; proc_name: string; last_run_status: string | null }[] = [];
    for (;;) {
      stats = (await db.query<{ job_id: number; proc_name: string; last_run_status: string | null }>(
        `SELECT s.job_id, j.proc_name, s.last_run_status FROM timescaledb_information.job_stats s
           JOIN timescaledb_information.jobs j USING (job_id) WHERE j.job_id >= 1000 ORDER BY 1`,
      )).rows;
      if (stats.length > 0 && stats.every((r) => r.last_run_status !== null)) break;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(stats.length).toBeGreaterThanOrEqual(5 * 2 + 5 * 3);
    expect(stats.filter((r) => r.last_run_status !== 'Success'), 'jobs that did not run or failed').toEqual([]);
  }, 90_000);

  it('re-syncs policies when the configuration changes', async () => {
    await migrate(db, loadConfig({ TIMESCALEDB: 'on', TICK_RETENTION: '14 days', TICK_CHUNK_INTERVAL: '6 hours' }), testLog);
    const jobs = await db.query<{ drop_after: string }>(
      `SELECT config->>'drop_after' AS drop_after FROM timescaledb_information.jobs
        WHERE hypertable_name = 'trades' AND proc_name = 'policy_retention'`,
    );
    expect(jobs.rows).toEqual([{ drop_after: '14 days' }]);

    await migrate(db, loadConfig({ TIMESCALEDB: 'on', TICK_RETENTION: 'none', BAR_RETENTION: '400 days', BAR_COMPRESS_AFTER: 'none', TICK_CHUNK_INTERVAL: '6 hours' }), testLog);
    const after = await db.query<{ proc_name: string; hypertable_name: string; config: Record<string, string> }>(
      `SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs
        WHERE proc_name IN ('policy_retention', 'policy_compression')`,
    );
    const names = (proc: string) => after.rows.filter((r) => r.proc_name === proc).map((r) => r.hypertable_name).sort();
    expect(names('policy_retention'), 'none: no tick retention; bars kept 400 days').toEqual(['quote_stats_1m', 'top_of_book_stats_1m', 'trade_bars_1h', 'trade_bars_1m', 'trade_bars_5m']);
    expect(after.rows.filter((r) => r.proc_name === 'policy_retention').every((r) => r.config.drop_after === '400 days')).toBe(true);
    expect(names('policy_compression'), 'none: bars not compressed').toEqual(['agg_trades', 'book_tickers', 'books', 'quote_slices', 'top_of_book', 'trade_slices', 'trades']);
  });

  it('ignores a re-delivered tick, also in a compressed chunk', async () => {
    // The tick is from 2024: without this, the retention policy just re-created may drop its chunk meanwhile.
    await migrate(db, loadConfig({ TIMESCALEDB: 'on', TICK_RETENTION: 'none', TICK_CHUNK_INTERVAL: '6 hours' }), testLog);
    const insert = `INSERT INTO trades (exchange, market, symbol, time, trade_id, price, quantity, buyer_is_maker, side, event_time, receive_time)
      VALUES ('binance','spot','BTCUSDT','2024-08-08 23:59:59.123+00', 3735683259, 61837.63000000, 0.02000000, true, 'sell',
              '2024-08-08 23:59:59.124+00', '2024-08-08 23:59:57.900+00') ON CONFLICT DO NOTHING`;
    await db.exec(insert);
    await compressAll(db, 'trades');
    await db.exec(insert);
    const rows = await db.query<{ n: number; price: string }>(`SELECT count(*)::int AS n, min(price)::text AS price FROM trades`);
    expect(rows.rows).toEqual([{ n: 1, price: '61837.63000000' }]);
    await expect(db.exec(insert.replace(' ON CONFLICT DO NOTHING', ''))).rejects.toThrow(/duplicate key/);
  });

  it('keeps a database migrated on plain PostgreSQL plain under auto, and refuses TIMESCALEDB=on there', async () => {
    const plain = await freshTimescale('ts_was_plain');
    try {
      expect((await migrate(plain, loadConfig({ TIMESCALEDB: 'off' }), testLog)).timescaledb).toBe(false);
      expect((await migrate(plain, loadConfig({ TIMESCALEDB: 'auto' }), testLog)).timescaledb).toBe(false);
      await expect(migrate(plain, loadConfig({ TIMESCALEDB: 'on' }), testLog)).rejects.toThrow(TimescaleUnavailableError);
      await expect(migrate(plain, loadConfig({ TIMESCALEDB: 'on' }), testLog)).rejects.toThrow(/migrated on plain PostgreSQL/);
      expect((await plain.query(`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`)).rows).toEqual([]);
    } finally {
      await plain.close();
    }
  });
});
