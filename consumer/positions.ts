// Offset bookkeeping of a writer's partitions: the position each one has in writer_offsets as this member last read
// or wrote it, how a fetched batch lines up with it (what is below it is in the database already), and its lag gauges.
import type { RecordList } from '../common/kafka-records.ts';
import { computeLag } from './lag.ts';
import type { WriterMetrics } from './metrics.ts';

export interface PartitionState {
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

export const partitionState = (next: bigint | null): PartitionState => ({
  next,
  reread: false,
  positionChecked: false,
  high: 0n,
  newestSeenMs: null,
  newestWrittenMs: null,
});

/** What to do with a fetched batch, given the stored position. */
export type LineUp =
  /** Every record is stored already: resolve the batch, and seek to the position if it lies beyond the next record. */
  | { readonly kind: 'stored'; readonly seekTo: bigint | null }
  /**
   * The first batch after loading the position starts past it (a restored database, or a trimmed log): seek back once
   * to be sure nothing is skipped.
   */
  | { readonly kind: 'ahead'; readonly seekTo: bigint }
  /** Write the batch's records from index `from` on (those at or after the stored position). */
  | { readonly kind: 'write'; readonly from: number };

/** Lines a fetched batch (offsets ascending, lastOffset its last) up with the partition's stored position. */
export function lineUp(st: PartitionState, records: Pick<RecordList, 'offset' | 'indexOf'>, lastOffset: bigint): LineUp {
  const { next } = st;
  let from = 0;
  if (next !== null) {
    const first = records.offset(0);
    if (lastOffset < next) return { kind: 'stored', seekTo: next > lastOffset + 1n ? next : null };
    if (first > next && !st.positionChecked) {
      st.positionChecked = true;
      return { kind: 'ahead', seekTo: next };
    }
    if (first < next) from = records.indexOf(next);
  }
  st.positionChecked = true;
  return { kind: 'write', from };
}

export function publishLag(metrics: WriterMetrics, topic: string, partition: number, st: PartitionState): void {
  const lag = computeLag({ highWatermark: st.high, nextOffset: st.next, newestSeenMs: st.newestSeenMs, newestWrittenMs: st.newestWrittenMs });
  const labels = { topic, partition: String(partition) };
  metrics.lagMessages.set(labels, lag.messages);
  metrics.lagSeconds.set(labels, lag.seconds);
}

export function removeLag(metrics: WriterMetrics, topic: string, partition: number): void {
  const labels = { topic, partition: String(partition) };
  metrics.lagMessages.remove(labels);
  metrics.lagSeconds.remove(labels);
}
