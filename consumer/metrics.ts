// The writers' Prometheus metrics: lag, rows, batch sizes, COPY time, end-to-end latency, dead letters and retries.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300];

export function createWriterMetrics(registry: Registry) {
  const registers = [registry];
  return {
    lagMessages: new Gauge({
      name: 'tickwatch_writer_lag_messages',
      help: 'Records on the partition not yet written (high watermark minus next offset to write)',
      labelNames: ['topic', 'partition'] as const,
      registers,
    }),
    lagSeconds: new Gauge({
      name: 'tickwatch_writer_lag_seconds',
      help: 'Exchange time between the newest record fetched from the partition and the newest written',
      labelNames: ['topic', 'partition'] as const,
      registers,
    }),
    rowsWritten: new Counter({
      name: 'tickwatch_writer_rows_written_total',
      help: 'Rows inserted into each table (duplicates skipped by the merge path are not counted)',
      labelNames: ['table'] as const,
      registers,
    }),
    duplicatesSkipped: new Counter({
      name: 'tickwatch_writer_duplicates_skipped_total',
      help: 'Records whose tick was already in the table (a tick produced twice)',
      labelNames: ['table'] as const,
      registers,
    }),
    batches: new Counter({
      name: 'tickwatch_writer_batches_total',
      help: 'Committed batches by path: copy (straight into the table) or merge (staging + ON CONFLICT DO NOTHING)',
      labelNames: ['table', 'path'] as const,
      registers,
    }),
    batchRows: new Histogram({
      name: 'tickwatch_writer_batch_rows',
      help: 'Records per committed batch',
      labelNames: ['table'] as const,
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000],
      registers,
    }),
    batchBytes: new Histogram({
      name: 'tickwatch_writer_batch_bytes',
      help: 'Kafka value bytes per committed batch',
      labelNames: ['table'] as const,
      buckets: [1e3, 1e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6, 1e7, 2.5e7],
      registers,
    }),
    copySeconds: new Histogram({
      name: 'tickwatch_writer_copy_seconds',
      help: 'Time of the COPY (or staging + merge) inside a batch transaction',
      labelNames: ['table'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    summarizeSeconds: new Histogram({
      name: 'tickwatch_writer_summarize_seconds',
      help: 'Time spent summarizing a batch of ticks into per-second slices (before its transaction)',
      labelNames: ['table'] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    }),
    commitLatency: new Histogram({
      name: 'tickwatch_writer_commit_latency_seconds',
      help: 'End to end: database commit time minus the tick exchange time (since=exchange) or local receive time (since=receive)',
      labelNames: ['table', 'since'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    deadLetters: new Counter({
      name: 'tickwatch_writer_dead_letters_total',
      help: 'Records that could not be decoded or stored, sent to the dead-letter topic',
      labelNames: ['topic'] as const,
      registers,
    }),
    retries: new Counter({
      name: 'tickwatch_writer_retries_total',
      help: 'Batches retried after a database or Kafka error (the partition is paused during the backoff)',
      labelNames: ['table'] as const,
      registers,
    }),
    staleBatches: new Counter({
      name: 'tickwatch_writer_stale_batches_total',
      help: 'Batches refused because another group member had already moved the partition offset',
      labelNames: ['table'] as const,
      registers,
    }),
    pausedPartitions: new Gauge({
      name: 'tickwatch_writer_paused_partitions',
      help: 'Partitions paused while their batch waits for a retry',
      labelNames: ['table'] as const,
      registers,
    }),
    stuckPartitions: new Gauge({
      name: 'tickwatch_writer_stuck_partitions',
      help: 'Partitions whose writes failed WRITER_STUCK_RETRIES times in a row (they cannot advance)',
      labelNames: ['table'] as const,
      registers,
    }),
  };
}

export type WriterMetrics = ReturnType<typeof createWriterMetrics>;
