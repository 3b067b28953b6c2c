// Books migration on the real PostgreSQL server (plain tables): same tables, duplicates ignored, the same per-minute
// top-of-book metrics as on TimescaleDB.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { pgSession } from '../common/db.ts';
import { freshDatabaseClient, missing, testLog, type ConnectedDatabase } from '../test/services.ts';
import { BOOKS, EXPECTED_MINUTES, insertBooks, MINUTE_MS, minuteRows } from './books.fixture.ts';
import { migrate } from './migrate.ts';

const skip = await missing('postgres');

describe.skipIf(skip)('books on real PostgreSQL', () => {
  let database: ConnectedDatabase;

  beforeAll(async () => {
    database = await freshDatabaseClient('books');
    await migrate(pgSession(database.client), loadConfig({ DATABASE_URL: database.url, TIMESCALEDB: 'off' }), testLog);
  });
  afterAll(() => database?.close());

  it('stores books exactly, ignores re-delivered ones and refreshes per-minute metrics per venue', async () => {
    const { client } = database;
    const db = pgSession(client);
    expect(await insertBooks(db, BOOKS)).toBe(BOOKS.length);
    expect(await insertBooks(db, BOOKS)).toBe(0);
    const levels = await client.query(`SELECT bid_prices::text, ask_qtys::text FROM books WHERE exchange = 'binance' ORDER BY time LIMIT 1`);
    expect(levels.rows).toEqual([{ bid_prices: '{61837.63000000,61832.63}', ask_qtys: '{0.25000000,3}' }]);
    await expect(
      client.query(`INSERT INTO books (exchange, market, symbol, venue_symbol, time, sequence, depth, bid_prices, bid_qtys, ask_prices, ask_qtys, receive_time)
                    VALUES ('gemini', 'spot', 'BTC-USD', 'BTCUSD', now(), 1, 1, '{1,2}', '{1}', '{}', '{}', now())`),
    ).rejects.toThrow(/check constraint/);

    await client.query(`CALL refresh_top_of_book($1, $2)`, [new Date(MINUTE_MS).toISOString(), new Date(MINUTE_MS + 120_000).toISOString()]);
    const rows = await minuteRows(db);
    expect(rows.map(({ mean_spread_bps: _, ...r }) => r)).toEqual(EXPECTED_MINUTES);
    expect(rows[0]!.mean_spread_bps).toBeCloseTo(((0.01 / 61837.635 + 0.02 / 61840.01) / 2) * 10_000, 9);
  });
});
