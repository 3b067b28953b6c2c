// Books migration on native TimescaleDB: books and top_of_book are compressed hypertables, a re-delivered book is
// ignored also in a compressed chunk, and the per-minute top-of-book cagg compares venues minute by minute.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { compressAll, freshTimescale, timescaleMissing, type TimescaleDatabase } from '../test/timescale.ts';
import { testLog } from '../test/services.ts';
import { BOOKS, EXPECTED_MINUTES, insertBooks, MINUTE_MS, minuteRows } from './books.fixture.ts';
import { migrate } from './migrate.ts';

describe.skipIf(await timescaleMissing())('books on native TimescaleDB', () => {
  let db: TimescaleDatabase;

  beforeAll(async () => {
    db = await freshTimescale();
    await migrate(db, loadConfig({ TIMESCALEDB: 'on', TICK_RETENTION: 'none' }), testLog); // the books are from 2024
  }, 120_000);
  afterAll(async () => db?.close());

  it('creates compressed hypertables segmented by venue', async () => {
    const h = await db.query<{ hypertable_name: string; compression_enabled: boolean }>(
      `SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables
        WHERE hypertable_name IN ('books', 'top_of_book') ORDER BY 1`,
    );
    expect(h.rows).toEqual([
      { hypertable_name: 'books', compression_enabled: true },
      { hypertable_name: 'top_of_book', compression_enabled: true },
    ]);
    const seg = await db.query<{ attname: string }>(
      `SELECT attname FROM timescaledb_information.compression_settings
        WHERE hypertable_name = 'books' AND segmentby_column_index IS NOT NULL ORDER BY segmentby_column_index`,
    );
    expect(seg.rows.map((r) => r.attname)).toEqual(['exchange', 'market', 'symbol']);
  });

  it('ignores a re-delivered book, also in a compressed chunk; refreshes per-minute metrics per venue', async () => {
    expect(await insertBooks(db, BOOKS)).toBe(BOOKS.length);
    await compressAll(db, 'books');
    await compressAll(db, 'top_of_book');
    expect(await insertBooks(db, BOOKS)).toBe(0);
    const n = await db.query<{ books: number; tob: number }>(`SELECT (SELECT count(*)::int FROM books) AS books, (SELECT count(*)::int FROM top_of_book) AS tob`);
    expect(n.rows).toEqual([{ books: 5, tob: 5 }]);
    const levels = await db.query<{ bid_prices: string; ask_qtys: string }>(
      `SELECT bid_prices::text, ask_qtys::text FROM books WHERE exchange = 'binance' ORDER BY time LIMIT 1`,
    );
    expect(levels.rows).toEqual([{ bid_prices: '{61837.63000000,61832.63}', ask_qtys: '{0.25000000,3}' }]);

    await db.query(`CALL refresh_top_of_book($1, $2)`, [new Date(MINUTE_MS).toISOString(), new Date(MINUTE_MS + 120_000).toISOString()]);
    const rows = await minuteRows(db);
    expect(rows.map(({ mean_spread_bps: _, ...r }) => r)).toEqual(EXPECTED_MINUTES);
    expect(rows[0]!.mean_spread_bps).toBeCloseTo(((0.01 / 61837.635 + 0.02 / 61840.01) / 2) * 10_000, 9);
  });
});
