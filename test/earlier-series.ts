// Databases as the releases before the schema was folded into sql/migrations/0100_schema.sql left them: the numbered
// series 0001-0027 and that release's repeatable sql/storage.sql, read from git history and applied as its migrate
// applied them. For the tests of upgrading and adopting such databases.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Config } from '../common/config.ts';
import type { SqlSession } from '../common/db.ts';
import { LAST_SERIES_RELEASE } from '../sql/migrate.ts';

/** The last commit whose sql/migrations hold the numbered series. */
export const EARLIER_RELEASE = LAST_SERIES_RELEASE;
const REPO = fileURLToPath(new URL('..', import.meta.url));

const git = (...args: string[]): string => execFileSync('git', args, { cwd: REPO, encoding: 'utf8', maxBuffer: 16 * 2 ** 20 });

/** Why the earlier release cannot be read (no git, a shallow clone), or undefined. */
export function earlierReleaseMissing(): string | undefined {
  try {
    git('cat-file', '-e', `${EARLIER_RELEASE}^{commit}`);
    return undefined;
  } catch (err) {
    const msg = `needs commit ${EARLIER_RELEASE} of this repository's history (a full clone): ${(err as Error).message.split('\n')[0]}`;
    if (process.env.CI === 'true') throw new Error(`CI=true but ${msg}`);
    console.warn(`[skipped] ${msg}`);
    return msg;
  }
}

/**
 * Migrates `db` as the earlier release did, up to version `until` (default: the whole series); returns the versions it
 * applied. With TIMESCALEDB=on the extension is created first, as that release's migrate did on a preloading server.
 */
export async function migrateAsEarlierRelease(db: SqlSession, config: Pick<Config, 'database'>, until = '9999'): Promise<string[]> {
  if (config.database.timescaledb === 'on') await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb');
  await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
  const done = new Set((await db.query<{ version: string }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
  const files = git('ls-tree', '--name-only', `${EARLIER_RELEASE}:sql/migrations`).split('\n').filter((f) => f.endsWith('.sql')).sort();
  const applied: string[] = [];
  for (const file of files) {
    const [, version, name] = /^(\d{4})_(.+)\.sql$/.exec(file)!;
    if (version! > until || done.has(version!)) continue;
    const sql = git('show', `${EARLIER_RELEASE}:sql/migrations/${file}`);
    await db.exec('BEGIN');
    await db.exec(sql);
    await db.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [version, name, createHash('sha256').update(sql).digest('hex')]);
    await db.exec('COMMIT');
    applied.push(version!);
  }
  const d = config.database;
  for (const [name, value] of [
    ['tickwatch.tick_chunk_interval', d.tickChunkInterval],
    ['tickwatch.tick_compress_after', d.tickCompressAfter],
    ['tickwatch.tick_retention', d.tickRetention],
    ['tickwatch.bar_compress_after', d.barCompressAfter],
    ['tickwatch.bar_retention', d.barRetention],
  ] as const) {
    await db.query('SELECT set_config($1, $2, false)', [name, value]);
  }
  await db.exec(git('show', `${EARLIER_RELEASE}:sql/storage.sql`));
  return applied;
}
