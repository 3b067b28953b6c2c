// The run-time roles migrate creates (sql/roles.sql), on the real server of this pass (TimescaleDB or plain
// PostgreSQL): none is privileged; the metrics worker, logged in as its role, refreshes every aggregate exactly (on
// TimescaleDB only an aggregate's owner may), rebuilds its short bars and writes its indicators and events; the
// writer's role stores ticks through the real writer; and each role is refused everything beyond its job.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, pgSession, type SqlSession } from '../common/db.ts';
import type { Config } from '../common/config.ts';
import { insertBookTickers, insertTrades } from '../metrics/replay.ts';
import { configureShortBars } from '../metrics/refresher.ts';
import { MetricsEngine } from '../metrics/engine.ts';
import { capturesMissing, loadCaptureTicks, mixedTicks } from '../test/capture-ticks.ts';
import { barMismatches, expectedBars } from '../test/expected-bars.ts';
import { findServices, freshDatabase, missing, testConfig, testLog } from '../test/services.ts';
import { Registry } from 'prom-client';
import { createWriterMetrics } from '../consumer/metrics.ts';
import { compareRows, createScenario } from '../consumer/scenario.ts';
import { startWriters } from '../consumer/writer.ts';
import { migrate } from './migrate.ts';
import { tickwatch } from '../test/tickwatch.ts';
import { waitFor } from '../test/binance-topics.ts';

const skip = (await missing('postgres')) ?? capturesMissing();
const tag = `${process.pid}_${Math.floor(Math.random() * 1e6)}`;
const ROLES = { GRAFANA_DB_USER: `tw_reader_${tag}`, WRITER_DB_USER: `tw_writer_${tag}`, METRICS_DB_USER: `tw_metrics_${tag}` };

