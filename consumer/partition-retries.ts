// A writer's failing partitions: a write that failed for a reason other than the records (database or Kafka away)
// pauses its partition and resumes it after a capped backoff, so the batch is fetched again from its first record;
// after WRITER_STUCK_RETRIES failures in a row the partition counts as stuck (/healthz, stuck_partitions).
import { backoffDelay } from '../common/backoff.ts';
import type { Config } from '../common/config.ts';
import type { PartitionReader } from '../common/kafka-partitions.ts';
import type { Logger } from '../common/log.ts';
import type { WriterMetrics } from './metrics.ts';

const sorted = (xs: Iterable<number>) => [...xs].sort((a, b) => a - b);

export class PartitionRetries {
  /** Failures in a row per partition. */
  private readonly attempts = new Map<number, number>();
  private readonly timers = new Map<number, NodeJS.Timeout>();

  constructor(
    private readonly o: {
      readonly config: Config['writer'];
      readonly metrics: WriterMetrics;
      readonly log: Logger;
      readonly topic: string;
      readonly table: string;
      /** The consumer of the moment (a new one replaces it after the client gives up). */
      readonly consumer: () => PartitionReader;
      readonly stopping: () => boolean;
    },
  ) {}

  /** Whether the partition waits for its retry (its batches are not taken meanwhile). */
  waiting(partition: number): boolean {
    return this.timers.has(partition);
  }

  paused(): number[] {
    return sorted(this.timers.keys());
  }

  /** Partitions that failed WRITER_STUCK_RETRIES times in a row: they cannot advance. */
  stuck(): number[] {
    return sorted([...this.attempts].filter(([, n]) => n >= this.o.config.stuckRetries).map(([p]) => p));
  }

  /** The partition wrote a batch, or is no longer ours: its failures are forgotten. */
  reset(partition: number): void {
    this.attempts.delete(partition);
    this.updateStuck();
  }

  /** Drops the pending resumes (a new consumer, or stopping). */
  cancel(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** Pauses the partition and resumes it after a capped backoff; the batch is fetched again from its first record. */
  retryLater(partition: number, err: Error, what: string): void {
    const { o } = this;
    const attempt = (this.attempts.get(partition) ?? 0) + 1;
    this.attempts.set(partition, attempt);
    const delayMs = backoffDelay(attempt - 1, o.config.retryMinMs, o.config.retryMaxMs, 0.2);
    o.metrics.retries.inc({ table: o.table });
    o.log.warn({ err, topic: o.topic, partition, attempt, delayMs }, `${what} failed: partition paused, retrying`);
    this.updateStuck();
    if (o.stopping()) return;
    o.consumer().pause(o.topic, partition);
    const timer = setTimeout(() => {
      this.timers.delete(partition);
      o.metrics.pausedPartitions.set({ table: o.table }, this.timers.size);
      if (!o.stopping()) o.consumer().resume(o.topic, partition);
    }, delayMs);
    this.timers.set(partition, timer);
    o.metrics.pausedPartitions.set({ table: o.table }, this.timers.size);
  }

  private updateStuck(): void {
    this.o.metrics.stuckPartitions.set({ table: this.o.table }, this.stuck().length);
  }
}
