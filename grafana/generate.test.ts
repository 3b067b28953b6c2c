// The committed dashboards and provisioning files are exactly what grafana/generate.ts produces, and they hold
// together: SDK-shaped JSON, a data source and a query on every panel, no colliding ids or grid cells, every template
// variable a query uses defined, every alert linked to an existing panel.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ALERT_EMAIL_ENV, CONTACT_POINT } from './alerting.ts';
import { REPO_ROOT, generate } from './generate.ts';
import { DASHBOARD_UIDS } from './panels.ts';

const files = generate();

// Compile-time exhaustive: tsc fails if the SDK's types gain or lose a key these lists do not match.
const DASHBOARD_KEYS = {
  id: 1, uid: 1, title: 1, description: 1, revision: 1, gnetId: 1, tags: 1, timezone: 1, editable: 1, graphTooltip: 1, time: 1,
  timepicker: 1, fiscalYearStartMonth: 1, liveNow: 1, weekStart: 1, refresh: 1, schemaVersion: 1, version: 1, panels: 1,
  templating: 1, annotations: 1, links: 1, snapshot: 1, preload: 1,
} satisfies Record<keyof dashboard.Dashboard, 1>;
const PANEL_KEYS = {
  type: 1, id: 1, pluginVersion: 1, targets: 1, title: 1, description: 1, transparent: 1, datasource: 1, gridPos: 1, links: 1,
  repeat: 1, repeatDirection: 1, maxPerRow: 1, maxDataPoints: 1, transformations: 1, interval: 1, timeFrom: 1, timeShift: 1,
  hideTimeOverride: 1, libraryPanel: 1, cacheTimeout: 1, queryCachingTTL: 1, options: 1, fieldConfig: 1,
} satisfies Record<keyof dashboard.Panel, 1>;
const ROW_KEYS = { type: 1, collapsed: 1, title: 1, datasource: 1, gridPos: 1, id: 1, panels: 1, repeat: 1 } satisfies Record<keyof dashboard.RowPanel, 1>;
const VARIABLE_KEYS = {
  type: 1, name: 1, label: 1, hide: 1, skipUrlSync: 1, description: 1, query: 1, datasource: 1, current: 1, multi: 1,
  allowCustomValue: 1, options: 1, refresh: 1, sort: 1, includeAll: 1, allValue: 1, regex: 1, auto: 1, auto_min: 1, auto_count: 1,
} satisfies Record<keyof dashboard.VariableModel, 1>;

/** The panel types the SDK has builders for and these dashboards use. */
const PANEL_TYPES = new Set(['timeseries', 'candlestick', 'stat', 'table', 'state-timeline']);

const dashboards = [...files]
  .filter(([path]) => path.startsWith('grafana/dashboards/'))
  .map(([path, text]) => ({ path, d: JSON.parse(text) as dashboard.Dashboard }));

const provisionedDatasources = (
  parse(readFileSync(join(REPO_ROOT, 'grafana/provisioning/datasources/datasources.yaml'), 'utf8')) as { datasources: { uid: string; type: string }[] }
).datasources;

type AnyPanel = dashboard.Panel | dashboard.RowPanel;
const isRow = (p: AnyPanel): p is dashboard.RowPanel => p.type === 'row';
/** Top-level panels and those inside collapsed rows. */
const allPanels = (d: dashboard.Dashboard): AnyPanel[] => (d.panels ?? []).flatMap((p) => (isRow(p) ? [p, ...(p.panels ?? [])] : [p]));
const queryText = (t: Record<string, unknown>) => String(t.rawSql ?? t.expr ?? '');

/** Names a text refers to as template variables ($name, ${name}, ${name:fmt}), Grafana's own ($__...) excluded. */
function variableRefs(text: string): string[] {
  return [...text.matchAll(/\$(\w+)|\$\{(\w+)(?::[^}]+)?\}/g)].map((m) => (m[1] ?? m[2])!).filter((n) => !n.startsWith('__'));
}

describe('grafana/generate.ts output', () => {
  it('is committed exactly as generated (run `npm run grafana:generate` after changing the TypeScript)', () => {
    const drifted = [...files].filter(([path, content]) => !existsSync(join(REPO_ROOT, path)) || readFileSync(join(REPO_ROOT, path), 'utf8') !== content).map(([p]) => p);
    expect(drifted).toEqual([]);
  });

  it('leaves no stale generated file behind', () => {
    const stale: string[] = [];
    for (const [dir, ext] of [
      ['grafana/dashboards', '.json'],
      ['grafana/provisioning/alerting', '.yaml'],
    ] as const) {
      for (const f of readdirSync(join(REPO_ROOT, dir)).filter((n) => n.endsWith(ext))) if (!files.has(`${dir}/${f}`)) stale.push(`${dir}/${f}`);
    }
    expect(stale).toEqual([]);
  });
});

