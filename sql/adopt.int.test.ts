// A database made by the earlier numbered series (0001-0027, from git history) is adopted by this release's migrate:
// afterwards its schema is the schema a fresh database gets (tables, columns, constraints, indexes, functions, views,
// triggers, TimescaleDB policies), on the real server of this pass; one that stopped part way is refused with what to do.
import { readdir } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgSession, type SqlSession } from '../common/db.ts';
import type { Config } from '../common/config.ts';
import { earlierReleaseMissing, migrateAsEarlierRelease } from '../test/earlier-series.ts';
import { schemaSnapshot } from '../test/schema-snapshot.ts';
import { freshDatabase, missing, testConfig, testLog } from '../test/services.ts';
import { migrate } from './migrate.ts';

const skip = (await missing('postgres')) ?? earlierReleaseMissing();
/** The migrations added after the series was folded into 0100. */
const LATER = (await readdir(new URL('./migrations/', import.meta.url)))
  .filter((f) => /^\d{4}_.*\.sql$/.test(f) && f.slice(0, 4) > '0100')
  .map((f) => f.slice(0, 4))
  .sort();

/** The snapshot without what differs between any two databases: migration times, job ids, internal relation numbers. */
async function comparable(db: SqlSession): Promise<unknown> {
  const s = (await schemaSnapshot(db)) as Record<string, unknown>;
  const jobs = (s.jobs as { job_id: number; config: string | null }[]).map(({ job_id: _, config, ...j }) => ({
    ...j,
    config: config === null ? null : { ...JSON.parse(config), mat_hypertable_id: undefined, hypertable_id: undefined },
  }));
  const text = JSON.stringify({ ...s, migrations: undefined, jobs });
  return JSON.parse(text.replace(/_materialized_hypertable_\d+/g, '_materialized_hypertable_N'));
}

describe.skipIf(skip)('adopting a database of the earlier migration series', () => {
  const dbs: { client: pg.Client; drop: () => Promise<void> }[] = [];
  let config: Config;
  const open = async (name: string): Promise<SqlSession> => {
    const d = await freshDatabase(name);
    const client = new pg.Client({ connectionString: d.url });
    await client.connect();
    dbs.push({ client, drop: d.drop });
    return pgSession(client);
  };

  beforeAll(async () => {
    config = await testConfig();
  });
  afterAll(async () => {
    for (const d of dbs) {
      await d.client.end();
      await d.drop();
    }
  });

  it('ends with the schema a fresh database gets, and a second run changes nothing', async () => {
    const earlier = await open('adopt_earlier');
    expect(await migrateAsEarlierRelease(earlier, config)).toHaveLength(15);
    const r = await migrate(earlier, config, testLog);
    // Adopted as 0100, then given what came after the fold, as a fresh database is.
    expect(r).toMatchObject({ adopted: true, applied: LATER });
    const fresh = await open('adopt_fresh');
    expect((await migrate(fresh, config, testLog)).adopted).toBe(false);
    expect(await comparable(earlier)).toEqual(await comparable(fresh));
    const again = await migrate(earlier, config, testLog);
    expect(again).toMatchObject({ adopted: false, applied: [], alreadyApplied: ['0100', ...LATER] });
    const rows = (await earlier.query<{ version: string; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version')).rows;
    expect(rows.map((m) => m.version)).toEqual(['0100', ...LATER]);
    expect(rows[0]).toEqual({ version: '0100', name: 'schema' });
  }, 120_000);

  it('refuses a database that stopped part way through the series, saying which release brings it to the end', async () => {
    const partial = await open('adopt_partial');
    await migrateAsEarlierRelease(partial, config, '0024');
    await expect(migrate(partial, config, testLog)).rejects.toThrow(/stops before 0025_one_slice_per_second: .*git checkout 47994d7/);
    expect((await partial.query(`SELECT count(*)::int AS n FROM schema_migrations`)).rows[0]!.n).toBe(12); // unchanged
  }, 120_000);
});
