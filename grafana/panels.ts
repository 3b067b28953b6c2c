// What the three dashboards share: template variables, a SQL WHERE fragment for them, and small panel helpers, so that
// every panel names its data source, its unit and its variables the same way.
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { PROMETHEUS, TIMESCALEDB } from './sql-query.ts';

export const DASHBOARD_UIDS = {
  marketOverview: 'tickwatch-market-overview',
  riskMonitor: 'tickwatch-risk-monitor',
  pipelineHealth: 'tickwatch-pipeline-health',
} as const;

/** Grafana's path to a dashboard (GF_SERVER_ROOT_URL is put in front by Grafana and by the mail template). */
export const dashboardPath = (uid: string, slug: string) => `/d/${uid}/${slug}`;

const option = (value: string): dashboard.VariableOption => ({ text: value, value, selected: true });

/**
 * exchange and market are single-valued (rendered raw, so queries write `exchange = '$exchange'`); symbol is
 * multi-valued with All (rendered 'A','B', so queries write `symbol IN ($symbol)`). The option lists come from the
 * 1-hour bars, a small relation, refreshed when the time range changes.
 */
export function marketVariables(): dashboard.QueryVariableBuilder[] {
  return [
    new dashboard.QueryVariableBuilder('exchange')
      .allowCustomValue(false)
      .label('Exchange')
      .datasource(TIMESCALEDB)
      .query('SELECT DISTINCT exchange FROM bars_1h ORDER BY 1')
      .current(option('binance'))
      .refresh(dashboard.VariableRefresh.OnDashboardLoad)
      .sort(dashboard.VariableSort.AlphabeticalAsc),
    new dashboard.QueryVariableBuilder('market')
      .allowCustomValue(false)
      .label('Market')
      .datasource(TIMESCALEDB)
      .query("SELECT DISTINCT market FROM bars_1h WHERE exchange = '$exchange' ORDER BY 1")
      .current(option('spot'))
      .refresh(dashboard.VariableRefresh.OnDashboardLoad)
      .sort(dashboard.VariableSort.AlphabeticalAsc),
    new dashboard.QueryVariableBuilder('symbol')
      .allowCustomValue(false)
      .label('Symbol')
      .datasource(TIMESCALEDB)
      .query("SELECT DISTINCT symbol FROM bars_1h WHERE exchange = '$exchange' AND market = '$market' ORDER BY 1")
      .multi(true)
      .includeAll(true)
      .current({ text: ['All'], value: ['$__all'], selected: true })
      .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
      .sort(dashboard.VariableSort.AlphabeticalAsc),
  ];
}

/** `exchange = '$exchange' AND market = '$market' AND symbol IN ($symbol)`, with an optional table alias. */
export function marketFilter(alias = ''): string {
  const p = alias === '' ? '' : `${alias}.`;
  return `${p}exchange = '$exchange' AND ${p}market = '$market' AND ${p}symbol IN ($symbol)`;
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

export const TIME_PICKER = () => new dashboard.TimePickerBuilder().refreshIntervals(['10s', '30s', '1m', '5m', '15m', '1h']);

export { PROMETHEUS, TIMESCALEDB };