describe('dashboards', () => {
  it('are the three expected, by uid', () => {
    expect(dashboards.map(({ d }) => d.uid).sort()).toEqual(Object.values(DASHBOARD_UIDS).sort());
  });

  it('take no custom variable values, and SQL gets a variable only as a quoted value or a quoted list', () => {
    const custom = dashboards.flatMap(({ d }) => (d.templating?.list ?? []).filter((v) => v.allowCustomValue !== false).map((v) => `${d.title} / ${v.name}`));
    expect(custom).toEqual([]);
    const misplaced: string[] = [];
    for (const { d } of dashboards) {
      const vars = new Map((d.templating?.list ?? []).map((v) => [v.name, v]));
      const texts = [
        ...(d.templating?.list ?? []).filter((v) => typeof v.query === 'string').map((v) => ({ where: `variable ${v.name}`, sql: v.query as string })),
        ...allPanels(d).flatMap((p) => ('targets' in p ? ((p.targets ?? []) as unknown as Record<string, unknown>[]) : []).filter((t) => typeof t.rawSql === 'string').map((t) => ({ where: p.title ?? '', sql: t.rawSql as string }))),
      ];
      for (const { where, sql } of texts) {
        // '$name' for a single value (Grafana doubles its quotes), ($name) for a multi-value one (a list of literals).
        const rest = sql
          .replace(/'\$(\w+)'/g, (m, n: string) => (vars.get(n)?.multi ? m : ''))
          .replace(/\(\$(\w+)\)/g, (m, n: string) => (vars.get(n)?.multi ? '' : m));
        for (const name of variableRefs(rest)) misplaced.push(`${d.title} / ${where}: $${name}`);
      }
    }
    expect(misplaced).toEqual([]);
  });

  it.each(dashboards)('$path has the SDK dashboard, panel and variable shapes', ({ d }) => {
    const problems: string[] = [];
    for (const k of Object.keys(d)) if (!(k in DASHBOARD_KEYS)) problems.push(`dashboard key ${k} is not in the SDK's Dashboard type`);
    for (const p of allPanels(d)) {
      const known = isRow(p) ? ROW_KEYS : PANEL_KEYS;
      for (const k of Object.keys(p)) if (!(k in known)) problems.push(`panel '${p.title}': key ${k} is not in the SDK's ${isRow(p) ? 'RowPanel' : 'Panel'} type`);
      if (!isRow(p) && !PANEL_TYPES.has(p.type)) problems.push(`panel '${p.title}': unexpected type ${p.type}`);
    }
    for (const v of d.templating?.list ?? []) for (const k of Object.keys(v)) if (!(k in VARIABLE_KEYS)) problems.push(`variable ${v.name}: key ${k} not in the SDK's VariableModel`);
    if (typeof d.title !== 'string' || typeof d.schemaVersion !== 'number') problems.push('title or schemaVersion missing');
    if (!d.time?.from || !d.refresh) problems.push('no default time range or refresh');
    expect(problems).toEqual([]);
  });

  it.each(dashboards)('$path: every panel has a provisioned data source and at least one query on it', ({ d }) => {
    const problems: string[] = [];
    for (const p of allPanels(d)) {
      if (isRow(p)) continue;
      const ds = provisionedDatasources.find((x) => x.uid === p.datasource?.uid);
      if (!ds || ds.type !== p.datasource?.type) problems.push(`panel '${p.title}': data source ${JSON.stringify(p.datasource)} is not provisioned`);
      const targets = (p.targets ?? []) as unknown as Record<string, unknown>[];
      if (targets.length === 0) problems.push(`panel '${p.title}' has no query`);
      const refIds = targets.map((t) => t.refId);
      if (new Set(refIds).size !== refIds.length) problems.push(`panel '${p.title}': duplicate refIds ${refIds.join(',')}`);
      for (const t of targets) {
        if (queryText(t).trim() === '') problems.push(`panel '${p.title}' ${String(t.refId)}: empty query`);
        if ((t.datasource as dashboard.DataSourceRef | undefined)?.uid !== p.datasource?.uid) problems.push(`panel '${p.title}' ${String(t.refId)}: query data source differs from the panel's`);
      }
    }
    expect(problems).toEqual([]);
  });

  it.each(dashboards)('$path: panel ids are unique and grid positions do not overlap', ({ d }) => {
    const problems: string[] = [];
    const ids = allPanels(d).map((p) => p.id);
    if (ids.some((id) => typeof id !== 'number')) problems.push('a panel has no id');
    if (new Set(ids).size !== ids.length) problems.push(`duplicate panel ids: ${ids.join(',')}`);
    const cells = new Map<string, string>();
    for (const p of d.panels ?? []) {
      const g = p.gridPos;
      if (!g) {
        problems.push(`panel '${p.title}' has no gridPos`);
        continue;
      }
      if (g.x < 0 || g.w < 1 || g.x + g.w > 24 || g.h < 1 || g.y < 0) problems.push(`panel '${p.title}' lies outside the 24-column grid: ${JSON.stringify(g)}`);
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          const other = cells.get(`${x},${y}`);
          if (other) problems.push(`panels '${other}' and '${p.title}' overlap at ${x},${y}`);
          cells.set(`${x},${y}`, p.title ?? '');
        }
    }
    expect([...new Set(problems)]).toEqual([]);
  });

  it.each(dashboards)('$path: every variable a query or variable uses is defined (and defined before the variables using it)', ({ d }) => {
    const problems: string[] = [];
    const vars = (d.templating?.list ?? []).map((v) => v.name);
    (d.templating?.list ?? []).forEach((v, i) => {
      const q = typeof v.query === 'string' ? v.query : String((v.query as { query?: string } | undefined)?.query ?? '');
      for (const ref of variableRefs(q)) if (!vars.slice(0, i).includes(ref)) problems.push(`variable ${v.name} uses $${ref}, not defined before it`);
    });
    for (const p of allPanels(d)) {
      if (isRow(p)) continue;
      for (const ref of variableRefs(p.title ?? '')) if (!vars.includes(ref)) problems.push(`panel '${p.title}' title uses undefined $${ref}`);
      if (p.repeat && !vars.includes(p.repeat)) problems.push(`panel '${p.title}' repeats over undefined ${p.repeat}`);
      for (const t of (p.targets ?? []) as unknown as Record<string, unknown>[])
        for (const ref of variableRefs(queryText(t))) if (!vars.includes(ref)) problems.push(`panel '${p.title}' ${String(t.refId)} uses undefined $${ref}`);
    }
    expect(problems).toEqual([]);
  });
});

