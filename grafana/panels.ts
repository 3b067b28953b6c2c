// What the three dashboards share: their settings, the template variables, the SQL that reads them, and small panel
// parts, so that every panel names its data source, its unit and its variables the same way.
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { PROMETHEUS, TIMESCALEDB, sql, type SqlQueryBuilder } from './sql-query.ts';

export const DASHBOARD_UIDS = {
  marketOverview: 'tickwatch-market-overview',
  riskMonitor: 'tickwatch-risk-monitor',
  pipelineHealth: 'tickwatch-pipeline-health',
} as const;

/** Grafana's path to a dashboard (GF_SERVER_ROOT_URL is put in front by Grafana and by the mail template). */
export const dashboardPath = (uid: string, slug: string) => `/d/${uid}/${slug}`;

interface DashboardSpec {
  uid: string;
  description: string;
  /** After the `tickwatch` tag every dashboard carries. */
  tags: string[];
  from: string;
}

/** Every dashboard reads the same way: read-only, UTC, a shared crosshair and the same refresh choices. */
export function tickwatchDashboard(title: string, d: DashboardSpec & { refresh: string }): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(title)
    .uid(d.uid)
    .description(d.description)
    .tags(['tickwatch', ...d.tags])
    .readonly()
    .timezone('utc')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .time({ from: d.from, to: 'now' })
    .refresh(d.refresh)
    .timepicker(new dashboard.TimePickerBuilder().refreshIntervals(['10s', '30s', '1m', '5m', '15m', '1h']));
}

/** What a multi-valued variable with All starts at. */
export const ALL: dashboard.VariableOption = { text: ['All'], value: ['$__all'], selected: true };

/** A variable whose options a TimescaleDB query lists; only those can be chosen (variables are values, never SQL). */
function listedVariable(
  name: string,
  label: string,
  query: string,
  current: string | dashboard.VariableOption,
  refresh: dashboard.VariableRefresh,
): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder(name)
    .allowCustomValue(false)
    .label(label)
    .datasource(TIMESCALEDB)
    .query(query)
    .current(typeof current === 'string' ? { text: current, value: current, selected: true } : current)
    .refresh(refresh)
    .sort(dashboard.VariableSort.AlphabeticalAsc);
}

const SYMBOLS = "SELECT DISTINCT symbol FROM bars_1h WHERE exchange = '$exchange' AND market = '$market' ORDER BY 1";

/** A symbol of the chosen exchange and market (one, unless made multi), starting at `value`. */
export const symbolVariable = (name: string, label: string, value: string | dashboard.VariableOption) =>
  listedVariable(name, label, SYMBOLS, value, dashboard.VariableRefresh.OnTimeRangeChanged);

/**
 * exchange and market are single-valued (rendered raw, so queries write `exchange = '$exchange'`); symbol is
 * multi-valued with All (rendered 'A','B', so queries write `symbol IN ($symbol)`). The option lists come from the
 * 1-hour bars, a small relation; the symbols are refreshed when the time range changes.
 */
function marketVariables(): dashboard.QueryVariableBuilder[] {
  return [
    listedVariable('exchange', 'Exchange', 'SELECT DISTINCT exchange FROM bars_1h ORDER BY 1', 'binance', dashboard.VariableRefresh.OnDashboardLoad),
    listedVariable('market', 'Market', "SELECT DISTINCT market FROM bars_1h WHERE exchange = '$exchange' ORDER BY 1", 'spot', dashboard.VariableRefresh.OnDashboardLoad),
    symbolVariable('symbol', 'Symbol', ALL).multi(true).includeAll(true),
  ];
}

/** A dashboard of the market tables: the market variables first, refreshed each minute as the 1-minute metrics are. */
export function marketDashboard(title: string, d: DashboardSpec): dashboard.DashboardBuilder {
  const b = tickwatchDashboard(title, { ...d, refresh: '1m' });
  for (const v of marketVariables()) b.withVariable(v);
  return b;
}

/** `exchange = '$exchange' AND market = '$market' AND symbol IN ($symbol)`, with an optional table alias. */
export function marketFilter(alias = ''): string {
  const p = alias === '' ? '' : `${alias}.`;
  return `${p}exchange = '$exchange' AND ${p}market = '$market' AND ${p}symbol IN ($symbol)`;
}

/** `columns` of `relation` per symbol over time (time, symbol, ...), in the range and the chosen market; `condition` narrows further. */
export function perSymbol(columns: string, relation: string, condition = ''): SqlQueryBuilder {
  return sql(`
    SELECT bucket AS time, symbol, ${columns}
      FROM ${relation}
     WHERE ${condition === '' ? '' : `${condition} AND `}$__timeFilter(bucket) AND ${marketFilter()}
     ORDER BY 1`);
}

export const thresholds = (steps: { value: number | null; color: string }[]) =>
  new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps(steps);

/** Green at zero, red from one: for counts of things that should not happen. */
export const greenAtZero = () =>
  thresholds([
    { value: null, color: 'green' },
    { value: 1, color: 'red' },
  ]);

export const legendTable = () =>
  new common.VizLegendOptionsBuilder().displayMode(common.LegendDisplayMode.Table).placement(common.LegendPlacement.Bottom).showLegend(true).calcs(['lastNotNull', 'max']);

export const tooltipAll = () => new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending);

export { PROMETHEUS, TIMESCALEDB };
