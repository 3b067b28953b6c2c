// Every SQL query Grafana would send for the generated dashboards and alert rules, as it would send it (template
// variables and macros expanded), and what the panel or rule needs of the answer. The query tests run these on real
// PostgreSQL and in-process TimescaleDB (grafana/queries.*.test.ts).
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import type pg from 'pg';
import { parse } from 'yaml';
import { generate } from './generate.ts';
import { expandSql, type TimeRange, type Variables } from './macros.ts';
import { TIMESCALEDB } from './sql-query.ts';

export interface PanelQuery {
  /** "<dashboard> / <panel> / <refId>" or "alert <title>" or "variable <name>". */
  readonly where: string;
  readonly kind: 'panel' | 'alert' | 'variable';
  readonly panelType: string;
  readonly format: 'time_series' | 'table';
  readonly rawSql: string;
}

/** The dashboards' variables as a user first sees them (All symbols), on the spot market of the captures. */
export function defaultVariables(bar = '1m'): Variables {
  return {
    exchange: { value: 'binance' },
    market: { value: 'spot' },
    symbol: { value: ['BTCUSDT', 'ETHUSDT'], multi: true, includeAll: true },
    bar: { value: bar },
    ratio_base: { value: 'BTCUSDT' },
    ratio_quote: { value: 'ETHUSDT' },
  };
}

export function sqlQueries(): PanelQuery[] {
  const files = generate();
  const out: PanelQuery[] = [];
  for (const [path, text] of files) {
    if (!path.startsWith('grafana/dashboards/')) continue;
    const d = JSON.parse(text) as dashboard.Dashboard;
    for (const v of d.templating?.list ?? [])
      if (v.datasource?.uid === TIMESCALEDB.uid && typeof v.query === 'string')
        out.push({ where: `${d.title} / variable ${v.name}`, kind: 'variable', panelType: 'variable', format: 'table', rawSql: v.query });
    for (const p of d.panels ?? []) {
      if (p.type === 'row' || p.datasource?.uid !== TIMESCALEDB.uid) continue;
      const panel = p as dashboard.Panel;
      for (const t of (panel.targets ?? []) as unknown as { refId: string; rawSql: string; format: 'time_series' | 'table' }[])
        out.push({ where: `${d.title} / ${panel.title} / ${t.refId}`, kind: 'panel', panelType: panel.type, format: t.format, rawSql: t.rawSql });
    }
  }
  const rules = parse(files.get('grafana/provisioning/alerting/rules.yaml')!) as {
    groups: { rules: { title: string; data: { datasourceUid: string; model: { rawSql?: string; format?: 'time_series' | 'table' } }[] }[] }[];
  };
  for (const r of rules.groups.flatMap((g) => g.rules))
    for (const q of r.data)
      if (q.datasourceUid === TIMESCALEDB.uid) out.push({ where: `alert ${r.title}`, kind: 'alert', panelType: 'alert', format: q.model.format ?? 'time_series', rawSql: q.model.rawSql! });
  return out;
}

