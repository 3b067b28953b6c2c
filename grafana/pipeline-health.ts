// Pipeline Health (Prometheus): is the pipeline keeping up? Message rates, consumer lag, end-to-end latency, dead
// letters, reconnects, gaps and the writers' batch times. Every expression names its series through metric-names.ts.
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { INGESTION, JOBS, RECORDED, WRITER, bucket } from './metric-names.ts';
import { ALL, DASHBOARD_UIDS, PROMETHEUS, greenAtZero, legendTable, thresholds, tickwatchDashboard, tooltipAll } from './panels.ts';
import { PIPELINE_LAG_SECONDS_THRESHOLD } from './prometheus-rules.ts';

const STREAM = `stream=~"(?:\${symbol:regex})@.*"`;
const TOPIC = `topic=~"\${topic:regex}"`;

const prom = (refId: string, expr: string, legend: string) =>
  new prometheus.DataqueryBuilder().refId(refId).expr(expr).legendFormat(legend).range().editorMode(prometheus.QueryEditorMode.Code).datasource(PROMETHEUS);

function series(title: string, unit: string, targets: prometheus.DataqueryBuilder[], w = 12): timeseries.PanelBuilder {
  const p = new timeseries.PanelBuilder()
    .title(title)
    .datasource(PROMETHEUS)
    .unit(unit)
    .legend(legendTable())
    .tooltip(tooltipAll())
    .fillOpacity(10)
    .gridPos({ x: 0, y: 0, w, h: 8 });
  for (const t of targets) p.withTarget(t);
  return p;
}

/** A multi-valued variable over the values of one label of a series; All is `.+`, so a regex selector matches any. */
function labelVariable(
  name: string,
  label: string,
  query: string,
  v: { description?: string; regex?: string } = {},
): dashboard.QueryVariableBuilder {
  const b = new dashboard.QueryVariableBuilder(name).allowCustomValue(false).label(label);
  if (v.description !== undefined) b.description(v.description);
  b.datasource(PROMETHEUS).query({ query, refId: name });
  if (v.regex !== undefined) b.regex(v.regex);
  return b
    .multi(true)
    .includeAll(true)
    .allValue('.+')
    .current(ALL)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc);
}

/** The value of one instant expression on a coloured background: right or wrong at a glance. */
function statusStat(p: {
  title: string;
  description?: string;
  expr: string;
  legend: string;
  thresholds: dashboard.ThresholdsConfigBuilder;
  h: number;
}): stat.PanelBuilder {
  const b = new stat.PanelBuilder().title(p.title);
  if (p.description !== undefined) b.description(p.description);
  return b
    .datasource(PROMETHEUS)
    .withTarget(prom('A', p.expr, p.legend).instant())
    .thresholds(p.thresholds)
    .colorMode(common.BigValueColorMode.Background)
    .graphMode(common.BigValueGraphMode.None)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']))
    .gridPos({ x: 0, y: 0, w: 6, h: p.h });
}

const quantiles = (h: typeof WRITER.commitLatency, selector: string, by: string) =>
  [0.5, 0.99].map((q, i) =>
    prom(
      String.fromCharCode(65 + i),
      `histogram_quantile(${q}, sum by (le, ${by}) (rate(${bucket(h)}${selector}[$__rate_interval])))`,
      `p${q * 100} {{${by}}}`,
    ),
  );