/** The SQLSTATE a statement fails with, or 'ran'. */
async function attempt(db: pg.Client, sql: string): Promise<string | undefined> {
  try {
    await db.query(sql);
    return 'ran';
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

/** Each statement, one after the other, fails for lack of privilege (SQLSTATE 42501). */
async function expectRefused(db: pg.Client, statements: readonly string[]): Promise<void> {
  for (const sql of statements) expect(await attempt(db, sql), sql).toBe('42501');
}

/** What each run-time role may not do: another role's job, schema changes, running programs on the server. */
const NOT_ITS_JOB = {
  metrics: [
    'INSERT INTO trades SELECT * FROM trades LIMIT 1',
    'UPDATE writer_offsets SET next_offset = 0',
    'DROP TABLE trades',
    'CREATE TABLE x (y int)',
    'CREATE FUNCTION decimal_div(int) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$',
    'CREATE ROLE x',
    "COPY (SELECT 1) TO PROGRAM 'true'",
  ],
  writer: [
    'SELECT count(*) FROM alert_policy_state',
    'DELETE FROM book_tickers',
    'UPDATE trades SET price = 1',
    'SELECT count(*) FROM anomaly_events',
    'DELETE FROM trade_slices',
    'CREATE TABLE x (y int)',
    "COPY (SELECT 1) TO PROGRAM 'true'",
  ],
};

describe.skipIf(skip)('run-time database roles', () => {
  let config: Config;
  let owner: pg.Client;
  let asMetrics: pg.Client;
  let asWriter: pg.Client;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const db = await freshDatabase('roles');
    drop = db.drop;
    // Passwords with quotes: they reach SQL as values only.
    const pw = () => `pw-${Math.random().toString(36).slice(2)}'"; x`;
    config = await testConfig({ DATABASE_URL: db.url, ...ROLES, GRAFANA_DB_PASSWORD: pw(), WRITER_DB_PASSWORD: pw(), METRICS_DB_PASSWORD: pw() });
    owner = new pg.Client({ connectionString: db.url });
    await owner.connect();
    await migrate(pgSession(owner), config, testLog);
    await migrate(pgSession(owner), config, testLog); // re-applied: nothing changes, nothing fails
    asMetrics = new pg.Client({ connectionString: databaseUrl(config, 'metrics') });
    asWriter = new pg.Client({ connectionString: databaseUrl(config, 'writer') });
    await asMetrics.connect();
    await asWriter.connect();
  }, 120_000);
  afterAll(async () => {
    await asMetrics?.end();
    await asWriter?.end();
    await owner?.end();
    await drop?.();
    const admin = new pg.Client({ connectionString: (await findServices()).databaseUrl });
    await admin.connect();
    for (const r of Object.values(ROLES)) await admin.query(`DROP ROLE IF EXISTS "${r}"`);
    await admin.end();
  });

  it('no run-time role is privileged, and each logs in as itself', async () => {
    const r = await owner.query<{ rolname: string; rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean }>(
      'SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname',
      [Object.values(ROLES)],
    );
    expect(r.rows).toHaveLength(3);
    for (const row of r.rows) expect(row).toMatchObject({ rolsuper: false, rolcreaterole: false, rolcreatedb: false });
    expect((await asMetrics.query('SELECT current_user AS u')).rows[0].u).toBe(ROLES.METRICS_DB_USER);
    expect((await asWriter.query('SELECT current_user AS u')).rows[0].u).toBe(ROLES.WRITER_DB_USER);
  });

  it('the metrics worker, as its role, makes every bar exact and writes its metrics and events', async () => {
    const { trades, bookTickers } = loadCaptureTicks();
    // Inserted without slices: the refresh rebuilds them from the raw ticks first, as after the writer's duplicate path.
    await insertTrades(pgSession(owner), trades);
    await insertBookTickers(pgSession(owner), bookTickers);
    const last = Math.max(...trades.map((t) => t.exchangeTimeMs));
    const db: SqlSession = pgSession(asMetrics);
    const engine = new MetricsEngine({
      db,
      config,
      log: testLog,
      sink: { publishBars: async () => {}, publishAnomalies: async () => {} },
      clock: () => last + 5 * 60_000,
      staleStreams: [{ exchange: 'binance', market: 'spot', symbol: 'BTCUSDT' }],
    });
    await engine.start();
    await engine.step();
    for (const [view, width] of [['bars_1m', 60_000], ['bars_5m', 300_000], ['bars_1h', 3_600_000]] as const) {
      const rows = (await owner.query(`SELECT * FROM ${view} ORDER BY market, symbol, bucket`)).rows;
      expect(rows.length, view).toBeGreaterThan(0);
      expect(barMismatches(rows, expectedBars(trades, width), view), view).toEqual([]);
    }
    expect(Number((await owner.query('SELECT count(*) AS n FROM quote_metrics_1m')).rows[0].n)).toBeGreaterThan(0);
    expect(Number((await owner.query('SELECT count(*) AS n FROM bar_indicators_1m')).rows[0].n)).toBeGreaterThan(0);
    expect(Number((await owner.query('SELECT count(*) AS n FROM metric_invalidations')).rows[0].n)).toBe(0);
    // A changed short width rebuilds the short relations, as the worker does at start.
    expect(await configureShortBars(db, 5)).toBe(true);
    expect(await configureShortBars(db, 10)).toBe(true);
    // Rebuilt with the owner's rights, handed back: the metrics role still owns what it refreshes, Grafana still reads.
    const owners = await owner.query<{ relname: string; owner: string }>(
      "SELECT relname, pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relname IN ('trade_bars_short', 'trade_returns_short', 'bars_short') ORDER BY relname",
    );
    expect(owners.rows).toEqual(['bars_short', 'trade_bars_short', 'trade_returns_short'].map((relname) => ({ relname, owner: ROLES.METRICS_DB_USER })));
    await engine.step();
    const url = new URL(config.database.url);
    url.username = encodeURIComponent(config.database.reader.user);
    url.password = encodeURIComponent(config.database.reader.password ?? '');
    const reader = new pg.Client({ connectionString: url.toString() });
    await reader.connect();
    try {
      expect((await reader.query('SELECT count(*) AS n FROM bars_short')).rows[0].n).toMatch(/^\d+$/);
    } finally {
      await reader.end();
    }
  }, 300_000);

  it('the metrics role is refused what is not its job', () => expectRefused(asMetrics, NOT_ITS_JOB.metrics));

  it('migrate refuses a run-time role that is a member of another role (it could SET ROLE to it)', async () => {
    const member = `tw_member_${tag}`;
    await owner.query(`CREATE ROLE "${member}" LOGIN`);
    try {
      await owner.query(`GRANT pg_read_server_files TO "${member}"`);
      const bad = await testConfig({ DATABASE_URL: config.database.url, ...ROLES, METRICS_DB_USER: member, METRICS_DB_PASSWORD: 'pw' });
      await expect(migrate(pgSession(owner), bad, testLog)).rejects.toThrow(/METRICS_DB_USER .* is a privileged role/);
    } finally {
      await owner.query(`DROP ROLE IF EXISTS "${member}"`);
    }
  });

  it('the writers, as their role, store every tick exactly once through the real writer (on TimescaleDB: staged INSERT)', async () => {
    const writerRole = `tw_writer_s_${tag}`;
    const s = await createScenario('roles', { env: { WRITER_DB_USER: writerRole, WRITER_DB_PASSWORD: 'pw-writer' } });
    const writers = await startWriters({ config: s.config, log: testLog, kafka: s.kafka, metrics: createWriterMetrics(new Registry()), families: ['trade', 'aggTrade', 'bookTicker'] });
    try {
      const ticks = mixedTicks(20_000);
      await s.produce(ticks);
      await s.waitUntilWritten(120_000);
      expect(compareRows(await s.readRows(), ticks)).toMatchObject({ missing: 0, unexpected: 0 });
      const users = await s.query<{ usename: string }>(`SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name LIKE 'tickwatch-writer-%'`);
      expect(users.map((u) => u.usename)).toEqual([writerRole]);
    } finally {
      await writers.stop();
      await s.close();
      const admin = new pg.Client({ connectionString: (await findServices()).databaseUrl });
      await admin.connect();
      await admin.query(`DROP ROLE IF EXISTS "${writerRole}"`);
      await admin.end();
    }
  }, 240_000);

  it('the writer role is refused what is not its job', () => expectRefused(asWriter, NOT_ITS_JOB.writer));

  it('a writer with its own role waits until migrate has finished in its database: tables there without its grants are not enough', async () => {
    // The role exists on the server already (made by this file's migrate of another database); this one is migrated
    // without the writer's password, so its tables exist but the role has no rights in it yet.
    const s = await createScenario('roles-wait');
    const w = tickwatch(['write'], { ...process.env, ...s.env, LOG_LEVEL: 'info', WRITER_DB_USER: ROLES.WRITER_DB_USER, WRITER_DB_PASSWORD: config.database.writer.password! });
    try {
      await waitFor(async () => w.output().includes('waiting for the schema (tickwatch migrate) failed: retrying'), 60_000, 'the writer to wait');
      expect(w.output()).not.toContain('writers running');
      const withRole = await testConfig({ ...s.env, WRITER_DB_USER: ROLES.WRITER_DB_USER, WRITER_DB_PASSWORD: config.database.writer.password! });
      const admin = new pg.Client({ connectionString: withRole.database.url });
      await admin.connect();
      await migrate(pgSession(admin), withRole, testLog).finally(() => admin.end());
      await waitFor(async () => w.output().includes('writers running'), 60_000, 'the writer to start once migrated');
    } finally {
      w.child.kill('SIGTERM');
      await w.exited;
      await s.close();
    }
  }, 180_000);
});
