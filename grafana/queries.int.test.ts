// Every SQL query of every panel, variable and alert rule, expanded as Grafana expands it, run on real PostgreSQL
// filled from the recorded captures as the read-only role Grafana logs in as (sql/roles.sql): each returns rows
// and the columns its panel needs, hostile variable values stay values, and the role can do nothing but read them.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgSession } from '../common/db.ts';
import { migrate } from '../sql/migrate.ts';
import { capturesMissing } from '../test/capture-ticks.ts';
import { fillMarket, type FilledMarket } from '../test/fill-market.ts';
import { findServices, freshDatabase, missing, testConfig, testLog } from '../test/services.ts';
import { expansions, injectionProblems, resultProblems, sqlQueries } from './panel-queries.ts';

const queries = sqlQueries();
const skip = (await missing('postgres')) ?? capturesMissing();

describe.skipIf(skip)('Grafana SQL on PostgreSQL, replayed captures', () => {
  let client: pg.Client;
  /** Grafana's own connection: the read-only role migrate made. */
  let reader: pg.Client;
  let drop: () => Promise<void>;
  let filled: FilledMarket;
  const role = `tickwatch_grafana_${process.pid}_${Math.floor(Math.random() * 1e6)}`;

  beforeAll(async () => {
    const db = await freshDatabase('grafana_queries');
    drop = db.drop;
    const password = `pw-${Math.random().toString(36).slice(2)}'"; x`;
    const config = await testConfig({ DATABASE_URL: db.url, GRAFANA_DB_USER: role, GRAFANA_DB_PASSWORD: password });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await migrate(pgSession(client), config, testLog);
    filled = await fillMarket(pgSession(client), config);
    const url = new URL(db.url);
    reader = new pg.Client({ host: url.hostname, port: Number(url.port), database: url.pathname.slice(1), user: role, password });
    await reader.connect();
  });
  afterAll(async () => {
    await reader?.end();
    await client?.end();
    await drop?.();
    const admin = new pg.Client({ connectionString: (await findServices()).databaseUrl });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS "${role}"`);
    await admin.end();
  });

  it("Grafana's role reads the reader views and nothing else: no writes, no raw ticks, no programs, no temp tables", async () => {
    const attempt = async (sql: string) => {
      try {
        await reader.query(sql);
        return 'ran';
      } catch (err) {
        return (err as { code?: string }).code;
      }
    };
    const facts = await reader.query<{ su: boolean; ro: string; timeout: string }>(
      "SELECT rolsuper AS su, current_setting('default_transaction_read_only') AS ro, current_setting('statement_timeout') AS timeout FROM pg_roles WHERE rolname = current_user",
    );
    expect(facts.rows[0]).toEqual({ su: false, ro: 'on', timeout: '30s' });
    expect(await attempt('SELECT count(*) FROM bars_by_width')).toBe('ran');
    expect(await attempt("INSERT INTO anomaly_events SELECT * FROM anomaly_events LIMIT 1")).toBe('25006'); // read-only transaction
    expect(await attempt('BEGIN READ WRITE; DELETE FROM gap_events; COMMIT')).toBe('42501'); // and no write grant anyway
    await reader.query('ROLLBACK');
    expect(await attempt('SELECT count(*) FROM trades')).toBe('42501');
    expect(await attempt('SELECT count(*) FROM writer_offsets')).toBe('42501');
    expect(await attempt("COPY (SELECT 1) TO PROGRAM 'true'")).toBe('42501');
    expect(await attempt('CREATE TEMP TABLE t (x int)')).toBe('25006');
    expect(await attempt('BEGIN READ WRITE; CREATE TEMP TABLE t (x int); COMMIT')).toBe('42501');
    await reader.query('ROLLBACK');
  });

  it('has bars, indicators, anomalies and a gap to show', async () => {
    const r = await client.query(
      `SELECT (SELECT count(*) FROM bars_1m)::int AS bars, (SELECT count(*) FROM bar_indicators_1m)::int AS ind,
              (SELECT count(*) FROM anomaly_events)::int AS anomalies, (SELECT count(*) FROM gap_events)::int AS gaps`,
    );
    const c = r.rows[0] as Record<string, number>;
    expect(Object.values(c).every((n) => n > 0), JSON.stringify(c)).toBe(true);
  });

  it('no dashboard variable reaches SQL except as a quoted value: a hostile value answers as an unknown one and changes nothing', async () => {
    const count = async () => (await client.query<{ n: string }>('SELECT (SELECT count(*) FROM trades) + (SELECT count(*) FROM bars_1m) AS n')).rows[0]!.n;
    const before = await count();
    expect(await injectionProblems(reader, queries, filled.range)).toEqual([]);
    expect(await count()).toBe(before);
  });

  it.each(queries.map((q) => [q.where, q] as const))('%s', async (_where, q) => {
    const problems: string[] = [];
    for (const e of expansions(q, filled.range)) {
      try {
        const r = await reader.query(e.sql);
        problems.push(...resultProblems(q, r.fields, r.rowCount ?? 0).map((p) => `${e.label}: ${p}`));
      } catch (err) {
        problems.push(`${e.label}: ${(err as Error).message}\n${e.sql}`);
      }
    }
    expect(problems).toEqual([]);
  });
});
