// A private, throwaway PostgreSQL 15 cluster for tests that must stop and start the database (the shared test server
// is used by others and must never be stopped). initdb runs as the `postgres` OS user (we are root); the cluster
// listens on a free loopback port with its socket in its own temp folder, and is deleted afterwards.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { freePort } from './ports.ts';

const run = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';
const TIMESCALE_LIB = '/usr/lib/postgresql/15/lib';

export interface PrivatePostgres {
  readonly url: string;
  readonly port: number;
  /** Fast shutdown: open connections are terminated, as when a server goes down. */
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/** For describe.skipIf: why a private cluster cannot be made here, or undefined. */
export function privatePostgresMissing(): string | undefined {
  const why =
    process.getuid?.() !== 0
      ? 'must run as root (initdb runs as the postgres user via runuser)'
      : !existsSync(`${PG_BIN}/initdb`)
        ? `needs PostgreSQL 15 binaries in ${PG_BIN}`
        : undefined;
  if (why) console.warn(`[skipped] private PostgreSQL: ${why}`);
  return why;
}

/**
 * Server options preloading TimescaleDB, as every cluster the project starts does when the extension is installed
 * (scripts/services.sh), unless the tests run against plain PostgreSQL (TIMESCALEDB=off).
 */
function timescalePreload(): string {
  if (process.env.TIMESCALEDB === 'off' || !timescaleInstalled()) return '';
  return ' -c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off -c max_worker_processes=48 -c timescaledb.max_background_workers=40';
}

async function asPostgres(cmd: string, args: string[]): Promise<void> {
  await run('runuser', ['-u', 'postgres', '--', `${PG_BIN}/${cmd}`, ...args], { timeout: 60_000 });
}

/** Whether TimescaleDB's files are installed for this PostgreSQL (the extension is then available to every cluster). */
export const timescaleInstalled = (): boolean => existsSync(`${TIMESCALE_LIB}/timescaledb.so`);

/**
 * @param preloadTimescale false: a server with TimescaleDB's files installed but not preloaded (as right after
 * installing Timescale's package, before editing postgresql.conf)
 */
export async function startPrivatePostgres(opts: { preloadTimescale?: boolean } = {}): Promise<PrivatePostgres> {
  const dir = await mkdtemp(`${tmpdir()}/tickwatch-private-pg-`);
  await chmod(dir, 0o700);
  const { uid, gid } = await run('id', ['-u', 'postgres']).then(async (u) => ({
    uid: Number(u.stdout.trim()),
    gid: Number((await run('id', ['-g', 'postgres'])).stdout.trim()),
  }));
  await chown(dir, uid, gid);
  const data = `${dir}/data`;
  await asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off${opts.preloadTimescale === false ? '' : timescalePreload()}`;
  const start = () => asPostgres('pg_ctl', ['-D', data, '-l', `${dir}/postgres.log`, '-o', options, '-w', '-t', '60', 'start']);
  const stop = (mode = 'fast') => asPostgres('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: () => stop(),
    start,
    destroy: async () => {
      await stop('immediate').catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
