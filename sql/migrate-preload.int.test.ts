// `tickwatch migrate` against a server that has TimescaleDB's files but does not preload the library (the state right
// after installing Timescale's package): CREATE EXTENSION would end the connection with a FATAL error, so migrate must
// see it first. TIMESCALEDB=auto: one warning naming the fix, plain tables, exit 0; TIMESCALEDB=on: exit 2 with that
// message; never an unhandled 'error' event.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privatePostgresMissing, startPrivatePostgres, timescaleInstalled, type PrivatePostgres } from '../test/private-postgres.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const skip =
  privatePostgresMissing() ??
  (timescaleInstalled() ? undefined : 'TimescaleDB is not installed for this PostgreSQL (bash scripts/services.sh install)') ??
  (process.env.TIMESCALEDB === 'off' ? 'the plain-PostgreSQL pass (TIMESCALEDB=off) has no TimescaleDB' : undefined);

async function migrate(url: string, mode: 'auto' | 'on'): Promise<{ code: number; out: string }> {
  try {
    const r = await run('npx', ['tsx', 'bin/tickwatch.ts', 'migrate'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: url, TIMESCALEDB: mode, LOG_LEVEL: 'info' },
      timeout: 120_000,
    });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

describe.skipIf(skip)('migrate on a server with TimescaleDB installed but not preloaded', () => {
  let server: PrivatePostgres;

  beforeAll(async () => {
    server = await startPrivatePostgres({ preloadTimescale: false });
  }, 120_000);
  afterAll(async () => server?.destroy());

  const hasExtension = async () => {
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    try {
      return (await c.query(`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`)).rows.length > 0;
    } finally {
      await c.end();
    }
  };

  it('TIMESCALEDB=on exits 2 with the fix, and creates nothing', async () => {
    const r = await migrate(server.url, 'on');
    expect(r.code, r.out).toBe(2);
    expect(r.out).toContain('installed but not preloaded');
    expect(r.out).toContain("shared_preload_libraries = 'timescaledb'");
    expect(r.out).not.toMatch(/Unhandled|Connection terminated unexpectedly/);
    expect(await hasExtension()).toBe(false);
  }, 150_000);

  it('TIMESCALEDB=auto warns once with the fix and migrates to plain tables, exit 0', async () => {
    const r = await migrate(server.url, 'auto');
    expect(r.code, r.out).toBe(0);
    expect(r.out.match(/installed but not preloaded/g)?.length, r.out).toBe(1);
    expect(r.out).toMatch(/"timescaledb":false/);
    expect(await hasExtension()).toBe(false);
  }, 150_000);
});
