// The whole stack's commands: `run` (migrate, then ingestion + writers + metrics worker as supervised child
// processes) and `doctor` (every dependency checked, with a fix for each problem).
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from '../common/cli.ts';
import type { Config } from '../common/config.ts';
import { createClient, pgSession } from '../common/db.ts';
import { runWorker } from '../common/lifecycle.ts';
import type { Logger } from '../common/log.ts';
import { migrate } from '../sql/migrate.ts';
import { exitCode, formatReport, runChecks } from './doctor.ts';
import { realProbes } from './probes.ts';
import { supervise, type WorkerSpec } from './supervisor.ts';

const redact = (url: string) => url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');

/** The children of `run`, in stop order (source first). */
export function stackWorkers(config: Config, source: { kind: 'live' } | { kind: 'replay'; files: readonly string[]; speed: number }): WorkerSpec[] {
  const ports = config.http.ports;
  return [
    source.kind === 'live'
      ? { name: 'ingestion', args: ['ingest'], httpPort: ports.ingestion }
      : { name: 'ingestion', args: ['replay', '--speed', String(source.speed), ...source.files], finite: true },
    { name: 'writer', args: ['write'], httpPort: ports.writer },
    { name: 'metrics', args: ['metrics'], httpPort: ports.metrics },
  ];
}

async function migrateOnce(config: Config, log: Logger): Promise<string | undefined> {
  const client = createClient(config, 'tickwatch-run-migrate', log);
  try {
    await client.connect();
    const r = await migrate(pgSession(client), config, log);
    log.info({ applied: r.applied, timescaledb: r.timescaledb }, 'schema up to date');
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => {});
  }
}

const RUN_USAGE = [
  'usage: tickwatch run [--source live|replay] [--speed N] [--log-dir DIR] [FILE...]',
  '',
  'Applies the schema (migrate), then runs the ingestion worker, the tick writers and the metrics worker as child',
  'processes, each with its own /metrics and /healthz (INGESTION_HTTP_PORT, WRITER_HTTP_PORT, METRICS_HTTP_PORT),',
  'restarts a child that exits unexpectedly (1 s, 2 s ... 30 s), and stops them all on SIGTERM/SIGINT (exit 0 when',
  'every child stopped cleanly).',
  '',
  '  --source live     stream from BINANCE_WS_URL (default); without internet it says the exchange is unreachable',
  '                    and keeps retrying',
  '  --source replay   feed the capture FILEs through the same pipeline instead (the writers and the metrics worker',
  '                    keep running after the replay has finished)',
  '  --speed N         replay speed: 1 = recorded (default), N times faster, 0 = as fast as possible',
  "  --log-dir DIR     append each child's JSON log to DIR/<worker>.log (default: all on stdout)",
].join('\n');

export const runCommand: Command = {
  name: 'run',
  summary: 'run the whole pipeline: migrate, then ingestion, writers and metrics worker as supervised processes',
  usage: RUN_USAGE,
  options: { source: { type: 'string', default: 'live' }, speed: { type: 'string', default: '1' }, 'log-dir': { type: 'string' } },
  async run({ config, log, values, positionals }) {
    const source = String(values.source);
    const speed = Number(values.speed);
    const problems: string[] = [];
    if (source !== 'live' && source !== 'replay') problems.push(`--source must be live or replay, got '${source}'`);
    if (source === 'replay' && positionals.length === 0) problems.push('--source replay needs capture files');
    if (source === 'live' && positionals.length > 0) problems.push('capture files are only read with --source replay');
    if (!Number.isFinite(speed) || speed < 0) problems.push(`--speed must be a number >= 0, got '${String(values.speed)}'`);
    if (problems.length > 0) {
      process.stderr.write(`${problems.join('\n')}\n\n${RUN_USAGE}\n`);
      return 1;
    }
    const logDir = typeof values['log-dir'] === 'string' ? resolve(values['log-dir']) : undefined;
    if (logDir) mkdirSync(logDir, { recursive: true });

    const failed = await migrateOnce(config, log);
    if (failed) {
      process.stderr.write(`migration failed: ${failed}\nrun 'tickwatch doctor' to see what is missing\n`);
      return 1;
    }
    const specs = stackWorkers(config, source === 'live' ? { kind: 'live' } : { kind: 'replay', files: positionals.map((f) => resolve(f)), speed });
    return runWorker(
      log,
      async () => {
        const sup = supervise(specs, process.env, log, logDir);
        const host = config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host;
        const lines = [
          `tickwatch run: pid ${process.pid}, source ${source === 'live' ? `live ${config.source.wsUrl}` : `replay of ${positionals.length} file(s) at speed ${speed}`}`,
          ...sup.workers.map(
            (w) =>
              `  ${w.spec.name.padEnd(10)} pid ${String(w.child?.pid).padEnd(8)} ${w.spec.httpPort !== undefined ? `http://${host}:${w.spec.httpPort}/metrics  /healthz` : 'no /metrics (replay)'}${logDir ? `  log ${logDir}/${w.spec.name}.log` : ''}`,
          ),
          `  kafka      ${config.kafka.brokers.join(',')}`,
          `  database   ${redact(config.database.url)}`,
          `  smtp       ${config.smtp.host}:${config.smtp.port}`,
          '  stop with Ctrl-C or SIGTERM; `tickwatch doctor` checks the dependencies',
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
        return {
          done: new Promise<void>(() => {}),
          stop: async () => {
            if (!(await sup.stop())) throw new Error('a worker did not stop cleanly (see its log)');
          },
        };
      },
      120_000,
    );
  },
};

const DOCTOR_USAGE = [
  'usage: tickwatch doctor [--source live|replay]',
  '',
  'Checks every dependency of the stack and prints one line each, OK, WARN or FAIL, with a fix: Node.js, the Kafka',
  'broker, PostgreSQL (version, TimescaleDB extension, schema migrated), SMTP (EHLO), the three HTTP ports, the',
  'exchange URLs and the recorded captures. The exchange is checked without leaving this machine: a loopback URL',
  'is connected to, any other host only looked up in DNS. Exit 1 on any FAIL.',
  '',
  '  --source live     an unreachable exchange is a FAIL (it is a WARN otherwise)',
  '  --source replay   the exchange is not needed',
].join('\n');

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'check the broker, database, TimescaleDB, schema, SMTP, ports and exchange; say what is wrong and how to fix it',
  usage: DOCTOR_USAGE,
  options: { source: { type: 'string' } },
  async run({ config, values }) {
    const source = values.source;
    if (source !== undefined && source !== 'live' && source !== 'replay') {
      process.stderr.write(`--source must be live or replay, got '${String(source)}'\n\n${DOCTOR_USAGE}\n`);
      return 1;
    }
    const results = await runChecks(config, realProbes(config), { source });
    process.stdout.write(`${formatReport(results)}\n`);
    return exitCode(results);
  },
};

export const stackCommands: readonly Command[] = [runCommand, doctorCommand];
