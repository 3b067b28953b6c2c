// Where a restarted worker picks up: the last trade and aggTrade id per symbol already in Kafka. Reading the tail
// of each partition of the two topics makes Kafka itself the checkpoint, so the downtime shows up as a hole.
import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from '../common/log.ts';
import { decodeTick, type Market } from '../common/records.ts';

export interface LastId {
  readonly type: 'trade' | 'aggTrade';
  readonly symbol: string;
  readonly lastId: number;
}

/**
 * Reads up to `tail` records from the end of every partition of the topics. Symbols share partitions, so the tail
 * must be long enough to reach the last record of a quiet symbol; 20,000 records per partition covers minutes of the
 * default streams.
 */
/** Topic offsets, retried while a just-created topic's leaders settle. */
async function offsetsOf(admin: Admin, topic: string) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await admin.fetchTopicOffsets(topic);
    } catch (err) {
      if (attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export async function readLastIds(
  kafka: Kafka,
  admin: Admin,
  topics: readonly string[],
  market: Market,
  log: Logger,
  tail = 20_000,
  timeoutMs = 60_000,
): Promise<LastId[]> {
  const ends = new Map<string, number>();
  if (topics.length === 0) return [];
  const starts: { topic: string; partition: number; offset: number }[] = [];
  for (const topic of topics) {
    for (const p of await offsetsOf(admin, topic)) {
      const high = Number(p.high);
      const low = Number(p.low);
      if (high <= low) continue;
      ends.set(`${topic}:${p.partition}`, high - 1);
      starts.push({ topic, partition: p.partition, offset: Math.max(low, high - tail) });
    }
  }
  const last = new Map<string, LastId>();
  if (starts.length === 0) return [];
  const groupId = `tickwatch-ingest-resume-${process.pid}-${Date.now().toString(36)}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
  const started = Date.now();
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [...topics], fromBeginning: true });
    const remaining = new Set(ends.keys());
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`reading the last ids timed out after ${timeoutMs} ms`)), timeoutMs);
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            for (const m of batch.messages) {
              try {
                const t = decodeTick(m.value, m.headers?.['schema-version']?.toString());
                if (t.exchange !== 'binance' || t.market !== market || t.type === 'bookTicker') continue;
                const id = t.type === 'trade' ? t.tradeId : t.aggId;
                const k = `${t.type}:${t.symbol}`;
                if ((last.get(k)?.lastId ?? -1) < id) last.set(k, { type: t.type, symbol: t.symbol, lastId: id });
              } catch {
                // Not ours to judge here: the writers dead-letter poison records.
              }
            }
            const k = `${batch.topic}:${batch.partition}`;
            if (Number(batch.lastOffset()) >= (ends.get(k) ?? Infinity)) remaining.delete(k);
            if (remaining.size === 0) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
      for (const s of starts) consumer.seek({ topic: s.topic, partition: s.partition, offset: String(s.offset) });
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
  const found = [...last.values()];
  log.info({ found, ms: Date.now() - started }, 'read the last ids from Kafka');
  return found;
}
