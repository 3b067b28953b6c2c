// The metrics worker against real PostgreSQL and Kafka. (1) Wired as in production (startMetricsWorker, wall clock):
// recorded trades shifted to the last minutes are refreshed as their buckets close and every closed bar is published to
// Kafka; a late tick re-publishes its bar. (2) The engine on a replayed clock: rules stay quiet on the recorded calm
// data and fire on crafted data, one anomaly_events row and one alerts record per firing, with the mails handed on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../common/config.ts';
import { createKafka, createTopics, type KafkaClients } from '../common/kafka.ts';
import { followTopics } from '../common/kafka-read.ts';
import { pgSession, type SqlSession } from '../common/db.ts';
import { rowTimeMs, type AnomalyRecord, type BarRecord, type Trade } from '../common/records.ts';
import { migrate } from '../sql/migrate.ts';
import { capturesMissing, loadCaptureTicks } from '../test/capture-ticks.ts';
import { freshDatabaseClient, missing, testConfig, testLog, testTopic, uniqueName, type ConnectedDatabase } from '../test/services.ts';
import type { AlertMail } from './alert-state.ts';
import { insertBookTickers, insertTrades } from './replay.ts';
import { macd, rsiWilder } from './indicators.ts';
import { bucketStart, MINUTE_MS } from './schedule.ts';
import { MetricsEngine, type MetricsSink } from './engine.ts';
import { startMetricsWorker } from './worker.ts';

const skip = capturesMissing() ?? (await missing('kafka', 'postgres'));

const spotBtc = () => loadCaptureTicks().trades.filter((t) => t.market === 'spot' && t.symbol === 'BTCUSDT');
const shift = (t: Trade, dMs: number, dId = 0): Trade => ({
  ...t, exchangeTimeMs: t.exchangeTimeMs + dMs, eventTimeMs: t.eventTimeMs + dMs, receiveTimeUs: t.receiveTimeUs + dMs * 1000, tradeId: t.tradeId + dId,
});

