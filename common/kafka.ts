// Kafka factory shared by every stage: one client per process, logs routed into pino, topics created when missing.
import { Kafka, logLevel, type Admin, type ITopicConfig } from 'kafkajs';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

export function createKafka(config: Pick<Config, 'kafka'>, log: Logger, clientSuffix = ''): Kafka {
  const kafkaLog = log.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: `${config.kafka.clientId}${clientSuffix ? `-${clientSuffix}` : ''}`,
    brokers: config.kafka.brokers,
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

/** Creates the topics that are missing, with the configured partitions and replication; existing ones are left alone. */
export async function ensureTopics(
  admin: Admin,
  topics: readonly string[],
  config: Pick<Config, 'kafka'>,
  extra: Partial<ITopicConfig> = {},
): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = [...new Set(topics)].filter((t) => !existing.has(t));
  if (missing.length === 0) return [];
  await admin.createTopics({
    waitForLeaders: true,
    topics: missing.map((topic) => ({
      topic,
      numPartitions: config.kafka.partitions,
      replicationFactor: config.kafka.replicationFactor,
      ...extra,
    })),
  });
  return missing;
}
