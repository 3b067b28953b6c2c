// Every Prometheus series the dashboards and alert rules name, in one place: the workers' metric names (as their
// registries register them) and the recording rules of docker/prometheus/rules/pipeline.yml. grafana/metric-names.test.ts
// checks each worker name against the worker's own registry, so a rename there fails here instead of emptying a panel.

export type MetricKind = 'counter' | 'gauge' | 'histogram';

export interface MetricName {
  readonly name: string;
  readonly kind: MetricKind;
  /** Label names the queries group or filter by. */
  readonly labels: readonly string[];
}

const m = (name: string, kind: MetricKind, labels: readonly string[] = []): MetricName => ({ name, kind, labels });

/** ingestion/metrics.ts (createIngestMetrics). */
export const INGESTION = {
  messagesReceived: m('tickwatch_ingestion_messages_received_total', 'counter', ['stream']),
  recordsProduced: m('tickwatch_ingestion_records_produced_total', 'counter', ['topic']),
  deadLetters: m('tickwatch_ingestion_dead_letters_total', 'counter', ['reason']),
  reconnects: m('tickwatch_ingestion_reconnects_total', 'counter', ['reason']),
  gapsDetected: m('tickwatch_ingestion_gaps_detected_total', 'counter', ['stream']),
  gapIds: m('tickwatch_ingestion_gap_ids_total', 'counter', ['stream', 'outcome']),
  ackLatency: m('tickwatch_ingestion_ack_latency_seconds', 'histogram'),
  producerBufferDepth: m('tickwatch_ingestion_producer_buffer_depth', 'gauge'),
} as const;

/** consumer/metrics.ts (createWriterMetrics). */
export const WRITER = {
  lagMessages: m('tickwatch_writer_lag_messages', 'gauge', ['topic', 'partition']),
  lagSeconds: m('tickwatch_writer_lag_seconds', 'gauge', ['topic', 'partition']),
  rowsWritten: m('tickwatch_writer_rows_written_total', 'counter', ['table']),
  copySeconds: m('tickwatch_writer_copy_seconds', 'histogram', ['table']),
  commitLatency: m('tickwatch_writer_commit_latency_seconds', 'histogram', ['table', 'since']),
  deadLetters: m('tickwatch_writer_dead_letters_total', 'counter', ['topic']),
  batches: m('tickwatch_writer_batches_total', 'counter', ['table', 'path']),
  stuckPartitions: m('tickwatch_writer_stuck_partitions', 'gauge', ['table']),
} as const;

/** Prometheus scrape jobs (docker/prometheus/prometheus.yml). */
export const JOBS = { ingestion: 'ingestion', writer: 'writer', metrics: 'metrics' } as const;

/** Recording rules of docker/prometheus/rules/pipeline.yml (the rule file is generated from these names). */
export const RECORDED = {
  writerLagSeconds: 'tickwatch:writer_lag_seconds:max_by_topic',
  writerLagMessages: 'tickwatch:writer_lag_messages:sum_by_topic',
  producedRate: 'tickwatch:ingestion_records_produced:rate1m',
  receivedRate: 'tickwatch:ingestion_messages_received:rate1m',
  writerLastUp: 'tickwatch:writer_last_up:timestamp',
  pipelineLagSeconds: 'tickwatch:pipeline_lag_seconds:max_by_topic',
} as const;

/** The series of a histogram's buckets, for histogram_quantile. */
export const bucket = (h: MetricName) => `${h.name}_bucket`;
