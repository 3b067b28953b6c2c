// Kafka factory shared by every stage (@platformatic/kafka): the clients' common options (brokers, TLS, SASL, retries),
// the partitioner that places every key where Java's (and kafkajs's) default one does, topic creation that waits for
// partition leaders, a topic's offsets, and the error text of the client's nested errors.
import { readFileSync } from 'node:fs';
import {
  Admin,
  Consumer,
  ListOffsetTimestamps,
  Producer,
  ProduceAcks,
  murmur2,
  type ConsumerOptions,
  type MessageToProduce,
  type ProducerOptions,
  type SASLOptions,
} from '@platformatic/kafka';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { backoffDelay } from './backoff.ts';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';

/** The clients' options every stage shares: where the brokers are, how to reach them, how long to retry. */
export interface KafkaBase {
  readonly clientId: string;
  readonly bootstrapBrokers: string[];
  readonly tls?: TlsOptions;
  readonly sasl?: SASLOptions;
  readonly connectTimeout: number;
  readonly timeout: number;
  readonly retries: number;
  readonly retryDelay: (client: unknown, operationId: string, attempt: number) => number;
}

/**
 * The TLS and SASL settings of every client of the process (workers, doctor, soak). TLS verifies the broker's
 * certificate and name always (Node's default, never turned off); a CA file replaces the system's CAs.
 */
export function kafkaSecurity(kafka: Config['kafka']): Pick<KafkaBase, 'tls' | 'sasl'> {
  const tls: TlsOptions | undefined =
    kafka.ssl === undefined ? undefined : { rejectUnauthorized: true, ...(kafka.ssl.caFile === undefined ? {} : { ca: [readFileSync(kafka.ssl.caFile, 'utf8')] }) };
  const a = kafka.sasl;
  const mechanism = { plain: 'PLAIN', 'scram-sha-256': 'SCRAM-SHA-256', 'scram-sha-512': 'SCRAM-SHA-512' } as const;
  const sasl: SASLOptions | undefined = a === undefined ? undefined : { mechanism: mechanism[a.mechanism], username: a.username, password: a.password };
  // No explicit server name: Node sends the host as SNI (unless it is an IP address) and checks the certificate against it.
  return { ...(tls === undefined ? {} : { tls }), ...(sasl === undefined ? {} : { sasl }) };
}

/** Capped exponential delay of the client's own retries: 200 ms doubling to 5 s (the callers' loops own longer waits). */
const retryDelay = (_client: unknown, _operation: string, attempt: number): number => backoffDelay(attempt - 1, 200, 5_000, 0);

/**
 * The key's murmur2 hash as Java's default partitioner (and kafkajs's) takes it, remembered per key Buffer: producers
 * reuse one Buffer per key (the few exchange:market:symbol keys) and skip the hash. Taken modulo the topic's partition
 * count, placement is exactly `toPositive(murmur2(key)) % partitions`, as before the move.
 */
export function cachedKeyHash(): (key: Buffer) => number {
  const cache = new WeakMap<Buffer, number>();
  return (key) => {
    let h = cache.get(key);
    if (h === undefined) cache.set(key, (h = murmur2(key) & 0x7fffffff));
    return h;
  };
}

/** `cachedKeyHash` as the client's partitioner (the client takes it modulo the partition count). */
export function cachedKeyPartitioner(): (message: MessageToProduce, key: Buffer | undefined) => number {
  const hash = cachedKeyHash();
  return (_message, key) => (Buffer.isBuffer(key) ? hash(key) : 0);
}

/** One process's Kafka clients, all made with the same brokers, security and retries. */
export class KafkaClients {
  constructor(readonly base: KafkaBase) {}

  /**
   * A producer of Buffer keys and values. Idempotent ones send with acks = all, one request in flight per broker and
   * never give up on their own beyond `retries` attempts (the callers keep the records and retry the same ones).
   */
  producer(opts: { idempotent?: boolean; compression?: ProducerOptions<Buffer, Buffer, Buffer, Buffer>['compression']; retries?: number; clientSuffix?: string; transactionalId?: string } = {}): KafkaProducer {
    return new Producer({
      ...this.base,
      clientId: opts.clientSuffix ? `${this.base.clientId}-${opts.clientSuffix}` : this.base.clientId,
      idempotent: opts.idempotent ?? true,
      acks: ProduceAcks.ALL,
      compression: opts.compression ?? 'lz4',
      autocreateTopics: false,
      partitioner: cachedKeyPartitioner(),
      ...(opts.retries === undefined ? {} : { retries: opts.retries }),
      // A fixed id shared by every instance of a job: the first transaction of a new producer fences the previous one.
      ...(opts.transactionalId === undefined ? {} : { transactionalId: opts.transactionalId }),
    });
  }

  consumer(opts: Omit<ConsumerOptions<Buffer, Buffer, Buffer, Buffer>, 'clientId' | 'bootstrapBrokers'>): KafkaConsumer {
    return new Consumer({ ...this.base, ...opts } as ConsumerOptions<Buffer, Buffer, Buffer, Buffer>);
  }

  admin(): Admin {
    return new Admin({ ...this.base });
  }
}

export type KafkaProducer = Producer<Buffer, Buffer, Buffer, Buffer>;
export type KafkaConsumer = Consumer<Buffer, Buffer, Buffer, Buffer>;
export type { Admin };

export function createKafka(config: Pick<Config, 'kafka'>, _log: Logger, clientSuffix = ''): KafkaClients {
  return new KafkaClients({
    clientId: `${config.kafka.clientId}${clientSuffix ? `-${clientSuffix}` : ''}`,
    bootstrapBrokers: [...config.kafka.brokers],
    ...kafkaSecurity(config.kafka),
    connectTimeout: 10_000,
    timeout: 30_000,
    retries: 8,
    retryDelay,
  });
}

