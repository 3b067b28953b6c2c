// Risk Monitor: what fires now (green at zero), when anomalies fired, volatility and its z-score against the trailing
// hour, the recent anomaly events, and data-quality events (gaps, stale streams). Reads anomaly_events,
// bars_1m/5m/1h and gap_events.
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { MARKET_THRESHOLDS, zScore } from './alerting.ts';
import { DASHBOARD_UIDS, TIMESCALEDB, greenAtZero, legendTable, marketDashboard, marketFilter, perSymbol, thresholds, tooltipAll } from './panels.ts';
import { sql, type SqlQueryBuilder } from './sql-query.ts';

/** The rules of anomaly_events (sql/migrations/0100_schema.sql), so a rule that never fired still shows 0. */
export const ANOMALY_RULES = ['volatilitySpike', 'volumeSpike', 'spreadWarning', 'priceJump', 'gap', 'staleStream'] as const;
const RULE_LIST = ANOMALY_RULES.map((r) => `'${r}'`).join(', ');

/** z-score of `column` against the previous hour of the same series, read with one hour of lead-in before the range. */
function zScoreSql(relation: string, column: string, alias: string): string {
  return `
    SELECT time, symbol, ${alias}
      FROM (SELECT bucket AS time, symbol,
                   ${zScore(column)} AS ${alias}
              FROM ${relation}
             WHERE bucket >= $__timeFrom()::timestamptz - interval '${MARKET_THRESHOLDS.trailingMinutes} minutes'
               AND bucket <= $__timeTo()::timestamptz AND ${marketFilter()}
            WINDOW w AS (PARTITION BY exchange, market, symbol ORDER BY bucket
                         RANGE BETWEEN interval '${MARKET_THRESHOLDS.trailingMinutes} minutes' PRECEDING AND interval '1 microsecond' PRECEDING)) z
     WHERE $__timeFilter(time)
     ORDER BY 1`;
}

