// Writes one run of a partition's records (a slice of a fetched batch, bounded by rows and bytes) as one transaction:
// decoded into COPY rows (a record that cannot become a row is a dead letter), stored with the partition's next offset
// (copy.ts), then counted. The records are not kept past their decoding (their rows are all the transaction needs); a
// run the database refuses for a record's sake is read again from Kafka and halved down to that record.
import type pg from 'pg';
import { recordsOf, type FetchedMessage, type Records } from '../common/kafka-records.ts';
import type { Logger } from '../common/log.ts';
import { RecordError } from '../common/records.ts';
import { writeTables } from './copy.ts';
import type { WriteTable } from './copy-rows.ts';
import type { DeadLetterSink, PoisonRecord } from './dead-letters.ts';
import type { EncodedRun, FamilyCodec } from './families.ts';
import type { WriterMetrics } from './metrics.ts';
import type { PartitionState } from './positions.ts';

const HEARTBEAT_DURING_WRITE_MS = 1_000;

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

export interface RunWriterOptions {
  readonly pool: pg.Pool;
  readonly groupId: string;
  readonly topic: string;
  readonly table: WriteTable;
  readonly codec: FamilyCodec;
  readonly metrics: WriterMetrics;
  readonly log: Logger;
  readonly deadLetters: DeadLetterSink;
  /** The run could not be written for a reason other than its records: pause the partition and retry. */
  readonly retryLater: (partition: number, err: Error, what: string) => void;
  /** The records [from, to) of the partition, read again from Kafka (a refused run, to find the record refused). */
  readonly reread: (partition: number, from: bigint, to: bigint) => Promise<FetchedMessage[]>;
  /** Another member moved the partition: its position is read again. */
  readonly stale: (partition: number) => void;
  /** A run was committed at committedAt (ms). */
  readonly written: (partition: number, st: PartitionState, committedAt: number) => void;
}

/**
 * A run decoded, without its records: its COPY rows and dead letters, and where it lies in the partition (its first
 * record's offset, and `next`, the offset after its last record).
 */
export interface DecodedRun {
  readonly encoded: EncodedRun;
  readonly poison: PoisonRecord[];
  readonly records: number;
  readonly bytes: number;
  readonly first: bigint;
  readonly next: bigint;
}

export class RunWriter {
  private readonly latencyExchange;
  private readonly latencyReceive;

  constructor(private readonly o: RunWriterOptions) {
    this.latencyExchange = o.metrics.commitLatency.labels(o.table, 'exchange');
    this.latencyReceive = o.metrics.commitLatency.labels(o.table, 'receive');
  }

  /**
   * Decodes the non-empty run [from, to) of `records`, whose last record is followed by offset `next` (a record that
   * cannot become a row is a dead letter); the result holds no record, so the fetched records can go before the
   * transaction.
   */
  decodeRun(partition: number, st: PartitionState, records: Records, from: number, to: number, next: bigint): DecodedRun {
    const { encoded, poison, bytes } = this.decode(partition, st, records, from, to);
    return { encoded, poison, bytes, records: to - from, first: records.offset(from), next };
  }

  /**
   * Writes a decoded run. False when it was not written (a retry is scheduled, or another member owns the range). A
   * run the database refuses is read again from Kafka to be halved down to the record refused.
   */
  async write(st: PartitionState, partition: number, run: DecodedRun, heartbeat: () => Promise<void>): Promise<boolean> {
    const outcome = await this.writeRun(st, partition, run.records, run.encoded, run.poison, run.next, run.bytes, heartbeat);
    if (outcome === 'retry') return false;
    if (outcome === 'written') return true;
    let records: FetchedMessage[];
    try {
      records = await this.o.reread(partition, run.first, run.next);
      const same = records.length === run.records && BigInt(records[0]!.offset) === run.first && BigInt(records.at(-1)!.offset) < run.next;
      if (!same) throw new Error(`read ${records.length} records of [${run.first}, ${run.next}) again (from ${records[0]?.offset ?? '-'}), ${run.records} before`);
    } catch (err) {
      this.o.retryLater(partition, err as Error, 'reading a refused run again');
      return false;
    }
    return this.isolate(st, partition, records, run.next, heartbeat, outcome.recordError);
  }

