// Exactly-once effect under faults, real Kafka and PostgreSQL: the writer process killed with SIGKILL five times while
// records keep arriving, and two members of one group rebalancing mid-run. The tables must end up equal to the
// produced ticks: nothing missing, nothing twice.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { createKafka, topicOffsets } from '../common/kafka.ts';
import type { Tick } from '../common/records.ts';
import { capturesMissing, mixedTicks } from '../test/capture-ticks.ts';
import { missing, testLog } from '../test/services.ts';
import { createWriterMetrics } from './metrics.ts';
import { compareRows, createScenario, type Scenario } from './scenario.ts';
import { startWriters, type WriterSet } from './writer.ts';
import { sleep } from '../common/time.ts';

const skip = (await missing('kafka', 'postgres')) ?? capturesMissing();
const REPO = fileURLToPath(new URL('..', import.meta.url));

/** Produces `ticks` in slices with pauses, so records keep arriving while the test does its damage. */
async function trickle(s: Scenario, ticks: readonly Tick[], slices: number, pauseMs: number): Promise<void> {
  const size = Math.ceil(ticks.length / slices);
  for (let i = 0; i < ticks.length; i += size) {
    await s.produce(ticks.slice(i, i + size));
    await sleep(pauseMs);
  }
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function storedRecords(s: Scenario): Promise<number> {
  const rows = await s.query<{ n: string }>('SELECT coalesce(sum(next_offset), 0)::text AS n FROM writer_offsets');
  return Number(rows[0]!.n);
}

function startWriterProcess(s: Scenario): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/tickwatch.ts', 'write'], {
    cwd: REPO,
    env: { ...process.env, ...s.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => testLog.debug({ stderr: d.toString() }, 'writer stderr'));
  return child;
}

const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });

describe.skipIf(skip)('tick writers under faults (real Kafka, real PostgreSQL)', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
  });

  it('keeps exactly the produced set when the writer process is killed with SIGKILL 5 times', async () => {
    const s = await createScenario('kill9', { env: { BATCH_SIZE: '2000' } });
    cleanup.push(() => s.close());
    const ticks = mixedTicks(60_000);
    let child = startWriterProcess(s);
    cleanup.push(async () => void child.kill('SIGKILL'));

    const producing = trickle(s, ticks, 80, 500); // ~40 s of arrivals
    const kills: number[] = [];
    const progress: number[] = [];
    for (let i = 0; i < 5; i++) {
      // A random moment once the (re)started writer is writing again: mid-COPY, mid-commit or between batches.
      const resumedFrom = progress.at(-1) ?? 0;
      const deadline = Date.now() + 60_000;
      while ((await storedRecords(s)) <= resumedFrom && Date.now() < deadline) await sleep(50);
      const at = Math.floor(Math.random() * 1_500);
      await sleep(at);
      const before = await storedRecords(s);
      child.kill('SIGKILL');
      expect((await exited(child)).signal).toBe('SIGKILL');
      kills.push(at);
      progress.push(before);
      child = startWriterProcess(s);
    }
    await producing;
    await s.waitUntilWritten(120_000);
    const cmp = compareRows(await s.readRows(), ticks);
    testLog.info({ kills, recordsStoredAtEachKill: progress, ...cmp }, 'kill -9 run');
    // The kills hit a writer that was making progress (not only start-ups).
    expect(new Set(progress).size).toBe(5);
    expect(cmp).toMatchObject({ expected: 60_000, actual: 60_000, missing: 0, unexpected: 0 });

    // Graceful stop: SIGTERM flushes, commits and exits 0; the Kafka group offsets then equal the database's.
    child.kill('SIGTERM');
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    const admin = s.kafka.admin();
    const partitionIndexes = (await topicOffsets(admin, s.config.kafka.topics.trade)).map((p) => p.partition);
    const [group] = await admin.listConsumerGroupOffsets({
      groups: [{ groupId: `${s.config.writer.groupPrefix}-trade`, topics: [{ name: s.config.kafka.topics.trade, partitionIndexes }] }],
    });
    await admin.close();
    const kafkaOffsets = [{ partitions: group!.topics[0]!.partitions.map((p) => ({ partition: p.partitionIndex, offset: p.committedOffset.toString() })) }];
    const dbOffsets = await s.query<{ partition: number; next_offset: string }>('SELECT partition, next_offset FROM writer_offsets WHERE topic = $1', [
      s.config.kafka.topics.trade,
    ]);
    for (const p of kafkaOffsets[0]!.partitions) {
      // A partition that never got a record has neither (-1 in Kafka, no row in the database).
      expect(p.offset).toBe(dbOffsets.find((d) => d.partition === p.partition)?.next_offset ?? '-1');
    }
  });

  it('loses nothing and writes nothing twice when a second member joins and the first leaves mid-run', async () => {
    const s = await createScenario('rebalance', { env: { BATCH_SIZE: '1000' } });
    cleanup.push(() => s.close());
    const ticks = mixedTicks(60_000);
    const registryA = new Registry();
    const registryB = new Registry();
    const rows = async (r: Registry) => ((await r.getSingleMetric('tickwatch_writer_rows_written_total')!.get()).values as { value: number }[]).reduce((n, v) => n + v.value, 0);
    const families = ['trade', 'aggTrade', 'bookTicker'] as const;
    const a = await startWriters({ config: s.config, log: testLog, kafka: createKafka(s.config, testLog, 'a'), metrics: createWriterMetrics(registryA), memberName: 'a', families });
    cleanup.push(() => a.stop());

    // Records keep arriving while b joins (the first rebalance); the rest arrive after a has left (the second), so b
    // must write them whichever partitions the first rebalance gave it (the ticks' keys need not cover all of them).
    const assigned = (w: WriterSet) => w.health().writers.every((h) => h.assigned.length > 0);
    const producing = trickle(s, ticks.slice(0, 30_000), 30, 200);
    await waitFor(async () => (await rows(registryA)) > 0, 60_000, 'member a writing');
    const b = await startWriters({ config: s.config, log: testLog, kafka: createKafka(s.config, testLog, 'b'), metrics: createWriterMetrics(registryB), memberName: 'b', families });
    cleanup.push(() => b.stop());
    await producing;
    await waitFor(async () => assigned(b), 60_000, 'member b assigned partitions in every family');
    await a.stop(); // the second rebalance: b takes every partition
    await trickle(s, ticks.slice(30_000), 30, 200);
    await s.waitUntilWritten(120_000);

    const cmp = compareRows(await s.readRows(), ticks);
    expect(cmp).toMatchObject({ expected: 60_000, actual: 60_000, missing: 0, unexpected: 0 });
    const [byA, byB] = [await rows(registryA), await rows(registryB)];
    testLog.info({ byA, byB }, 'rows written per member');
    expect(byA).toBeGreaterThan(0);
    expect(byB).toBeGreaterThan(0);
    expect(byA + byB).toBe(60_000);
  });
});
