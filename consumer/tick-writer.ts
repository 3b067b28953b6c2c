// One tick writer: a Kafka consumer group member for one table family (trades, aggTrades, bookTickers, books, gaps).
// It takes fetched batches per partition, lines them up with the partition's stored position (positions.ts), cuts them
// into runs bounded by rows and bytes, and writes each run with the partition's next offset in the same transaction
// (run-writer.ts), so a crash, restart, rebalance or redelivery never writes a record twice or skips one. On each
// assignment every partition starts at the position stored in the database. Kafka offsets are committed after the
// database commit, for lag tooling only.
import type pg from 'pg';
import { backoffDelay } from '../common/backoff.ts';
import type { Config } from '../common/config.ts';
import { createPool } from '../common/db.ts';
import { kafkaErrorText, topicOffsets, type Admin, type KafkaClients } from '../common/kafka.ts';
import { PartitionReader, type BatchPayload, type FetchedMessage, type TopicPartition } from '../common/kafka-partitions.ts';
import { readRanges } from '../common/kafka-read.ts';
import type { Logger } from '../common/log.ts';
import { fetchSettings, planBatches } from './batching.ts';
import { readOffset } from './copy.ts';
import type { WriteTable } from './copy-rows.ts';
import type { DeadLetterSink } from './dead-letters.ts';
import { familyCodec, type Family } from './families.ts';
import type { WriterMetrics } from './metrics.ts';
import { PartitionRetries } from './partition-retries.ts';
import { lineUp, partitionState, publishLag, removeLag, type PartitionState } from './positions.ts';
import { RunWriter } from './run-writer.ts';

const LAG_POLL_MS = 5_000;
const REREAD_TIMEOUT_MS = 30_000;

export interface TickWriterOptions {
  readonly config: Config;
  readonly log: Logger;
  readonly kafka: KafkaClients;
  readonly family: Family;
  readonly metrics: WriterMetrics;
  readonly deadLetters: DeadLetterSink;
  /** Distinguishes members in logs (tests run several in one process). */
  readonly memberName?: string;
}

export interface WriterHealth {
  readonly ok: boolean;
  readonly family: Family;
  readonly groupId: string;
  readonly assigned: number[];
  readonly paused: number[];
  /** Partitions whose writes failed WRITER_STUCK_RETRIES times in a row. */
  readonly stuck: number[];
  readonly lastCommitAt: string | null;
  readonly error?: string;
}

export class TickWriter {
  readonly family: Family;
  readonly topic: string;
  readonly table: WriteTable;
  readonly groupId: string;
  readonly done: Promise<void>;

  private readonly log: Logger;
  private readonly pool: pg.Pool;
  private consumer: PartitionReader;
  private readonly admin: Admin;
  private readonly states = new Map<number, PartitionState>();
  private readonly retries: PartitionRetries;
  private readonly runs: RunWriter;
  private assigned = new Set<number>();
  private lagTimer: NodeJS.Timeout | undefined;
  private lastCommitAt: Date | null = null;
  private crashed: Error | undefined;
  private stopping = false;
  private settle!: { resolve: () => void; reject: (err: Error) => void };

