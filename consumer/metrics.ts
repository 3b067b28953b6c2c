// The writers' Prometheus metrics: lag, rows, batch sizes, COPY time, end-to-end latency, dead letters and retries.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300];
const BY_TABLE = ['table'] as const;
const BY_PARTITION = ['topic', 'partition'] as const;

export function createWriterMetrics(registry: Registry) {
  const registers = [registry];
  // Every name has the prefix tickwatch_writer_.
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Gauge<L>({ name: `tickwatch_writer_${name}`, help, labelNames, registers });
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Counter<L>({ name: `tickwatch_writer_${name}`, help, labelNames, registers });
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]) =>
    new Histogram<L>({ name: `tickwatch_writer_${name}`, help, labelNames, buckets, registers });
  return {
    lagMessages: gauge('lag_messages', 'Records on the partition not yet written (high watermark minus next offset to write)', BY_PARTITION),
    lagSeconds: gauge('lag_seconds', 'Exchange time between the newest record fetched from the partition and the newest written', BY_PARTITION),
    rowsWritten: counter('rows_written_total', 'Rows inserted into each table (duplicates skipped by the merge path are not counted)', BY_TABLE),
    duplicatesSkipped: counter('duplicates_skipped_total', 'Records whose tick was already in the table (a tick produced twice)', BY_TABLE),
    batches: counter(
      'batches_total',
      'Committed batches by path: copy (straight into the table) or merge (staging + ON CONFLICT DO NOTHING)',
      ['table', 'path'] as const,
    ),
    batchRows: histogram('batch_rows', 'Records per committed batch', BY_TABLE, [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000]),
    batchBytes: histogram('batch_bytes', 'Kafka value bytes per committed batch', BY_TABLE, [1e3, 1e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6, 1e7, 2.5e7]),
    copySeconds: histogram(
      'copy_seconds',
      'Time of the COPY (or staging + merge) inside a batch transaction',
      BY_TABLE,
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    ),
    summarizeSeconds: histogram(
      'summarize_seconds',
      'Time spent summarizing a batch of ticks into per-second slices (before its transaction)',
      BY_TABLE,
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    ),
    commitLatency: histogram(
      'commit_latency_seconds',
      'End to end: database commit time minus the tick exchange time (since=exchange) or local receive time (since=receive)',
      ['table', 'since'] as const,
      LATENCY_BUCKETS,
    ),
    deadLetters: counter('dead_letters_total', 'Records that could not be decoded or stored, sent to the dead-letter topic', ['topic'] as const),
    retries: counter('retries_total', 'Batches retried after a database or Kafka error (the partition is paused during the backoff)', BY_TABLE),
    staleBatches: counter('stale_batches_total', 'Batches refused because another group member had already moved the partition offset', BY_TABLE),
    pausedPartitions: gauge('paused_partitions', 'Partitions paused while their batch waits for a retry', BY_TABLE),
    stuckPartitions: gauge('stuck_partitions', 'Partitions whose writes failed WRITER_STUCK_RETRIES times in a row (they cannot advance)', BY_TABLE),
  };
}

export type WriterMetrics = ReturnType<typeof createWriterMetrics>;