describe('alerting provisioning', () => {
  const rules = parse(files.get('grafana/provisioning/alerting/rules.yaml')!) as {
    apiVersion: number;
    groups: { orgId: number; name: string; folder: string; interval: string; rules: Record<string, any>[] }[];
  };
  const contactPoints = parse(files.get('grafana/provisioning/alerting/contact-points.yaml')!) as { contactPoints: { name: string; receivers: { type: string; settings: Record<string, unknown> }[] }[] };
  const policies = parse(files.get('grafana/provisioning/alerting/policies.yaml')!) as { policies: { receiver: string; group_by: string[] }[] };

  it('has the five rules of the issue, each with symbol-capable labels, severity, a summary and a dashboard link', () => {
    const problems: string[] = [];
    const all = rules.groups.flatMap((g) => g.rules);
    expect(all.map((r) => r.title).sort()).toEqual(['Ingestion stalled', 'Pipeline lag', 'Spread warning', 'Volatility spike', 'Volume spike']);
    const panelIds = new Map(dashboards.map(({ d }) => [d.uid, new Set(allPanels(d).map((p) => String(p.id)))]));
    for (const r of all) {
      const refIds = (r.data as { refId: string }[]).map((q) => q.refId);
      if (!refIds.includes(r.condition)) problems.push(`${r.title}: condition ${r.condition} is not a query`);
      for (const q of r.data as { datasourceUid: string; model: { datasource?: { uid: string } } }[]) {
        if (q.datasourceUid !== '__expr__' && !provisionedDatasources.some((ds) => ds.uid === q.datasourceUid)) problems.push(`${r.title}: unknown data source ${q.datasourceUid}`);
        if (q.model.datasource?.uid !== q.datasourceUid) problems.push(`${r.title}: model data source differs from datasourceUid`);
      }
      if (!['warning', 'critical'].includes(r.labels?.severity)) problems.push(`${r.title}: no severity label`);
      for (const [k, v] of Object.entries(r.labels ?? {})) if (String(v).includes('$')) problems.push(`${r.title}: label ${k} contains '$', which Grafana would interpolate from its environment`);
      if (!r.annotations?.summary || !r.annotations?.dashboard) problems.push(`${r.title}: summary or dashboard annotation missing`);
      if (!panelIds.get(r.annotations?.__dashboardUid__)?.has(r.annotations?.__panelId__)) problems.push(`${r.title}: links to a panel that does not exist`);
      const sqlQuery = (r.data as { model: { rawSql?: string } }[]).find((q) => q.model.rawSql);
      if (sqlQuery && !/\bsymbol\b/.test(sqlQuery.model.rawSql!)) problems.push(`${r.title}: the SQL does not return a symbol column, so alerts carry no symbol label`);
    }
    expect(problems).toEqual([]);
  });

  it('sends every alert by email, grouped by rule and symbol, to recipients from the environment', () => {
    const cp = contactPoints.contactPoints.find((c) => c.name === CONTACT_POINT);
    expect(cp?.receivers.map((r) => r.type)).toEqual(['email']);
    expect(cp?.receivers[0]?.settings.addresses).toBe(`$${ALERT_EMAIL_ENV}`);
    expect(policies.policies[0]?.receiver).toBe(CONTACT_POINT);
    expect(policies.policies[0]?.group_by).toEqual(['alertname', 'symbol']);
  });
});
