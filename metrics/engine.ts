// The metrics engine: refreshes each bucket as it closes (plus the allowed lateness) and every bucket touched by late
// or backfilled ticks, publishes closed bars, computes indicators, evaluates the anomaly rules, records and publishes
// firings, and hands them to the alert mail policy. It is driven by step(), so tests and the benchmark can run it
// against any clock; metrics/worker.ts wires it to PostgreSQL, Kafka, SMTP and HTTP under the lease.
import { Histogram, Counter, Gauge, Registry } from 'prom-client';
import type { Config } from '../common/config.ts';
import type { SqlSession } from '../common/db.ts';
import type { Logger } from '../common/log.ts';
import type { AnomalyRecord, BarRecord, Exchange, Market } from '../common/records.ts';
import { AlertPolicy, alertKey, type AlertMail, type Firing } from './alert-state.ts';
import { macd, rsiWilder } from './indicators.ts';
import { configureShortBars, Refresher, type RefreshResult } from './refresher.ts';
import { evaluateBucket, evaluateGaps, evaluateStale, rulesFor, type BucketPoint, type Verdict } from './rules.ts';
import { bucketStart, MINUTE_MS, nextWakeMs, type RefreshWindow } from './schedule.ts';
import { iso } from '../common/time.ts';

export interface MetricsSink {
  publishBars(bars: readonly BarRecord[]): Promise<void>;
  publishAnomalies(events: readonly AnomalyRecord[]): Promise<void>;
}

export interface EngineDeps {
  readonly db: SqlSession;
  readonly config: Config;
  readonly log: Logger;
  /** Called inside the step's transaction (the worker's sink writes the outbox in it). */
  readonly sink: MetricsSink;
  /** Each mail the policy decides, inside the step's transaction (the worker's writes the mail outbox). */
  readonly mail?: (m: AlertMail) => unknown;
  readonly clock?: () => number;
  readonly registry?: Registry;
  /** Streams watched for staleness; default: the configured source symbols. */
  readonly staleStreams?: readonly StreamKey[];
  /** Closed 1-minute bars fed to the indicators before the refreshed ones (warm-up). */
  readonly indicatorWarmup?: number;
}

export interface StepResult {
  readonly refreshedMinutes: RefreshWindow[];
  readonly refreshedShort: RefreshWindow | null;
  readonly barsPublished: number;
  readonly firings: number;
  readonly refreshMs: number;
}

const WIDTHS = [
  { view: 'bars_1m', width: '1m', ms: MINUTE_MS },
  { view: 'bars_5m', width: '5m', ms: 5 * MINUTE_MS },
  { view: 'bars_1h', width: '1h', ms: 60 * MINUTE_MS },
] as const;
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const str = (v: unknown) => (v === null || v === undefined ? null : String(v));

type Row = Record<string, unknown>;

/** One bar stream. */
type StreamKey = { exchange: Exchange; market: Market; symbol: string };

/** Streams whose closes one query reads: each brings up to 500 closes, so a query's result stays a few MB. */
const INDICATOR_STREAMS_PER_QUERY = 100;

/** bar_indicators_1m rows as the columns one INSERT unnests. */
type IndicatorColumns = Record<'exchange' | 'market' | 'symbol' | 'bucket' | 'close', string[]> & Record<'rsi' | 'macd' | 'signal' | 'histogram', (number | null)[]>;

function toBar(r: Row, width: BarRecord['width'], widthSeconds: number, nowMs: number): BarRecord {
  return {
    type: 'bar',
    exchange: r.exchange as Exchange,
    market: r.market as Market,
    symbol: String(r.symbol),
    width,
    widthSeconds,
    bucketMs: new Date(r.bucket as string).getTime(),
    open: String(r.open),
    high: String(r.high),
    low: String(r.low),
    close: String(r.close),
    volume: String(r.volume),
    quoteVolume: String(r.quote_volume),
    vwap: str(r.vwap),
    tradeCount: Number(r.trade_count),
    takerBuyVolume: String(r.taker_buy_volume),
    takerBuyQuoteVolume: String(r.taker_buy_quote_volume),
    firstTradeId: Number(r.first_trade_id),
    lastTradeId: Number(r.last_trade_id),
    volatility: num(r.volatility),
    priceStddev: num(r.price_stddev),
    maxMoveBps: num(r.max_move_bps),
    publishedAtMs: nowMs,
  };
}

