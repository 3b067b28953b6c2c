// `tickwatch doctor`: what the stack depends on, checked one by one, each with a verdict (OK, WARN, FAIL) and how to
// fix it. Pure here: the probes that touch the network and the disk are injected (stack/probes.ts has the real ones).
import type { Config } from '../common/config.ts';

export type Status = 'OK' | 'WARN' | 'FAIL';

export interface CheckResult {
  readonly check: string;
  readonly status: Status;
  readonly detail: string;
  /** How to fix it; only for WARN and FAIL. */
  readonly fix?: string;
}

export interface KafkaFacts {
  readonly brokers: number;
  readonly controller: number | null;
  readonly clusterId: string;
  readonly topics: number;
}
export interface DatabaseFacts {
  readonly serverVersion: string;
  /** null when the server does not offer the extension. */
  readonly timescaleAvailable: string | null;
  readonly timescaleInstalled: string | null;
  /** Whether shared_preload_libraries names timescaledb (CREATE EXTENSION needs it). */
  readonly timescalePreloaded: boolean;
  /**
   * TimescaleDB's background workers, which run its policies (compression, retention, cagg refresh): the configured
   * maximum, and whether this database's job scheduler runs. null without the extension.
   */
  readonly timescaleWorkers: { readonly max: number; readonly schedulerRunning: boolean; readonly jobs: number; readonly failedJobs: number } | null;
  /** Migration files in sql/migrations and how many of them the database has applied (null: no schema_migrations). */
  readonly migrationsKnown: number;
  readonly migrationsApplied: number | null;
}
/** What holds a port: nothing, a tickwatch worker (its /healthz answered), or something else. */
export type PortHolder = 'free' | 'tickwatch' | 'other';
export interface ExchangeFacts {
  /** 'connected' (loopback only), 'resolved' (DNS only: doctor opens no connection off this machine). */
  readonly how: 'connected' | 'resolved';
  readonly address: string;
}

export interface Probes {
  kafka(): Promise<KafkaFacts>;
  database(): Promise<DatabaseFacts>;
  /** The SMTP server's EHLO answer (first line). */
  smtp(): Promise<string>;
  port(port: number): Promise<PortHolder>;
  exchange(url: string): Promise<ExchangeFacts>;
  /** The folder of recorded captures, or undefined when absent. */
  recordings(): string | undefined;
  nodeVersion(): string;
}

export interface DoctorOptions {
  /** live: the exchange must be reachable (FAIL otherwise); replay or unset: WARN only. */
  readonly source?: 'live' | 'replay' | undefined;
}

const message = (err: unknown) => (err instanceof Error ? err.message || err.name : String(err));

async function probe<T>(check: string, run: () => Promise<T>, onOk: (v: T) => CheckResult | CheckResult[], onFail: (err: string) => CheckResult): Promise<CheckResult[]> {
  try {
    const r = onOk(await run());
    return Array.isArray(r) ? r : [r];
  } catch (err) {
    return [{ ...onFail(message(err)), check }];
  }
}

const redact = (url: string) => {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
};

