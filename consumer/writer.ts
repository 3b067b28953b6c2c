// The tick writers: one Kafka consumer group per table family (trades, aggTrades, bookTickers, books). Each member takes
// fetched batches per partition, cuts them into COPY transactions bounded by rows and bytes, and stores the partition's
// next offset in the same transaction as the rows (writer_offsets), so a crash, restart, rebalance or redelivery never
// writes a record twice or skips one. Kafka offsets are committed after the database commit, for lag tooling only.
import { Partitioners, type Admin, type Consumer, type EachBatchPayload, type Kafka, type KafkaMessage, type Producer } from 'kafkajs';
import type pg from 'pg';
import type { Config } from '../common/config.ts';
import { createPool } from '../common/db.ts';
import type { Logger } from '../common/log.ts';
import { encodeRecord, recordHeaders, RecordError, type DeadLetter } from '../common/records.ts';
import { backoffDelay } from '../common/backoff.ts';
import { fetchSettings, planBatches } from './batching.ts';
import { readOffset, writeTables } from './copy.ts';
import type { WriteTable } from './copy-rows.ts';
import { familyCodec, FAMILIES, type EncodedRun, type Family, type FamilyCodec } from './families.ts';
import { computeLag } from './lag.ts';
import type { WriterMetrics } from './metrics.ts';

export { FAMILIES, type Family };

const LAG_POLL_MS = 5_000;
const HEARTBEAT_DURING_WRITE_MS = 1_000;

/** A record that cannot become a row, with the coordinates needed to find it again. */
export interface PoisonRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly reason: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/** Sends poison records to the dead-letter topic (at least once: a crash before the batch commits sends them again). */
export class DeadLetterSink {
  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly maxBytes: number,
  ) {}

  async send(records: readonly PoisonRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: records.map((r) => {
        const raw = r.value ?? Buffer.alloc(0);
        const truncated = raw.length > this.maxBytes;
        const letter: DeadLetter = {
          type: 'deadLetter',
          source: 'writer',
          stream: r.topic,
          reason: r.reason,
          raw: raw.subarray(0, this.maxBytes).toString('utf8'),
          truncated,
          receiveTimeUs: Date.now() * 1000,
          topic: r.topic,
          partition: r.partition,
          offset: r.offset,
        };
        return { key: r.key, value: encodeRecord(letter), headers: recordHeaders('deadLetter') };
      }),
    });
  }
}

/**
 * Whether the database refused the rows themselves rather than being unable to take them: a data exception (class 22:
 * a NUL byte, a number out of range, bad binary input) or an integrity violation other than a duplicate key (class
 * 23). Retrying cannot help these; every other error (connection, shutdown, resources, serialization) is retried.
 */
export function isRecordError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('22') || (code.startsWith('23') && code !== '23505'));
}

type WriteOutcome = 'written' | 'retry' | { readonly recordError: Error };

interface PartitionState {
  /** Next offset to write, as last read from or written to writer_offsets; null when the partition has no row yet. */
  next: bigint | null;
  /** A write failed: the position is read again from the database before the next one (it may have committed). */
  reread: boolean;
  /** The first batch after (re)loading the position has been checked against it. */
  positionChecked: boolean;
  high: bigint;
  newestSeenMs: number | null;
  newestWrittenMs: number | null;
}

export interface TickWriterOptions {
  readonly config: Config;
  readonly log: Logger;
  readonly kafka: Kafka;
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
  private consumer: Consumer;
  private readonly admin: Admin;
  private readonly codec: FamilyCodec;
  private readonly states = new Map<number, PartitionState>();
  private readonly attempts = new Map<number, number>();
  private readonly retryTimers = new Map<number, NodeJS.Timeout>();
  private assigned = new Set<number>();
  private lagTimer: NodeJS.Timeout | undefined;
  private lastCommitAt: Date | null = null;
  private crashed: Error | undefined;
  private stopping = false;
  private settle!: { resolve: () => void; reject: (err: Error) => void };
  private readonly latencyExchange;
  private readonly latencyReceive;

