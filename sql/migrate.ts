// Migration runner: applies sql/migrations/NNNN_name.sql (tables and indexes) in order, each once, in its own
// transaction, recorded in schema_migrations with a checksum; then re-applies the repeatable files, where every function,
// procedure, trigger and view has its one current definition (REPEATABLE), and sql/roles.sql (the run-time roles whose
// passwords are set).
// It talks to the database through SqlSession (common/db.ts), on TimescaleDB and on plain PostgreSQL alike.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { projectPath } from '../common/paths.ts';
import type { Config } from '../common/config.ts';
import type { SqlSession } from '../common/db.ts';
import type { Logger } from '../common/log.ts';

const SQL_DIR = projectPath('sql/');
const MIGRATIONS_DIR = `${SQL_DIR}migrations`;
// Any constant: serializes concurrent runners (two workers starting at once) on one database.
const ADVISORY_LOCK_KEY = 727_274_001;

export interface Migration {
  readonly version: string;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

export interface MigrateResult {
  readonly applied: string[];
  readonly alreadyApplied: string[];
  /** An earlier numbered series was found complete and recorded as 0100 (EARLIER_SERIES). */
  readonly adopted: boolean;
  readonly timescaledb: boolean;
}

export async function readMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const seen = new Set<string>();
  return Promise.all(
    files.map(async (file) => {
      const m = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
      if (!m) throw new Error(`migration file name must look like 0001_name.sql: ${file}`);
      const [, version, name] = m as unknown as [string, string, string];
      if (seen.has(version)) throw new Error(`two migrations share version ${version}`);
      seen.add(version);
      const sql = await readFile(`${dir}/${file}`, 'utf8');
      return { version, name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

/** Raised when TIMESCALEDB=on cannot be honoured; the CLI prints its message and exits 2. */
export class TimescaleUnavailableError extends Error {}

const PRELOAD_FIX =
  "add timescaledb to shared_preload_libraries in postgresql.conf (shared_preload_libraries = 'timescaledb') and restart PostgreSQL";

/**
 * Installs TimescaleDB when wanted and usable; returns whether it is active. Preloading is checked before
 * CREATE EXTENSION: on a server that has the files but does not preload the library, that statement ends the
 * connection with a FATAL error instead of failing, so it must never be tried there.
 */
async function prepareTimescale(db: SqlSession, mode: Config['database']['timescaledb'], log: Logger): Promise<boolean> {
  const active = async () => (await db.query(`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`)).rows.length > 0;
  if (mode === 'off' || (await active())) return active();
  // A schema made on plain PostgreSQL stays plain: its tables would have to be turned into hypertables and its bar
  // tables into continuous aggregates, which no migration does.
  const plainSchema = (await db.query(`SELECT to_regclass('schema_migrations') IS NOT NULL AS made`)).rows[0]?.made === true;
  if (plainSchema) {
    const message = 'this database was migrated on plain PostgreSQL; it keeps plain tables (a new database gets TimescaleDB)';
    if (mode === 'on') throw new TimescaleUnavailableError(`TIMESCALEDB=on but ${message}`);
    log.info(message);
    return false;
  }
  const available = (await db.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'`)).rows.length > 0;
  if (!available) {
    if (mode === 'on') throw new TimescaleUnavailableError('TIMESCALEDB=on but the timescaledb extension is not installed on this server');
    log.info('timescaledb extension not available: plain PostgreSQL tables');
    return false;
  }
  const libs = (await db.query<{ libs: string }>(`SELECT current_setting('shared_preload_libraries') AS libs`)).rows[0]?.libs ?? '';
  const preloaded = libs.split(',').some((l) => l.trim().replace(/^"|"$/g, '') === 'timescaledb');
  if (!preloaded) {
    const message = `the timescaledb extension is installed but not preloaded: ${PRELOAD_FIX}`;
    if (mode === 'on') throw new TimescaleUnavailableError(`TIMESCALEDB=on but ${message}`);
    log.warn({ fix: PRELOAD_FIX }, `${message}; using plain PostgreSQL tables until then (TIMESCALEDB=auto)`);
    return false;
  }
  await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb');
  return true;
}

/** The run-time roles whose passwords are set (sql/roles.sql); the passwords are settings only while it runs. */
async function applyRoles(db: SqlSession, config: Pick<Config, 'database'>, log: Logger): Promise<void> {
  const { reader, writer, metrics } = config.database;
  const roles = [['reader', reader], ['writer', writer], ['metrics', metrics]] as const;
  if (roles.every(([, r]) => r.password === undefined)) return;
  for (const [job, r] of roles) {
    await db.query('SELECT set_config($1, $2, false), set_config($3, $4, false)', [`tickwatch.${job}_role`, r.user, `tickwatch.${job}_password`, r.password ?? '']);
  }
  try {
    await db.exec(await readFile(`${SQL_DIR}roles.sql`, 'utf8'));
  } finally {
    for (const [job] of roles) await db.query('SELECT set_config($1, $2, false)', [`tickwatch.${job}_password`, '']);
  }
  for (const [job, r] of roles) if (r.password !== undefined) log.info({ job, role: r.user }, 'run-time database role ready');
}

/** The last release whose migrate applied the numbered series: a database part way through it is finished with that one. */
export const LAST_SERIES_RELEASE = '47994d7';

/**
 * The numbered series the schema was built by before it was folded into 0100_schema (up to LAST_SERIES_RELEASE). A database
 * it made completely has exactly 0100's tables, and every function and view the repeatable files define: migrate
 * records 0100 as applied in place of the series ("adopts" it) and goes on.
 */
export const EARLIER_SERIES = [
  '0001_raw_ticks', '0002_tick_storage', '0003_writer_offsets', '0010_bars', '0011_quote_metrics', '0012_anomalies',
  '0013_faster_refresh', '0020_books', '0021_top_of_book_refresh', '0022_alert_policy_state', '0023_tick_slices',
  '0024_timescale_copy_path', '0025_one_slice_per_second', '0026_timescale_slices', '0027_bars_by_width',
];
const SERIES_FOLDED_INTO = '0100';

/** The repeatable files, applied in this order after the migrations on every run (each object defined once, here). */
const REPEATABLE = ['bars.sql', 'slices.sql', 'refresh.sql', 'storage.sql', 'aggregates.sql'];

/** Replaces a complete earlier series by the migration that folds it; refuses an incomplete one with what to do. */
async function adoptEarlierSeries(db: SqlSession, baseline: Migration, log: Logger): Promise<boolean> {
  const rows = (await db.query<{ version: string; name: string }>('SELECT version, name FROM schema_migrations WHERE version < $1', [SERIES_FOLDED_INTO])).rows;
  if (rows.length === 0) return false;
  const have = new Set(rows.map((r) => `${r.version}_${r.name}`));
  const missing = EARLIER_SERIES.filter((m) => !have.has(m));
  const unknown = [...have].filter((m) => !EARLIER_SERIES.includes(m));
  if (unknown.length > 0) throw new Error(`this database has migrations this release does not know (${unknown.join(', ')}): it was migrated by another release`);
  if (missing.length > 0) {
    throw new Error(
      `this database was migrated by an earlier release and stops before ${missing[0]}: bring it to the end of that ` +
        `series with the release at commit ${LAST_SERIES_RELEASE} first (git checkout ${LAST_SERIES_RELEASE} && npx tsx bin/tickwatch.ts migrate), then run this one`,
    );
  }
  await db.exec('BEGIN');
  try {
    await db.query('DELETE FROM schema_migrations WHERE version < $1', [SERIES_FOLDED_INTO]);
    await db.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [baseline.version, baseline.name, baseline.checksum]);
    await db.exec('COMMIT');
  } catch (err) {
    await db.exec('ROLLBACK');
    throw err;
  }
  log.info({ series: `${EARLIER_SERIES[0]}..${EARLIER_SERIES.at(-1)}`, as: `${baseline.version}_${baseline.name}` }, 'earlier migration series adopted');
  return true;
}

export async function migrate(db: SqlSession, config: Pick<Config, 'database'>, log: Logger): Promise<MigrateResult> {
  const migrations = await readMigrations();
  await db.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEY]);
  try {
    const timescaledb = await prepareTimescale(db, config.database.timescaledb, log);
    await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    text PRIMARY KEY,
      name       text NOT NULL,
      checksum   text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const baseline = migrations.find((m) => m.version === SERIES_FOLDED_INTO);
    if (!baseline) throw new Error(`migration ${SERIES_FOLDED_INTO} is missing from ${MIGRATIONS_DIR}`);
    const adopted = await adoptEarlierSeries(db, baseline, log);
    const done = new Map(
      (await db.query<{ version: string; checksum: string }>('SELECT version, checksum FROM schema_migrations')).rows.map((r) => [
        r.version,
        r.checksum,
      ]),
    );
    const applied: string[] = [];
    const alreadyApplied: string[] = [];
    for (const m of migrations) {
      const known = done.get(m.version);
      if (known !== undefined) {
        if (known !== m.checksum) {
          throw new Error(`migration ${m.version}_${m.name} was changed after it was applied: add a new migration instead`);
        }
        alreadyApplied.push(m.version);
        continue;
      }
      await db.exec('BEGIN');
      try {
        await db.exec(m.sql);
        await db.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
        await db.exec('COMMIT');
      } catch (err) {
        await db.exec('ROLLBACK');
        throw new Error(`migration ${m.version}_${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(m.version);
      log.info({ version: m.version, name: m.name }, 'migration applied');
    }

    const settings: [string, string][] = [
      ['tickwatch.tick_chunk_interval', config.database.tickChunkInterval],
      ['tickwatch.tick_compress_after', config.database.tickCompressAfter],
      ['tickwatch.tick_retention', config.database.tickRetention],
      ['tickwatch.bar_compress_after', config.database.barCompressAfter],
      ['tickwatch.bar_retention', config.database.barRetention],
    ];
    for (const [name, value] of settings) await db.query('SELECT set_config($1, $2, false)', [name, value]);
    for (const file of REPEATABLE) {
      try {
        await db.exec(await readFile(`${SQL_DIR}${file}`, 'utf8'));
      } catch (err) {
        throw new Error(`sql/${file} failed: ${(err as Error).message}`, { cause: err });
      }
    }
    await applyRoles(db, config, log);
    return { applied, alreadyApplied, adopted, timescaledb };
  } finally {
    await db.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEY]);
  }
}