/** Every message in the client's error and the errors nested in it (MultipleErrors, causes), once each. */
export function kafkaErrorText(err: unknown): string {
  const seen = new Set<string>();
  const walk = (e: unknown, depth: number): void => {
    if (e === null || e === undefined || depth > 6) return;
    const x = e as { message?: unknown; errors?: unknown; cause?: unknown; apiId?: unknown };
    if (typeof x.message === 'string' && x.message) seen.add(typeof x.apiId === 'string' ? `${x.apiId}: ${x.message}` : x.message);
    if (Array.isArray(x.errors)) for (const inner of x.errors) walk(inner, depth + 1);
    walk(x.cause, depth + 1);
  };
  walk(err, 0);
  return [...seen].join('; ');
}

/** Whether the client's error (or one nested in it) is the Kafka protocol error `apiId` (e.g. MESSAGE_TOO_LARGE). */
export function isKafkaError(err: unknown, apiId: string): boolean {
  const e = err as { findBy?: (property: string, value: unknown) => unknown };
  return typeof e?.findBy === 'function' && e.findBy('apiId', apiId) !== undefined && e.findBy('apiId', apiId) !== null;
}

/** Per partition of a topic: the log start (low) and end (high, the next offset to be written). */
export async function topicOffsets(admin: Admin, topic: string): Promise<{ partition: number; low: bigint; high: bigint }[]> {
  const meta = await admin.metadata({ topics: [topic] });
  const count = meta.topics.get(topic)?.partitionsCount ?? 0;
  const partitions = Array.from({ length: count }, (_, p) => p);
  const list = async (timestamp: bigint) => {
    const [t] = await admin.listOffsets({ topics: [{ name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) }] });
    return new Map((t?.partitions ?? []).map((p) => [p.partitionIndex, p.offset]));
  };
  const [low, high] = [await list(ListOffsetTimestamps.EARLIEST), await list(ListOffsetTimestamps.LATEST)];
  return partitions.map((partition) => ({ partition, low: low.get(partition) ?? 0n, high: high.get(partition) ?? 0n }));
}

/**
 * Creates the topics that are missing, with the configured partitions and replication; existing ones are left alone.
 * Returns the topics this call created. Resolves only once every partition of the topics has a leader, also when
 * another process (a writer starting beside the ingestion) created them a moment earlier.
 */
export async function ensureTopics(
  admin: Admin,
  topics: readonly string[],
  config: Pick<Config, 'kafka'>,
  extra: { configs?: { name: string; value: string }[] } = {},
  leaderTimeoutMs = 30_000,
): Promise<string[]> {
  const wanted = [...new Set(topics)];
  const existing = new Set(await admin.listTopics());
  const missing = wanted.filter((t) => !existing.has(t));
  const created: string[] = [];
  // One request per topic: a topic another process created meanwhile fails its own request only.
  for (const topic of missing) {
    try {
      await admin.createTopics({ topics: [topic], partitions: config.kafka.partitions, replicas: config.kafka.replicationFactor, ...extra });
      created.push(topic);
    } catch (err) {
      // Lost the race to another process creating the same topic: theirs will do.
      if (!isKafkaError(err, 'TOPIC_ALREADY_EXISTS') && !/already exists/i.test(kafkaErrorText(err))) throw err;
    }
  }
  await waitForLeaders(admin, wanted, leaderTimeoutMs);
  return created;
}

/** ensureTopics on an admin client of its own, for workers that need the admin only to start. */
export async function createTopics(kafka: KafkaClients, topics: readonly string[], config: Pick<Config, 'kafka'>): Promise<string[]> {
  const admin = kafka.admin();
  try {
    return await ensureTopics(admin, topics, config);
  } finally {
    await admin.close();
  }
}

async function waitForLeaders(admin: Admin, topics: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let leaderless: string[];
    try {
      const meta = await admin.metadata({ topics, forceUpdate: true });
      leaderless = topics.filter((name) => {
        const t = meta.topics.get(name);
        return t === undefined || t.partitions.length === 0 || t.partitions.some((p) => p === undefined || p.leader < 0);
      });
    } catch (err) {
      // A topic created a moment ago may not be in this broker's metadata yet.
      if (!isKafkaError(err, 'UNKNOWN_TOPIC_OR_PARTITION') && !isKafkaError(err, 'LEADER_NOT_AVAILABLE')) throw err;
      leaderless = topics;
    }
    if (leaderless.length === 0) return;
    if (Date.now() > deadline) throw new Error(`topics without partition leaders after ${timeoutMs} ms: ${leaderless.join(', ')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A record to produce as the client takes it (Buffers only), from the strings or Buffers the callers hold. */
export interface OutgoingRecord {
  readonly key?: string | Buffer | null;
  readonly value: string | Buffer | null;
  readonly headers?: Record<string, string | Buffer>;
  readonly partition?: number;
}

const bytes = (v: string | Buffer): Buffer => (typeof v === 'string' ? Buffer.from(v) : v);

export function kafkaMessage(topic: string, r: OutgoingRecord): MessageToProduce<Buffer, Buffer, Buffer, Buffer> {
  return {
    topic,
    ...(r.key === undefined || r.key === null ? {} : { key: bytes(r.key) }),
    ...(r.value === null ? {} : { value: bytes(r.value) }),
    ...(r.headers === undefined ? {} : { headers: new Map(Object.entries(r.headers).map(([k, v]) => [Buffer.from(k), bytes(v)])) }),
    ...(r.partition === undefined ? {} : { partition: r.partition }),
  };
}
