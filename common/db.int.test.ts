// A database connection that the server ends (a restart, an administrator's terminate) must fail the work in hand and
// nothing else: node-postgres reports it as an 'error' event, which would be an uncaught exception without a listener.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, missing, testConfig, testLog } from '../test/services.ts';
import { createPool, withClient } from './db.ts';
import { sleep } from './time.ts';

const skip = await missing('postgres');

describe.skipIf(skip)('database connections ended by the server (real PostgreSQL)', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let admin: pg.Client;
  let pool: pg.Pool;
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  beforeAll(async () => {
    db = await freshDatabase('dbconn');
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    const config = await testConfig({ DATABASE_URL: db.url });
    pool = createPool(config, 'tickwatch-test-terminate', testLog);
    process.on('uncaughtException', onUncaught);
  });
  afterAll(async () => {
    process.off('uncaughtException', onUncaught);
    await pool?.end().catch(() => {});
    await admin?.end();
    await db?.drop();
  });

  const terminate = (pid: number) => admin.query('SELECT pg_terminate_backend($1)', [pid]);

  it('a checked-out client whose backend is terminated between two queries: the work fails, the process lives', async () => {
    const failure = await withClient(pool, async (client) => {
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await terminate(pid);
      await sleep(200); // the server's goodbye arrives while no query is running: node-postgres emits 'error'
      await client.query('SELECT 1');
    }).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(failure?.message).toMatch(/terminat|not queryable/i);
    // The broken client was destroyed, not pooled: the next checkout works.
    expect(await withClient(pool, async (c) => (await c.query('SELECT 41 + 1 AS n')).rows[0].n)).toBe(42);
    expect(uncaught).toEqual([]);
  });

  it('an idle pooled connection terminated by the server is dropped and replaced', async () => {
    const pid = await withClient(pool, async (c) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
    await terminate(pid);
    await sleep(200);
    expect((await pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    expect(uncaught).toEqual([]);
  });
});
