// Grafana unified alerting, file-provisioned: the market rules (SQL on the 1-minute bars and quote metrics) and the
// pipeline rules (PromQL on the recording rules), one email contact point and the notification policy. Built with the
// SDK's alerting builders, then laid out in the file-provisioning format Grafana reads from provisioning/alerting.
import * as alerting from '@grafana/grafana-foundation-sdk/alerting';
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as expr from '@grafana/grafana-foundation-sdk/expr';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import { RECORDED } from './metric-names.ts';
import { DASHBOARD_UIDS, dashboardPath } from './panels.ts';
import { PIPELINE_LAG_SECONDS_THRESHOLD } from './prometheus-rules.ts';
import { PROMETHEUS, TIMESCALEDB, sql, type SqlQueryBuilder } from './sql-query.ts';

export const ALERT_FOLDER = 'tickwatch';
export const CONTACT_POINT = 'tickwatch-email';
/** The Grafana environment variable holding the alert recipients (comma or semicolon separated). */
export const ALERT_EMAIL_ENV = 'ALERT_EMAIL_TO';

/**
 * Thresholds: the same defaults as the metrics worker's rules (VOLATILITY_Z_THRESHOLD, VOLUME_SPIKE_RATIO,
 * SPREAD_WARN_RATIO, TRAILING_WINDOW_MINUTES in .env.example), so Grafana and the worker's mail agree out of the box.
 */
export const MARKET_THRESHOLDS = { volatilityZ: 4, volumeSpikeRatio: 5, spreadWarnRatio: 3, trailingMinutes: 60 } as const;

const EXPR = { type: '__expr__', uid: '__expr__' };

/**
 * The worker's trailing window (metrics/rules.ts): the buckets of the same series in [bucket - 60 min, bucket), and
 * no verdict with fewer than MIN_TRAILING of them.
 */
const TRAILING = `PARTITION BY exchange, market, symbol ORDER BY bucket RANGE BETWEEN interval '${MARKET_THRESHOLDS.trailingMinutes} minutes' PRECEDING AND interval '1 microsecond' PRECEDING`;
const MIN_TRAILING = 10;

interface RuleSpec {
  readonly uid: string;
  readonly title: string;
  readonly query: cog.Builder<cog.Dataquery>;
  readonly datasourceUid: string;
  /** Seconds of history the query reads. */
  readonly rangeSeconds: number;
  readonly evaluator: { type: 'gt' | 'lt'; params: number[] };
  readonly for: string;
  readonly severity: 'warning' | 'critical';
  readonly noData: 'Alerting' | 'NoData' | 'OK';
  readonly summary: string;
  readonly description: string;
  readonly dashboardUid: string;
  readonly dashboardSlug: string;
  readonly panelTitle: string;
}

/** Query A -> reduce B (last non-null value of each series) -> threshold C. */
function rule(s: RuleSpec, panelIds: ReadonlyMap<string, number>): alerting.RuleBuilder {
  const panelId = panelIds.get(`${s.dashboardUid}/${s.panelTitle}`);
  if (panelId === undefined) throw new Error(`alert ${s.uid}: no panel '${s.panelTitle}' on dashboard ${s.dashboardUid}`);
  const link = `${dashboardPath(s.dashboardUid, s.dashboardSlug)}?viewPanel=${panelId}${s.datasourceUid === TIMESCALEDB.uid ? '&var-symbol={{ $labels.symbol }}' : ''}`;
  return new alerting.RuleBuilder(s.title)
    .uid(s.uid)
    .condition('C')
    .withQuery(new alerting.QueryBuilder('A').datasourceUid(s.datasourceUid).relativeTimeRange({ from: s.rangeSeconds, to: 0 }).model(s.query))
    .withQuery(
      new alerting.QueryBuilder('B')
        .datasourceUid('__expr__')
        .model(new expr.TypeReduceBuilder().refId('B').expression('A').reducer('last').settings({ mode: 'dropNN' }).datasource(EXPR)),
    )
    .withQuery(
      new alerting.QueryBuilder('C')
        .datasourceUid('__expr__')
        .model(new expr.TypeThresholdBuilder().refId('C').expression('B').conditions([{ evaluator: s.evaluator }]).datasource(EXPR)),
    )
    .forDuration(s.for)
    .noDataState(s.noData)
    .execErrState('Error')
    .labels({ severity: s.severity, team: 'tickwatch' })
    .annotations({
      summary: s.summary,
      description: s.description,
      dashboard: link,
      // Grafana turns these two into the mail's "Go to dashboard" / "Go to panel" links (GF_SERVER_ROOT_URL first).
      __dashboardUid__: s.dashboardUid,
      __panelId__: String(panelId),
    });
}