  constructor(private readonly o: TickWriterOptions) {
    this.family = o.family;
    const codec = familyCodec(o.family);
    this.topic = codec.topic(o.config);
    this.table = codec.table;
    this.groupId = `${o.config.writer.groupPrefix}-${o.family}`;
    this.log = o.log.child({ component: 'writer', family: o.family, groupId: this.groupId, member: o.memberName });
    this.pool = createPool(o.config, `tickwatch-writer-${o.family}`, this.log, 'writer');
    this.consumer = this.createConsumer();
    this.admin = o.kafka.admin();
    this.done = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => {}); // observed by whoever awaits it; never an unhandled rejection
    const { topic, table, log } = this;
    this.retries = new PartitionRetries({
      config: o.config.writer,
      metrics: o.metrics,
      log,
      topic,
      table,
      consumer: () => this.consumer,
      stopping: () => this.stopping,
    });
    this.runs = new RunWriter({
      pool: this.pool,
      groupId: this.groupId,
      topic,
      table,
      codec,
      metrics: o.metrics,
      log,
      deadLetters: o.deadLetters,
      retryLater: (partition, err, what) => this.retryLater(partition, err, what),
      reread: (partition, from, to) => this.reread(partition, from, to),
      stale: (partition) => this.states.delete(partition),
      written: (partition, st, committedAt) => {
        this.lastCommitAt = new Date(committedAt);
        this.retries.reset(partition);
        publishLag(o.metrics, topic, partition, st);
      },
    });
  }

  private createConsumer(): PartitionReader {
    const { o } = this;
    const session = o.config.writer.sessionTimeoutMs;
    const f = fetchSettings(o.config.writer, o.config.kafka.partitions);
    return new PartitionReader({
      kafka: o.kafka,
      topics: [this.topic],
      log: this.log,
      group: {
        groupId: this.groupId,
        sessionTimeout: session,
        heartbeatInterval: Math.max(500, Math.min(3_000, Math.floor(session / 5))),
        rebalanceTimeout: Math.max(60_000, session),
        onAssign: (partitions) => this.onAssign(partitions),
      },
      fetch: { minBytes: f.minBytes, maxBytes: f.maxBytes, maxBytesPerPartition: f.maxBytesPerPartition, maxWaitMs: f.maxWaitTimeInMs },
      eachBatch: (payload) => this.onBatch(payload),
      onCrash: (err) => this.onCrash(err),
    });
  }

  async start(): Promise<void> {
    await this.runConsumer();
    this.lagTimer = setInterval(() => void this.pollLag(), LAG_POLL_MS);
    this.lagTimer.unref();
  }

  /**
   * The client gives up after its own retries (a broker away for more than ~25 s, a rejoin that failed). The database
   * holds the positions, so a new consumer simply rejoins and starts from them: the writer outlives any broker outage.
   */
  private onCrash(err: Error): void {
    this.crashed = err;
    if (this.stopping) return;
    this.log.error({ err: kafkaErrorText(err) }, 'the Kafka client gave up: starting a new consumer');
    setTimeout(() => void this.restartConsumer(1), this.o.config.writer.retryMinMs);
  }

  private async restartConsumer(attempt: number): Promise<void> {
    await this.consumer.stop().catch(() => {});
    if (this.stopping) return;
    this.retries.cancel();
    this.states.clear();
    this.consumer = this.createConsumer();
    try {
      await this.runConsumer();
      this.crashed = undefined;
      this.log.info({ attempt }, 'consumer restarted');
    } catch (err) {
      const delayMs = backoffDelay(attempt - 1, this.o.config.writer.retryMinMs, this.o.config.writer.retryMaxMs, 0.2);
      this.log.warn({ err: kafkaErrorText(err), attempt, delayMs }, 'restarting the consumer failed: retrying');
      if (!this.stopping) setTimeout(() => void this.restartConsumer(attempt + 1), delayMs);
    }
  }

  private async runConsumer(): Promise<void> {
    await this.consumer.start();
  }

  /**
   * A new assignment: revoked partitions are forgotten, and every partition starts at the position stored in the
   * database (another member may have written while we were out). A position that cannot be read now is read again
   * by the first batch (which pauses the partition if the database is still away).
   */
  private async onAssign(partitions: readonly TopicPartition[]): Promise<Map<string, bigint | null>> {
    const now = new Set(partitions.filter((tp) => tp.topic === this.topic).map((tp) => tp.partition));
    for (const p of this.assigned) if (!now.has(p)) this.forget(p);
    this.assigned = now;
    this.states.clear();
    this.log.info({ partitions: [...now].sort((a, b) => a - b) }, 'partitions assigned');
    const start = new Map<string, bigint | null>();
    await Promise.all(
      [...now].map(async (partition) => {
        try {
          const next = await readOffset(this.pool, this.groupId, this.topic, partition);
          this.states.set(partition, partitionState(next));
          start.set(`${this.topic}:${partition}`, next);
        } catch (err) {
          this.log.warn({ err, partition }, 'reading the stored offset at assignment failed: the first batch reads it again');
        }
      }),
    );
    return start;
  }

  /** Graceful: batches in hand are written and committed, then the member leaves the group. */
  async stop(): Promise<void> {
    if (this.stopping) return this.done;
    this.stopping = true;
    clearInterval(this.lagTimer);
    this.retries.cancel();
    try {
      await this.consumer.stop();
      await this.admin.close();
      await this.pool.end();
      this.settle.resolve();
    } catch (err) {
      this.settle.reject(err as Error);
    }
    return this.done;
  }

  health(): WriterHealth {
    const stuck = this.retries.stuck();
    return {
      ok: this.crashed === undefined && stuck.length === 0,
      stuck,
      family: this.family,
      groupId: this.groupId,
      assigned: [...this.assigned].sort((a, b) => a - b),
      paused: this.retries.paused(),
      lastCommitAt: this.lastCommitAt?.toISOString() ?? null,
      ...(this.crashed ? { error: this.crashed.message } : {}),
    };
  }

  // --- one fetched batch of one partition -----------------------------------------------------------------------------

  private async onBatch({ batch, resolveOffset, heartbeat, isStale }: BatchPayload): Promise<void> {
    const { topic, partition } = batch;
    const { records } = batch;
    if (isStale() || this.retries.waiting(partition) || records.length === 0) return;

    let st = this.states.get(partition);
    if (!st || st.reread) {
      let next: bigint | null;
      try {
        next = await readOffset(this.pool, this.groupId, topic, partition);
      } catch (err) {
        this.retryLater(partition, err as Error, 'reading the stored offset');
        return;
      }
      if (st) Object.assign(st, { next, reread: false, positionChecked: false });
      else this.states.set(partition, (st = partitionState(next)));
    }
    st.high = BigInt(batch.highWatermark);

    // Line the fetched records up with the stored position: what is below it is in the database already.
    const lastOffset = BigInt(batch.lastOffset());
    const line = lineUp(st, records, lastOffset);
    if (line.kind === 'stored') {
      resolveOffset(batch.lastOffset());
      if (line.seekTo !== null) this.consumer.seek(topic, partition, line.seekTo);
      return;
    }
    if (line.kind === 'ahead') {
      const fetched = records.offset(0).toString();
      this.log.warn({ topic, partition, fetched, stored: line.seekTo.toString() }, 'fetch position ahead of the stored offset: seeking back');
      this.consumer.seek(topic, partition, line.seekTo);
      return;
    }
    const { from } = line;

    const { batchSize, batchMaxBytes } = this.o.config.writer;
    const lengths: number[] = [];
    for (let i = from; i < records.length; i++) lengths.push(records.valueLength(i));
    const runs = planBatches(lengths, { rows: batchSize, bytes: batchMaxBytes });
    const decoded = runs.map(([a, b]) =>
      this.runs.decodeRun(partition, st, records, from + a, from + b, from + b === records.length ? lastOffset + 1n : records.offset(from + b - 1) + 1n),
    );
    // The rows are all the transactions need: the batches' bytes go now rather than after the database commits, which
    // is most of their lifetime (a refused run reads its records again). The reader holds this batch until it is
    // handled, so it is emptied in place.
    records.release();
    let written: bigint | null = null;
    try {
      for (const run of decoded) {
        if (!(await this.runs.write(st, partition, run, heartbeat))) return;
        // Only a committed run's rows are reused: after a failed COPY a dying socket may still hold them.
        run.encoded.release?.();
        resolveOffset((run.next - 1n).toString());
        written = run.next;
        await heartbeat();
      }
    } finally {
      // Once per fetched batch, not per run: the Kafka commit is for lag tools only.
      if (written !== null) await this.commitKafka(topic, partition, written);
    }
  }

  /** The records [from, to) of a partition, read again (without the group) for a run the database refused. */
  private async reread(partition: number, from: bigint, to: bigint): Promise<FetchedMessage[]> {
    const records: FetchedMessage[] = [];
    await readRanges(this.o.kafka, [{ topic: this.topic, partition, from, to }], this.log, (_topic, _partition, m) => void records.push(m), {
      timeoutMs: REREAD_TIMEOUT_MS,
      maxBytes: this.o.config.writer.fetchMaxBytes,
    });
    return records;
  }

  /** Kafka's committed offset follows the database (for lag tools); the database stays the source of truth. */
  private async commitKafka(topic: string, partition: number, next: bigint): Promise<void> {
    try {
      await this.consumer.commit(topic, partition, next);
    } catch (err) {
      this.log.debug({ err: kafkaErrorText(err), topic, partition }, 'Kafka offset commit failed (the database holds the position)');
    }
  }

  /**
   * Pauses the partition for a retry (partition-retries.ts). The transaction may have committed before its reply was
   * lost: the position is read again before the retry (the state stays, so the lag gauges keep being polled meanwhile).
   */
  private retryLater(partition: number, err: Error, what: string): void {
    const st = this.states.get(partition);
    if (st) st.reread = true;
    this.retries.retryLater(partition, err, what);
  }

  // --- lag ---------------------------------------------------------------------------------------------------------

  private forget(partition: number): void {
    this.retries.reset(partition);
    removeLag(this.o.metrics, this.topic, partition);
  }

  /** Between batches (idle, paused or waiting for the database) the high watermarks still move: poll them. */
  private async pollLag(): Promise<void> {
    if (this.assigned.size === 0) return;
    try {
      const offsets = await topicOffsets(this.admin, this.topic);
      for (const o of offsets) {
        const st = this.states.get(o.partition);
        if (!st || !this.assigned.has(o.partition)) continue;
        st.high = o.high;
        publishLag(this.o.metrics, this.topic, o.partition, st);
      }
    } catch (err) {
      this.log.debug({ err: kafkaErrorText(err) }, 'lag poll failed');
    }
  }
}
