// The Prometheus recording and alerting rules for pipeline lag and ingestion (written to
// docker/prometheus/rules/pipeline.yml by grafana/generate.ts), built from the same names the dashboards query.
import { INGESTION, JOBS, RECORDED, WRITER } from './metric-names.ts';

/** Seconds of pipeline lag above which TickwatchPipelineLag (Prometheus) and the Grafana rule fire. */
export const PIPELINE_LAG_SECONDS_THRESHOLD = 30;

export interface RecordingRule {
  readonly record: string;
  readonly expr: string;
}
export interface AlertingRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
}
export interface RuleGroup {
  readonly name: string;
  readonly rules: readonly (RecordingRule | AlertingRule)[];
}

/** How long ago a writer last answered a scrape (a subquery: stateless, survives Prometheus restarts). */
const SECONDS_SINCE_WRITER_UP = `time() - max(max_over_time(timestamp(up{job="${JOBS.writer}"} == 1)[30m:]))`;

export function pipelineRuleGroups(): RuleGroup[] {
  return [
    {
      name: 'tickwatch-pipeline-records',
      rules: [
        { record: RECORDED.writerLagSeconds, expr: `max by (topic) (${WRITER.lagSeconds.name})` },
        { record: RECORDED.writerLagMessages, expr: `sum by (topic) (${WRITER.lagMessages.name})` },
        { record: RECORDED.producedRate, expr: `sum by (topic) (rate(${INGESTION.recordsProduced.name}[1m]))` },
        { record: RECORDED.receivedRate, expr: `sum by (stream) (rate(${INGESTION.messagesReceived.name}[1m]))` },
        {
          // A writer reports its own lag only while it runs. When no writer answers and ingestion still produces to a
          // topic, nothing drains it: its lag is then (at least) the time since a writer was last up.
          record: RECORDED.pipelineLagSeconds,
          expr: [
            RECORDED.writerLagSeconds,
            'or on (topic)',
            `((${RECORDED.producedRate} > 0) * 0 + on () group_left () (${SECONDS_SINCE_WRITER_UP}))`,
          ].join('\n'),
        },
      ],
    },
    {
      name: 'tickwatch-pipeline-alerts',
      rules: [
        {
          alert: 'TickwatchPipelineLag',
          expr: `${RECORDED.pipelineLagSeconds} > ${PIPELINE_LAG_SECONDS_THRESHOLD}`,
          for: '1m',
          labels: { severity: 'warning' },
          annotations: {
            summary: 'Ticks on {{ $labels.topic }} reach the database {{ $value | humanizeDuration }} late',
            description:
              'The tick writers trail Kafka on {{ $labels.topic }}: the database is slow, a writer is stuck, or no writer runs while ingestion produces.',
          },
        },
        {
          alert: 'TickwatchIngestionStalled',
          expr: `sum(${RECORDED.receivedRate}) == 0`,
          for: '2m',
          labels: { severity: 'critical' },
          annotations: {
            summary: 'Ingestion has received no exchange messages for 2 minutes',
            description: 'No stream delivered a message: the exchange sockets are down or reconnecting.',
          },
        },
        {
          alert: 'TickwatchWriterPartitionStuck',
          expr: `max by (table) (${WRITER.stuckPartitions.name}) > 0`,
          for: '1m',
          labels: { severity: 'critical' },
          annotations: {
            summary: 'A {{ $labels.table }} writer partition cannot advance',
            description: 'Its writes keep failing (see the writer log and /healthz): the records behind it are not stored.',
          },
        },
        {
          alert: 'TickwatchWorkerDown',
          expr: `up{job=~"${Object.values(JOBS).join('|')}"} == 0`,
          for: '1m',
          labels: { severity: 'critical' },
          annotations: {
            summary: 'The {{ $labels.job }} worker does not answer /metrics',
            description: 'Prometheus cannot scrape {{ $labels.instance }}: the worker is stopped or crashed.',
          },
        },
      ],
    },
  ];
}
