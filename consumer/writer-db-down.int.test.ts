// The database stopped for 10 s mid-run (a private PostgreSQL cluster, never the shared server): the writer pauses,
// retries with capped backoff, says it is stuck (/healthz, a gauge) once WRITER_STUCK_RETRIES writes failed in a row, keeps
// reporting its lag, recovers by itself when the server is back, loses nothing and drains its lag.
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { capturesMissing, mixedTicks } from '../test/capture-ticks.ts';
import { privatePostgresMissing, startPrivatePostgres, type PrivatePostgres } from '../test/private-postgres.ts';
import { missing, testLog } from '../test/services.ts';
import { createWriterMetrics } from './metrics.ts';
import { compareRows, createScenario, type Scenario } from './scenario.ts';
import { startWriters, type WriterSet } from './writer.ts';
import { sleep } from '../common/time.ts';

const skip = (await missing('kafka')) ?? capturesMissing() ?? privatePostgresMissing();

async function metricSum(registry: Registry, name: string): Promise<number> {
  const m = registry.getSingleMetric(name);
  return m ? ((await m.get()).values as { value: number }[]).reduce((n, v) => n + v.value, 0) : NaN;
}

describe.skipIf(skip)('tick writers while PostgreSQL is down (real Kafka, private PostgreSQL 15)', () => {
  let pg: PrivatePostgres | undefined;
  let s: Scenario | undefined;
  let writers: WriterSet | undefined;
  afterAll(async () => {
    await writers?.stop().catch(() => {});
    await s?.close().catch(() => {});
    await pg?.destroy();
  });

  it('recovers by itself after a 10 s outage: nothing lost, nothing twice, lag drains', async () => {
    pg = await startPrivatePostgres();
    s = await createScenario('dbdown', { databaseUrl: pg.url, env: { BATCH_SIZE: '2000', WRITER_RETRY_MAX_MS: '2000', WRITER_STUCK_RETRIES: '3' } });
    const registry = new Registry();
    writers = await startWriters({ config: s.config, log: testLog, kafka: s.kafka, metrics: createWriterMetrics(registry) });
    const ticks = mixedTicks(60_000);
    const slices = 40;
    const size = ticks.length / slices;
    const produce = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        await s!.produce(ticks.slice(i * size, (i + 1) * size));
        await sleep(400);
      }
    };

    await produce(0, 10);
    await s.waitUntilWritten(30_000); // up and running before the outage
    await pg.stop();
    const downAt = Date.now();
    const producing = produce(10, 30); // records keep arriving while the database is down (about 10 s)
    await sleep(3_000);
    const lagEarly = await metricSum(registry, 'tickwatch_writer_lag_messages');
    await producing;
    while (Date.now() - downAt < 10_000) await sleep(100);
    expect(await metricSum(registry, 'tickwatch_writer_retries_total')).toBeGreaterThan(0);
    // Paused partitions keep reporting their lag, and after WRITER_STUCK_RETRIES failures in a row /healthz says so.
    expect(await metricSum(registry, 'tickwatch_writer_lag_messages')).toBeGreaterThan(lagEarly);
    expect(writers.health().ok).toBe(false);
    expect(writers.health().writers.flatMap((w) => w.stuck).length).toBeGreaterThan(0);
    expect(await metricSum(registry, 'tickwatch_writer_stuck_partitions')).toBeGreaterThan(0);
    await pg.start();
    const upAt = Date.now();
    await produce(30, slices);
    await s.waitUntilWritten(60_000);
    testLog.info({ recoveredInMs: Date.now() - upAt }, 'writer caught up after the outage');

    expect(compareRows(await s.readRows(), ticks)).toMatchObject({ expected: 60_000, actual: 60_000, missing: 0, unexpected: 0 });
    // Lag drains to zero on every partition (updated after each batch and by the periodic poll).
    const deadline = Date.now() + 10_000;
    while ((await metricSum(registry, 'tickwatch_writer_lag_messages')) !== 0 && Date.now() < deadline) await sleep(200);
    expect(await metricSum(registry, 'tickwatch_writer_lag_messages')).toBe(0);
    expect(await metricSum(registry, 'tickwatch_writer_paused_partitions')).toBe(0);
    expect(await metricSum(registry, 'tickwatch_writer_stuck_partitions')).toBe(0);
    expect(writers.health().ok).toBe(true);
  });
});
