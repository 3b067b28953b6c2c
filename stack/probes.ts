// The real probes behind `tickwatch doctor`: each asks one dependency one small question with a short timeout.
// The exchange probe never opens a connection off this machine: a loopback URL gets a real TCP connect, any other
// host only a DNS lookup.
import { lookup } from 'node:dns/promises';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, isIP } from 'node:net';
import { projectPath } from '../common/paths.ts';
import { Admin } from '@platformatic/kafka';
import pg from 'pg';
import type { Config } from '../common/config.ts';
import { kafkaErrorText, kafkaSecurity } from '../common/kafka.ts';
import { isLoopbackHost } from '../common/net.ts';
import { readMigrations } from '../sql/migrate.ts';
import type { DatabaseFacts, ExchangeFacts, KafkaFacts, PortHolder, Probes } from './doctor.ts';

export const RECORDINGS_DIR = projectPath('../shared/data');

function withTimeout<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

async function kafka(config: Config, timeoutMs: number): Promise<KafkaFacts> {
  const admin = new Admin({
    clientId: `${config.kafka.clientId}-doctor`,
    bootstrapBrokers: [...config.kafka.brokers],
    ...kafkaSecurity(config.kafka),
    connectTimeout: timeoutMs,
    timeout: timeoutMs,
    retries: 0,
  });
  try {
    return await withTimeout(timeoutMs * 2, 'kafka', (async () => {
      const cluster = await admin.metadata({ topics: [] });
      const topics = await admin.listTopics();
      return { brokers: cluster.brokers.size, controller: cluster.controllerId, clusterId: cluster.id, topics: topics.length };
    })().catch((err: unknown) => {
      throw new Error(kafkaErrorText(err));
    }));
  } finally {
    await admin.close().catch(() => {});
  }
}

async function database(config: Config, timeoutMs: number): Promise<DatabaseFacts> {
  const client = new pg.Client({ connectionString: config.database.url, application_name: 'tickwatch-doctor', connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  client.on('error', () => {});
  try {
    await client.connect();
    const version = (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '?';
    const ext = (await client.query<{ default_version: string | null; installed_version: string | null }>(
      "SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'timescaledb'",
    )).rows[0];
    const preloaded = (await client.query<{ libs: string }>("SELECT current_setting('shared_preload_libraries') AS libs")).rows[0]?.libs ?? '';
    let workers: DatabaseFacts['timescaleWorkers'] = null;
    if (ext?.installed_version) {
      const w = (await client.query<{ max: string; scheduler: boolean; jobs: string; failed: string }>(
        `SELECT current_setting('timescaledb.max_background_workers') AS max,
                EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
                         AND application_name LIKE 'TimescaleDB Background Worker Scheduler%') AS scheduler,
                (SELECT count(*) FROM timescaledb_information.jobs WHERE scheduled) AS jobs,
                (SELECT count(*) FROM timescaledb_information.job_stats WHERE last_run_status = 'Failed') AS failed`,
      )).rows[0];
      if (w) workers = { max: Number(w.max), schedulerRunning: w.scheduler, jobs: Number(w.jobs), failedJobs: Number(w.failed) };
    }
    const table = (await client.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t")).rows[0]?.t;
    const applied = table ? Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM schema_migrations')).rows[0]?.n ?? 0) : null;
    return {
      serverVersion: version,
      timescaleAvailable: ext?.default_version ?? null,
      timescaleInstalled: ext?.installed_version ?? null,
      timescalePreloaded: preloaded.split(',').some((l) => l.trim() === 'timescaledb'),
      timescaleWorkers: workers,
      migrationsKnown: (await readMigrations()).length,
      migrationsApplied: applied,
    };
  } finally {
    await client.end().catch(() => {});
  }
}

/** Reads the 220 greeting, sends EHLO, returns the first line of the 250 answer, then QUIT. */
function smtp(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let buffer = '';
    let stage: 'greeting' | 'ehlo' = 'greeting';
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no SMTP answer within ${timeoutMs} ms`)));
    socket.on('error', fail);
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      // A reply is complete at a line "NNN text" (a space, not a dash, after the code).
      const lines = buffer.split('\r\n');
      const last = lines.slice(0, -1).find((l) => /^\d{3} /.test(l));
      if (!last) return;
      const first = lines[0] ?? '';
      buffer = '';
      if (stage === 'greeting') {
        if (!first.startsWith('220')) return fail(new Error(`unexpected greeting: ${first}`));
        stage = 'ehlo';
        socket.write('EHLO tickwatch-doctor\r\n');
      } else {
        socket.end('QUIT\r\n');
        if (!first.startsWith('250')) return fail(new Error(`EHLO refused: ${first}`));
        resolve(first.slice(4));
      }
    });
  });
}

function portHolder(host: string, port: number, timeoutMs: number): Promise<PortHolder> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE') return reject(err);
      // Ours? A tickwatch worker answers /healthz with JSON that has "ok".
      const req = request({ host: '127.0.0.1', port, path: '/healthz', timeout: timeoutMs }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(/"ok"\s*:/.test(body) ? 'tickwatch' : 'other'));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve('other'));
      req.end();
    });
    server.listen(port, host, () => server.close(() => resolve('free')));
  });
}

async function exchange(url: string, timeoutMs: number): Promise<ExchangeFacts> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || (u.protocol === 'wss:' || u.protocol === 'https:' ? 443 : 80));
  if (isLoopbackHost(host)) {
    await withTimeout(
      timeoutMs,
      `connect ${host}:${port}`,
      new Promise<void>((resolve, reject) => {
        const s = connect({ host, port }, () => {
          s.destroy();
          resolve();
        });
        s.on('error', reject);
      }),
    );
    return { how: 'connected', address: `${host}:${port}` };
  }
  if (isIP(host)) throw new Error('not a loopback address: doctor opens no connection off this machine');
  const a = await withTimeout(timeoutMs, `DNS lookup of ${host}`, lookup(host));
  return { how: 'resolved', address: `${a.address} (DNS only; no connection opened)` };
}

export function realProbes(config: Config, timeoutMs = 3000): Probes {
  return {
    kafka: () => kafka(config, timeoutMs),
    database: () => database(config, timeoutMs),
    smtp: () => smtp(config.smtp.host, config.smtp.port, timeoutMs),
    port: (port) => portHolder(config.http.host, port, timeoutMs),
    exchange: (url) => exchange(url, timeoutMs),
    recordings: () => (existsSync(`${RECORDINGS_DIR}/binance-spot`) ? RECORDINGS_DIR : undefined),
    nodeVersion: () => process.version,
  };
}