export class MetricsEngine {
  private readonly refresher: Refresher;
  private readonly clock: () => number;
  private readonly shortMs: number;
  readonly policy: AlertPolicy;
  /**
   * Latest 1-minute bucket evaluated per rule and stream: only newer buckets may resolve a firing. Per rule: the stale
   * check runs on the open minute every pass, and must not keep the bucket rules of the minute just closed (evaluated
   * after the lateness) from resolving.
   */
  private readonly lastEvaluated = new Map<string, number>();
  private readonly refreshSeconds: Histogram;
  private readonly barDelaySeconds: Histogram;
  private readonly firingsTotal: Counter;
  private readonly lastRefreshed: Gauge;
  lastStepAtMs = 0;
  /** A step that failed may have moved the policy in memory past what its rolled-back transaction stored. */
  private policyStale = false;

  constructor(private readonly deps: EngineDeps) {
    this.clock = deps.clock ?? Date.now;
    this.shortMs = deps.config.metrics.shortBarSeconds * 1000;
    this.refresher = new Refresher(deps.db, this.shortMs);
    this.policy = new AlertPolicy(deps.config.metrics.alertCooldownMs);
    const registers = deps.registry ? [deps.registry] : [];
    this.refreshSeconds = new Histogram({ name: 'tickwatch_metrics_refresh_seconds', help: 'Duration of one refresh pass', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5], registers });
    this.barDelaySeconds = new Histogram({ name: 'tickwatch_bar_readable_delay_seconds', help: 'From a 1-minute bucket close to its bar being readable', buckets: [0.5, 1, 2, 2.5, 3, 4, 5, 10, 30], registers });
    this.firingsTotal = new Counter({ name: 'tickwatch_anomaly_firings_total', help: 'Anomaly rule firings recorded', labelNames: ['rule'], registers });
    this.lastRefreshed = new Gauge({ name: 'tickwatch_metrics_last_refresh_timestamp_seconds', help: 'When the last refresh pass finished', registers });
  }

  /** Loads what the previous worker (or this one, before a failed step) stored: the mail policy and the short buckets' progress. */
  async start(): Promise<void> {
    await this.loadPolicy();
    await this.refresher.load();
    if (await configureShortBars(this.deps.db, this.deps.config.metrics.shortBarSeconds)) {
      this.deps.log.info({ shortBarSeconds: this.deps.config.metrics.shortBarSeconds }, 'short bars (re)built for the configured width: filled from now on');
    }
  }

  private async loadPolicy(): Promise<void> {
    const stored = await this.deps.db.query<{ key: string; active: boolean; cooldown_until: Date | null; held: Firing[] }>(
      'SELECT key, active, cooldown_until, held FROM alert_policy_state',
    );
    this.policy.load(stored.rows.map((r) => ({ key: r.key, active: r.active, cooldownUntilMs: r.cooldown_until === null ? null : new Date(r.cooldown_until).getTime(), held: r.held })));
    if (stored.rows.length > 0) this.deps.log.info({ keys: stored.rows.length, open: stored.rows.filter((r) => r.active).length }, 'alert policy state loaded');
    this.policy.changed(); // what was just loaded is stored already
    this.policyStale = false;
  }

  /** When the next bucket closes past the lateness. */
  nextWakeMs(): number {
    return nextWakeMs(this.clock(), this.deps.config.metrics.allowedLatenessMs, this.shortMs);
  }

  /**
   * One pass. The refresh runs first, outside any transaction (TimescaleDB's refresh cannot run inside one, and it is
   * idempotent); everything decided from it (bars to publish, indicators, firings, mails, the policy's state) is written
   * in one transaction with the removal of the invalidations it consumed: a worker that dies before its commit leaves
   * the minutes listed, and its successor decides them again, once.
   */
  async step(): Promise<StepResult> {
    const now = this.clock();
    const cutoff = now - this.deps.config.metrics.allowedLatenessMs;
    if (this.policyStale) await this.loadPolicy();
    const r = await this.refresher.refresh(cutoff);
    this.refreshSeconds.observe(r.durationMs / 1000);
    await this.deps.db.exec('BEGIN');
    let result: StepResult;
    try {
      result = await this.decide(r, now, cutoff);
      await this.refresher.done(r);
      await this.refresher.storeProgress(r);
      await this.deps.db.exec('COMMIT');
    } catch (err) {
      this.policyStale = true;
      await this.deps.db.exec('ROLLBACK').catch(() => undefined);
      throw err;
    }
    this.refresher.committed(r);
    this.lastStepAtMs = now;
    this.lastRefreshed.set(now / 1000);
    return result;
  }

  private async decide(r: RefreshResult, now: number, cutoff: number): Promise<StepResult> {
    const readable = this.clock();
    const bars: BarRecord[] = [];
    for (const w of r.minutes) {
      bars.push(...(await this.readBars('bars_short', 'short', this.shortMs, w.fromMs, w.toMs, cutoff, readable)));
      for (const x of WIDTHS) {
        const from = bucketStart(w.fromMs, x.ms);
        bars.push(...(await this.readBars(x.view, x.width, x.ms, from, w.toMs, cutoff, readable)));
      }
    }
    if (r.short) bars.push(...(await this.readBars('bars_short', 'short', this.shortMs, r.short.fromMs, r.short.toMs, cutoff, readable)));
    for (const b of bars) if (b.width === '1m') this.barDelaySeconds.observe((readable - (b.bucketMs + MINUTE_MS)) / 1000);
    if (bars.length > 0) await this.deps.sink.publishBars(bars);

    let firings = 0;
    for (const w of r.minutes) {
      const byKey = new Map<string, StreamKey>();
      for (const b of bars) {
        if (b.width === '1m' && b.bucketMs >= w.fromMs && b.bucketMs < w.toMs) byKey.set(`${b.exchange}|${b.market}|${b.symbol}`, { exchange: b.exchange, market: b.market, symbol: b.symbol });
      }
      const streams = [...byKey.values()];
      await this.updateIndicators(streams, w);
      for (const { exchange, market, symbol } of streams) firings += await this.evaluate(exchange, market, symbol, w, now);
    }
    firings += await this.checkStale(now);
    for (const m of this.policy.due(now)) await this.deps.mail?.(m);
    await this.storePolicy();
    return { refreshedMinutes: r.minutes, refreshedShort: r.short, barsPublished: bars.length, firings, refreshMs: r.durationMs };
  }

  private async readBars(view: string, width: BarRecord['width'], widthMs: number, fromMs: number, toMs: number, cutoff: number, nowMs: number): Promise<BarRecord[]> {
    const rows = await this.deps.db.query(
      `SELECT * FROM ${view} WHERE bucket >= $1::timestamptz AND bucket < $2::timestamptz ORDER BY bucket, exchange, market, symbol`,
      [iso(fromMs), iso(toMs)],
    );
    return rows.rows.filter((x) => new Date(x.bucket as string).getTime() + widthMs <= cutoff).map((x) => toBar(x, width, widthMs / 1000, nowMs));
  }

  /**
   * RSI and MACD of every stream with a bar in `w`, over its last closed 1-minute bars (the warm-up before the window
   * included): one read and one write per INDICATOR_STREAMS_PER_QUERY streams, where a read and a write each were some
   * 1,600 round trips a minute at 800 symbols.
   */
  private async updateIndicators(streams: readonly StreamKey[], w: RefreshWindow): Promise<void> {
    for (let i = 0; i < streams.length; i += INDICATOR_STREAMS_PER_QUERY) await this.updateIndicatorsOf(streams.slice(i, i + INDICATOR_STREAMS_PER_QUERY), w);
  }

  private async updateIndicatorsOf(streams: readonly StreamKey[], w: RefreshWindow): Promise<void> {
    const warmup = this.deps.indicatorWarmup ?? 500;
    const rows = (
      await this.deps.db.query<StreamKey & { buckets: number[]; closes: string[] }>(
        `SELECT s.exchange, s.market, s.symbol, c.buckets, c.closes
           FROM unnest($1::text[], $2::text[], $3::text[]) AS s (exchange, market, symbol)
           CROSS JOIN LATERAL (
             SELECT array_agg((extract(epoch FROM x.bucket) * 1000)::float8 ORDER BY x.bucket) AS buckets,
                    array_agg(x.close::text ORDER BY x.bucket) AS closes
               FROM (SELECT b.bucket, b.close FROM bars_1m b
                      WHERE b.exchange = s.exchange AND b.market = s.market AND b.symbol = s.symbol AND b.bucket < $4::timestamptz
                      ORDER BY b.bucket DESC LIMIT $5) x
           ) c
          WHERE c.buckets IS NOT NULL`,
        [streams.map((x) => x.exchange), streams.map((x) => x.market), streams.map((x) => x.symbol), iso(w.toMs), warmup + (w.toMs - w.fromMs) / MINUTE_MS],
      )
    ).rows;
    const out: IndicatorColumns = { exchange: [], market: [], symbol: [], bucket: [], close: [], rsi: [], macd: [], signal: [], histogram: [] };
    for (const r of rows) {
      const closes = r.closes.map(Number);
      const rsi = rsiWilder(closes, 14);
      const m = macd(closes, 12, 26, 9);
      for (let i = 0; i < r.buckets.length; i++) {
        if (r.buckets[i]! < w.fromMs) continue;
        out.exchange.push(r.exchange);
        out.market.push(r.market);
        out.symbol.push(r.symbol);
        out.bucket.push(iso(r.buckets[i]!));
        out.close.push(r.closes[i]!);
        out.rsi.push(rsi[i]!);
        out.macd.push(m[i]!.macd);
        out.signal.push(m[i]!.signal);
        out.histogram.push(m[i]!.histogram);
      }
    }
    if (out.bucket.length === 0) return;
    await this.deps.db.query(
      `INSERT INTO bar_indicators_1m (exchange, market, symbol, bucket, close, rsi_14, macd, macd_signal, macd_histogram)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::numeric[], $6::float8[], $7::float8[], $8::float8[], $9::float8[])
       ON CONFLICT (exchange, market, symbol, bucket) DO UPDATE SET close = excluded.close, rsi_14 = excluded.rsi_14, macd = excluded.macd,
         macd_signal = excluded.macd_signal, macd_histogram = excluded.macd_histogram, computed_at = now()`,
      [out.exchange, out.market, out.symbol, out.bucket, out.close, out.rsi, out.macd, out.signal, out.histogram],
    );
  }

  private async evaluate(exchange: Exchange, market: Market, symbol: string, w: RefreshWindow, now: number): Promise<number> {
    const trailingMs = this.deps.config.metrics.trailingWindowMinutes * MINUTE_MS;
    const rows = (
      await this.deps.db.query(
        `SELECT b.bucket, b.volume, b.volatility, b.max_move_bps, q.mean_spread_bps
           FROM bars_1m b LEFT JOIN quote_metrics_1m q USING (exchange, market, symbol, bucket)
          WHERE b.exchange = $1 AND b.market = $2 AND b.symbol = $3 AND b.bucket >= $4::timestamptz AND b.bucket < $5::timestamptz
          ORDER BY b.bucket`,
        [exchange, market, symbol, iso(w.fromMs - trailingMs), iso(w.toMs)],
      )
    ).rows;
    const points: BucketPoint[] = rows.map((x) => ({
      bucketMs: new Date(x.bucket as string).getTime(),
      volume: Number(x.volume),
      volatility: num(x.volatility),
      maxMoveBps: num(x.max_move_bps),
      meanSpreadBps: num(x.mean_spread_bps),
    }));
    const gaps = (
      await this.deps.db.query<{ from_time: string; to_time: string }>(
        `SELECT from_time, to_time FROM gap_events WHERE exchange = $1 AND market = $2 AND symbol = $3 AND from_time < $5::timestamptz AND to_time >= $4::timestamptz`,
        [exchange, market, symbol, iso(w.fromMs), iso(w.toMs)],
      )
    ).rows.map((g) => ({ from: new Date(g.from_time).getTime(), to: new Date(g.to_time).getTime() }));
    const rules = rulesFor(symbol, this.deps.config.metrics.rules, this.deps.config.metrics.ruleOverrides);
    let fired = 0;
    for (const p of points.filter((x) => x.bucketMs >= w.fromMs)) {
      const trailing = points.filter((x) => x.bucketMs < p.bucketMs && x.bucketMs >= p.bucketMs - trailingMs);
      const verdicts: Verdict[] = [...evaluateBucket(p, trailing, rules), evaluateGaps(gaps.filter((g) => g.from < p.bucketMs + MINUTE_MS && g.to >= p.bucketMs).length)];
      fired += await this.record(exchange, market, symbol, p.bucketMs, verdicts, now);
    }
    return fired;
  }

  /** Stores the policy states changed by this step (after their mails were handed over: a crash between the two can repeat a mail, never lose one). */
  private async storePolicy(): Promise<void> {
    const changed = this.policy.changed();
    if (changed.length === 0) return;
    await this.deps.db.query(
      `INSERT INTO alert_policy_state (key, active, cooldown_until, held, updated_at)
       SELECT s.key, s.active, s.cooldown_until, s.held, now() FROM jsonb_to_recordset($1::jsonb) AS s(key text, active boolean, cooldown_until timestamptz, held jsonb)
       ON CONFLICT (key) DO UPDATE SET active = EXCLUDED.active, cooldown_until = EXCLUDED.cooldown_until, held = EXCLUDED.held, updated_at = EXCLUDED.updated_at`,
      [JSON.stringify(changed.map((c) => ({ key: c.key, active: c.active, cooldown_until: c.cooldownUntilMs === null ? null : iso(c.cooldownUntilMs), held: c.held })))],
    );
  }

  /** Stores and publishes firings (idempotent by rule, symbol and bucket) and resolutions; feeds the mail policy. */
  private async record(exchange: Exchange, market: Market, symbol: string, bucketMs: number, verdicts: readonly Verdict[], now: number): Promise<number> {
    const out: AnomalyRecord[] = [];
    const mails: AlertMail[] = [];
    for (const v of verdicts) {
      const base = { exchange, market, symbol, rule: v.rule, bucketMs, observed: v.observed, threshold: v.threshold };
      const latest = bucketMs >= (this.lastEvaluated.get(alertKey(base)) ?? -Infinity);
      if (latest) this.lastEvaluated.set(alertKey(base), bucketMs);
      if (v.firing) {
        const inserted = await this.deps.db.query(
          `INSERT INTO anomaly_events (rule, exchange, market, symbol, bucket, observed, threshold)
           VALUES ($1, $2, $3, $4, $5::timestamptz, $6, $7) ON CONFLICT DO NOTHING RETURNING rule`,
          [v.rule, exchange, market, symbol, iso(bucketMs), v.observed, v.threshold],
        );
        if (inserted.rows.length === 0) continue;
        this.firingsTotal.inc({ rule: v.rule });
        out.push({ type: 'anomaly', state: 'firing', ...base, detectedAtMs: now });
        mails.push(...this.policy.firing(base satisfies Firing, now));
      } else if (latest && this.policy.isActive(alertKey(base))) {
        await this.deps.db.query(
          `UPDATE anomaly_events SET resolved_at = now() WHERE rule = $1 AND exchange = $2 AND market = $3 AND symbol = $4 AND resolved_at IS NULL`,
          [v.rule, exchange, market, symbol],
        );
        out.push({ type: 'anomaly', state: 'resolved', ...base, detectedAtMs: now });
        mails.push(...this.policy.clear(base, now));
      }
    }
    if (out.length > 0) await this.deps.sink.publishAnomalies(out);
    for (const m of mails) await this.deps.mail?.(m);
    return out.filter((x) => x.state === 'firing').length;
  }

  private async checkStale(now: number): Promise<number> {
    const c = this.deps.config;
    const streams = this.deps.staleStreams ?? c.source.symbols.map((symbol) => ({ exchange: c.source.exchange, market: c.source.market, symbol }));
    let fired = 0;
    for (const s of streams) {
      const r = await this.deps.db.query<{ last: string | null }>(
        `SELECT max(time) AS last FROM trades WHERE exchange = $1 AND market = $2 AND symbol = $3 AND time > $4::timestamptz`,
        [s.exchange, s.market, s.symbol, iso(now - 86_400_000)],
      );
      const last = r.rows[0]?.last ? new Date(r.rows[0].last).getTime() : null;
      const v = evaluateStale(last, now, rulesFor(s.symbol, c.metrics.rules, c.metrics.ruleOverrides));
      if (v) fired += await this.record(s.exchange, s.market, s.symbol, bucketStart(now, MINUTE_MS), [v], now);
    }
    return fired;
  }
}