const sqlModel = (rawSql: string) => sql(rawSql).refId('A');

/** How many standard deviations `column` stands from its mean over the window `w`; the Risk Monitor charts the same. */
export const zScore = (column: string) => `((${column} - avg(${column}) OVER w) / nullif(stddev_samp(${column}) OVER w, 0))::float8`;

/**
 * Each 1-minute bar's `value` (an expression over the trailing window w) as `alias`, labelled by exchange, market and
 * symbol; null, so no verdict, while the window holds fewer than MIN_TRAILING values of `column`.
 */
function barsAgainstTrailing(column: string, value: string, alias: string): SqlQueryBuilder {
  const head = `       CASE WHEN count(${column}) OVER w >= ${MIN_TRAILING} THEN`;
  const tail = `${value} END AS ${alias}`;
  // A value that would run the line past 120 columns goes on a line of its own, so rules.yaml reads without scrolling.
  const verdict = head.length + 1 + tail.length > 120 ? `${head}\n            ${tail}` : `${head} ${tail}`;
  return sqlModel(
    [
      'SELECT bucket AS time, exchange, market, symbol,',
      verdict,
      '  FROM bars_1m',
      ' WHERE $__timeFilter(bucket)',
      `WINDOW w AS (${TRAILING})`,
      ' ORDER BY 1',
    ].join('\n'),
  );
}

export function marketRules(panelIds: ReadonlyMap<string, number>): alerting.RuleBuilder[] {
  const common = { datasourceUid: TIMESCALEDB.uid, rangeSeconds: (MARKET_THRESHOLDS.trailingMinutes + 10) * 60, noData: 'OK' as const };
  const overview = { dashboardUid: DASHBOARD_UIDS.marketOverview, dashboardSlug: 'market-overview' };
  const risk = { dashboardUid: DASHBOARD_UIDS.riskMonitor, dashboardSlug: 'risk-monitor' };
  return [
    rule(
      {
        ...common,
        ...risk,
        uid: 'tickwatch-volatility-spike',
        title: 'Volatility spike',
        panelTitle: 'Volatility z-score',
        query: barsAgainstTrailing('volatility', zScore('volatility'), 'volatility_z'),
        evaluator: { type: 'gt', params: [MARKET_THRESHOLDS.volatilityZ] },
        for: '0s',
        severity: 'warning',
        summary: `{{ $labels.symbol }} ({{ $labels.market }}): 1-minute volatility is {{ humanize $values.B.Value }} standard deviations above its trailing ${MARKET_THRESHOLDS.trailingMinutes} minutes`,
        description: 'Tick-to-tick log-return volatility of the last closed minute against the previous hour (bars_1m).',
      },
      panelIds,
    ),
    rule(
      {
        ...common,
        ...overview,
        uid: 'tickwatch-volume-spike',
        title: 'Volume spike',
        panelTitle: 'Quote volume',
        query: barsAgainstTrailing('volume', '(volume / nullif(avg(volume) OVER w, 0))::float8', 'volume_ratio'),
        evaluator: { type: 'gt', params: [MARKET_THRESHOLDS.volumeSpikeRatio] },
        for: '0s',
        severity: 'warning',
        summary: `{{ $labels.symbol }} ({{ $labels.market }}): 1-minute volume is {{ humanize $values.B.Value }} times its trailing ${MARKET_THRESHOLDS.trailingMinutes}-minute mean`,
        description: 'Base-asset volume of the last closed minute against the mean of the previous hour (bars_1m).',
      },
      panelIds,
    ),
    rule(
      {
        ...common,
        ...overview,
        uid: 'tickwatch-spread-warning',
        title: 'Spread warning',
        panelTitle: 'Spread (bps)',
        query: sqlModel(`
          SELECT q.bucket AS time, q.exchange, q.market, q.symbol,
                 (q.mean_spread_bps / nullif(t.median_bps, 0))::float8 AS spread_ratio
            FROM quote_metrics_1m q
           CROSS JOIN LATERAL (
                 SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY p.mean_spread_bps) AS median_bps, count(p.mean_spread_bps) AS n
                   FROM quote_metrics_1m p
                  WHERE p.exchange = q.exchange AND p.market = q.market AND p.symbol = q.symbol
                    AND p.bucket < q.bucket AND p.bucket >= q.bucket - interval '${MARKET_THRESHOLDS.trailingMinutes} minutes') t
           WHERE $__timeFilter(q.bucket) AND t.n >= ${MIN_TRAILING}
           ORDER BY 1`),
        evaluator: { type: 'gt', params: [MARKET_THRESHOLDS.spreadWarnRatio] },
        for: '2m',
        severity: 'warning',
        summary: `{{ $labels.symbol }} ({{ $labels.market }}): the mean spread is {{ humanize $values.B.Value }} times its trailing ${MARKET_THRESHOLDS.trailingMinutes}-minute median`,
        description: 'Mean bid-ask spread in basis points of the mid over the last closed minute against the median of the previous hour (quote_metrics_1m).',
      },
      panelIds,
    ),
  ];
}

