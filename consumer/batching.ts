// Batching policy of the writers (pure): how a fetched run of Kafka records is cut into COPY transactions bounded by
// rows and bytes, and how the time bound maps onto the broker fetch (the broker holds a fetch until enough bytes have
// arrived or the wait is over, so no batch waits longer than the configured time for more rows).
import type { Config } from '../common/config.ts';

export interface BatchLimits {
  /** Most records in one transaction (poison records count: they advance the offsets too). */
  readonly rows: number;
  /** Most record bytes (Kafka value bytes) in one transaction. */
  readonly bytes: number;
}

/**
 * Splits items into consecutive runs, each within the limits; a single item larger than the byte bound still forms a
 * run of its own (it cannot be split). Returns [start, end) index pairs so callers keep their own arrays.
 */
export function planBatches(sizes: readonly number[], limits: BatchLimits): Array<readonly [number, number]> {
  const runs: Array<readonly [number, number]> = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < sizes.length; i++) {
    const size = sizes[i]!;
    const rows = i - start;
    if (rows > 0 && (rows >= limits.rows || bytes + size > limits.bytes)) {
      runs.push([start, i]);
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (start < sizes.length) runs.push([start, sizes.length]);
  return runs;
}

export interface FetchSettings {
  readonly minBytes: number;
  readonly maxBytes: number;
  readonly maxBytesPerPartition: number;
  readonly maxWaitTimeInMs: number;
}

/**
 * The broker-side half of the policy: a fetch returns once `minBytes` are available or after the time bound, and holds
 * at most WRITER_FETCH_MAX_BYTES of (compressed) records for all partitions together, split evenly between them so one
 * fetch feeds every partition's transactions at once instead of filling up from the first partition alone.
 */
export function fetchSettings(writer: Config['writer'], partitions: number): FetchSettings {
  const maxBytes = writer.fetchMaxBytes;
  return {
    minBytes: Math.min(writer.fetchMinBytes, maxBytes),
    maxBytes,
    maxBytesPerPartition: Math.ceil(maxBytes / Math.max(1, partitions)),
    maxWaitTimeInMs: writer.batchMaxWaitMs,
  };
}
