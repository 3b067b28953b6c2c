// Every SQL query of every panel, variable and alert rule, expanded as Grafana expands it, run on in-process
// native TimescaleDB filled from the recorded captures: each returns rows and the columns its panel needs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { migrate } from '../sql/migrate.ts';
import { capturesMissing } from '../test/capture-ticks.ts';
import { fillMarket, type FilledMarket } from '../test/fill-market.ts';
import { testLog } from '../test/services.ts';
import { freshTimescale, timescaleMissing, type TimescaleDatabase } from '../test/timescale.ts';
import { expansions, resultProblems, sqlQueries } from './panel-queries.ts';

const queries = sqlQueries();

describe.skipIf(capturesMissing() ?? (await timescaleMissing()))('Grafana SQL on native TimescaleDB, replayed captures', () => {
  let db: TimescaleDatabase;
  let filled: FilledMarket;

  beforeAll(async () => {
    db = await freshTimescale();
    const config = loadConfig({ TIMESCALEDB: 'on', TICK_RETENTION: 'none' }); // the captures are from 2024
    await migrate(db, config, testLog);
    filled = await fillMarket(db, config);
  }, 600_000);
  afterAll(async () => db?.close());

  it('fills hypertables, bars, indicators, anomalies and a gap', async () => {
    const counts = await db.query<{ ht: number; bars: number; ind: number; anomalies: number; gaps: number }>(
      `SELECT (SELECT count(*) FROM timescaledb_information.hypertables)::int AS ht, (SELECT count(*) FROM bars_1m)::int AS bars,
              (SELECT count(*) FROM bar_indicators_1m)::int AS ind, (SELECT count(*) FROM anomaly_events)::int AS anomalies,
              (SELECT count(*) FROM gap_events)::int AS gaps`,
    );
    expect(counts.rows[0]).toMatchObject({ ht: expect.any(Number) });
    const c = counts.rows[0]!;
    expect(c.ht).toBeGreaterThan(0);
    expect(c.bars * c.ind * c.anomalies * c.gaps).toBeGreaterThan(0);
    expect(filled.gaps.length).toBe(1);
  });

  it.each(queries.map((q) => [q.where, q] as const))('%s', async (_where, q) => {
    const problems: string[] = [];
    for (const e of expansions(q, filled.range)) {
      try {
        const r = await db.queryFields(e.sql);
        problems.push(...resultProblems(q, r.fields, r.rows.length).map((p) => `${e.label}: ${p}`));
      } catch (err) {
        problems.push(`${e.label}: ${(err as Error).message}\n${e.sql}`);
      }
    }
    expect(problems).toEqual([]);
  });
});