  constructor(private readonly o: TickWriterOptions) {
    this.family = o.family;
    this.codec = familyCodec(o.family);
    this.topic = this.codec.topic(o.config);
    this.table = this.codec.table;
    this.groupId = `${o.config.writer.groupPrefix}-${o.family}`;
    this.log = o.log.child({ component: 'writer', family: o.family, groupId: this.groupId, member: o.memberName });
    this.pool = createPool(o.config, `tickwatch-writer-${o.family}`, this.log);
    this.consumer = this.createConsumer();
    this.admin = o.kafka.admin();
    this.done = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => {}); // observed by whoever awaits it; never an unhandled rejection
    this.latencyExchange = o.metrics.commitLatency.labels(this.table, 'exchange');
    this.latencyReceive = o.metrics.commitLatency.labels(this.table, 'receive');
  }

  private createConsumer(): Consumer {
    const { o } = this;
    const session = o.config.writer.sessionTimeoutMs;
    return o.kafka.consumer({
      groupId: this.groupId,
      sessionTimeout: session,
      heartbeatInterval: Math.max(500, Math.min(3_000, Math.floor(session / 5))),
      rebalanceTimeout: Math.max(60_000, session),
      allowAutoTopicCreation: false,
      ...fetchSettings(o.config.writer, o.config.kafka.partitions),
    });
  }

  async start(): Promise<void> {
    await this.admin.connect();
    await this.runConsumer();
    this.lagTimer = setInterval(() => void this.pollLag(), LAG_POLL_MS);
    this.lagTimer.unref();
  }

  /**
   * kafkajs gives up on a consumer after its own retries (a broker away for more than ~15 s). The database holds the
   * positions, so a new consumer simply rejoins and lines up again: the writer outlives any broker outage.
   */
  private async restartConsumer(attempt: number): Promise<void> {
    await this.consumer.disconnect().catch(() => {});
    if (this.stopping) return;
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
    this.states.clear();
    this.consumer = this.createConsumer();
    try {
      await this.runConsumer();
      this.crashed = undefined;
      this.log.info({ attempt }, 'consumer restarted');
    } catch (err) {
      const delayMs = backoffDelay(attempt - 1, this.o.config.writer.retryMinMs, this.o.config.writer.retryMaxMs, 0.2);
      this.log.warn({ err, attempt, delayMs }, 'restarting the consumer failed: retrying');
      setTimeout(() => void this.restartConsumer(attempt + 1), delayMs);
    }
  }

  private async runConsumer(): Promise<void> {
    const { consumer } = this;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const now = new Set(e.payload.memberAssignment[this.topic] ?? []);
      for (const p of this.assigned) if (!now.has(p)) this.forget(p);
      this.assigned = now;
      // Another member may have written while we were out: every position is read again from the database.
      this.states.clear();
      this.log.info({ partitions: [...now].sort((a, b) => a - b) }, 'partitions assigned');
    });
    consumer.on(consumer.events.CRASH, (e) => {
      const err = e.payload.error;
      if (e.payload.restart) {
        this.log.warn({ err }, 'consumer crashed: kafkajs restarts it');
        return;
      }
      this.crashed = err;
      if (this.stopping) return;
      this.log.error({ err }, 'consumer crashed and kafkajs gave up: starting a new one');
      setTimeout(() => void this.restartConsumer(1), this.o.config.writer.retryMinMs);
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.o.config.kafka.partitions,
      eachBatch: (payload) => this.onBatch(payload),
    });
  }

  /** Graceful: batches in hand are written and committed, then the member leaves the group. */
  async stop(): Promise<void> {
    if (this.stopping) return this.done;
    this.stopping = true;
    clearInterval(this.lagTimer);
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
    try {
      await this.consumer.stop();
      await this.consumer.disconnect();
      await this.admin.disconnect();
      await this.pool.end();
      this.settle.resolve();
    } catch (err) {
      this.settle.reject(err as Error);
    }
    return this.done;
  }

  /** Partitions that failed WRITER_STUCK_RETRIES times in a row: they cannot advance, and /healthz says so. */
  private stuck(): number[] {
    return [...this.attempts].filter(([, n]) => n >= this.o.config.writer.stuckRetries).map(([p]) => p).sort((a, b) => a - b);
  }

  private updateStuck(): void {
    this.o.metrics.stuckPartitions.set({ table: this.table }, this.stuck().length);
  }

  health(): WriterHealth {
    const stuck = this.stuck();
    return {
      ok: this.crashed === undefined && stuck.length === 0,
      stuck,
      family: this.family,
      groupId: this.groupId,
      assigned: [...this.assigned].sort((a, b) => a - b),
      paused: [...this.retryTimers.keys()].sort((a, b) => a - b),
      lastCommitAt: this.lastCommitAt?.toISOString() ?? null,
      ...(this.crashed ? { error: this.crashed.message } : {}),
    };
  }

  // --- one fetched batch of one partition -----------------------------------------------------------------------------

  private async onBatch({ batch, resolveOffset, heartbeat, isStale }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    if (isStale() || this.retryTimers.has(partition) || batch.messages.length === 0) return;

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
      else this.states.set(partition, (st = { next, reread: false, positionChecked: false, high: 0n, newestSeenMs: null, newestWrittenMs: null }));
    }
    st.high = BigInt(batch.highWatermark);

    // Line the fetched records up with the stored position: what is below it is in the database already.
    let messages = batch.messages;
    const lastOffset = BigInt(batch.lastOffset());
    if (st.next !== null) {
      const next = st.next;
      const first = BigInt(messages[0]!.offset);
      if (lastOffset < next) {
        resolveOffset(batch.lastOffset());
        if (next > lastOffset + 1n) this.consumer.seek({ topic, partition, offset: next.toString() });
        return;
      }
      if (first > next && !st.positionChecked) {
        // Kafka's position is past the database's (a restored database, or a trimmed log): go back once to be sure.
        st.positionChecked = true;
        this.log.warn({ topic, partition, fetched: first.toString(), stored: next.toString() }, 'fetch position ahead of the stored offset: seeking back');
        this.consumer.seek({ topic, partition, offset: next.toString() });
        return;
      }
      if (first < next) messages = messages.filter((m) => BigInt(m.offset) >= next);
    }
    st.positionChecked = true;

    const { batchSize, batchMaxBytes } = this.o.config.writer;
    const runs = planBatches(
      messages.map((m) => m.value?.length ?? 0),
      { rows: batchSize, bytes: batchMaxBytes },
    );
    let written: bigint | null = null;
    try {
      for (const [a, b] of runs) {
        const run = messages.slice(a, b);
        const { encoded, poison, bytes } = this.decode(topic, partition, st, run);
        const next = b === messages.length ? lastOffset + 1n : BigInt(run.at(-1)!.offset) + 1n;
        const outcome = await this.writeRun(st, partition, run.length, encoded, poison, next, bytes, heartbeat);
        if (outcome === 'retry') return;
        if (outcome !== 'written' && !(await this.isolate(st, partition, run, next, heartbeat, outcome.recordError))) return;
        resolveOffset(run.at(-1)!.offset);
        written = next;
        await heartbeat();
      }
    } finally {
      // Once per fetched batch, not per run: the Kafka commit is for lag tools only.
      if (written !== null) await this.commitKafka(topic, partition, written);
    }
  }

  /** Decodes one run (only one at a time is held in memory); a record that cannot become a row is a dead letter. */
  private decode(topic: string, partition: number, st: PartitionState, run: KafkaMessage[]) {
    const poison: PoisonRecord[] = [];
    let bytes = 0;
    for (const m of run) bytes += m.value?.length ?? 0;
    const builder = this.codec.run(run.length, bytes);
    for (const m of run) {
      try {
        // Ingestion's records carry no headers; records produced before the version moved into the value do.
        const version = m.headers?.['schema-version'];
        builder.add(m.value ?? null, version === undefined ? undefined : version.toString());
      } catch (err) {
        const reason = err instanceof RecordError ? err.message : `undecodable: ${(err as Error).message}`;
        poison.push({ topic, partition, offset: m.offset, reason, key: m.key ?? null, value: m.value ?? null });
      }
    }
    const encoded = builder.finish();
    const newest = encoded.times.newestMs;
    if (encoded.times.count > 0 && (st.newestSeenMs === null || newest > st.newestSeenMs)) st.newestSeenMs = newest;
    return { encoded, poison, bytes };
  }

  /**
   * The database refused a run's rows: halves are written on their own until the record it refuses is alone; that one
   * is dead-lettered with its offset and the database's reason, its offset claimed, and the rest written. False when a
   * part could not be written (a retry is scheduled, or another member owns the range).
   */
  private async isolate(st: PartitionState, partition: number, run: KafkaMessage[], next: bigint, heartbeat: () => Promise<void>, err: Error): Promise<boolean> {
    if (run.length === 1) {
      const m = run[0]!;
      const code = (err as { code?: string }).code;
      const poison: PoisonRecord = { topic: this.topic, partition, offset: m.offset, reason: `refused by the database (${code}): ${err.message}`, key: m.key ?? null, value: m.value ?? null };
      const empty = this.decode(this.topic, partition, st, []);
      return (await this.writeRun(st, partition, 0, empty.encoded, [poison], next, 0, heartbeat)) === 'written';
    }
    const mid = Math.ceil(run.length / 2);
    for (const [part, partNext] of [
      [run.slice(0, mid), BigInt(run[mid]!.offset)],
      [run.slice(mid), next],
    ] as const) {
      // Records that could not be decoded were dead-lettered with the whole run already.
      const { encoded, bytes } = this.decode(this.topic, partition, st, part);
      const outcome = await this.writeRun(st, partition, part.length, encoded, [], partNext, bytes, heartbeat);
      if (outcome === 'retry') return false;
      if (outcome !== 'written' && !(await this.isolate(st, partition, part, partNext, heartbeat, outcome.recordError))) return false;
    }
    return true;
  }

  /** Writes one run: 'retry' when it was not written (retry scheduled, or another member owns the range). */
  private async writeRun(
    st: PartitionState,
    partition: number,
    records: number,
    encoded: EncodedRun,
    poison: PoisonRecord[],
    next: bigint,
    bytes: number,
    heartbeat: () => Promise<void>,
  ): Promise<WriteOutcome> {
    const { metrics } = this.o;
    try {
      if (poison.length > 0) {
        await this.o.deadLetters.send(poison);
        for (const p of poison) this.log.warn({ topic: p.topic, partition: p.partition, offset: p.offset, reason: p.reason }, 'dead letter');
        metrics.deadLetters.inc({ topic: this.topic }, poison.length);
      }
    } catch (err) {
      this.retryLater(partition, err as Error, 'sending dead letters');
      return 'retry';
    }

    const { tables, times } = encoded;
    // A slow database must not cost the group membership: keep heartbeating while the transaction runs.
    const beat = setInterval(() => heartbeat().catch(() => {}), HEARTBEAT_DURING_WRITE_MS);
    let result;
    try {
      result = await writeTables(this.pool, tables, {
        groupId: this.groupId,
        topic: this.topic,
        partition,
        expected: st.next,
        next,
      });
    } catch (err) {
      if (isRecordError(err)) {
        this.log.warn({ err, topic: this.topic, partition, records }, 'the database refused a record of the batch: isolating it');
        return { recordError: err as Error };
      }
      this.retryLater(partition, err as Error, 'writing a batch');
      return 'retry';
    } finally {
      clearInterval(beat);
    }

    if (result.outcome === 'stale') {
      metrics.staleBatches.inc({ table: this.table });
      this.log.warn(
        { topic: this.topic, partition, expected: st.next?.toString() ?? null, stored: result.current?.toString() ?? null },
        'another member moved this partition: batch dropped, position re-read',
      );
      this.states.delete(partition);
      return 'retry';
    }

    const committedAt = Date.now();
    this.lastCommitAt = new Date(committedAt);
    this.attempts.delete(partition);
    this.updateStuck();
    st.next = next;
    metrics.batches.inc({ table: this.table, path: result.path });
    tables.forEach((t, i) => metrics.rowsWritten.inc({ table: t.table }, result.inserted[i] ?? 0));
    if (result.rowsInserted < times.count) metrics.duplicatesSkipped.inc({ table: this.table }, times.count - result.rowsInserted);
    metrics.batchRows.observe({ table: this.table }, records);
    metrics.batchBytes.observe({ table: this.table }, bytes);
    metrics.copySeconds.observe({ table: this.table }, result.copyMs / 1000);
    if (result.summarizeMs > 0) metrics.summarizeSeconds.observe({ table: this.table }, result.summarizeMs / 1000);
    for (let i = 0; i < times.count; i++) {
      const exchangeMs = times.exchangeMs[i]!;
      if (!Number.isNaN(exchangeMs)) this.latencyExchange.observe((committedAt - exchangeMs) / 1000);
      this.latencyReceive.observe((committedAt - times.receiveUs[i]! / 1000) / 1000);
    }
    if (times.count > 0 && (st.newestWrittenMs === null || times.newestMs > st.newestWrittenMs)) st.newestWrittenMs = times.newestMs;
    if (result.path === 'merge') {
      this.log.info({ topic: this.topic, partition, rows: times.count, inserted: result.rowsInserted }, 'batch held ticks already stored: merged');
    }
    if (result.summaryError) {
      this.log.warn({ topic: this.topic, partition, err: result.summaryError }, 'batch stored without summaries: the refresh summarizes it from the table');
    }
    this.updateLag(partition, st);
    return 'written';
  }

  /** Kafka's committed offset follows the database (for lag tools); the database stays the source of truth. */
  private async commitKafka(topic: string, partition: number, next: bigint): Promise<void> {
    try {
      await this.consumer.commitOffsets([{ topic, partition, offset: next.toString() }]);
    } catch (err) {
      this.log.debug({ err, topic, partition }, 'Kafka offset commit failed (the database holds the position)');
    }
  }

  /** Pauses the partition and resumes it after a capped backoff; the batch is fetched again from its first record. */
  private retryLater(partition: number, err: Error, what: string): void {
    const attempt = (this.attempts.get(partition) ?? 0) + 1;
    this.attempts.set(partition, attempt);
    const { retryMinMs, retryMaxMs } = this.o.config.writer;
    const delayMs = backoffDelay(attempt - 1, retryMinMs, retryMaxMs, 0.2);
    this.o.metrics.retries.inc({ table: this.table });
    this.log.warn({ err, topic: this.topic, partition, attempt, delayMs }, `${what} failed: partition paused, retrying`);
    this.updateStuck();
    // The transaction may have committed before its reply was lost: read the position again before the retry (the
    // state stays, so the lag gauges keep being polled while the partition waits).
    const st = this.states.get(partition);
    if (st) st.reread = true;
    if (this.stopping) return;
    this.consumer.pause([{ topic: this.topic, partitions: [partition] }]);
    const timer = setTimeout(() => {
      this.retryTimers.delete(partition);
      this.o.metrics.pausedPartitions.set({ table: this.table }, this.retryTimers.size);
      if (!this.stopping) this.consumer.resume([{ topic: this.topic, partitions: [partition] }]);
    }, delayMs);
    this.retryTimers.set(partition, timer);
    this.o.metrics.pausedPartitions.set({ table: this.table }, this.retryTimers.size);
  }

  // --- lag ---------------------------------------------------------------------------------------------------------

  private updateLag(partition: number, st: PartitionState): void {
    const lag = computeLag({ highWatermark: st.high, nextOffset: st.next, newestSeenMs: st.newestSeenMs, newestWrittenMs: st.newestWrittenMs });
    const labels = { topic: this.topic, partition: String(partition) };
    this.o.metrics.lagMessages.set(labels, lag.messages);
    this.o.metrics.lagSeconds.set(labels, lag.seconds);
  }

  private forget(partition: number): void {
    this.attempts.delete(partition);
    this.updateStuck();
    const labels = { topic: this.topic, partition: String(partition) };
    this.o.metrics.lagMessages.remove(labels);
    this.o.metrics.lagSeconds.remove(labels);
  }

  /** Between batches (idle, paused or waiting for the database) the high watermarks still move: poll them. */
  private async pollLag(): Promise<void> {
    if (this.assigned.size === 0) return;
    try {
      const offsets = await this.admin.fetchTopicOffsets(this.topic);
      for (const o of offsets) {
        const st = this.states.get(o.partition);
        if (!st || !this.assigned.has(o.partition)) continue;
        st.high = BigInt(o.high);
        this.updateLag(o.partition, st);
      }
    } catch (err) {
      this.log.debug({ err }, 'lag poll failed');
    }
  }
}

