// The workers of `tickwatch run` as child processes (one OS process each, so each has its own pid, RSS, /metrics
// and crash): start, restart after an unexpected exit with capped backoff, and stop all on SIGTERM.
// The soak harness and the end-to-end benchmark start the same children through `WorkerProcess`.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import type { Logger } from '../common/log.ts';
import { TICKWATCH_ARGS } from '../common/paths.ts';

/**
 * V8 flags per subcommand, measured by the benchmarks. Ingestion allocates a short-lived object or two per message
 * and keeps almost none: a 2 MB young generation (V8 grows it to 16 MB by default) costs no measurable CPU per message
 * and about 40 MB of RSS less (`npm run bench:ingest` runs with the same flag). The writer's young generation holds
 * the Kafka client's fetch decoding: 4 MB gave the same writer CPU per row (6.1 µs) and 24-37 MB less peak RSS than
 * the default (measured with kafkajs; `npm run bench:write` spawns the writer with these flags).
 * `--heap-growing-percent=50`: V8 collects the old generation (and the Buffers it holds) once it has grown by half over
 * what the last collection kept, where its default lets a small heap grow 2-4 x first. Both peaks were that growth:
 * the writer's fell from 149-157 to 125-129 MB and the worker's from 110-124 to 108-112 MB, at no CPU cost the
 * benchmarks could show (ingestion/README.md, consumer/README.md). The metrics worker's peak with 800 symbols fell from
 * 277-358 to 213-219 MB, at 12.1-13.3 against 11.7-12.2 s of CPU over each run of about a minute (`npm run bench:e2e
 * -- --symbols 800 --seconds 60`, runs alternated; metrics/README.md). It is a factor, not a cap: a larger live heap
 * still grows.
 * docker/compose.yaml sets the same in the services' entrypoints (a test keeps them equal).
 */
export const NODE_FLAGS: Readonly<Record<string, readonly string[]>> = {
  ingest: ['--max-semi-space-size=2', '--heap-growing-percent=50'],
  replay: ['--max-semi-space-size=2', '--heap-growing-percent=50'],
  write: ['--max-semi-space-size=4', '--heap-growing-percent=50'],
  metrics: ['--heap-growing-percent=50'],
};

/**
 * Environment per subcommand, under what the worker's own environment sets. The writer's peak RSS is mostly memory
 * freed into glibc's arenas (decompressed Kafka batches and COPY buffers of hundreds of KB, allocated and freed by
 * several threads): two arenas instead of glibc's default (8 per core) gave 147-167 MB peak against 162-190 MB, at the
 * same CPU per row (`npm run bench:write -- --sections 2`, runs alternated; consumer/README.md). docker/compose.yaml
 * sets the same in the services' environment (a test keeps them equal).
 */
export const PROCESS_ENV: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  write: { MALLOC_ARENA_MAX: '2' },
};

export interface WorkerSpec {
  /** ingestion, writer, metrics */
  readonly name: string;
  /** tickwatch subcommand and its arguments, e.g. ['write'] or ['replay', '--speed', '0', 'a.gz']. */
  readonly args: readonly string[];
  /** Port of its /metrics, if it serves one. */
  readonly httpPort?: number | undefined;
  /** A worker that finishes its job (replay) exits 0 and is not restarted. */
  readonly finite?: boolean;
}

/**
 * One child process running `tickwatch <args>` as this process runs (compiled from dist/, or TypeScript under tsx);
 * output appended to `logFile` or passed through.
 */
export class WorkerProcess {
  child: ChildProcess | undefined;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = Promise.resolve({ code: 0, signal: null });
  private log: WriteStream | undefined;

