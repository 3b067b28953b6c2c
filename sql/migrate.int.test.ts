// Migrations on the real PostgreSQL server (plain, no TimescaleDB): idempotent, same tables, duplicates ignored.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { pgSession } from '../common/db.ts';
import { freshDatabaseClient, missing, testLog, type ConnectedDatabase } from '../test/services.ts';
import { schemaSnapshot } from '../test/schema-snapshot.ts';
import { migrate } from './migrate.ts';

const skip = await missing('postgres');

describe.skipIf(skip)('migrations on real PostgreSQL', () => {
  let database: ConnectedDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    database = await freshDatabaseClient('migrate');
    client = database.client;
  });
  afterAll(() => database?.close());

  it('applies every migration once; a second run changes nothing', async () => {
    const version = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    console.info(`PostgreSQL server ${version}`);
    const config = loadConfig({ DATABASE_URL: database.url, TIMESCALEDB: 'auto' });
    const first = await migrate(pgSession(client), config, testLog);
    expect(first.applied.length).toBeGreaterThan(0);
    const before = await schemaSnapshot(pgSession(client));
    const second = await migrate(pgSession(client), config, testLog);
    expect(second.applied).toEqual([]);
    expect(second.alreadyApplied).toEqual(first.applied);
    expect(await schemaSnapshot(pgSession(client))).toEqual(before);
    const tables = await client.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`);
    expect(tables.rows.map((r) => r.tablename)).toEqual(expect.arrayContaining(['agg_trades', 'book_tickers', 'gap_events', 'schema_migrations', 'trades']));
  });

  it('runs safely when two runners start at once', async () => {
    const config = loadConfig({ DATABASE_URL: database.url });
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    try {
      const [a, b] = await Promise.all([migrate(pgSession(client), config, testLog), migrate(pgSession(other), config, testLog)]);
      expect([...a.applied, ...b.applied]).toEqual([]);
    } finally {
      await other.end();
    }
  });

  it('rejects or ignores a duplicate tick and keeps decimals exact', async () => {
    const insert = `INSERT INTO book_tickers (exchange, market, symbol, time, update_id, bid_price, bid_qty, ask_price, ask_qty, receive_time)
      VALUES ('binance', 'spot', 'ETHUSDT', '2024-08-09 00:00:01.234567+00', 38611795123, '2683.12000000', '12.34560000', '2683.13000000',
              '0.00010000', '2024-08-09 00:00:01.234567+00')`;
    await client.query(insert);
    await expect(client.query(insert)).rejects.toThrow(/duplicate key value/);
    const ignored = await client.query(`${insert} ON CONFLICT DO NOTHING`);
    expect(ignored.rowCount).toBe(0);
    const row = (await client.query(`SELECT bid_price::text, ask_qty::text, time FROM book_tickers`)).rows;
    expect(row).toEqual([{ bid_price: '2683.12000000', ask_qty: '0.00010000', time: new Date('2024-08-09T00:00:01.234Z') }]);
  });

  it('refuses to run when an applied migration was edited', async () => {
    await client.query(`UPDATE schema_migrations SET checksum = 'tampered' WHERE version = '0100'`);
    await expect(migrate(pgSession(client), loadConfig({ DATABASE_URL: database.url }), testLog)).rejects.toThrow(/was changed after it was applied/);
  });
});
