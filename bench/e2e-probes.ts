// bench:e2e's view of the processes under test, sampled while a phase runs: CPU seconds per group of processes (the
// workers, the PostgreSQL backends of the phase's database, the Kafka broker), and the writers' Kafka lag from their
// /metrics. Linux only (/proc), with PostgreSQL and Kafka on this machine.
import { readdirSync, readFileSync } from 'node:fs';
import type pg from 'pg';
import { cpuSecondsOf } from '../stack/supervisor.ts';

/** CPU seconds per group since the first sample; a process first seen later (a new backend, a restarted worker) counts from its start. */
export class CpuMeter {
  private readonly seen = new Map<number, { group: string; base: number; last: number }>();
  private first = true;

  /** One sample of each group's processes; call it at the phase's start, every few seconds, and at its end. */
  sample(groups: Readonly<Record<string, readonly number[]>>): void {
    for (const [group, pids] of Object.entries(groups)) {
      for (const pid of pids) {
        const cpu = cpuSecondsOf(pid);
        if (cpu === undefined) continue;
        const known = this.seen.get(pid);
        if (known) known.last = cpu;
        else this.seen.set(pid, { group, base: this.first ? cpu : 0, last: cpu });
      }
    }
    this.first = false;
  }

  /** CPU seconds per group between the first sample and the last. */
  seconds(): Map<string, number> {
    const out = new Map<string, number>();
    for (const { group, base, last } of this.seen.values()) out.set(group, (out.get(group) ?? 0) + last - base);
    return out;
  }
}

/** The backends serving the phase's database, by whom they serve (application_name: the writer's and the metrics
 * worker's sessions; the rest, TimescaleDB's jobs and autovacuum), not the poller's own. */
export async function backendPids(db: pg.ClientBase): Promise<Record<string, number[]>> {
  const r = await db.query<{ pid: number; app: string }>(
    "SELECT pid, coalesce(application_name, '') AS app FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
  );
  const out: Record<string, number[]> = { 'postgres: writer': [], 'postgres: metrics': [], 'postgres: jobs, other': [] };
  for (const { pid, app } of r.rows) {
    const who = app.startsWith('tickwatch-writer') ? 'writer' : app.startsWith('tickwatch-metrics') ? 'metrics' : 'jobs, other';
    out[`postgres: ${who}`]!.push(pid);
  }
  return out;
}

/** Batches the writers committed so far (tickwatch_writer_batches_total), or undefined. */
export async function writerBatches(metricsUrl: string): Promise<number | undefined> {
  return sumOf(metricsUrl, 'tickwatch_writer_batches_total');
}

/** The Kafka broker processes on this machine (java running kafka.Kafka). */
export function kafkaBrokerPids(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('kafka.Kafka')) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Records not yet written, summed over the writers' partitions (tickwatch_writer_lag_messages), or undefined. */
export async function writerLag(metricsUrl: string): Promise<number | undefined> {
  return sumOf(metricsUrl, 'tickwatch_writer_lag_messages');
}

/** The sum of a metric's series on a worker's /metrics, or undefined when it does not answer. */
async function sumOf(metricsUrl: string, name: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(2000) })).text();
    let n = 0;
    for (const m of text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'gm'))) n += Number(m[1]);
    return n;
  } catch {
    return undefined;
  }
}
