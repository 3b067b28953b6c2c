// Why the writer takes ticks into hypertables through a staging table and an INSERT
// (ticks_copied_via_stage in sql/slices.sql), shown on the native TimescaleDB server: a COPY into a hypertable that
// has a statement trigger with a transition table records no continuous-aggregate invalidation, so a minute that was
// materialized before the COPY committed is never aggregated again; the same rows INSERTed are. The first expectation
// describes TimescaleDB 2.28.3: the day it fails, the upstream fix has arrived and the staging detour can go.
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshTimescale, timescaleMissing, type TimescaleDatabase } from '../test/timescale.ts';

const MINUTE = '2024-08-08 23:56:00+00';
const NEXT = '2024-08-08 23:57:00+00';

describe.skipIf(await timescaleMissing())('COPY into a hypertable with a transition-table trigger (native TimescaleDB)', () => {
  let db: TimescaleDatabase;
  let writer: pg.Client;

  beforeAll(async () => {
    db = await freshTimescale('ts_copy');
    await db.exec(`CREATE EXTENSION IF NOT EXISTS timescaledb;
      CREATE TABLE t (time timestamptz NOT NULL, v int NOT NULL);
      SELECT create_hypertable('t', by_range('time', interval '1 day'));
      CREATE MATERIALIZED VIEW m WITH (timescaledb.continuous, timescaledb.materialized_only = true)
          AS SELECT time_bucket('1 minute', time) AS bucket, count(*) AS n FROM t GROUP BY 1 WITH NO DATA;
      CREATE TABLE touched (bucket timestamptz);
      CREATE FUNCTION note_touched() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO touched SELECT DISTINCT date_trunc('minute', time) FROM new_rows; RETURN NULL; END $$;
      CREATE TRIGGER t_touched AFTER INSERT ON t REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION note_touched();`);
    writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
  });
  afterAll(async () => {
    await writer?.end();
    await db?.close();
  });

  const rows = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => `${new Date(Date.parse(MINUTE) + (from + i) * 10).toISOString()}\t1\n`).join('');
  const refresh = () => db.exec(`CALL refresh_continuous_aggregate('m', '${MINUTE}', '${NEXT}')`);
  const count = async () => Number((await db.query<{ n: string }>('SELECT coalesce(sum(n), 0) AS n FROM m')).rows[0]!.n);

  /** 100 rows of the minute go in while a refresh materializes it; then the minute is refreshed again. */
  async function lateRows(from: number, write: () => Promise<void>): Promise<number> {
    await writer.query('BEGIN');
    await write();
    await refresh(); // materializes the minute without the uncommitted rows
    await writer.query('COMMIT');
    await refresh();
    return count();
  }

  it('a COPY committed after the refresh is never aggregated (upstream behaviour); an INSERT from a staging table is', async () => {
    await db.exec(`INSERT INTO t SELECT '${MINUTE}'::timestamptz + i * interval '10 ms', 1 FROM generate_series(0, 99) i`);
    await refresh();
    expect(await count()).toBe(100);

    const copied = await lateRows(100, async () => {
      await pipeline(Readable.from([rows(100, 100)]), writer.query(copyFrom('COPY t (time, v) FROM STDIN')));
    });
    expect(copied, 'rows COPYed: 200 stored, the aggregate still counts 100').toBe(100);

    const staged = await lateRows(200, async () => {
      await writer.query('CREATE TEMP TABLE IF NOT EXISTS t_stage (LIKE t) ON COMMIT DELETE ROWS');
      await pipeline(Readable.from([rows(200, 100)]), writer.query(copyFrom('COPY t_stage (time, v) FROM STDIN')));
      await writer.query('INSERT INTO t (time, v) SELECT time, v FROM t_stage');
    });
    // The INSERT invalidated the minute, so its refresh recomputed it from every stored row.
    expect(staged, 'the staged rows are aggregated').toBe(300);
    expect(Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM t')).rows[0]!.n)).toBe(300);
  });
});
