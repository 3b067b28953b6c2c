// Grafana's query expansion as its source defines it (macros.go, sqleng, the datasources' variable formatting).
import { describe, expect, it } from 'vitest';
import { calculateIntervalMs, expandPromQL, expandSql, formatIntervalMs, interpolateVariables, parseIntervalMs, rfc3339Nano } from './macros.ts';

const range = { from: new Date('2024-08-08T23:54:00Z'), to: new Date('2024-08-09T00:06:00.500Z') };
const fromS = Date.UTC(2024, 7, 8, 23, 54) / 1000;
const toS = Date.UTC(2024, 7, 9, 0, 6) / 1000;
const ts = (sql: string) => expandSql(sql, { range, timescaledb: true, intervalMs: 60_000 });
const pg = (sql: string) => expandSql(sql, { range, timescaledb: false, intervalMs: 60_000 });

describe('PostgreSQL macros', () => {
  it('$__timeFilter is BETWEEN two RFC 3339 UTC times (fraction without trailing zeros)', () => {
    expect(ts('WHERE $__timeFilter(bucket)')).toBe("WHERE bucket BETWEEN '2024-08-08T23:54:00Z' AND '2024-08-09T00:06:00.5Z'");
    expect(rfc3339Nano(new Date('2024-01-01T00:00:00.120Z'))).toBe('2024-01-01T00:00:00.12Z');
  });

  it('$__timeGroup is time_bucket with TimescaleDB, floor(epoch) otherwise; $__timeGroupAlias adds AS "time"', () => {
    expect(ts("$__timeGroup(time, '5m')")).toBe("time_bucket('300.000s',time)");
    expect(pg("$__timeGroup(time, '5m')")).toBe('floor(extract(epoch from time)/300)*300');
    expect(ts('$__timeGroupAlias(time, 1h)')).toBe(`time_bucket('3600.000s',time) AS "time"`);
    expect(pg('$__timeGroup(t, 30d)')).toBe('floor(extract(epoch from t)/2.592e+06)*2.592e+06');
    expect(pg('$__timeGroup(t, 500ms)')).toBe('floor(extract(epoch from t)/0.5)*0.5');
    // Pre-5.3 form: a ',' right after the macro means the alias was wanted.
    expect(ts("SELECT $__timeGroup(time,'1m'), avg(x)")).toBe(`SELECT time_bucket('60.000s',time) AS "time", avg(x)`);
    expect(ts("$__timeGroup(time, '1m', NULL)")).toBe("time_bucket('60.000s',time)");
  });

  it('$__time, $__timeEpoch, $__timeFrom(), $__timeTo(), the unix epoch macros', () => {
    expect(ts('$__time(t)')).toBe('t AS "time"');
    expect(ts('$__timeEpoch(t)')).toBe('extract(epoch from t) as "time"');
    expect(ts('$__timeFrom() $__timeTo()')).toBe("'2024-08-08T23:54:00Z' '2024-08-09T00:06:00.5Z'");
    expect(ts('$__unixEpochFilter(e)')).toBe(`e >= ${fromS} AND e <= ${toS}`);
    expect(ts('$__unixEpochFrom() $__unixEpochTo()')).toBe(`${fromS} ${toS}`);
    expect(ts('$__unixEpochGroupAlias(e, 1m)')).toBe('floor((e)/60)*60 AS "time"');
    expect(ts('$__unixEpochNanoFrom()')).toBe(`${fromS}000000000`);
  });

  it('$__interval and $__interval_ms', () => {
    expect(expandSql('$__interval $__interval_ms', { range, timescaledb: true, intervalMs: 600_000 })).toBe('10m 600000');
    expect(formatIntervalMs(90_000)).toBe('1m');
    expect(parseIntervalMs("'1h30m'")).toBe(5_400_000);
    // 12 minutes over 1500 points is under the 1 s minimum.
    expect(calculateIntervalMs(range)).toBe(1000);
    expect(calculateIntervalMs({ from: new Date(0), to: new Date(7 * 86_400_000) })).toBe(300_000);
  });

  it('refuses unknown macros and a missing column, as Grafana does', () => {
    expect(() => ts('$__nope(x)')).toThrow(/unknown macro/);
    expect(() => ts('$__timeFilter()')).toThrow(/missing time column/);
    expect(() => ts("$__timeGroup(t, 'soon')")).toThrow(/error parsing interval/);
  });
});

describe('template variables', () => {
  const vars = {
    exchange: { value: 'binance' },
    symbol: { value: ['BTCUSDT', 'ETHUSDT'], multi: true, includeAll: true },
    one: { value: ['BTCUSDT'], multi: true },
    quoted: { value: "o'neil" },
    star: { value: ['a', 'b'], multi: true, includeAll: true, allSelected: true, allValue: '.+' },
  };

  it('formats for SQL: raw single values (quotes doubled), quoted lists for multi-value and All', () => {
    expect(interpolateVariables("exchange = '$exchange' AND symbol IN ($symbol) AND s IN (${symbol})", vars, 'sql')).toBe(
      "exchange = 'binance' AND symbol IN ('BTCUSDT','ETHUSDT') AND s IN ('BTCUSDT','ETHUSDT')",
    );
    expect(interpolateVariables('$one $quoted', vars, 'sql')).toBe("'BTCUSDT' o''neil");
    expect(interpolateVariables('$star', vars, 'sql')).toBe('.+');
    // Unknown names stay: they may be macros for the backend.
    expect(interpolateVariables('$__timeFilter(t) $unknown', vars, 'sql')).toBe('$__timeFilter(t) $unknown');
  });

  it('formats for Prometheus: regex alternatives, ${var:regex}, the custom all value as it is', () => {
    expect(interpolateVariables('x{s=~"$symbol"}', vars, 'prometheus')).toBe('x{s=~"(BTCUSDT|ETHUSDT)"}');
    expect(interpolateVariables('${symbol:regex} ${one:regex}', vars, 'prometheus')).toBe('(BTCUSDT|ETHUSDT) BTCUSDT');
    expect(interpolateVariables('${star:regex}', vars, 'prometheus')).toBe('.+');
  });

  it('expands $__rate_interval and $__range for PromQL', () => {
    expect(expandPromQL('rate(x[$__rate_interval]) increase(x[$__range])', { range, intervalMs: 1000, scrapeIntervalMs: 5000 })).toBe(
      'rate(x[20s]) increase(x[720s])',
    );
  });

  it('expands variables before macros, as the frontend does before the backend', () => {
    expect(expandSql("SELECT $__timeGroupAlias(bucket, '$bar') FROM bars WHERE symbol IN ($symbol)", { range, timescaledb: true, vars: { ...vars, bar: { value: '5m' } } })).toBe(
      `SELECT time_bucket('300.000s',bucket) AS "time" FROM bars WHERE symbol IN ('BTCUSDT','ETHUSDT')`,
    );
  });
});
