// Doctor's verdicts from injected probes: what counts as OK, WARN and FAIL, the fix shown, and the exit code.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { exitCode, formatReport, runChecks, type Probes } from './doctor.ts';

const config = loadConfig({ BINANCE_WS_URL: 'wss://stream.binance.com:9443', BINANCE_REST_URL: 'https://api.binance.com', DATABASE_URL: 'postgres://u:secret@127.0.0.1:5/db' });

const healthy: Probes = {
  kafka: async () => ({ brokers: 1, controller: 1, clusterId: 'c1', topics: 7 }),
  database: async () => ({ serverVersion: '15.18', timescaleAvailable: '2.28.3', timescaleInstalled: '2.28.3', timescalePreloaded: true, timescaleWorkers: { max: 16, schedulerRunning: true, jobs: 12, failedJobs: 0 }, migrationsKnown: 12, migrationsApplied: 12 }),
  smtp: async () => 'mail.local Hello',
  port: async () => 'free',
  exchange: async () => ({ how: 'resolved', address: '1.2.3.4' }),
  recordings: () => '/data',
  nodeVersion: () => 'v20.20.0',
};
const fails = (msg: string) => async (): Promise<never> => {
  throw new Error(msg);
};
const byCheck = async (probes: Partial<Probes>, opts = {}) => {
  const r = await runChecks(config, { ...healthy, ...probes }, opts);
  return { all: r, get: (c: string) => r.find((x) => x.check === c)! };
};

describe('doctor checks', () => {
  it('all OK on a healthy machine, exit 0, and the database password never printed', async () => {
    const { all } = await byCheck({});
    expect(all.map((r) => r.status).every((s) => s === 'OK')).toBe(true);
    expect(all.map((r) => r.check)).toEqual(['node', 'kafka', 'postgres', 'timescaledb', 'timescaledb policies', 'schema', 'smtp', 'port 9464', 'port 9465', 'port 9466', 'exchange ws', 'exchange rest', 'recordings']);
    expect(exitCode(all)).toBe(0);
    expect(formatReport(all)).not.toContain('secret');
    expect(formatReport(all)).toContain('13 OK, 0 WARN, 0 FAIL');
  });

  it('a broker or database that does not answer is a FAIL with a fix, exit 1', async () => {
    const { all, get } = await byCheck({ kafka: fails('Connection timeout'), database: fails('connect ECONNREFUSED 127.0.0.1:5') });
    expect(get('kafka')).toMatchObject({ status: 'FAIL', detail: expect.stringContaining('Connection timeout'), fix: expect.stringContaining('services.sh up kafka') });
    expect(get('postgres')).toMatchObject({ status: 'FAIL', fix: expect.stringContaining('DATABASE_URL') });
    expect(get('timescaledb')).toBeUndefined();
    expect(exitCode(all)).toBe(1);
    expect(formatReport(all)).toMatch(/kafka\s+FAIL[^\n]*\n\s+fix: start it/);
  });

  it('TimescaleDB: missing is a WARN under auto, a FAIL under on; available but not enabled asks for migrate', async () => {
    const plain = async () => ({ ...(await healthy.database()), timescaleAvailable: null, timescaleInstalled: null });
    expect((await byCheck({ database: plain })).get('timescaledb').status).toBe('WARN');
    const on = await runChecks(loadConfig({ TIMESCALEDB: 'on' }), { ...healthy, database: plain });
    expect(on.find((r) => r.check === 'timescaledb')!.status).toBe('FAIL');
    const notEnabled = async () => ({ ...(await healthy.database()), timescaleInstalled: null });
    expect((await byCheck({ database: notEnabled })).get('timescaledb')).toMatchObject({ status: 'WARN', fix: expect.stringContaining('migrate') });
  });

  it('TimescaleDB installed but not preloaded names the fix; policies that cannot run are a WARN', async () => {
    const notPreloaded = async () => ({ ...(await healthy.database()), timescaleInstalled: null, timescalePreloaded: false, timescaleWorkers: null });
    expect((await byCheck({ database: notPreloaded })).get('timescaledb')).toMatchObject({ status: 'WARN', fix: expect.stringContaining('shared_preload_libraries') });
    const on = await runChecks(loadConfig({ TIMESCALEDB: 'on' }), { ...healthy, database: notPreloaded });
    expect(on.find((r) => r.check === 'timescaledb')!.status).toBe('FAIL');
    const noWorkers = async () => ({ ...(await healthy.database()), timescaleWorkers: { max: 0, schedulerRunning: false, jobs: 12, failedJobs: 0 } });
    expect((await byCheck({ database: noWorkers })).get('timescaledb policies')).toMatchObject({ status: 'WARN', detail: expect.stringContaining('max_background_workers = 0') });
    const failing = async () => ({ ...(await healthy.database()), timescaleWorkers: { max: 16, schedulerRunning: true, jobs: 12, failedJobs: 2 } });
    expect((await byCheck({ database: failing })).get('timescaledb policies')).toMatchObject({ status: 'WARN', detail: '2 of 12 jobs failed their last run' });
  });

  it('an unmigrated or partly migrated schema is a FAIL that says to run migrate', async () => {
    const none = async () => ({ ...(await healthy.database()), migrationsApplied: null });
    expect((await byCheck({ database: none })).get('schema')).toMatchObject({ status: 'FAIL', fix: expect.stringContaining('tickwatch migrate') });
    const part = async () => ({ ...(await healthy.database()), migrationsApplied: 10 });
    expect((await byCheck({ database: part })).get('schema').detail).toBe('10 of 12 migrations applied');
  });

  it('the exchange unreachable: WARN by default and for replay, FAIL for the live source', async () => {
    const down = { exchange: fails('DNS lookup of stream.binance.com: getaddrinfo EAI_AGAIN') };
    const d = await byCheck(down);
    expect(d.get('exchange ws')).toMatchObject({ status: 'WARN', detail: expect.stringContaining('exchange unreachable'), fix: expect.stringContaining('--source replay') });
    expect(exitCode(d.all)).toBe(0);
    expect((await byCheck(down, { source: 'replay' })).get('exchange rest').status).toBe('WARN');
    const live = await byCheck(down, { source: 'live' });
    expect(live.get('exchange ws').status).toBe('FAIL');
    expect(exitCode(live.all)).toBe(1);
  });

  it('ports: a running tickwatch worker is a WARN, another program a FAIL naming the variable', async () => {
    const r = await byCheck({ port: async (p) => (p === 9464 ? 'tickwatch' : p === 9465 ? 'other' : 'free') });
    expect(r.get('port 9464').status).toBe('WARN');
    expect(r.get('port 9465')).toMatchObject({ status: 'FAIL', fix: expect.stringContaining('WRITER_HTTP_PORT') });
    expect(r.get('port 9466').status).toBe('OK');
  });

  it('SMTP down is a WARN (alerts still reach Kafka and the database); old Node and missing recordings are named', async () => {
    const r = await byCheck({ smtp: fails('connect ECONNREFUSED 127.0.0.1:1025'), nodeVersion: () => 'v18.19.0', recordings: () => undefined });
    expect(r.get('smtp')).toMatchObject({ status: 'WARN', fix: expect.stringContaining('SMTP_HOST') });
    expect(r.get('node').status).toBe('FAIL');
    expect(r.get('recordings').status).toBe('WARN');
  });
});