  constructor(
    readonly spec: WorkerSpec,
    private readonly env: NodeJS.ProcessEnv,
    private readonly logFile?: string,
    /** Node's arguments before the subcommand (`tickwatchArgs`): by default the way this process runs. */
    private readonly launch: readonly string[] = TICKWATCH_ARGS,
  ) {}

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  start(): void {
    const flags = NODE_FLAGS[this.spec.args[0] ?? ''] ?? [];
    const child = spawn(process.execPath, [...flags, ...this.launch, ...this.spec.args], {
      env: { ...PROCESS_ENV[this.spec.args[0] ?? ''], ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    if (this.logFile) {
      this.log ??= createWriteStream(this.logFile, { flags: 'a' });
      child.stdout!.pipe(this.log, { end: false });
      child.stderr!.pipe(this.log, { end: false });
    } else {
      child.stdout!.pipe(process.stdout, { end: false });
      child.stderr!.pipe(process.stderr, { end: false });
    }
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Sends a signal to the running child; resolves when it has exited (SIGKILL after `graceMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 40_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.child;
    if (!child || this.pid === undefined) return this.exited;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }

  close(): void {
    this.log?.end();
    this.log = undefined;
  }
}

/**
 * Resident set size and its high-water mark, in bytes (NaN for a field the text lacks). `anon` is the process's own
 * memory; `file` the pages of files it maps (the node binary, shared libraries), which every process running them
 * shares and the kernel can drop and read again.
 */
export interface ProcessMemory {
  readonly rss: number;
  readonly hwm: number;
  readonly anon: number;
  readonly file: number;
}

/** The memory fields of a /proc/<pid>/status text. */
export function memoryOfStatus(status: string): ProcessMemory {
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') };
}

/** A process's memory now, from /proc (Linux); undefined when the process is gone. */
export function memoryOf(pid: number | undefined): ProcessMemory | undefined {
  if (pid === undefined) return undefined;
  try {
    return memoryOfStatus(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system, every thread) a process has used so far, from /proc/<pid>/stat. */
export function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th, in clock ticks.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** USER_HZ: 100 on Linux for every architecture Node runs on (what /proc reports in, whatever the kernel's HZ). */
const CLOCK_TICKS_PER_SECOND = 100;

/** Capped exponential restart delay: 1 s, 2 s, 4 s ... 30 s; reset after a minute of running. */
export function restartDelayMs(consecutiveFailures: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, consecutiveFailures - 1));
}

export interface Supervisor {
  readonly workers: readonly WorkerProcess[];
  /** Resolves when stop() has stopped every worker; true when all stopped cleanly. */
  stop(): Promise<boolean>;
}

/** Starts every worker and keeps them running: an unexpected exit is logged and the worker restarted after a delay. */
export function supervise(specs: readonly WorkerSpec[], env: NodeJS.ProcessEnv, log: Logger, logDir?: string, launch: readonly string[] = TICKWATCH_ARGS): Supervisor {
  let stopping = false;
  const timers = new Set<NodeJS.Timeout>();
  const workers = specs.map((s) => new WorkerProcess(s, env, logDir ? `${logDir}/${s.name}.log` : undefined, launch));
  const watch = (w: WorkerProcess, failures: number) => {
    const startedAt = Date.now();
    w.start();
    log.info({ worker: w.spec.name, pid: w.child?.pid, args: w.spec.args.join(' ') }, 'worker started');
    void w.exited.then(({ code, signal }) => {
      if (stopping) return;
      if (w.spec.finite && code === 0) {
        log.info({ worker: w.spec.name }, 'worker finished its job');
        return;
      }
      const n = Date.now() - startedAt > 60_000 ? 1 : failures + 1;
      const delayMs = restartDelayMs(n);
      log.error({ worker: w.spec.name, code, signal, restartInMs: delayMs, consecutiveFailures: n }, 'worker exited unexpectedly: restarting');
      const t = setTimeout(() => {
        timers.delete(t);
        if (!stopping) watch(w, n);
      }, delayMs);
      timers.add(t);
    });
  };
  for (const w of workers) watch(w, 0);
  return {
    workers,
    async stop() {
      stopping = true;
      for (const t of timers) clearTimeout(t);
      // Stop from the source down: ingestion first, so the writers get everything it flushed.
      let clean = true;
      for (const w of workers) {
        if (w.pid === undefined) continue;
        const r = await w.stop('SIGTERM');
        // `replay` has no graceful stop of its own: dying by our SIGTERM is the interruption the user asked for.
        const interrupted = w.spec.finite === true && r.signal === 'SIGTERM';
        log.info({ worker: w.spec.name, code: r.code, signal: r.signal }, interrupted ? 'worker interrupted' : 'worker stopped');
        if (r.code !== 0 && !interrupted) clean = false;
        w.close();
      }
      return clean;
    },
  };
}
