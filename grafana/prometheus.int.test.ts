// A real Prometheus (the Debian package) scrapes the real workers: ingestion (in process, fed by the local Binance
// stand-in, with a dropped connection, a REST backfill and malformed frames) and the tick writer (the `tickwatch write`
// CLI as a child process). Its configuration is docker/prometheus/prometheus.native.yml with the workers' test ports and
// 1 s intervals; its rules are the generated docker/prometheus/rules/pipeline.yml. Every PromQL expression of the
// Pipeline Health dashboard and of the pipeline alert rules, expanded as Grafana expands it, returns data through the
// HTTP API; then the writer is stopped while ingestion keeps producing, and TickwatchPipelineLag fires.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { createKafka, kafkaMessage } from '../common/kafka.ts';
import { startIngestion, type IngestionWorker } from '../ingestion/worker.ts';
import { BinanceServer, loadRecording, missingRecordings } from '../test/binance-server.ts';
import { ingestTestConfig, waitFor } from '../test/binance-topics.ts';
import { freshDatabase, missing, testLog, uniqueName } from '../test/services.ts';
import { REPO_ROOT, generate } from './generate.ts';
import { expandPromQL, type Variables } from './macros.ts';
import { JOBS } from './metric-names.ts';
import { PIPELINE_LAG_SECONDS_THRESHOLD } from './prometheus-rules.ts';
import { PROMETHEUS } from './sql-query.ts';
import { sleep } from '../common/time.ts';
import { freePort } from '../test/ports.ts';

const PROMETHEUS_BIN = '/usr/bin/prometheus';
const skip =
  (await missing('kafka', 'postgres')) ??
  missingRecordings() ??
  (existsSync(PROMETHEUS_BIN) ? undefined : `needs ${PROMETHEUS_BIN} (Debian package prometheus): bash scripts/services.sh install`);

const files = generate();

/** Every PromQL expression Grafana would send for the Pipeline Health panels and the pipeline alert rules. */
function promExpressions(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const d = JSON.parse(files.get('grafana/dashboards/pipeline-health.json')!) as dashboard.Dashboard;
  for (const p of d.panels ?? []) {
    if (p.type === 'row') continue;
    for (const t of ((p as dashboard.Panel).targets ?? []) as unknown as { refId: string; expr?: string }[])
      if (t.expr) out.push({ where: `Pipeline Health / ${p.title} / ${t.refId}`, expr: t.expr });
  }
  const rules = parse(files.get('grafana/provisioning/alerting/rules.yaml')!) as { groups: { rules: { title: string; data: { datasourceUid: string; model: { expr?: string } }[] }[] }[] };
  for (const r of rules.groups.flatMap((g) => g.rules))
    for (const q of r.data) if (q.datasourceUid === PROMETHEUS.uid && q.model.expr) out.push({ where: `alert ${r.title}`, expr: q.model.expr });
  const promRules = parse(files.get('docker/prometheus/rules/pipeline.yml')!) as { groups: { rules: { alert?: string; record?: string; expr: string }[] }[] };
  // An alerting rule returns nothing while it does not fire: check what it compares (its firing is the last test).
  for (const r of promRules.groups.flatMap((g) => g.rules))
    out.push({ where: `prometheus rule ${r.alert ?? r.record}`, expr: r.alert ? r.expr.replace(/\s*(?:[<>]=?|[!=]=)\s*[\d.]+\s*$/, '') : r.expr });
  return out;
}

const ALL: Variables = {
  symbol: { value: [], multi: true, includeAll: true, allSelected: true, allValue: '.+' },
  topic: { value: [], multi: true, includeAll: true, allSelected: true, allValue: '.+' },
};

async function waitHttp(url: string, timeoutMs: number, what: string): Promise<void> {
  await waitFor(async () => fetch(url).then((r) => r.ok, () => false), timeoutMs, what);
}

