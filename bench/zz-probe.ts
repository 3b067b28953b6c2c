import { loadConfig } from '../common/config.ts';
import { createKafka } from '../common/kafka.ts';
import { createLogger } from '../common/log.ts';
import { PartitionReader } from '../common/kafka-partitions.ts';
const config = loadConfig(process.env);
const log = createLogger('debug', 'probe');
const kafka = createKafka(config, log, 'probe');
const [topic, partition, offset] = [process.argv[2]!, Number(process.argv[3]), BigInt(process.argv[4]!)];
let n = 0;
const reader = new PartitionReader({
  kafka, topics: [topic], log, start: [{ topic, partition, offset }],
  fetch: { minBytes: 1_048_576, maxBytes: 1_048_576, maxBytesPerPartition: Math.ceil(1_048_576 / 3), maxWaitMs: 250 },
  eachBatch: async ({ batch, resolveOffset }) => {
    const r = batch.records;
    console.log('batch', r.length, r.length ? r.offset(0) : '-', r.length ? r.offset(r.length - 1) : '-', 'last', batch.lastOffset(), 'high', batch.highWatermark);
    if (r.length) resolveOffset(r.offset(r.length - 1).toString());
    if (++n >= 3) process.exit(0);
  },
  onSkip: (b) => console.log('skip', b.lastOffset()),
  onCrash: (e) => { console.log('crash', e); process.exit(1); },
});
await reader.start();
setTimeout(() => { console.log('timeout, batches', n); process.exit(2); }, 5000);
