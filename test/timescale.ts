// Native TimescaleDB for tests of TimescaleDB semantics: a fresh database on the test server (which preloads the
// extension: scripts/services.sh, the private clusters and CI all do), behind the same SqlSession surface as any other.
// The suite's plain-PostgreSQL pass (TIMESCALEDB=off) skips these tests; the TimescaleDB pass runs them.
import pg from 'pg';
import type { SqlSession } from '../common/db.ts';
import { freshDatabase, findServices } from './services.ts';

export interface TimescaleDatabase extends SqlSession {
  readonly url: string;
  /** A result with its field descriptions (Grafana's panels need the column names). */
  queryFields(sql: string): Promise<{ fields: pg.FieldDef[]; rows: Record<string, unknown>[] }>;
  close(): Promise<void>;
}

let checked: Promise<string | undefined> | undefined;

/**
 * For describe.skipIf: why native TimescaleDB cannot be tested here, or undefined. Under CI=true, outside the plain
 * pass, a server without TimescaleDB fails the run instead: CI must test both databases.
 */
export function timescaleMissing(): Promise<string | undefined> {
  checked ??= (async () => {
    if (process.env.TIMESCALEDB === 'off') return 'the plain-PostgreSQL pass (TIMESCALEDB=off)';
    const s = await findServices();
    let why: string | undefined;
    if (!s.databaseUrl) why = 'needs DATABASE_URL (a PostgreSQL server with TimescaleDB)';
    else {
      const c = new pg.Client({ connectionString: s.databaseUrl });
      c.on('error', () => {});
      await c.connect();
      try {
        const r = await c.query<{ ok: boolean }>(
          `SELECT current_setting('shared_preload_libraries') LIKE '%timescaledb%'
                  AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS ok`,
        );
        if (!r.rows[0]?.ok) why = 'the test server does not preload TimescaleDB (bash scripts/services.sh install, then up)';
      } finally {
        await c.end();
      }
    }
    if (why && process.env.CI === 'true') throw new Error(`CI=true but native TimescaleDB is missing: ${why}`);
    if (why) console.warn(`[skipped] native TimescaleDB: ${why}`);
    return why;
  })();
  return checked;
}

/** A fresh, empty database on the TimescaleDB test server; close() drops it. */
export async function freshTimescale(prefix = 'ts'): Promise<TimescaleDatabase> {
  const fresh = await freshDatabase(prefix);
  const client = new pg.Client({ connectionString: fresh.url });
  client.on('error', () => {});
  await client.connect();
  return {
    url: fresh.url,
    query: async <R extends Record<string, unknown>>(sql: string, params?: unknown[]) => ({
      rows: (await client.query(sql, params)).rows as R[],
    }),
    exec: async (sql: string) => {
      await client.query(sql);
    },
    queryFields: async (sql: string) => {
      const r = await client.query(sql);
      return { fields: r.fields, rows: r.rows };
    },
    close: async () => {
      await client.end();
      await fresh.drop();
    },
  };
}

/**
 * Compresses every chunk of a hypertable now. Its compression policy is paused first: on old test data the policy's
 * background job may be compressing the same chunk, and compress_chunk then fails with "already compressed".
 */
export async function compressAll(db: SqlSession, hypertable: string): Promise<void> {
  await db.query(
    `SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs
      WHERE hypertable_name = $1 AND proc_name = 'policy_compression'`,
    [hypertable],
  );
  await db.query(`SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks($1::regclass) c`, [hypertable]);
}