export function pipelineRules(panelIds: ReadonlyMap<string, number>): alerting.RuleBuilder[] {
  const health = { dashboardUid: DASHBOARD_UIDS.pipelineHealth, dashboardSlug: 'pipeline-health', datasourceUid: PROMETHEUS.uid, rangeSeconds: 600 };
  const promModel = (e: string) => new prometheus.DataqueryBuilder().refId('A').expr(e).range().datasource(PROMETHEUS);
  return [
    rule(
      {
        ...health,
        uid: 'tickwatch-pipeline-lag',
        title: 'Pipeline lag',
        panelTitle: 'Pipeline lag (alert input)',
        query: promModel(RECORDED.pipelineLagSeconds),
        evaluator: { type: 'gt', params: [PIPELINE_LAG_SECONDS_THRESHOLD] },
        for: '1m',
        severity: 'warning',
        noData: 'OK',
        summary: `Ticks on {{ $labels.topic }} reach the database {{ humanizeDuration $values.B.Value }} late (threshold ${PIPELINE_LAG_SECONDS_THRESHOLD} s)`,
        description: 'The tick writers trail Kafka: the database is slow, a writer is stuck, or no writer runs while ingestion produces.',
      },
      panelIds,
    ),
    rule(
      {
        ...health,
        uid: 'tickwatch-ingestion-stalled',
        title: 'Ingestion stalled',
        panelTitle: 'Messages per second per stream',
        query: promModel(`sum(${RECORDED.receivedRate})`),
        evaluator: { type: 'lt', params: [0.001] },
        for: '2m',
        severity: 'critical',
        // No series at all means ingestion is not even scraped: as bad as silent.
        noData: 'Alerting',
        summary: 'Ingestion has received no exchange messages for 2 minutes',
        description: 'No stream delivered a message: the exchange sockets are down, reconnecting, or ingestion is not running.',
      },
      panelIds,
    ),
  ];
}

// ------------------------------------------------------------------------------------ file-provisioning layout ---

/** provisioning/alerting/rules.yaml: the SDK rule objects in Grafana's file format (orgId, folder, interval as text). */
export function rulesFile(panelIds: ReadonlyMap<string, number>): object {
  const group = (name: string, rules: alerting.RuleBuilder[]) => ({
    orgId: 1,
    name,
    folder: ALERT_FOLDER,
    interval: '1m',
    rules: rules.map((b) => {
      const r = b.build();
      return {
        uid: r.uid,
        title: r.title,
        condition: r.condition,
        data: r.data.map((q) => ({ refId: q.refId, relativeTimeRange: q.relativeTimeRange ?? { from: 0, to: 0 }, datasourceUid: q.datasourceUid, model: plain(q.model) })),
        noDataState: r.noDataState,
        execErrState: r.execErrState,
        for: r.for,
        labels: r.labels,
        annotations: r.annotations,
        isPaused: false,
      };
    }),
  });
  return { apiVersion: 1, groups: [group('market', marketRules(panelIds)), group('pipeline', pipelineRules(panelIds))] };
}

/** provisioning/alerting/contact-points.yaml: one email receiver; addresses come from Grafana's environment. */
export function contactPointsFile(): object {
  const cp = new alerting.ContactPointBuilder()
    .uid('tickwatch-email')
    .name(CONTACT_POINT)
    .type('email')
    // Grafana interpolates $VARIABLES in contact-point settings at provisioning time; SMTP itself is GF_SMTP_*.
    .settings({ addresses: `$${ALERT_EMAIL_ENV}`, singleEmail: true })
    .disableResolveMessage(false)
    .build();
  return {
    apiVersion: 1,
    contactPoints: [{ orgId: 1, name: cp.name, receivers: [{ uid: cp.uid, type: cp.type, settings: cp.settings, disableResolveMessage: cp.disableResolveMessage }] }],
  };
}

/** provisioning/alerting/policies.yaml: everything to the email contact point, one notification per rule and symbol. */
export function policiesFile(): object {
  const p = new alerting.NotificationPolicyBuilder()
    .receiver(CONTACT_POINT)
    .groupBy(['alertname', 'symbol'])
    .groupWait('30s')
    .groupInterval('5m')
    .repeatInterval('4h')
    .build();
  return { apiVersion: 1, policies: [{ orgId: 1, ...p }] };
}

/** A builder's output without the SDK's variant marker (a function JSON would drop anyway). */
function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v));
}
