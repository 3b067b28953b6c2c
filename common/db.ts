// PostgreSQL factory shared by every stage, and the small query surface that both node-postgres and the
// in-process TimescaleDB (PGlite) offer, so migrations and reader queries run unchanged on either.
import pg from 'pg';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';

/** A worker's own database role (sql/roles.sql); without its password the worker logs in as DATABASE_URL's user. */
export type DatabaseJob = 'writer' | 'metrics';

/** DATABASE_URL, logged in as `job`'s role when its password is configured. */
export function databaseUrl(config: Pick<Config, 'database'>, job?: DatabaseJob): string {
  const role = job === undefined ? undefined : config.database[job];
  if (role?.password === undefined) return config.database.url;
  const url = new URL(config.database.url);
  url.username = encodeURIComponent(role.user);
  url.password = encodeURIComponent(role.password);
  return url.toString();
}

/** Whether `job` logs in as a role of its own (and so leaves migrating to DATABASE_URL's user). */
export const hasOwnRole = (config: Pick<Config, 'database'>, job: DatabaseJob): boolean => config.database[job].password !== undefined;

/**
 * A pool whose idle connections may die (a database restart) without taking the process down: node-postgres emits
 * 'error' on the pool for them, and an 'error' event nobody listens to is an uncaught exception.
 */
export function createPool(config: Pick<Config, 'database'>, applicationName: string, log: Logger, job?: DatabaseJob): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl(config, job),
    max: config.database.poolSize,
    application_name: applicationName,
    connectionTimeoutMillis: 10_000,
  });
  pool.on('error', (err) => log.warn({ error: err.message, code: (err as { code?: string }).code }, 'idle database connection lost'));
  return pool;
}

/**
 * Runs `use` on a client checked out of the pool. A checked-out client has no 'error' listener of the pool's, and
 * node-postgres emits 'error' on it when the server ends the connection (even while a query fails with the same
 * error): without this listener a database restart mid-batch is an uncaught exception. A client that failed is
 * destroyed, not returned: its connection may be dead or half way through a protocol.
 */
export async function withClient<T>(pool: pg.Pool, use: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => (broken ??= err);
  client.on('error', onError);
  try {
    return await use(client);
  } catch (err) {
    broken ??= err as Error;
    throw err;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}

/**
 * A single connection. node-postgres emits 'error' on a client whose server ends the connection (a FATAL error, a
 * restart), besides failing the pending query with the same error; unlistened, that event would end the process. The
 * listener keeps it a query failure, which the caller handles (or reports, for an idle client).
 */
export function createClient(config: Pick<Config, 'database'>, applicationName: string, log?: Logger, job?: DatabaseJob): pg.Client {
  const client = new pg.Client({ connectionString: databaseUrl(config, job), application_name: applicationName, connectionTimeoutMillis: 10_000 });
  client.on('error', (err) => log?.warn({ error: err.message, code: (err as { code?: string }).code, applicationName }, 'database connection lost'));
  return client;
}

const answers = new WeakMap<pg.Pool | pg.ClientBase, Map<string, Promise<boolean>>>();

/**
 * A yes/no question about the database's schema (`SELECT f() AS yes`), asked once per pool or client and remembered;
 * a failed answer is asked again the next time.
 */
export function askOnce(db: pg.Pool | pg.ClientBase, sql: string): Promise<boolean> {
  let known = answers.get(db);
  if (!known) answers.set(db, (known = new Map()));
  let answer = known.get(sql);
  if (!answer) {
    answer = db.query<{ yes: boolean }>(sql).then((r) => r.rows[0]?.yes === true);
    answer.catch(() => known.delete(sql));
    known.set(sql, answer);
  }
  return answer;
}

/** What migrations and readers need from a database session. */
export interface SqlSession {
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  /** Runs a script of several statements (simple query protocol), no parameters. */
  exec(sql: string): Promise<void>;
}

export function pgSession(client: pg.ClientBase | pg.Pool): SqlSession {
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