export async function runChecks(config: Config, probes: Probes, opts: DoctorOptions = {}): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const [major = 0, minor = 0] = probes.nodeVersion().replace(/^v/, '').split('.').map(Number);
  out.push(
    major > 20 || (major === 20 && minor >= 19)
      ? { check: 'node', status: 'OK', detail: probes.nodeVersion() }
      : { check: 'node', status: 'FAIL', detail: `${probes.nodeVersion()} is too old`, fix: 'install Node.js 20.19 or newer' },
  );

  const brokers = config.kafka.brokers.join(',');
  out.push(
    ...(await probe(
      'kafka',
      () => probes.kafka(),
      (k) => ({ check: 'kafka', status: 'OK', detail: `${brokers}: ${k.brokers} broker(s), controller ${k.controller ?? 'none'}, cluster ${k.clusterId}, ${k.topics} topics` }),
      (err) => ({
        check: 'kafka',
        status: 'FAIL',
        detail: `${brokers}: ${err}`,
        fix: "start it: 'bash scripts/services.sh up kafka' (or docker compose), or set KAFKA_BROKERS to a running broker",
      }),
    )),
  );

  const db = redact(config.database.url);
  out.push(
    ...(await probe(
      'postgres',
      () => probes.database(),
      (d): CheckResult[] => {
        const rows: CheckResult[] = [{ check: 'postgres', status: 'OK', detail: `${db}: PostgreSQL ${d.serverVersion}` }];
        const mode = config.database.timescaledb;
        const preloadFix = "add shared_preload_libraries = 'timescaledb' to postgresql.conf and restart PostgreSQL";
        if (d.timescaleInstalled) {
          rows.push({ check: 'timescaledb', status: 'OK', detail: `extension ${d.timescaleInstalled} enabled` });
          const w = d.timescaleWorkers;
          if (w && w.max > 0 && w.schedulerRunning && w.failedJobs === 0)
            rows.push({ check: 'timescaledb policies', status: 'OK', detail: `background workers run ${w.jobs} jobs (max ${w.max} workers)` });
          else if (w && w.max > 0 && w.schedulerRunning)
            rows.push({ check: 'timescaledb policies', status: 'WARN', detail: `${w.failedJobs} of ${w.jobs} jobs failed their last run`, fix: 'see timescaledb_information.job_errors' });
          else
            rows.push({
              check: 'timescaledb policies',
              status: 'WARN',
              detail: w?.max === 0 ? 'timescaledb.max_background_workers = 0: no policy runs' : 'no job scheduler runs for this database: compression, retention and refresh policies do not run',
              fix: 'set timescaledb.max_background_workers (e.g. 8) and max_worker_processes above it, then restart PostgreSQL',
            });
        } else if (mode === 'off') rows.push({ check: 'timescaledb', status: 'OK', detail: 'TIMESCALEDB=off: plain PostgreSQL tables' });
        else if (d.timescaleAvailable && !d.timescalePreloaded)
          rows.push({
            check: 'timescaledb',
            status: mode === 'on' ? 'FAIL' : 'WARN',
            detail: `extension ${d.timescaleAvailable} installed but not preloaded: plain PostgreSQL tables`,
            fix: preloadFix,
          });
        else if (d.timescaleAvailable)
          rows.push({ check: 'timescaledb', status: 'WARN', detail: `extension ${d.timescaleAvailable} available but not enabled`, fix: "run 'tickwatch migrate' (it enables it when TIMESCALEDB=auto|on)" });
        else
          rows.push({
            check: 'timescaledb',
            status: mode === 'on' ? 'FAIL' : 'WARN',
            detail: `not offered by this server${mode === 'on' ? ' but TIMESCALEDB=on' : ': plain PostgreSQL (no hypertables, compression or retention)'}`,
            fix: `install timescaledb for this PostgreSQL ('bash scripts/services.sh install' builds it) and ${preloadFix}, or use the Docker stack (timescale/timescaledb image)`,
          });
        if (d.migrationsApplied === null)
          rows.push({ check: 'schema', status: 'FAIL', detail: 'not migrated (no schema_migrations)', fix: "run 'tickwatch migrate' ('tickwatch run' does it first)" });
        else if (d.migrationsApplied < d.migrationsKnown)
          rows.push({ check: 'schema', status: 'FAIL', detail: `${d.migrationsApplied} of ${d.migrationsKnown} migrations applied`, fix: "run 'tickwatch migrate'" });
        else rows.push({ check: 'schema', status: 'OK', detail: `${d.migrationsApplied} migrations applied` });
        return rows;
      },
      (err) => ({
        check: 'postgres',
        status: 'FAIL',
        detail: `${db}: ${err}`,
        fix: "start it: 'bash scripts/services.sh up postgres' (or docker compose), or set DATABASE_URL to a running server",
      }),
    )),
  );

  const smtp = `${config.smtp.host}:${config.smtp.port}`;
  out.push(
    ...(await probe(
      'smtp',
      () => probes.smtp(),
      (banner) => ({ check: 'smtp', status: 'OK', detail: `${smtp}: ${banner}` }),
      (err) => ({
        check: 'smtp',
        status: 'WARN',
        detail: `${smtp}: ${err} (alert mail will be retried, then dropped; alerts still reach Kafka and the database)`,
        fix: 'run an SMTP server (the Docker stack has Mailpit on :1025) or set SMTP_HOST/SMTP_PORT to your relay',
      }),
    )),
  );

  const ports = [
    ['INGESTION_HTTP_PORT', config.http.ports.ingestion],
    ['WRITER_HTTP_PORT', config.http.ports.writer],
    ['METRICS_HTTP_PORT', config.http.ports.metrics],
  ] as const;
  for (const [variable, port] of ports) {
    const check = `port ${port}`;
    out.push(
      ...(await probe(
        check,
        () => probes.port(port),
        (holder): CheckResult =>
          holder === 'free'
            ? { check, status: 'OK', detail: `${variable} free` }
            : holder === 'tickwatch'
              ? { check, status: 'WARN', detail: `${variable} is served by a running tickwatch worker`, fix: "the stack is already up ('bash scripts/stack.sh status'); stop it first or choose another port" }
              : { check, status: 'FAIL', detail: `${variable} is in use by another program`, fix: `free the port or set ${variable} to a free one` },
        (err) => ({ check, status: 'FAIL', detail: `${variable}: ${err}`, fix: `set ${variable} to a free port` }),
      )),
    );
  }

  const needExchange = opts.source === 'live';
  for (const [name, url] of [
    ['exchange ws', config.source.wsUrl],
    ['exchange rest', config.source.restUrl],
  ] as const) {
    out.push(
      ...(await probe(
        name,
        () => probes.exchange(url),
        (e): CheckResult => ({ check: name, status: 'OK', detail: `${url}: ${e.how === 'connected' ? 'connected to' : 'DNS resolves to'} ${e.address}` }),
        (err) => ({
          check: name,
          status: needExchange ? 'FAIL' : 'WARN',
          detail: `${url}: exchange unreachable (${err})${needExchange ? '' : '; only the live source needs it'}`,
          fix: "no internet access to Binance here: run on recorded captures with '--source replay <files>', or set BINANCE_WS_URL/BINANCE_REST_URL",
        }),
      )),
    );
  }

  const rec = probes.recordings();
  out.push(
    rec
      ? { check: 'recordings', status: 'OK', detail: rec }
      : { check: 'recordings', status: 'WARN', detail: 'no recorded captures in ../shared/data', fix: "replay, benchmarks and some tests need them; record your own with 'tickwatch record --dir DIR'" },
  );
  return out;
}

/** A plain table: CHECK, STATUS, DETAIL, with the fix on the next line under WARN and FAIL. */
export function formatReport(results: readonly CheckResult[]): string {
  const w = Math.max(5, ...results.map((r) => r.check.length));
  const lines = [`${'CHECK'.padEnd(w)}  STATUS  DETAIL`];
  for (const r of results) {
    lines.push(`${r.check.padEnd(w)}  ${r.status.padEnd(6)}  ${r.detail}`);
    if (r.fix && r.status !== 'OK') lines.push(`${''.padEnd(w)}          fix: ${r.fix}`);
  }
  const count = (s: Status) => results.filter((r) => r.status === s).length;
  lines.push('', `${count('OK')} OK, ${count('WARN')} WARN, ${count('FAIL')} FAIL`);
  return lines.join('\n');
}

export const exitCode = (results: readonly CheckResult[]) => (results.some((r) => r.status === 'FAIL') ? 1 : 0);
