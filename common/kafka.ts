// Kafka factory shared by every stage: one client per process, logs routed into pino, topics created when missing.
import { readFileSync } from 'node:fs';
import { Kafka, logLevel, Partitioners, type Admin, type ICustomPartitioner, type ITopicConfig, type KafkaConfig } from 'kafkajs';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/**
 * The TLS and SASL settings of every client of the process (workers, doctor, soak). TLS verifies the broker's
 * certificate and name always; a CA file replaces the system's CAs rather than disabling the check.
 */
export function kafkaSecurity(kafka: Config['kafka']): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const ssl = kafka.ssl === undefined ? undefined : kafka.ssl.caFile === undefined ? true : { ca: [readFileSync(kafka.ssl.caFile, 'utf8')] };
  const a = kafka.sasl;
  // One branch per mechanism: kafkajs's SASLOptions is a union discriminated by it.
  const sasl: KafkaConfig['sasl'] =
    a === undefined ? undefined
    : a.mechanism === 'plain' ? { mechanism: 'plain', username: a.username, password: a.password }
    : a.mechanism === 'scram-sha-256' ? { mechanism: 'scram-sha-256', username: a.username, password: a.password }
    : { mechanism: 'scram-sha-512', username: a.username, password: a.password };
  return { ...(ssl === undefined ? {} : { ssl }), ...(sasl === undefined ? {} : { sasl }) };
}

export function createKafka(config: Pick<Config, 'kafka'>, log: Logger, clientSuffix = ''): Kafka {
  const kafkaLog = log.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: `${config.kafka.clientId}${clientSuffix ? `-${clientSuffix}` : ''}`,
    brokers: config.kafka.brokers,
    ...kafkaSecurity(config.kafka),
    // The client retries on its own, but not forever: the callers' loops own the longer waits.
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 5_000 },
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, label, log: entry }) => {
        const { message, ...rest } = entry;
        kafkaLog[LEVELS[level] ?? 'info']({ ...rest, label }, message);
      },
  });
}

/**
 * Creates the topics that are missing, with the configured partitions and replication; existing ones are left alone.
 * Returns the topics this call created. Resolves only once every partition of the topics has a leader, also when
 * another process (a writer starting beside the ingestion) created them a moment earlier.
 */
/**
 * kafkajs's default (Java-compatible murmur2) partitioner, remembered per key: producers that reuse one Buffer per
 * key (the few exchange:market:symbol keys) skip the hash, which kafkajs computes with 64-bit Long objects for every
 * record. Placement is exactly the default partitioner's, so records keep their partitions across versions.
 */
export const cachedKeyPartitioner: ICustomPartitioner = () => {
  const hash = Partitioners.DefaultPartitioner();
  const cache = new WeakMap<Buffer, { partitions: number; partition: number }>();
  return (args) => {
    const key = args.message.key;
    if (!Buffer.isBuffer(key) || args.message.partition != null) return hash(args);
    const partitions = args.partitionMetadata.length;
    const hit = cache.get(key);
    if (hit !== undefined && hit.partitions === partitions) return hit.partition;
    const partition = hash(args);
    cache.set(key, { partitions, partition });
    return partition;
  };
};

export async function ensureTopics(
  admin: Admin,
  topics: readonly string[],
  config: Pick<Config, 'kafka'>,
  extra: Partial<ITopicConfig> = {},
  leaderTimeoutMs = 30_000,
): Promise<string[]> {
  const wanted = [...new Set(topics)];
  const existing = new Set(await admin.listTopics());
  const missing = wanted.filter((t) => !existing.has(t));
  let created: string[] = [];
  if (missing.length > 0) {
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({
          topic,
          numPartitions: config.kafka.partitions,
          replicationFactor: config.kafka.replicationFactor,
          ...extra,
        })),
      });
      created = missing;
    } catch (err) {
      // Lost the race to another process creating the same topics: theirs will do.
      if ((err as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS' && !/already exists/i.test((err as Error).message)) throw err;
    }
  }
  await waitForLeaders(admin, wanted, leaderTimeoutMs);
  return created;
}

/** ensureTopics on an admin client of its own, for workers that need the admin only to start. */
export async function createTopics(kafka: Kafka, topics: readonly string[], config: Pick<Config, 'kafka'>): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await ensureTopics(admin, topics, config);
  } finally {
    await admin.disconnect();
  }
}

async function waitForLeaders(admin: Admin, topics: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let leaderless: string[];
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics });
      leaderless = meta.filter((t) => t.partitions.length === 0 || t.partitions.some((p) => p.leader < 0)).map((t) => t.name);
    } catch (err) {
      // A topic created a moment ago may not be in this broker's metadata yet.
      if ((err as { type?: string }).type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw err;
      leaderless = topics;
    }
    if (leaderless.length === 0) return;
    if (Date.now() > deadline) throw new Error(`topics without partition leaders after ${timeoutMs} ms: ${leaderless.join(', ')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