export interface WriterSet {
  readonly writers: readonly TickWriter[];
  readonly done: Promise<void>;
  stop(): Promise<void>;
  health(): { ok: boolean; writers: WriterHealth[] };
}

/** Starts one group member per family, sharing one dead-letter producer. */
export async function startWriters(opts: {
  config: Config;
  log: Logger;
  kafka: Kafka;
  metrics: WriterMetrics;
  families?: readonly Family[];
  memberName?: string;
}): Promise<WriterSet> {
  const { config, log, kafka, metrics } = opts;
  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const deadLetters = new DeadLetterSink(producer, config.kafka.topics.deadLetter, config.source.deadLetterMaxBytes);
  const writers = (opts.families ?? FAMILIES).map(
    (family) => new TickWriter({ config, log, kafka, family, metrics, deadLetters, memberName: opts.memberName }),
  );
  try {
    for (const w of writers) await w.start();
  } catch (err) {
    await Promise.allSettled(writers.map((w) => w.stop()));
    await producer.disconnect();
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    writers,
    done: Promise.all(writers.map((w) => w.done)).then(() => undefined),
    stop: () =>
      (stopped ??= (async () => {
        const results = await Promise.allSettled(writers.map((w) => w.stop()));
        await producer.disconnect();
        const failed = results.find((r) => r.status === 'rejected');
        if (failed) throw (failed as PromiseRejectedResult).reason;
      })()),
    health: () => {
      const hs = writers.map((w) => w.health());
      return { ok: hs.every((h) => h.ok), writers: hs };
    },
  };
}
