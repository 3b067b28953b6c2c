import { FetchIsolationLevels } from '@platformatic/kafka';
import { loadConfig } from '../common/config.ts';
import { createKafka } from '../common/kafka.ts';
import { createLogger } from '../common/log.ts';
import { fetchConnections } from '../common/kafka-fetch.ts';
const config = loadConfig(process.env);
const log = createLogger('warn', 'probe');
const kafka = createKafka(config, log, 'probe');
const [topic, partition, offset] = [process.argv[2]!, Number(process.argv[3]), BigInt(process.argv[4]!)];
const consumer = kafka.consumer({ groupId: 'probe-' + Date.now(), autocommit: false, isolationLevel: FetchIsolationLevels.READ_COMMITTED });
consumer.topics.track(topic);
const meta = await consumer.metadata({ topics: [topic] });
const t = meta.topics.get(topic)!;
const p = t.partitions[partition]!;
for (const max of [Math.ceil(1_048_576 / 3), 4_000_000]) {
  const res = (await consumer.fetch({ node: p.leader, maxBytes: 1_048_576, minBytes: 1, maxWaitTime: 100, topics: [{ topicId: t.id, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: max, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }] }], connectionPool: fetchConnections(consumer) })) as any;
  const part = res.responses[0].partitions[0];
  const b: Buffer = part.records;
  console.log('partitionMaxBytes', max, 'records bytes', b?.length, 'first batch base', b?.readBigInt64BE(0), 'batch length', b?.readInt32BE(8), 'count', b?.readInt32BE(57), 'attrs', b?.readInt16BE(21));
  let at = 0, i = 0;
  while (b && at + 12 <= b.length && i < 5) { const len = b.readInt32BE(at + 8); console.log('  batch', i++, 'at', at, 'base', b.readBigInt64BE(at), 'len', len, 'end', at + 12 + len, 'count', at + 61 <= b.length ? b.readInt32BE(at + 57) : '?'); at += 12 + len; }
}
await consumer.close();
