// What Grafana does to a query before the database or Prometheus sees it, so tests can run the real text:
//  1. the frontend replaces template variables ($var, ${var}, ${var:format}) with the datasource's formatting
//     (PostgreSQL: 'a','b' for multi-value and All, the raw escaped value otherwise; Prometheus: regex alternatives);
//  2. for SQL, the backend replaces $__interval / $__interval_ms / $__unixEpochFrom() / $__unixEpochTo()
//     (pkg/tsdb/sqleng) and then the PostgreSQL macros $__name(args) (pkg/tsdb/grafana-postgresql-datasource/macros.go).
// Semantics follow Grafana 11's source; comments name the Go function each part mirrors.

export interface TimeRange {
  readonly from: Date;
  readonly to: Date;
}

/** A template variable's current value and the options that decide its formatting. */
export interface Variable {
  /** One value, or the selected values of a multi-value variable (all option values when All is selected). */
  readonly value: string | readonly string[];
  readonly multi?: boolean;
  readonly includeAll?: boolean;
  /** With All selected and a custom all value, Grafana inserts that value as it is (no quoting, no escaping). */
  readonly allSelected?: boolean;
  readonly allValue?: string;
}

export type Variables = Readonly<Record<string, Variable>>;

// ----------------------------------------------------------------------------------------------- intervals ---

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
const YEAR = 365 * DAY;

/** gtime.ParseInterval / ParseDuration: "300ms", "10s", "5m", "1h", "1d", "1w", "1M" (30 days), "1y"; bare seconds. */
export function parseIntervalMs(text: string): number {
  const t = text.trim().replace(/^'|'$/g, '');
  if (/^\d+$/.test(t)) return Number(t) * SECOND;
  const units: Record<string, number> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: DAY, w: WEEK, M: 30 * DAY, y: YEAR };
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|y)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== t) throw new Error(`error parsing interval ${text}`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]!]!, 0);
}

/** gtime.FormatInterval: the largest whole unit, e.g. 90 s -> "1m". */
export function formatIntervalMs(ms: number): string {
  if (ms >= YEAR) return `${Math.floor(ms / YEAR)}y`;
  if (ms >= DAY) return `${Math.floor(ms / DAY)}d`;
  if (ms >= HOUR) return `${Math.floor(ms / HOUR)}h`;
  if (ms >= MINUTE) return `${Math.floor(ms / MINUTE)}m`;
  if (ms >= SECOND) return `${Math.floor(ms / SECOND)}s`;
  if (ms >= 1) return `${Math.floor(ms)}ms`;
  return '1ms';
}

/** gtime.RoundInterval: the next lower "nice" interval. */
export function roundIntervalMs(ms: number): number {
  const table: [number, number][] = [
    [10, 1], [15, 10], [35, 20], [75, 50], [150, 100], [350, 200], [750, 500], [1500, 1000], [3500, 2000], [7500, 5000],
    [12500, 10000], [17500, 15000], [25000, 20000], [45000, 30000], [90000, 60000], [210000, 120000], [450000, 300000],
    [750000, 600000], [1050000, 900000], [1500000, 1200000], [2700000, 1800000], [5400000, 3600000], [9000000, 7200000],
    [16200000, 10800000], [32400000, 21600000], [86400000, 43200000], [172800000, 86400000], [604800000, 86400000],
    [1814400000, 604800000],
  ];
  for (const [upTo, nice] of table) if (ms <= upTo) return nice;
  return ms < 3628800000 ? 2592000000 : 31536000000;
}

/** intervalv2 Calculate: range / max data points, never below the minimum, rounded. */
export function calculateIntervalMs(range: TimeRange, maxDataPoints = 1500, minIntervalMs = SECOND): number {
  const raw = (range.to.getTime() - range.from.getTime()) / maxDataPoints;
  return roundIntervalMs(Math.max(raw, minIntervalMs));
}

// ------------------------------------------------------------------------------------- template variables ---

const quoteLiteral = (v: string) => `'${v.replace(/'/g, "''")}'`;
const escapeRegex = (v: string) => v.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');

type Formatter = (v: Variable) => string;

