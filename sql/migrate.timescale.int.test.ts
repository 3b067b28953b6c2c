// Migrations on native TimescaleDB: hypertables, compression, retention, idempotence, dedup.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { freshTimescale, timescaleMissing, type TimescaleDatabase } from '../test/timescale.ts';
import { testLog } from '../test/services.ts';
import { migrate } from './migrate.ts';
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
    for (const t of ['agg_trades', 'book_tickers', 'trades']) {
      expect(jobs.rows).toContainEqual({ hypertable_name: t, proc_name: 'policy_retention', setting: '30 days' });
      expect(jobs.rows).toContainEqual({ hypertable_name: t, proc_name: 'policy_compression', setting: '2 days' });
    }
  });

  it('re-syncs policies when the configuration changes', async () => {
    await migrate(db, loadConfig({ TIMESCALEDB: 'on', TICK_RETENTION: '14 days', TICK_CHUNK_INTERVAL: '6 hours' }), testLog);
    const jobs = await db.query<{ drop_after: string }>(
      `SELECT config->>'drop_after' AS drop_after FROM timescaledb_information.jobs
        WHERE hypertable_name = 'trades' AND proc_name = 'policy_retention'`,
    );
    expect(jobs.rows).toEqual([{ drop_after: '14 days' }]);
  });

  it('ignores a re-delivered tick, also in a compressed chunk', async () => {
    const insert = `INSERT INTO trades (exchange, market, symbol, time, trade_id, price, quantity, buyer_is_maker, side, event_time, receive_time)
      VALUES ('binance','spot','BTCUSDT','2024-08-08 23:59:59.123+00', 3735683259, 61837.63000000, 0.02000000, true, 'sell',
              '2024-08-08 23:59:59.124+00', '2024-08-08 23:59:57.900+00') ON CONFLICT DO NOTHING`;
    await db.exec(insert);
    await db.exec(`SELECT compress_chunk(c) FROM show_chunks('trades') c`);
    await db.exec(insert);
    const rows = await db.query<{ n: number; price: string }>(`SELECT count(*)::int AS n, min(price)::text AS price FROM trades`);
    expect(rows.rows).toEqual([{ n: 1, price: '61837.63000000' }]);
    await expect(db.exec(insert.replace(' ON CONFLICT DO NOTHING', ''))).rejects.toThrow(/duplicate key/);
  });
});