/** A count of things that should not happen: green at zero, red from one, as the whole background. */
function countStat(p: {
  title: string;
  description?: string;
  query: SqlQueryBuilder;
  /** The last value of the query's one row unless told otherwise. */
  reduce?: common.ReduceDataOptionsBuilder;
  w?: number;
}): stat.PanelBuilder {
  const b = new stat.PanelBuilder().title(p.title);
  if (p.description !== undefined) b.description(p.description);
  return b
    .datasource(TIMESCALEDB)
    .withTarget(p.query.table())
    .reduceOptions(p.reduce ?? new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']))
    .thresholds(greenAtZero())
    .colorMode(common.BigValueColorMode.Background)
    .graphMode(common.BigValueGraphMode.None)
    .gridPos({ x: 0, y: 0, w: p.w ?? 4, h: 5 });
}

export function riskMonitor(): dashboard.DashboardBuilder {
  return marketDashboard('Risk Monitor', {
    uid: DASHBOARD_UIDS.riskMonitor,
    description: 'Anomalies found by the metrics worker, volatility against its trailing hour, and data-quality events.',
    tags: ['risk'],
    from: 'now-6h',
  })
    .withRow(new dashboard.RowBuilder('Now'))
    .withPanel(
      countStat({
        title: 'Firing rules',
        description: 'Open anomaly firings (not yet resolved) per rule',
        query: sql(`
          SELECT r.rule, count(e.rule) AS firing
            FROM unnest(ARRAY[${RULE_LIST}]) AS r(rule)
            LEFT JOIN anomaly_events e
              ON e.rule = r.rule AND e.resolved_at IS NULL AND ${marketFilter('e')}
           GROUP BY r.rule
           ORDER BY r.rule`),
        // One value per rule, named by it.
        reduce: new common.ReduceDataOptionsBuilder().values(true).calcs(['lastNotNull']).fields('/^firing$/'),
        w: 16,
      }).textMode(common.BigValueTextMode.ValueAndName),
    )
    .withPanel(
      countStat({
        title: 'Anomalies in range',
        query: sql(`
          SELECT count(*) AS anomalies
            FROM anomaly_events
           WHERE $__timeFilter(bucket) AND ${marketFilter()}`),
      }),
    )
    .withPanel(
      countStat({
        title: 'Data-quality events in range',
        query: sql(`
          SELECT (SELECT count(*) FROM gap_events WHERE $__timeFilter(from_time) AND ${marketFilter()})
               + (SELECT count(*) FROM anomaly_events
                   WHERE rule IN ('gap', 'staleStream') AND $__timeFilter(bucket) AND ${marketFilter()}) AS events`),
      }),
    )
    .withPanel(
      new statetimeline.PanelBuilder()
        .title('Anomaly timeline')
        .description('Per symbol and rule: firing from the bucket that fired until the firing resolved')
        .datasource(TIMESCALEDB)
        .withTarget(
          sql(`
            SELECT bucket AS time, symbol || ' ' || rule AS metric, 1 AS firing
              FROM anomaly_events
             WHERE $__timeFilter(bucket) AND ${marketFilter()}
            UNION ALL
            SELECT resolved_at AS time, symbol || ' ' || rule AS metric, 0 AS firing
              FROM anomaly_events
             WHERE resolved_at IS NOT NULL AND $__timeFilter(resolved_at) AND ${marketFilter()}
             ORDER BY 1`),
        )
        .mappings([
          {
            type: dashboard.MappingType.ValueToText,
            options: { '0': { text: 'ok', color: 'green', index: 0 }, '1': { text: 'firing', color: 'red', index: 1 } },
          },
        ])
        .thresholds(greenAtZero())
        .mergeValues(true)
        .showValue(common.VisibilityMode.Never)
        .gridPos({ x: 0, y: 0, w: 24, h: 8 }),
    )
    .withRow(new dashboard.RowBuilder('Volatility'))
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Volatility')
        .description('Sample standard deviation of tick-to-tick log returns within each bar')
        .datasource(TIMESCALEDB)
        .withTarget(
          perSymbol('volatility', 'bars_1m'),
        )
        .unit('percentunit')
        .legend(legendTable())
        .tooltip(tooltipAll())
        .gridPos({ x: 0, y: 0, w: 12, h: 8 }),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Volatility z-score')
        .description(`(volatility - mean) / stddev over the previous ${MARKET_THRESHOLDS.trailingMinutes} one-minute bars; the alert fires above ${MARKET_THRESHOLDS.volatilityZ}`)
        .datasource(TIMESCALEDB)
        .withTarget(sql(zScoreSql('bars_1m', 'volatility', 'volatility_z')).refId('A'))
        .withTarget(sql(zScoreSql('bars_1m', 'volume', 'volume_z')).refId('B'))
        .unit('none')
        .legend(legendTable())
        .tooltip(tooltipAll())
        .thresholds(
          thresholds([
            { value: null, color: 'green' },
            { value: MARKET_THRESHOLDS.volatilityZ, color: 'red' },
          ]),
        )
        .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed))
        .gridPos({ x: 0, y: 0, w: 12, h: 8 }),
    )
    .withRow(new dashboard.RowBuilder('Events'))
    .withPanel(
      new table.PanelBuilder()
        .title('Recent anomaly events')
        .datasource(TIMESCALEDB)
        .withTarget(
          sql(`
            SELECT bucket, fired_at, resolved_at, rule, exchange, market, symbol, observed, threshold, detail::text AS detail
              FROM anomaly_events
             WHERE $__timeFilter(bucket) AND ${marketFilter()}
             ORDER BY bucket DESC, rule
             LIMIT 500`).table(),
        )
        .filterable(true)
        .gridPos({ x: 0, y: 0, w: 24, h: 10 }),
    )
    .withPanel(
      new table.PanelBuilder()
        .title('Data-quality events (gaps, stale streams)')
        .datasource(TIMESCALEDB)
        .withTarget(
          sql(`
            SELECT detected_at AS time, 'gap' AS kind, exchange, market, symbol, stream,
                   from_time, to_time, from_id, to_id, reason
              FROM gap_events
             WHERE $__timeFilter(from_time) AND ${marketFilter()}
            UNION ALL
            SELECT fired_at, rule, exchange, market, symbol, coalesce(detail ->> 'stream', ''),
                   bucket, resolved_at, NULL, NULL, detail::text
              FROM anomaly_events
             WHERE rule IN ('gap', 'staleStream') AND $__timeFilter(bucket) AND ${marketFilter()}
             ORDER BY 1 DESC
             LIMIT 500`).table(),
        )
        .filterable(true)
        .gridPos({ x: 0, y: 0, w: 24, h: 10 }),
    );
}