/** The query once per value of the variables that change which bars are read ($bar, the width). */
export function expansions(q: PanelQuery, range: TimeRange): { label: string; sql: string }[] {
  const bars = /\$\{?bar\b/.test(q.rawSql) ? ['1m', '5m', '1h'] : ['1m'];
  return bars.map((bar) => ({
    label: bars.length > 1 ? `${q.where} (bar=${bar})` : q.where,
    // The TimescaleDB data source is provisioned with timescaledb: true: Grafana expands for TimescaleDB on both databases.
    sql: expandSql(q.rawSql, { range, vars: defaultVariables(bar), timescaledb: true }),
  }));
}

export interface Field {
  readonly name: string;
  readonly dataTypeID: number;
}

const NUMERIC = new Set([20, 21, 23, 700, 701, 1700]);
const TIMESTAMP = new Set([1082, 1114, 1184]);
const TEXT = new Set([25, 1043, 19]);

/** What a panel of this type needs from the result; [] when it gets it. */
export function resultProblems(q: PanelQuery, fields: readonly Field[], rowCount: number): string[] {
  const problems: string[] = [];
  const names = fields.map((f) => `${f.name}:${f.dataTypeID}`).join(', ');
  const numeric = fields.filter((f) => NUMERIC.has(f.dataTypeID) && f.name !== 'time');
  if (rowCount === 0) problems.push('no rows for the replayed range');
  if (q.format === 'time_series') {
    const time = fields.find((f) => f.name === 'time');
    if (!time) problems.push(`time-series format needs a "time" column (got ${names})`);
    else if (!TIMESTAMP.has(time.dataTypeID) && !NUMERIC.has(time.dataTypeID)) problems.push(`"time" is of type ${time.dataTypeID}, not a timestamp`);
    if (numeric.length === 0) problems.push(`time-series format needs a numeric value column (got ${names})`);
  }
  switch (q.panelType) {
    case 'candlestick':
      for (const c of ['open', 'high', 'low', 'close', 'volume'])
        if (!fields.some((f) => f.name === c && NUMERIC.has(f.dataTypeID))) problems.push(`candlestick needs a numeric ${c} column (got ${names})`);
      break;
    case 'stat':
    case 'alert':
    case 'timeseries':
    case 'state-timeline':
      if (numeric.length === 0) problems.push(`${q.panelType} needs a numeric column (got ${names})`);
      break;
    case 'variable':
      if (fields.length !== 1 || !TEXT.has(fields[0]!.dataTypeID)) problems.push(`a variable query returns one text column (got ${names})`);
      break;
    case 'table':
      if (fields.length < 2) problems.push(`a table shows columns (got ${names})`);
      break;
    default:
      problems.push(`no expectation for panel type ${q.panelType}`);
  }
  return problems;
}

/**
 * Values a viewer can put in a dashboard URL, each aimed at leaving the quoted value it lands in: closing the quote,
 * ending the statement, commenting out the rest, a backslash before the quote, a double quote for an identifier.
 */
export const HOSTILE_VALUES = [
  '1m; DROP TABLE trades; --',
  "x' OR '1'='1",
  "x'); DELETE FROM trades; --",
  "x\\'; DELETE FROM trades; --",
  'x" OR 1=1 --',
  "BTCUSDT' UNION ALL SELECT usename FROM pg_user --",
] as const;

/** A value that names nothing and holds nothing but letters: what a hostile value must behave like. */
const UNKNOWN_VALUE = 'nosuchvalue';

/**
 * The query with each variable it uses set, in turn, to each hostile value and to UNKNOWN_VALUE (the others as a user
 * first sees them).
 */
export function hostileExpansions(q: PanelQuery, range: TimeRange): { label: string; baseline: string; sql: string }[] {
  const out: { label: string; baseline: string; sql: string }[] = [];
  for (const name of Object.keys(defaultVariables())) {
    if (!new RegExp(`\\$\\{?${name}\\b`).test(q.rawSql)) continue;
    const expand = (value: string) =>
      expandSql(q.rawSql, { range, vars: { ...defaultVariables(), [name]: name === 'symbol' ? { value: [value], multi: true, includeAll: true } : { value } }, timescaledb: true });
    const baseline = expand(UNKNOWN_VALUE);
    for (const value of HOSTILE_VALUES) out.push({ label: `${q.where} with ${name} = ${value}`, baseline, sql: expand(value) });
  }
  return out;
}

/**
 * Runs every query with every hostile value on a real server; returns what went wrong: an error (the value left its
 * quotes), more than one statement run, or an answer other than the one a plain unknown value gets (for a filter: no
 * rows; for a count: its zero).
 */
export async function injectionProblems(client: pg.ClientBase, queries: readonly PanelQuery[], range: TimeRange): Promise<string[]> {
  const problems: string[] = [];
  // One baseline per query and variable, shared by its hostile values.
  const baselines = new Map<string, string>();
  const baseline = async (sql: string) => {
    let rows = baselines.get(sql);
    if (rows === undefined) baselines.set(sql, (rows = JSON.stringify(((await client.query(sql)) as pg.QueryResult).rows)));
    return rows;
  };
  for (const q of queries) {
    for (const e of hostileExpansions(q, range)) {
      try {
        const r = (await client.query(e.sql)) as pg.QueryResult | pg.QueryResult[];
        if (Array.isArray(r)) problems.push(`${e.label}: ran ${r.length} statements`);
        else if (JSON.stringify(r.rows) !== (await baseline(e.baseline))) problems.push(`${e.label}: ${r.rowCount} rows, unlike an unknown value's`);
      } catch (err) {
        problems.push(`${e.label}: ${(err as Error).message}`);
      }
    }
  }
  return problems;
}