  /** Decodes records [from, to); a record that cannot become a row is a dead letter. */
  private decode(partition: number, st: PartitionState, records: Records, from: number, to: number) {
    const { topic } = this.o;
    const poison: PoisonRecord[] = [];
    let bytes = 0;
    for (let i = from; i < to; i++) bytes += records.valueLength(i);
    const builder = this.o.codec.run(to - from, bytes);
    for (let i = from; i < to; i++) {
      try {
        // Ingestion's records carry no headers; records produced before the version moved into the value do.
        const version = records.header(i, 'schema-version');
        builder.add(records.value(i), version === undefined ? undefined : version.toString());
      } catch (err) {
        const reason = err instanceof RecordError ? err.message : `undecodable: ${(err as Error).message}`;
        const m = records.message(i);
        poison.push({ topic, partition, offset: m.offset, reason, key: m.key, value: m.value });
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
  private async isolate(st: PartitionState, partition: number, run: FetchedMessage[], next: bigint, heartbeat: () => Promise<void>, err: Error): Promise<boolean> {
    if (run.length === 1) {
      const m = run[0]!;
      const code = (err as { code?: string }).code;
      const poison: PoisonRecord = { topic: this.o.topic, partition, offset: m.offset, reason: `refused by the database (${code}): ${err.message}`, key: m.key ?? null, value: m.value ?? null };
      const empty = this.decode(partition, st, recordsOf([]), 0, 0);
      return (await this.writeRun(st, partition, 0, empty.encoded, [poison], next, 0, heartbeat)) === 'written';
    }
    const mid = Math.ceil(run.length / 2);
    for (const [part, partNext] of [
      [run.slice(0, mid), BigInt(run[mid]!.offset)],
      [run.slice(mid), next],
    ] as const) {
      // Records that could not be decoded were dead-lettered with the whole run already.
      const { encoded, bytes } = this.decode(partition, st, recordsOf(part), 0, part.length);
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
    const { metrics, log, topic, table } = this.o;
    try {
      if (poison.length > 0) {
        await this.o.deadLetters.send(poison);
        for (const p of poison) log.warn({ topic: p.topic, partition: p.partition, offset: p.offset, reason: p.reason }, 'dead letter');
        metrics.deadLetters.inc({ topic }, poison.length);
      }
    } catch (err) {
      this.o.retryLater(partition, err as Error, 'sending dead letters');
      return 'retry';
    }

    const { tables, times } = encoded;
    // A slow database must not cost the group membership: keep heartbeating while the transaction runs.
    const beat = setInterval(() => heartbeat().catch(() => {}), HEARTBEAT_DURING_WRITE_MS);
    let result;
    try {
      result = await writeTables(this.o.pool, tables, { groupId: this.o.groupId, topic, partition, expected: st.next, next });
    } catch (err) {
      if (isRecordError(err)) {
        log.warn({ err, topic, partition, records }, 'the database refused a record of the batch: isolating it');
        return { recordError: err as Error };
      }
      this.o.retryLater(partition, err as Error, 'writing a batch');
      return 'retry';
    } finally {
      clearInterval(beat);
    }

    if (result.outcome === 'stale') {
      metrics.staleBatches.inc({ table });
      log.warn(
        { topic, partition, expected: st.next?.toString() ?? null, stored: result.current?.toString() ?? null },
        'another member moved this partition: batch dropped, position re-read',
      );
      this.o.stale(partition);
      return 'retry';
    }

    const committedAt = Date.now();
    st.next = next;
    metrics.batches.inc({ table, path: result.path });
    tables.forEach((t, i) => metrics.rowsWritten.inc({ table: t.table }, result.inserted[i] ?? 0));
    if (result.rowsInserted < times.count) metrics.duplicatesSkipped.inc({ table }, times.count - result.rowsInserted);
    metrics.batchRows.observe({ table }, records);
    metrics.batchBytes.observe({ table }, bytes);
    metrics.copySeconds.observe({ table }, result.copyMs / 1000);
    if (result.summarizeMs > 0) metrics.summarizeSeconds.observe({ table }, result.summarizeMs / 1000);
    for (let i = 0; i < times.count; i++) {
      const exchangeMs = times.exchangeMs[i]!;
      if (!Number.isNaN(exchangeMs)) this.latencyExchange.observe((committedAt - exchangeMs) / 1000);
      this.latencyReceive.observe((committedAt - times.receiveUs[i]! / 1000) / 1000);
    }
    if (times.count > 0 && (st.newestWrittenMs === null || times.newestMs > st.newestWrittenMs)) st.newestWrittenMs = times.newestMs;
    if (result.path === 'merge') {
      log.info({ topic, partition, rows: times.count, inserted: result.rowsInserted }, 'batch held ticks already stored: merged');
    }
    if (result.summaryError) {
      log.warn({ topic, partition, err: result.summaryError }, 'batch stored without summaries: the refresh summarizes it from the table');
    }
    this.o.written(partition, st, committedAt);
    return 'written';
  }
}
