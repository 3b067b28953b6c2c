// Every SQL query of every panel, variable and alert rule, expanded as Grafana expands it, run on real PostgreSQL
// filled from the recorded captures: each returns rows and the columns its panel needs.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgSession } from '../common/db.ts';
import { migrate } from '../sql/migrate.ts';
import { capturesMissing } from '../test/capture-ticks.ts';
import { fillMarket, type FilledMarket } from '../test/fill-market.ts';
import { freshDatabase, missing, testConfig, testLog } from '../test/services.ts';
import { expansions, injectionProblems, resultProblems, sqlQueries } from './panel-queries.ts';

const queries = sqlQueries();
const skip = (await missing('postgres')) ?? capturesMissing();

describe.skipIf(skip)('Grafana SQL on PostgreSQL, replayed captures', () => {
  let client: pg.Client;
  let drop: () => Promise<void>;
  let filled: FilledMarket;

  beforeAll(async () => {
    const db = await freshDatabase('grafana_queries');
    drop = db.drop;
    const config = await testConfig({ DATABASE_URL: db.url });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await migrate(pgSession(client), config, testLog);
    filled = await fillMarket(pgSession(client), config);
  });
  afterAll(async () => {
    await client?.end();
    await drop?.();
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
    expect(await injectionProblems(client, queries, filled.range)).toEqual([]);
    expect(await count()).toBe(before);
  });

  it.each(queries.map((q) => [q.where, q] as const))('%s', async (_where, q) => {
    const problems: string[] = [];
    for (const e of expansions(q, filled.range)) {
      try {
        const r = await client.query(e.sql);
        problems.push(...resultProblems(q, r.fields, r.rowCount ?? 0).map((p) => `${e.label}: ${p}`));
      } catch (err) {
        problems.push(`${e.label}: ${(err as Error).message}\n${e.sql}`);
      }
    }
    expect(problems).toEqual([]);
  });
});
