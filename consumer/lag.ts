// Consumer lag of one partition (pure): in messages (high watermark minus the next offset to write) and in seconds of
// exchange time between the newest record seen on the partition and the newest record written.

export interface PartitionProgress {
  /** Offset the next produced record will get (Kafka's high watermark). */
  readonly highWatermark: bigint;
  /** Next offset to write (everything below is in the database); null before the first write or read. */
  readonly nextOffset: bigint | null;
  /** Exchange (or receive) time of the newest record fetched from the partition, ms; null if none yet. */
  readonly newestSeenMs: number | null;
  /** Exchange (or receive) time of the newest record written, ms; null if none yet. */
  readonly newestWrittenMs: number | null;
}

export interface Lag {
  readonly messages: number;
  readonly seconds: number;
}

export function computeLag(p: PartitionProgress): Lag {
  if (p.nextOffset === null) return { messages: 0, seconds: 0 };
  const behind = p.highWatermark - p.nextOffset;
  const messages = behind > 0n ? Number(behind) : 0;
  if (messages === 0 || p.newestSeenMs === null) return { messages, seconds: 0 };
  const seconds = p.newestWrittenMs === null ? 0 : Math.max(0, (p.newestSeenMs - p.newestWrittenMs) / 1000);
  return { messages, seconds };
}
