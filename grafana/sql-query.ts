// The PostgreSQL query the foundation SDK lacks: a Builder<Dataquery> for the grafana-postgresql-datasource, emitting
// what Grafana's SQL query editor saves in code mode (rawSql, format, rawQuery, editorMode).
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';

/** time_series: a `time` column, one series per numeric column (or per `metric` value); table: rows as they come. */
export type SqlFormat = 'time_series' | 'table';

export interface SqlDataquery extends cog.Dataquery {
  refId: string;
  datasource: dashboard.DataSourceRef;
  rawSql: string;
  format: SqlFormat;
  rawQuery: true;
  editorMode: 'code';
  hide?: boolean;
}

/** The provisioned data sources (grafana/provisioning/datasources/datasources.yaml). */
export const TIMESCALEDB = { type: 'grafana-postgresql-datasource', uid: 'tickwatch-timescaledb' } as const satisfies dashboard.DataSourceRef;
export const PROMETHEUS = { type: 'prometheus', uid: 'tickwatch-prometheus' } as const satisfies dashboard.DataSourceRef;

export class SqlQueryBuilder implements cog.Builder<SqlDataquery> {
  private readonly internal: SqlDataquery;

  constructor(rawSql: string) {
    this.internal = {
      refId: 'A',
      datasource: { ...TIMESCALEDB },
      rawSql: dedent(rawSql),
      format: 'time_series',
      rawQuery: true,
      editorMode: 'code',
      _implementsDataqueryVariant() {},
    };
  }

  refId(refId: string): this {
    this.internal.refId = refId;
    return this;
  }

  format(format: SqlFormat): this {
    this.internal.format = format;
    return this;
  }

  table(): this {
    return this.format('table');
  }

  datasource(datasource: dashboard.DataSourceRef): this {
    this.internal.datasource = datasource;
    return this;
  }

  build(): SqlDataquery {
    // A plain object: JSON.stringify drops the variant marker function.
    return { ...this.internal };
  }
}

/** `sql` ... with the common indentation removed and blank edge lines trimmed, so JSON shows readable SQL. */
export function dedent(text: string): string {
  const lines = text.replace(/^\s*\n/, '').replace(/\n\s*$/, '').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

export const sql = (rawSql: string) => new SqlQueryBuilder(rawSql);