/** A reader pushing every record of `topic` (created when missing) into `into`, from its start, until stopped. */
async function collect<T>(kafka: KafkaClients, config: Config, _group: string, topic: string, into: T[]): Promise<{ disconnect(): Promise<void> }> {
  await createTopics(kafka, [topic], config);
  const reader = await followTopics(kafka, [topic], testLog, (_topic, _partition, message) => void into.push(JSON.parse(message.value!.toString()) as T));
  return { disconnect: () => reader.stop() };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(skip)('metrics worker', () => {
  let fresh: ConnectedDatabase;
  let db: SqlSession;

  beforeAll(async () => {
    fresh = await freshDatabaseClient('metrics_worker');
    db = pgSession(fresh.client);
    await migrate(db, await testConfig({ DATABASE_URL: fresh.url }), testLog);
  });

  afterAll(() => fresh?.close());

  it('refreshes closing buckets, publishes every closed bar to Kafka, and re-publishes a bar changed by a late tick', async () => {
    const bars = testTopic('bars');
    const config = await testConfig({
      DATABASE_URL: fresh.url, TOPIC_BARS: bars, TOPIC_ALERTS: testTopic('alerts'), METRICS_HTTP_PORT: '0', HTTP_HOST: '127.0.0.1',
      SYMBOLS: 'BTCUSDT', ALLOWED_LATENESS_SECONDS: '1', STALE_STREAM_SECONDS: '3600', SMTP_PORT: '9', LOG_LEVEL: 'warn',
    });
    // Minutes 23:55..23:58 of the capture, moved so that they end at the start of the current minute.
    const first = Date.UTC(2024, 7, 8, 23, 55);
    const nowMinute = bucketStart(Date.now(), MINUTE_MS);
    const d = nowMinute - 4 * MINUTE_MS - first;
    const trades = spotBtc().filter((t) => t.exchangeTimeMs >= first && t.exchangeTimeMs < first + 4 * MINUTE_MS).map((t) => shift(t, d));
    await insertTrades(db, trades);

    const received: BarRecord[] = [];
    const kafka = createKafka(config, testLog, 'test');
    const consumer = await collect(kafka, config, 'metrics-test', bars, received);
    const worker = await startMetricsWorker(config, testLog);
    try {
      await until('four 1-minute bars on Kafka', () => received.filter((b) => b.width === '1m').length >= 4);
      const oneMinute = received.filter((b) => b.width === '1m').sort((a, b) => a.bucketMs - b.bucketMs);
      const rows = (await db.query<{ bucket: Date; trade_count: string; vwap: string; close: string }>(`SELECT * FROM bars_1m WHERE symbol = 'BTCUSDT' ORDER BY bucket`)).rows;
      expect(oneMinute.map((b) => [b.bucketMs, b.tradeCount, b.vwap, b.close])).toEqual(rows.map((r) => [r.bucket.getTime(), Number(r.trade_count), r.vwap, r.close]));
      expect(oneMinute.map((b) => b.bucketMs)).toEqual([0, 1, 2, 3].map((i) => nowMinute - (4 - i) * MINUTE_MS));
      await until('the 10 s bars of those minutes', () => received.filter((b) => b.width === 'short' && b.bucketMs < nowMinute).length >= 24);
      // Health turns 200 when the first pass has finished; bars are published during that pass.
      await until('/healthz 200', async () => (await fetch(`http://127.0.0.1:${worker.httpPort}/healthz`)).status === 200, 30_000);
      expect(await (await fetch(`http://127.0.0.1:${worker.httpPort}/metrics`)).text()).toContain('tickwatch_bar_readable_delay_seconds');

      // A late tick in the second minute: its bar is refreshed and published again, one more trade, other bars untouched.
      const target = nowMinute - 3 * MINUTE_MS;
      const before = oneMinute.find((b) => b.bucketMs === target)!;
      const late: Trade = { ...trades.find((t) => t.exchangeTimeMs >= target + 30_000)!, tradeId: 9_000_000_001, quantity: '0.5', receiveTimeUs: Date.now() * 1000 };
      const count = received.length;
      await insertTrades(db, [late]);
      await until('the re-published bar', () => received.slice(count).some((b) => b.width === '1m' && b.bucketMs === target));
      const again = received.slice(count).filter((b) => b.width === '1m');
      expect(again.map((b) => b.bucketMs)).toEqual([target, target + MINUTE_MS]); // its minute, and the next (first return starts there)
      expect(again[0]!.tradeCount).toBe(before.tradeCount + 1);
      expect(again[1]).toMatchObject({ tradeCount: oneMinute[2]!.tradeCount, vwap: oneMinute[2]!.vwap, close: oneMinute[2]!.close });
    } finally {
      await worker.stop('test');
      await consumer.disconnect();
    }
  });

  it('rules stay quiet on the recorded calm data and fire on crafted data, once per rule, symbol and bucket', async () => {
    await db.exec('TRUNCATE trades, book_tickers, metric_invalidations, anomaly_events, alert_policy_state');
    const alerts = testTopic('alerts');
    const config = await testConfig({ DATABASE_URL: fresh.url, TOPIC_ALERTS: alerts, TRAILING_WINDOW_MINUTES: '60' });
    const kafka = createKafka(config, testLog, 'test');
    // The product's producers never create topics on their own (the worker creates its topics at start).
    await createTopics(kafka, [alerts], config);
    const producer = kafka.producer({ idempotent: true });
    const { kafkaSink } = await import('./worker.ts');
    const published: AnomalyRecord[] = [];
    const sink: MetricsSink = {
      publishBars: async () => {},
      publishAnomalies: async (e) => {
        published.push(...e);
        await kafkaSink(producer, config.kafka.topics).publishAnomalies(e);
      },
    };
    const mails: AlertMail[] = [];
    let now = 0;
    const engine = new MetricsEngine({ db, config, log: testLog, sink, mail: (m) => mails.push(m), clock: () => now, staleStreams: [] });
    await engine.start();
    // A calm trailing hour from the recording: spot BTCUSDT 00:00-00:05, after the burst of 23:57-23:59 (which the
    // default rules do flag: volume ~4-5x, spreads ~5x the median), repeated 12 times back to back, each copy shifted
    // by 5 minutes (new ids) and by the copy's own price drift, so the copies join without a price jump.
    const from = Date.UTC(2024, 7, 9, 0, 0);
    const span = 5 * MINUTE_MS;
    const seg = spotBtc().filter((t) => t.exchangeTimeMs >= from && t.exchangeTimeMs < from + span);
    const segQuotes = loadCaptureTicks().bookTickers.filter((q) => q.market === 'spot' && q.symbol === 'BTCUSDT' && rowTimeMs(q) >= from && rowTimeMs(q) < from + span);
    const drift = Number(seg[seg.length - 1]!.price) - Number(seg[0]!.price);
    const px = (p: string, k: number) => (Number(p) + k * drift).toFixed(2);
    for (let k = 0; k < 12; k++) {
      await insertTrades(db, seg.map((t) => ({ ...shift(t, k * span, k * 1e7), price: px(t.price, k) })));
      await insertBookTickers(db, segQuotes.map((q) => ({ ...q, updateId: q.updateId + k * 1e7, receiveTimeUs: q.receiveTimeUs + k * span * 1000, bidPrice: px(q.bidPrice, k), askPrice: px(q.askPrice, k) })));
    }
    const base = seg.map((t) => ({ ...shift(t, 11 * span, 11 * 1e7), price: px(t.price, 11) }));
    const start = from;
    const calmEnd = from + 12 * span;
    for (now = start + MINUTE_MS; now <= calmEnd + 2_000; now += 60_000) await engine.step();
    const calm = (await db.query(`SELECT rule, bucket, observed, threshold FROM anomaly_events`)).rows;
    expect(calm, 'no anomaly on the recorded calm data').toEqual([]);
    expect(Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM bar_indicators_1m WHERE rsi_14 IS NOT NULL AND macd_signal IS NOT NULL`)).rows[0]!.n)).toBeGreaterThan(10);
    // Every closed minute's indicators are RSI(14) and MACD(12, 26, 9) over all the closes up to it (fewer than the
    // 500-bar warm-up here, so the engine's window is the whole series).
    // (The first test's wall-clock minutes are in the same tables: only this test's hour counts.)
    const hour = [new Date(start).toISOString(), new Date(calmEnd + MINUTE_MS).toISOString()];
    const bars1m = (await db.query<{ bucket: Date; close: string }>(`SELECT bucket, close::text AS close FROM bars_1m WHERE symbol = 'BTCUSDT' AND bucket >= $1 AND bucket < $2 ORDER BY bucket`, hour)).rows;
    const stored = (await db.query<{ bucket: Date; close: string; rsi_14: number | null; macd: number | null; macd_signal: number | null; macd_histogram: number | null }>(
      `SELECT bucket, close::text AS close, rsi_14, macd, macd_signal, macd_histogram FROM bar_indicators_1m WHERE symbol = 'BTCUSDT' AND bucket >= $1 AND bucket < $2 ORDER BY bucket`,
      hour,
    )).rows;
    const closes = bars1m.map((b) => Number(b.close));
    const rsi = rsiWilder(closes, 14);
    const m = macd(closes, 12, 26, 9);
    expect(stored.length).toBeGreaterThanOrEqual(bars1m.length - 1); // the last minute may not have closed past the lateness
    for (const row of stored) {
      const i = bars1m.findIndex((b) => new Date(b.bucket).getTime() === new Date(row.bucket).getTime());
      expect(i, `bar of ${new Date(row.bucket).toISOString()}`).toBeGreaterThanOrEqual(0);
      expect(row.close).toBe(bars1m[i]!.close);
      for (const [got, want] of [[row.rsi_14, rsi[i]], [row.macd, m[i]!.macd], [row.macd_signal, m[i]!.signal], [row.macd_histogram, m[i]!.histogram]] as const) {
        if (want === null || want === undefined) expect(got).toBeNull();
        else expect(got).toBeCloseTo(want, 9);
      }
    }

    // Crafted minute: a 1 % jump and a 1000 BTC print, right after the calm data.
    const last = base[base.length - 1]!;
    const t = calmEnd + 5_000;
    const crafted: Trade[] = [
      { ...last, tradeId: 8e9, exchangeTimeMs: t, eventTimeMs: t, price: (Number(last.price) * 1.01).toFixed(2), quantity: '1000' },
      { ...last, tradeId: 8e9 + 1, exchangeTimeMs: t + 1, eventTimeMs: t + 1 },
    ];
    await insertTrades(db, crafted);
    now = bucketStart(t, MINUTE_MS) + MINUTE_MS + config.metrics.allowedLatenessMs;
    const r = await engine.step();
    expect(r.firings).toBeGreaterThanOrEqual(2);
    const rows = (await db.query<{ rule: string }>(`SELECT rule FROM anomaly_events ORDER BY rule`)).rows.map((x) => x.rule);
    expect(rows).toEqual(expect.arrayContaining(['priceJump', 'volumeSpike']));
    expect(published.map((p) => p.rule).sort()).toEqual([...rows].sort());
    expect(mails.filter((m) => m.kind === 'firing').map((m) => m.rule).sort()).toEqual([...rows].sort());
    // Re-evaluating the same bucket (a late tick touching it) records nothing twice.
    await insertTrades(db, [{ ...crafted[1]!, tradeId: 8e9 + 2, quantity: '0.001' }]);
    now += 1_000;
    expect((await engine.step()).firings).toBe(0);
    expect((await db.query(`SELECT * FROM anomaly_events`)).rows).toHaveLength(rows.length);
    // The worker restarts (a new engine on the same database, as a new process would be) while the alerts are open;
    // the next calm minute resolves them, and the new engine sends the resolved mails from the stored policy state.
    const open = (await db.query<{ key: string }>(`SELECT key FROM alert_policy_state WHERE active ORDER BY key`)).rows.map((x) => x.key.split('|')[0]);
    expect(open).toEqual(expect.arrayContaining(['priceJump', 'volumeSpike']));
    const mailsAfterRestart: AlertMail[] = [];
    const restarted = new MetricsEngine({ db, config, log: testLog, sink, mail: (m) => mailsAfterRestart.push(m), clock: () => now, staleStreams: [] });
    await restarted.start();
    const t2 = bucketStart(t, MINUTE_MS) + MINUTE_MS + 1_000;
    await insertTrades(db, [{ ...crafted[1]!, tradeId: 8e9 + 3, exchangeTimeMs: t2, eventTimeMs: t2, quantity: '0.01' }]);
    now = bucketStart(t2, MINUTE_MS) + MINUTE_MS + config.metrics.allowedLatenessMs;
    await restarted.step();
    expect(mailsAfterRestart.filter((m) => m.kind === 'resolved').map((m) => m.rule).sort()).toEqual(expect.arrayContaining(['volumeSpike']));
    expect(mailsAfterRestart.filter((m) => m.kind === 'firing'), 'no firing mailed twice across the restart').toEqual([]);
    expect(Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM anomaly_events WHERE resolved_at IS NOT NULL AND rule = 'volumeSpike'`)).rows[0]!.n)).toBe(1);

    const fromKafka: AnomalyRecord[] = [];
    const consumer = await collect(kafka, config, 'alerts-test', alerts, fromKafka);
    await until('the alert records on Kafka', () => fromKafka.length >= published.length);
    expect(fromKafka.filter((a) => a.state === 'firing').map((a) => a.rule).sort()).toEqual([...rows].sort());
    await consumer.disconnect();
    await producer.close();
  });
});
