// The stack as a user runs it: `tickwatch doctor` against the real services (OK for Kafka, PostgreSQL, schema and
// SMTP; a clear WARN for an unreachable exchange), and `tickwatch run --source replay` bringing the pipeline up on a
// capture (rows and bars appear in the database) and stopping every child cleanly on SIGTERM with exit 0.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, pgSession } from '../common/db.ts';
import { migrate } from '../sql/migrate.ts';
import { capturesMissing, CAPTURE_DIR } from '../test/capture-ticks.ts';
import { findServices, freshDatabase, missing, stackTopicEnv, testConfig, testLog, uniqueName } from '../test/services.ts';
import { tickwatch } from '../test/tickwatch.ts';
import { freePort } from '../test/ports.ts';

const skip = (await missing('kafka', 'postgres')) ?? capturesMissing();

async function baseEnv(databaseUrl: string): Promise<NodeJS.ProcessEnv> {
  const s = await findServices();
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LOG_LEVEL: 'info',
    // The suite's pass (TimescaleDB or plain PostgreSQL), and no retention policy for the recorded 2024 ticks.
    ...(process.env.TIMESCALEDB ? { TIMESCALEDB: process.env.TIMESCALEDB } : {}),
    TICK_RETENTION: 'none',
    KAFKA_BROKERS: s.kafkaBrokers!.join(','),
    DATABASE_URL: databaseUrl,
    ...stackTopicEnv(uniqueName('stack')),
    HTTP_HOST: '127.0.0.1',
    INGESTION_HTTP_PORT: String(await freePort()),
    WRITER_HTTP_PORT: String(await freePort()),
    METRICS_HTTP_PORT: String(await freePort()),
  };
}

describe.skipIf(skip)('tickwatch doctor and run against the real services', () => {
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await freshDatabase('stack');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('doctor: Kafka, PostgreSQL, schema and SMTP OK; the unreachable exchange a clear WARN; exit 0', async () => {
    const smtp = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'] });
    const smtpPort = await freePort();
    await new Promise<void>((r) => smtp.listen(smtpPort, '127.0.0.1', r));
    try {
      const env = await baseEnv(db.url);
      // Migrated first, so the schema check passes.
      const client = createClient(await testConfig({ DATABASE_URL: db.url }), 'test');
      await client.connect();
      await migrate(pgSession(client), await testConfig({ DATABASE_URL: db.url }), testLog);
      await client.end();
      const closed = await freePort(); // nothing listens there: the exchange is unreachable
      const d = tickwatch(['doctor'], { ...env, SMTP_HOST: '127.0.0.1', SMTP_PORT: String(smtpPort), BINANCE_WS_URL: `ws://127.0.0.1:${closed}`, BINANCE_REST_URL: `http://127.0.0.1:${closed}` });
      const code = await d.exited;
      const out = d.output();
      expect(out).toMatch(/^kafka\s+OK\s+/m);
      expect(out).toMatch(/^postgres\s+OK\s+.*PostgreSQL \d+/m);
      expect(out).toMatch(/^schema\s+OK\s+\d+ migrations applied/m);
      expect(out).toMatch(/^smtp\s+OK\s+/m);
      expect(out).toMatch(/^exchange ws\s+WARN\s+.*exchange unreachable \(.*ECONNREFUSED/m);
      expect(out).toMatch(/fix: no internet access to Binance here/);
      expect(code, out).toBe(0);

      // For the live source the same unreachable exchange is a FAIL, and the exit code says so.
      const live = tickwatch(['doctor', '--source', 'live'], { ...env, SMTP_PORT: String(smtpPort), BINANCE_WS_URL: `ws://127.0.0.1:${closed}`, BINANCE_REST_URL: `http://127.0.0.1:${closed}` });
      expect(await live.exited).toBe(1);
      expect(live.output()).toMatch(/^exchange ws\s+FAIL/m);
    } finally {
      await new Promise<void>((r) => smtp.close(() => r()));
    }
  });

  it('run --source replay: migrates, rows and bars appear, SIGTERM stops every child and exits 0', async () => {
    const env = await baseEnv(db.url);
    const run = tickwatch(['run', '--source', 'replay', '--speed', '0', `${CAPTURE_DIR}/binance-spot/ethusdt_20240809.gz`], env);
    const reader = new pg.Client({ connectionString: db.url });
    await reader.connect();
    try {
      const deadline = Date.now() + 120_000;
      let trades = 0;
      let bars = 0;
      while (Date.now() < deadline && (trades === 0 || bars === 0)) {
        await sleep(1000);
        const r = await reader.query<{ t: string; b: string }>('SELECT (SELECT count(*) FROM trades) AS t, (SELECT count(*) FROM bars_1m) AS b').catch(() => undefined);
        trades = Number(r?.rows[0]?.t ?? 0);
        bars = Number(r?.rows[0]?.b ?? 0);
      }
      expect(trades, run.output().slice(-3000)).toBeGreaterThan(0);
      expect(bars, run.output().slice(-3000)).toBeGreaterThan(0);
      const health = await fetch(`http://127.0.0.1:${env.WRITER_HTTP_PORT}/healthz`);
      expect(health.status).toBe(200);
      const out = run.output();
      expect(out).toContain(`writer     pid`);
      expect(out).toContain(`http://127.0.0.1:${env.METRICS_HTTP_PORT}/metrics`);
      const pids = [...out.matchAll(/^ {2}\w+\s+pid (\d+)/gm)].map((m) => Number(m[1]));
      expect(pids).toHaveLength(3);

      run.child.kill('SIGTERM');
      expect(await run.exited, run.output().slice(-3000)).toBe(0);
      for (const pid of pids) expect(() => process.kill(pid, 0), `child ${pid} still alive`).toThrow();
    } finally {
      run.child.kill('SIGKILL');
      await reader.end();
    }
  });
});
