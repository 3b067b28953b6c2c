// PostgreSQL factory shared by every stage, and the small query surface that both node-postgres and the
// in-process TimescaleDB (PGlite) offer, so migrations and reader queries run unchanged on either.
import pg from 'pg';
import type { Config } from './config.ts';

export function createPool(config: Pick<Config, 'database'>, applicationName: string): pg.Pool {
  return new pg.Pool({
    connectionString: config.database.url,
    max: config.database.poolSize,
    application_name: applicationName,
    connectionTimeoutMillis: 10_000,
  });
}

export function createClient(config: Pick<Config, 'database'>, applicationName: string): pg.Client {
  return new pg.Client({ connectionString: config.database.url, application_name: applicationName, connectionTimeoutMillis: 10_000 });
}

/** What migrations and readers need from a database session. */
export interface SqlSession {
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  /** Runs a script of several statements (simple query protocol), no parameters. */
  exec(sql: string): Promise<void>;
}

export function pgSession(client: pg.ClientBase): SqlSession {
  return {
    query: async <R extends Record<string, unknown>>(sql: string, params?: unknown[]) => {
      const res = await client.query(sql, params);
      return { rows: res.rows as R[] };
    },
    exec: async (sql: string) => {
      await client.query(sql);
    },
  };
}
