// Where a restarted worker picks up: the last trade and aggTrade id per symbol already in Kafka. Reading the tail
// of each partition of the two topics makes Kafka itself the checkpoint, so the downtime shows up as a hole.
import { topicOffsets, type Admin, type KafkaClients } from '../common/kafka.ts';
import { readRanges } from '../common/kafka-read.ts';
import type { Logger } from '../common/log.ts';
import { decodeTick, type Market } from '../common/records.ts';

export interface LastId {
  readonly type: 'trade' | 'aggTrade';
  readonly symbol: string;
  readonly lastId: number;
}

export interface ResumeScan {
  /** `trade:BTCUSDT`-style keys the worker streams: the scan steps back until it has found each, or the log's start. */
  readonly wanted: ReadonlySet<string>;
  /** Records per partition read in the first window; each further window reaches twice as far back. */
  readonly window?: number;
  /** At most this many records per partition in all (a symbol never produced would otherwise read whole topics). */
  readonly maxRecordsPerPartition?: number;
  readonly timeoutMs?: number;
}

export interface ResumePoint {
  readonly lastIds: readonly LastId[];
  /** Wanted keys with no record in the part scanned: a fresh start for them. */
  readonly notFound: readonly string[];
  readonly recordsRead: number;
}

/** One partition's part of a window: offsets [from, to). */
interface Slice {
  readonly topic: string;
  readonly partition: number;
  readonly from: number;
  readonly to: number;
}

/** Topic offsets, retried while a just-created topic's leaders settle. */
async function offsetsOf(admin: Admin, topic: string) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await topicOffsets(admin, topic);
    } catch (err) {
      if (attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * Symbols share partitions, and a quiet symbol's last record may lie far behind a busy one's: the scan reads the
 * newest `window` records of every partition, then, while a wanted symbol is still missing, windows further back
 * (doubling), until every wanted key is found, the partitions' starts are reached or the per-partition bound is spent.
 * A key still missing then has nothing in Kafka to resume from, which the worker treats as a fresh start.
 */
export async function readLastIds(kafka: KafkaClients, admin: Admin, topics: readonly string[], market: Market, log: Logger, scan: ResumeScan): Promise<ResumePoint> {
  const window = scan.window ?? 20_000;
  const maxRecords = scan.maxRecordsPerPartition ?? 2_000_000;
  const deadline = Date.now() + (scan.timeoutMs ?? 120_000);
  const started = Date.now();
  // Per partition: [low, next window's end), the part not read yet.
  const unread = new Map<string, { topic: string; partition: number; low: number; end: number; high: number }>();
  for (const topic of topics) {
    for (const p of await offsetsOf(admin, topic)) {
      const high = Number(p.high);
      const low = Number(p.low);
      if (high > low) unread.set(`${topic}:${p.partition}`, { topic, partition: p.partition, low, end: high, high });
    }
  }
  const last = new Map<string, LastId>();
  const missing = () => [...scan.wanted].filter((k) => !last.has(k));
  let records = 0;
  for (let round = 0; unread.size > 0 && (round === 0 || missing().length > 0); round++) {
    const size = window * 2 ** round;
    const slices: Slice[] = [];
    for (const [k, u] of unread) {
      const from = Math.max(u.low, u.end - size, u.high - maxRecords);
      if (from < u.end) slices.push({ topic: u.topic, partition: u.partition, from, to: u.end });
      if (from <= u.low || from <= u.high - maxRecords) unread.delete(k);
      else u.end = from;
    }
    if (slices.length === 0) break;
    records += await readSlices(kafka, log, slices, deadline - Date.now(), (value, schemaVersion) => {
      try {
        const t = decodeTick(value, schemaVersion);
        if (t.exchange !== 'binance' || t.market !== market || t.type === 'bookTicker') return;
        const id = t.type === 'trade' ? t.tradeId : t.aggId;
        const k = `${t.type}:${t.symbol}`;
        if ((last.get(k)?.lastId ?? -1) < id) last.set(k, { type: t.type, symbol: t.symbol, lastId: id });
      } catch {
        // Not ours to judge here: the writers dead-letter poison records.
      }
    });
  }
  const point = { lastIds: [...last.values()], notFound: missing(), recordsRead: records };
  log.info({ ...point, ms: Date.now() - started }, 'read the last ids from Kafka');
  return point;
}

/** Reads the slices without a consumer group; resolves with the number of records seen once every slice is read. */
async function readSlices(
  kafka: KafkaClients,
  log: Logger,
  slices: readonly Slice[],
  timeoutMs: number,
  onRecord: (value: Buffer | null, schemaVersion: string | undefined) => void,
): Promise<number> {
  return readRanges(
    kafka,
    slices.map((s) => ({ topic: s.topic, partition: s.partition, from: BigInt(s.from), to: BigInt(s.to) })),
    log,
    (_topic, _partition, m) => onRecord(m.value, m.headers?.['schema-version']?.toString()),
    { timeoutMs: Math.max(1, timeoutMs) },
  );
}