export function pipelineHealth(): dashboard.DashboardBuilder {
  return tickwatchDashboard('Pipeline Health', {
    uid: DASHBOARD_UIDS.pipelineHealth,
    description: 'Ingestion and writer health from Prometheus: throughput, consumer lag, latency, dead letters, reconnects, gaps, batch times.',
    tags: ['pipeline', 'prometheus'],
    from: 'now-30m',
    refresh: '10s',
  })
    .withVariable(
      labelVariable('symbol', 'Symbol', `label_values(${INGESTION.messagesReceived.name}, stream)`, {
        description: 'Symbols by the ingestion stream names (btcusdt@trade -> btcusdt)',
        regex: '/^([^@]+)@/',
      }),
    )
    .withVariable(labelVariable('topic', 'Topic', `label_values(${INGESTION.recordsProduced.name}, topic)`))
    .withRow(new dashboard.RowBuilder('Throughput and lag'))
    .withPanel(
      statusStat({
        title: 'Workers up',
        description: '1 = Prometheus scrapes the worker; 0 = stopped or crashed',
        expr: `up{job=~"${Object.values(JOBS).join('|')}"}`,
        legend: '{{job}}',
        thresholds: thresholds([
          { value: null, color: 'red' },
          { value: 1, color: 'green' },
        ]),
        h: 8,
      }),
    )
    .withPanel(
      series(
        'Messages per second per stream',
        'msg/s',
        [prom('A', `sum by (stream) (rate(${INGESTION.messagesReceived.name}{${STREAM}}[$__rate_interval]))`, '{{stream}}')],
        9,
      ),
    )
    .withPanel(
      series(
        'Records produced per second per topic',
        'msg/s',
        [prom('A', `sum by (topic) (rate(${INGESTION.recordsProduced.name}{${TOPIC}}[$__rate_interval]))`, '{{topic}}')],
        9,
      ),
    )
    .withPanel(
      series('Consumer lag per partition (messages)', 'short', [
        prom('A', `max by (topic, partition) (${WRITER.lagMessages.name}{${TOPIC}})`, '{{topic}} p{{partition}}'),
      ]),
    )
    .withPanel(
      series('Consumer lag per partition (seconds)', 's', [
        prom('A', `max by (topic, partition) (${WRITER.lagSeconds.name}{${TOPIC}})`, '{{topic}} p{{partition}}'),
      ]),
    )
    .withPanel(
      series('Pipeline lag (alert input)', 's', [prom('A', `${RECORDED.pipelineLagSeconds}{${TOPIC}}`, '{{topic}}')], 24)
        .description(
          `The writers' own lag while they run; while no writer answers and ingestion still produces, the seconds since a writer was last up. ` +
            `TickwatchPipelineLag fires above ${PIPELINE_LAG_SECONDS_THRESHOLD} s.`,
        )
        .thresholds(
          thresholds([
            { value: null, color: 'green' },
            { value: PIPELINE_LAG_SECONDS_THRESHOLD, color: 'red' },
          ]),
        )
        .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Line)),
    )
    .withRow(new dashboard.RowBuilder('Latency and writer batches'))
    .withPanel(series('End-to-end latency p50 / p99 (exchange time to commit)', 's', quantiles(WRITER.commitLatency, '{since="exchange"}', 'table')))
    .withPanel(series('Writer batch duration p50 / p99 (COPY or merge)', 's', quantiles(WRITER.copySeconds, '', 'table')))
    .withPanel(
      series('Rows written per second', 'rows/s', [prom('A', `sum by (table) (rate(${WRITER.rowsWritten.name}[$__rate_interval]))`, '{{table}}')]),
    )
    .withPanel(
      series('Kafka acknowledgement latency p50 / p99 (receive to ack)', 's', [
        prom('A', `histogram_quantile(0.5, sum by (le) (rate(${bucket(INGESTION.ackLatency)}[$__rate_interval])))`, 'p50'),
        prom('B', `histogram_quantile(0.99, sum by (le) (rate(${bucket(INGESTION.ackLatency)}[$__rate_interval])))`, 'p99'),
      ]),
    )
    .withRow(new dashboard.RowBuilder('Failures'))
    .withPanel(
      series(
        'Dead letters',
        'short',
        [
          prom('A', `sum by (reason) (increase(${INGESTION.deadLetters.name}[$__rate_interval]))`, 'ingestion: {{reason}}'),
          prom('B', `sum by (topic) (increase(${WRITER.deadLetters.name}[$__rate_interval]))`, 'writer: {{topic}}'),
        ],
        8,
      ),
    )
    .withPanel(
      series('Reconnects', 'short', [prom('A', `sum by (reason) (increase(${INGESTION.reconnects.name}[$__rate_interval]))`, '{{reason}}')], 8),
    )
    .withPanel(
      series(
        'Gaps detected and ids backfilled',
        'short',
        [
          prom('A', `sum by (stream) (increase(${INGESTION.gapsDetected.name}[$__rate_interval]))`, 'gaps {{stream}}'),
          prom('B', `sum by (stream, outcome) (increase(${INGESTION.gapIds.name}[$__rate_interval]))`, 'ids {{outcome}} {{stream}}'),
        ],
        8,
      ),
    )
    .withPanel(
      statusStat({
        title: 'Dead letters in range',
        // Zero, not "no data", when neither worker has dead-lettered anything yet.
        expr: `(sum(increase(${INGESTION.deadLetters.name}[$__range])) or vector(0)) + (sum(increase(${WRITER.deadLetters.name}[$__range])) or vector(0))`,
        legend: 'dead letters',
        thresholds: greenAtZero(),
        h: 6,
      }),
    )
    .withPanel(
      series(
        'Writer batches per second and producer buffer',
        'short',
        [
          prom('A', `sum by (table, path) (rate(${WRITER.batches.name}[$__rate_interval]))`, 'batches/s {{table}} {{path}}'),
          prom('B', `max(${INGESTION.producerBufferDepth.name})`, 'producer buffer depth'),
        ],
        18,
      ),
    );
}