describe.skipIf(skip)('Prometheus scraping the workers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tickwatch-prom-'));
  let server: BinanceServer;
  let ingestion: IngestionWorker;
  let writer: ChildProcess | undefined;
  let prometheus: ChildProcess | undefined;
  let promUrl = '';
  let dropDb: (() => Promise<void>) | undefined;
  let tradesTopic = '';
  let kafkaBrokers: string[] = [];

  const api = async (path: string, params: Record<string, string>) => {
    const r = await fetch(`${promUrl}${path}?${new URLSearchParams(params)}`);
    const body = (await r.json()) as { status: string; error?: string; data: any };
    if (body.status !== 'success') throw new Error(`${path} ${JSON.stringify(params)}: ${body.error}`);
    return body.data;
  };

  beforeAll(async () => {
    // The exchange stand-in plays the recording on repeat at a steady rate, so ingestion produces all along.
    const rec = await loadRecording({ symbols: ['BTCUSDT', 'ETHUSDT'], maxEvents: 40_000 });
    let injected = 0;
    server = await BinanceServer.start({
      recording: rec,
      rate: 400,
      repeat: 20,
      pingIntervalMs: 1000,
      // A few malformed frames early on: ingestion dead-letters them.
      extraFrames: (i) => (i > 500 && injected < 3 ? [`not json ${injected++}`] : undefined),
    });
    const run = uniqueName('grafana-prom');
    const config = await ingestTestConfig(server, { SYMBOLS: 'BTCUSDT,ETHUSDT', WRITER_GROUP_PREFIX: run });
    kafkaBrokers = config.kafka.brokers;
    tradesTopic = config.kafka.topics.trade;
    ingestion = await startIngestion(config, { log: testLog });

    const db = await freshDatabase('grafana_prom');
    dropDb = db.drop;
    const writerPort = await freePort();
    const t = config.kafka.topics;
    writer = spawn(process.execPath, ['--import', 'tsx', 'bin/tickwatch.ts', 'write'], {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH,
        LOG_LEVEL: 'warn',
        KAFKA_BROKERS: config.kafka.brokers.join(','),
        DATABASE_URL: db.url,
        TOPIC_TRADES: t.trade,
        TOPIC_AGG_TRADES: t.aggTrade,
        TOPIC_BOOK_TICKERS: t.bookTicker,
        TOPIC_GAPS: t.gap,
        TOPIC_DEAD_LETTER: t.deadLetter,
        WRITER_GROUP_PREFIX: run,
        HTTP_HOST: '127.0.0.1',
        WRITER_HTTP_PORT: String(writerPort),
      },
      stdio: ['ignore', openSync(join(dir, 'writer.log'), 'a'), openSync(join(dir, 'writer.log'), 'a')],
    });
    await waitHttp(`http://127.0.0.1:${writerPort}/healthz`, 120_000, 'the writer /healthz');

    // Prometheus: the native config with the test ports, 1 s intervals, and the generated rules (TickwatchPipelineLag's
    // `for` shortened so the test need not wait a minute; its expression is unchanged).
    const native = parse(readFileSync(join(REPO_ROOT, 'docker/prometheus/prometheus.native.yml'), 'utf8')) as {
      global: Record<string, string>;
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[]; metric_relabel_configs?: unknown[] }[];
    };
    const promPort = await freePort();
    const ports: Record<string, number> = {
      prometheus: promPort,
      [JOBS.ingestion]: ingestion.http!.port,
      [JOBS.writer]: writerPort,
      // No metrics worker runs here: its target stays down (up == 0), which the "Workers up" panel shows.
      [JOBS.metrics]: await freePort(),
    };
    native.global = { scrape_interval: '1s', evaluation_interval: '1s' };
    mkdirSync(join(dir, 'rules'));
    const rules = parse(files.get('docker/prometheus/rules/pipeline.yml')!) as { groups: { rules: { alert?: string; for?: string }[] }[] };
    for (const r of rules.groups.flatMap((g) => g.rules)) if (r.alert === 'TickwatchPipelineLag') r.for = '2s';
    writeFileSync(join(dir, 'rules', 'pipeline.yml'), stringify(rules));
    native.rule_files = native.rule_files.map((f) => join(dir, f));
    for (const job of native.scrape_configs) {
      const port = ports[job.job_name];
      if (port === undefined) throw new Error(`prometheus.native.yml has job ${job.job_name}, which this test does not run`);
      job.static_configs = [{ targets: [`127.0.0.1:${port}`] }];
      // Bridge until ingestion/metrics.ts renames ingest_* to tickwatch_ingestion_* (a no-op once it has).
      if (job.job_name === JOBS.ingestion)
        job.metric_relabel_configs = [{ source_labels: ['__name__'], regex: 'ingest_(.*)', target_label: '__name__', replacement: 'tickwatch_ingestion_$1' }];
    }
    writeFileSync(join(dir, 'prometheus.yml'), stringify(native));
    promUrl = `http://127.0.0.1:${promPort}`;
    prometheus = spawn(
      PROMETHEUS_BIN,
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`],
      { stdio: ['ignore', openSync(join(dir, 'prometheus.log'), 'a'), openSync(join(dir, 'prometheus.log'), 'a')] },
    );
    await waitHttp(`${promUrl}/-/ready`, 60_000, 'Prometheus /-/ready');

    // Trouble for the failure panels: a dropped connection (reconnect, trade-id hole, REST backfill) and a record the
    // writer cannot decode (writer dead letter).
    await waitFor(() => server.published > 3_000, 60_000, 'events published');
    server.dropConnections();
    const kafka = createKafka(config, testLog, 'grafana-prom-test');
    const producer = kafka.producer({ idempotent: true });
    await producer.send({ messages: [kafkaMessage(tradesTopic, { key: 'poison', value: 'not a tick' })] });
    await producer.close();
  }, 300_000);

  afterAll(async () => {
    const stop = async (p: ChildProcess | undefined) => {
      if (!p || p.exitCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([exited, sleep(45_000)]);
      if (p.exitCode === null) p.kill('SIGKILL');
    };
    await stop(prometheus);
    await stop(writer);
    await ingestion?.stop('test over');
    await server?.close();
    await dropDb?.();
    if (!process.env.KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
    else console.warn(`[kept] ${dir}`);
  }, 120_000);

  it('loads the configuration and the generated rules, and scrapes both workers', async () => {
    const targets = (await api('/api/v1/targets', {})) as { activeTargets: { labels: { job: string }; health: string }[] };
    await waitFor(
      async () => {
        const t = (await api('/api/v1/targets', {})) as typeof targets;
        return [JOBS.ingestion, JOBS.writer].every((j) => t.activeTargets.some((x) => x.labels.job === j && x.health === 'up'));
      },
      30_000,
      'ingestion and writer targets up',
    );
    const groups = (await api('/api/v1/rules', {})) as { groups: { rules: { name: string; health: string }[] }[] };
    const rules = groups.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.name)).toContain('TickwatchPipelineLag');
    await waitFor(async () => ((await api('/api/v1/rules', {})) as typeof groups).groups.flatMap((g) => g.rules).every((r) => r.health === 'ok'), 30_000, 'all rules healthy');
  });

  it('returns data for every PromQL expression of the Pipeline Health dashboard and the pipeline alerts', async () => {
    const exprs = promExpressions();
    expect(exprs.length).toBeGreaterThan(15);
    const empty = async () => {
      const now = Date.now() / 1000;
      const range = { from: new Date((now - 120) * 1000), to: new Date(now * 1000) };
      const out: string[] = [];
      for (const e of exprs) {
        const query = expandPromQL(e.expr, { range, vars: ALL, intervalMs: 1000, scrapeIntervalMs: 1000 });
        const data = (await api('/api/v1/query_range', { query, start: String(now - 120), end: String(now), step: '1' })) as { result: unknown[] };
        if (data.result.length === 0) out.push(`${e.where}: ${query}`);
      }
      return out;
    };
    let missingData: string[] = [];
    const deadline = Date.now() + 120_000;
    do {
      missingData = await empty();
      if (missingData.length === 0) break;
      await sleep(2_000);
    } while (Date.now() < deadline);
    expect(missingData).toEqual([]);
  }, 200_000);

  it('fires TickwatchPipelineLag when the writer stops while ingestion produces', async () => {
    const alerts = async () => ((await api('/api/v1/alerts', {})) as { alerts: { labels: Record<string, string>; state: string }[] }).alerts;
    expect((await alerts()).filter((a) => a.labels.alertname === 'TickwatchPipelineLag')).toEqual([]);
    const exited = new Promise((r) => writer!.once('exit', r));
    writer!.kill('SIGTERM');
    await exited;
    await waitFor(
      async () => (await alerts()).some((a) => a.labels.alertname === 'TickwatchPipelineLag' && a.state === 'firing' && a.labels.topic === tradesTopic),
      150_000,
      'TickwatchPipelineLag firing for the trades topic',
    );
    // The Grafana rule reads the same recorded series: above its threshold too.
    const lag = (await api('/api/v1/query', { query: `tickwatch:pipeline_lag_seconds:max_by_topic{topic="${tradesTopic}"}` })) as { result: { value: [number, string] }[] };
    expect(Number(lag.result[0]?.value[1])).toBeGreaterThan(PIPELINE_LAG_SECONDS_THRESHOLD);
  }, 200_000);
});