/** The PostgreSQL datasource's interpolateVariable (public/app/plugins/datasource/grafana-postgresql-datasource). */
const sqlFormat: Formatter = (v) => {
  if (Array.isArray(v.value)) return (v.value as string[]).map(quoteLiteral).join(',');
  const s = v.value as string;
  return v.multi || v.includeAll ? quoteLiteral(s) : s.replace(/'/g, "''");
};

/** The Prometheus datasource's interpolateQueryExpr. */
const promFormat: Formatter = (v) => {
  if (!v.multi && !v.includeAll) return (Array.isArray(v.value) ? v.value.join(',') : (v.value as string)).replace(/\\/g, '\\\\').replace(/'/g, "\\\\'");
  const values = Array.isArray(v.value) ? (v.value as string[]) : [v.value as string];
  const escaped = values.map((x) => escapeRegex(x).replace(/\\/g, '\\\\'));
  return escaped.length === 1 ? escaped[0]! : `(${escaped.join('|')})`;
};

/** Explicit ${var:format} formats Grafana offers (the ones these dashboards use, plus the common ones). */
const FORMATS: Record<string, Formatter> = {
  regex: (v) => {
    const values = Array.isArray(v.value) ? (v.value as string[]) : [v.value as string];
    const escaped = values.map(escapeRegex);
    return escaped.length === 1 ? escaped[0]! : `(${escaped.join('|')})`;
  },
  raw: (v) => (Array.isArray(v.value) ? v.value.join(',') : (v.value as string)),
  csv: (v) => (Array.isArray(v.value) ? v.value.join(',') : (v.value as string)),
  singlequote: (v) => (Array.isArray(v.value) ? (v.value as string[]) : [v.value as string]).map((x) => `'${x.replace(/'/g, "\\'")}'`).join(','),
  sqlstring: (v) => (Array.isArray(v.value) ? (v.value as string[]) : [v.value as string]).map(quoteLiteral).join(','),
};

/** templateSrv.replace: $var, ${var}, ${var:format}; names it does not know (e.g. $__timeFilter) are left alone. */
export function interpolateVariables(text: string, vars: Variables, datasource: 'sql' | 'prometheus'): string {
  return text.replace(/\$(\w+)|\$\{(\w+)(?::([^}]+))?\}/g, (match, bare: string | undefined, braced: string | undefined, format: string | undefined) => {
    const name = (bare ?? braced)!;
    const v = vars[name];
    if (!v) return match;
    if (v.allSelected && v.allValue !== undefined) return v.allValue;
    if (format !== undefined) {
      const f = FORMATS[format];
      if (!f) throw new Error(`unsupported variable format ${format} in ${match}`);
      return f(v);
    }
    return (datasource === 'sql' ? sqlFormat : promFormat)(v);
  });
}

// ----------------------------------------------------------------------------------------- SQL (backend) ---

/** Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped, "Z". */
export function rfc3339Nano(d: Date): string {
  return d.toISOString().replace(/(\.\d*?)0+Z$/, '$1Z').replace(/\.Z$/, 'Z');
}

/** Go's %v of a float64 (strconv 'g', shortest): exponent form when the exponent is < -4 or >= 6 (2592000 -> 2.592e+06). */
function goFloat(x: number): string {
  if (x === 0) return '0';
  const exp = Math.floor(Math.log10(Math.abs(x)));
  if (exp < -4 || exp >= 6) {
    const [mant, e] = x.toExponential().split('e');
    const n = Number(e);
    return `${mant}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  return String(x);
}

export interface SqlExpansion {
  readonly range: TimeRange;
  readonly vars?: Variables;
  /** The data source's jsonData.timescaledb (ours: true). */
  readonly timescaledb: boolean;
  /** $__interval; defaults to Grafana's calculation for 1500 data points, at least 1 s. */
  readonly intervalMs?: number;
}

/** sqleng.Interpolate: the global substitutions every SQL data source makes before its macros. */
function sqlEngineInterpolate(sql: string, range: TimeRange, intervalMs: number): string {
  return sql
    .replaceAll('$__interval_ms', String(Math.round(intervalMs)))
    .replaceAll('$__interval', formatIntervalMs(intervalMs))
    .replaceAll('$__unixEpochFrom()', String(Math.floor(range.from.getTime() / 1000)))
    .replaceAll('$__unixEpochTo()', String(Math.floor(range.to.getTime() / 1000)));
}

/** postgresMacroEngine.evaluateMacro. */
function evaluateMacro(name: string, args: string[], range: TimeRange, timescaledb: boolean): string {
  const need = (n: number) => {
    if (args.length < n || args[0] === '') throw new Error(`missing time column argument for macro ${name}`);
  };
  const fromS = Math.floor(range.from.getTime() / 1000);
  const toS = Math.floor(range.to.getTime() / 1000);
  const fromNs = `${BigInt(range.from.getTime()) * 1_000_000n}`;
  const toNs = `${BigInt(range.to.getTime()) * 1_000_000n}`;
  const group = (expr: (seconds: number) => string) => {
    if (args.length < 2) throw new Error(`macro ${name} needs time column and interval and optional fill value`);
    const seconds = parseIntervalMs(args[1]!) / 1000;
    if (args.length === 3 && !/^(NULL|previous|\d+(\.\d+)?)$/i.test(args[2]!)) throw new Error(`macro ${name}: bad fill value ${args[2]}`);
    return expr(seconds);
  };
  switch (name) {
    case '__time':
      need(1);
      return `${args[0]} AS "time"`;
    case '__timeEpoch':
      need(1);
      return `extract(epoch from ${args[0]}) as "time"`;
    case '__timeFilter':
      need(1);
      return `${args[0]} BETWEEN '${rfc3339Nano(range.from)}' AND '${rfc3339Nano(range.to)}'`;
    case '__timeFrom':
      return `'${rfc3339Nano(range.from)}'`;
    case '__timeTo':
      return `'${rfc3339Nano(range.to)}'`;
    case '__timeGroup':
      return group((s) => (timescaledb ? `time_bucket('${s.toFixed(3)}s',${args[0]})` : `floor(extract(epoch from ${args[0]})/${goFloat(s)})*${goFloat(s)}`));
    case '__timeGroupAlias':
      return `${evaluateMacro('__timeGroup', args, range, timescaledb)} AS "time"`;
    case '__unixEpochFilter':
      need(1);
      return `${args[0]} >= ${fromS} AND ${args[0]} <= ${toS}`;
    case '__unixEpochNanoFilter':
      need(1);
      return `${args[0]} >= ${fromNs} AND ${args[0]} <= ${toNs}`;
    case '__unixEpochNanoFrom':
      return fromNs;
    case '__unixEpochNanoTo':
      return toNs;
    case '__unixEpochGroup':
      return group((s) => `floor((${args[0]})/${goFloat(s)})*${goFloat(s)}`);
    case '__unixEpochGroupAlias':
      return `${evaluateMacro('__unixEpochGroup', args, range, timescaledb)} AS "time"`;
    default:
      throw new Error(`unknown macro "${name}"`);
  }
}

/** postgresMacroEngine.Interpolate: every $name(args); a $__timeGroup followed by ',' is the old alias form. */
function macroInterpolate(sql: string, range: TimeRange, timescaledb: boolean): string {
  return sql.replace(/\$([_a-zA-Z0-9]+)\(([^)]*)\)/g, (match, rawName: string, rawArgs: string) => {
    let name = rawName;
    if (name === '__timeGroup') {
      const i = sql.indexOf(match);
      if (i >= 0 && sql[i + match.length] === ',') name = '__timeGroupAlias';
    }
    const args = rawArgs.split(',').map((a) => a.trim());
    return evaluateMacro(name, args, range, timescaledb);
  });
}

/** The SQL text Grafana's PostgreSQL data source sends for a panel or alert query. */
export function expandSql(rawSql: string, o: SqlExpansion): string {
  const intervalMs = o.intervalMs ?? calculateIntervalMs(o.range);
  const builtins: Variables = { __interval: { value: formatIntervalMs(intervalMs) }, __interval_ms: { value: String(intervalMs) } };
  const afterVariables = interpolateVariables(rawSql, { ...builtins, ...(o.vars ?? {}) }, 'sql');
  return macroInterpolate(sqlEngineInterpolate(afterVariables, o.range, intervalMs), o.range, o.timescaledb);
}

// ------------------------------------------------------------------------------------------------ PromQL ---

export interface PromExpansion {
  readonly range: TimeRange;
  readonly vars?: Variables;
  readonly intervalMs?: number;
  /** The Prometheus data source's scrape interval (jsonData.timeInterval). */
  readonly scrapeIntervalMs: number;
}

/** The PromQL text Grafana's Prometheus data source sends: variables, $__interval, $__rate_interval, $__range. */
export function expandPromQL(expr: string, o: PromExpansion): string {
  const intervalMs = Math.max(o.intervalMs ?? calculateIntervalMs(o.range), o.scrapeIntervalMs);
  const rangeS = Math.floor(o.range.to.getTime() / 1000) - Math.floor(o.range.from.getTime() / 1000);
  // calculateRateInterval: max($__interval + scrape interval, 4 * scrape interval).
  const rateMs = Math.max(intervalMs + o.scrapeIntervalMs, 4 * o.scrapeIntervalMs);
  const builtins: Variables = {
    __interval: { value: formatIntervalMs(intervalMs) },
    __interval_ms: { value: String(intervalMs) },
    __rate_interval: { value: formatIntervalMs(rateMs) },
    __range: { value: `${rangeS}s` },
    __range_s: { value: String(rangeS) },
    __range_ms: { value: String(rangeS * 1000) },
  };
  return interpolateVariables(expr, { ...builtins, ...(o.vars ?? {}) }, 'prometheus');
}
