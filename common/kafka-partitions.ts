// A Kafka reader that owns its partitions' positions: @platformatic/kafka's Consumer keeps the group membership
// (join, sync, heartbeats, rejoin on a rebalance), and this file fetches the assigned partitions itself (the client's
// Fetch API), so that each partition can be paused, resumed and sought on its own, which the client's MessagesStream
// cannot do. Each fetch is handed out as one batch per partition, all partitions at once, and the next one is handed
// out only when every batch is handled (memory stays near one fetch). Without a group it reads given partitions
// (kafka-read.ts: resume, tools, tests).
import { FetchIsolationLevels, ListOffsetTimestamps } from '@platformatic/kafka';
import { fetchConnections, fetchedBatches, partitionKey, responseOf, type FetchResponse } from './kafka-fetch.ts';
import type { RecordList } from './kafka-records.ts';
import { kafkaErrorText, type KafkaClients, type KafkaConsumer } from './kafka.ts';
import type { Logger } from './log.ts';

export { partitionKey };
export type { FetchedMessage } from './kafka-records.ts';


export interface PartitionBatch {
  readonly topic: string;
  readonly partition: number;
  /** The partition's records in this fetch, from the asked offset on (read_committed). */
  readonly records: RecordList;
  /** The partition's high watermark when fetched: the next offset Kafka will write. */
  readonly highWatermark: string;
  /** Offset of the batch's last record (or of the last control record Kafka returned after it). */
  lastOffset(): string;
}

export interface BatchPayload {
  readonly batch: PartitionBatch;
  /** Marks the batch done up to this offset: the partition's next fetch starts after it. */
  resolveOffset(offset: string): void;
  /** Whether the partition was taken away or sought while this batch was handled: its results no longer count. */
  isStale(): boolean;
  /** Kept for the handlers' signature: the client heartbeats on its own timer. */
  heartbeat(): Promise<void>;
}

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface PartitionReaderOptions {
  readonly kafka: KafkaClients;
  readonly topics: readonly string[];
  readonly log: Logger;
  /** A consumer group to join (its assignment decides the partitions); absent: read `partitions` from `start`. */
  readonly group?: {
    readonly groupId: string;
    readonly sessionTimeout: number;
    readonly heartbeatInterval: number;
    readonly rebalanceTimeout: number;
    /**
     * Called with the partitions of each new assignment: where each should start (null: the group's committed offset,
     * else the earliest). The partitions are not fetched before it resolves.
     */
    readonly onAssign?: (partitions: readonly TopicPartition[]) => Promise<Map<string, bigint | null>>;
  };
  /** Without a group: the partitions and where they start. */
  readonly start?: readonly (TopicPartition & { readonly offset: bigint })[];
  readonly fetch: { readonly minBytes: number; readonly maxBytes: number; readonly maxBytesPerPartition: number; readonly maxWaitMs: number };
  readonly eachBatch: (payload: BatchPayload) => Promise<void>;
  /** A fetch held nothing to hand out (control records, aborted transactions): the partition's position moved past it. */
  readonly onSkip?: (batch: PartitionBatch) => void;
  /** The client gave up (a failed fetch after its retries, or a rejoin that failed): this reader has stopped. */
  readonly onCrash?: (err: Error) => void;
}

interface Requested {
  readonly offset: bigint;
  /** The partition's seek epoch when the fetch was made. */
  readonly epoch: number;
}

interface Fetched {
  readonly batches: PartitionBatch[];
  readonly requested: Map<string, Requested>;
}

export class PartitionReader {
  readonly consumer: KafkaConsumer;
  /** The consumer's connections, with Fetch responses read by kafka-fetch.ts. */
  private readonly connections: ReturnType<typeof fetchConnections>;
  /** The partitions this member holds (all given ones without a group). */
  assigned: TopicPartition[] = [];
  private readonly positions = new Map<string, bigint>();
  private readonly pausedSet = new Set<string>();
  /** Bumped per partition by every seek and assignment: a batch fetched before is stale. */
  private readonly epochs = new Map<string, number>();
  private running = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private assigning: Promise<void> = Promise.resolve();
  private generation = 0;

  constructor(private readonly o: PartitionReaderOptions) {
    const g = o.group;
    this.consumer = o.kafka.consumer({
      groupId: g?.groupId ?? `tickwatch-reader-${process.pid}-${Date.now()}`,
      autocommit: false,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      ...(g ? { sessionTimeout: g.sessionTimeout, heartbeatInterval: g.heartbeatInterval, rebalanceTimeout: g.rebalanceTimeout } : {}),
      minBytes: o.fetch.minBytes,
      maxBytes: o.fetch.maxBytes,
      maxWaitTime: o.fetch.maxWaitMs,
    });
    this.connections = fetchConnections(this.consumer);
    // A rejoin the client gave up on is emitted as 'error': without a listener it would end the process.
    this.consumer.on('error', (err: Error) => this.crash(err));
    for (const t of o.topics) this.consumer.topics.track(t);
    if (g) this.consumer.on('consumer:group:join', (p) => this.onJoin(p.assignments ?? []));
    else {
      for (const s of o.start ?? []) this.positions.set(partitionKey(s.topic, s.partition), s.offset);
      this.assigned = (o.start ?? []).map(({ topic, partition }) => ({ topic, partition }));
    }
  }

  /** Joins the group (if any) and starts fetching. */
  async start(): Promise<void> {
    this.running = true;
    if (this.o.group) {
      await this.consumer.joinGroup({
        sessionTimeout: this.o.group.sessionTimeout,
        heartbeatInterval: this.o.group.heartbeatInterval,
        rebalanceTimeout: this.o.group.rebalanceTimeout,
      });
    }
    this.loop = this.fetchLoop();
  }

  /** Stops fetching, lets the batches in hand finish, then leaves the group and closes the client. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop?.catch(() => undefined);
    await this.consumer.close().catch((err: Error) => this.o.log.debug({ err: kafkaErrorText(err) }, 'closing the consumer failed'));
  }

  pause(topic: string, partition: number): void {
    this.pausedSet.add(partitionKey(topic, partition));
  }

  resume(topic: string, partition: number): void {
    if (this.pausedSet.delete(partitionKey(topic, partition))) this.wake();
  }

  /** The partition's next fetch starts at `offset`; a batch of it in hand becomes stale. */
  seek(topic: string, partition: number, offset: bigint): void {
    const k = partitionKey(topic, partition);
    this.positions.set(k, offset);
    this.epochs.set(k, (this.epochs.get(k) ?? 0) + 1);
  }

  /** Kafka's committed offset follows the caller's own store (lag tools); needs the group. */
  async commit(topic: string, partition: number, next: bigint): Promise<void> {
    await this.consumer.commit({ offsets: [{ topic, partition, offset: next, leaderEpoch: -1 }] });
  }

  private crash(err: Error): void {
    if (!this.running) return;
    this.running = false;
    this.wake();
    this.o.onCrash?.(err);
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  private idle(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private onJoin(assignments: readonly { topic: string; partitions: number[] }[]): void {
    const now = assignments.flatMap((a) => a.partitions.map((partition) => ({ topic: a.topic, partition })));
    this.generation++;
    const gen = this.generation;
    this.assigned = now;
    // Every partition's position is set again: another member may have moved it while we were out.
    for (const tp of now) this.seekEpoch(tp);
    this.positions.clear();
    this.assigning = this.assign(now, gen).catch((err: Error) => this.crash(err));
    this.wake();
  }

  private seekEpoch(tp: TopicPartition): void {
    const k = partitionKey(tp.topic, tp.partition);
    this.epochs.set(k, (this.epochs.get(k) ?? 0) + 1);
  }

  private async assign(partitions: TopicPartition[], gen: number): Promise<void> {
    const chosen = (await this.o.group?.onAssign?.(partitions)) ?? new Map<string, bigint | null>();
    const rest = partitions.filter((tp) => (chosen.get(partitionKey(tp.topic, tp.partition)) ?? null) === null);
    const fallback = new Map<string, bigint>();
    if (rest.length > 0) {
      const topics = [...new Set(rest.map((tp) => tp.topic))].map((topic) => ({ topic, partitions: rest.filter((tp) => tp.topic === topic).map((tp) => tp.partition) }));
      const committed = await this.consumer.listCommittedOffsets({ topics });
      const earliest = await this.consumer.listOffsets({ topics: topics.map((t) => t.topic), timestamp: ListOffsetTimestamps.EARLIEST });
      for (const tp of rest) {
        const c = committed.get(tp.topic)?.[tp.partition];
        fallback.set(partitionKey(tp.topic, tp.partition), c !== undefined && c >= 0n ? c : (earliest.get(tp.topic)?.[tp.partition] ?? 0n));
      }
    }
    if (gen !== this.generation) return; // a newer assignment took over
    for (const tp of partitions) {
      const k = partitionKey(tp.topic, tp.partition);
      this.positions.set(k, chosen.get(k) ?? fallback.get(k)!);
    }
  }

  private wanted(): TopicPartition[] {
    return this.assigned.filter((tp) => !this.pausedSet.has(partitionKey(tp.topic, tp.partition)) && this.positions.has(partitionKey(tp.topic, tp.partition)));
  }

  /**
   * Fetch, hand out, repeat. A batch is handled only if its partition is still where it was asked from (nothing sought
   * meanwhile, still ours); otherwise it is dropped and fetched again.
   */
  private async fetchLoop(): Promise<void> {
    while (this.running) {
      await this.assigning;
      if (!this.running) break;
      const wanted = this.wanted();
      if (wanted.length === 0) {
        await this.idle(1_000);
        continue;
      }
      try {
        const fetched = await this.fetch(wanted);
        if (fetched === undefined || !this.running) continue;
        await Promise.all(fetched.batches.map((batch) => this.handle(batch, fetched.requested.get(partitionKey(batch.topic, batch.partition))!)));
      } catch (err) {
        if (!this.running) break;
        this.o.log.warn({ err: kafkaErrorText(err) }, 'kafka fetch failed after the client retried');
        this.crash(err as Error);
      }
    }
  }

  /** One fetch of the partitions from their positions, as batches; undefined when no partition has a leader now. */
  private async fetch(wanted: TopicPartition[]): Promise<Fetched | undefined> {
    const topics = [...new Set(wanted.map((tp) => tp.topic))];
    const meta = await this.consumer.metadata({ topics });
    const names = new Map<string, string>();
    const byLeader = new Map<number, Map<string, { topicId: string; partitions: { partition: number; fetchOffset: bigint; partitionMaxBytes: number; currentLeaderEpoch: number; lastFetchedEpoch: number }[] }>>();
    const requested = new Map<string, Requested>();
    for (const tp of wanted) {
      const t = meta.topics.get(tp.topic);
      const p = t?.partitions[tp.partition];
      if (!t || !p || p.leader < 0) continue;
      names.set(t.id, tp.topic);
      const k = partitionKey(tp.topic, tp.partition);
      const offset = this.positions.get(k)!;
      requested.set(k, { offset, epoch: this.epochs.get(k) ?? 0 });
      let perTopic = byLeader.get(p.leader);
      if (!perTopic) byLeader.set(p.leader, (perTopic = new Map()));
      let entry = perTopic.get(t.id);
      if (!entry) perTopic.set(t.id, (entry = { topicId: t.id, partitions: [] }));
      entry.partitions.push({ partition: tp.partition, fetchOffset: offset, partitionMaxBytes: this.o.fetch.maxBytesPerPartition, currentLeaderEpoch: -1, lastFetchedEpoch: -1 });
    }
    if (byLeader.size === 0) {
      this.consumer.clearMetadata();
      await this.idle(250);
      return undefined;
    }
    const responses = await Promise.all(
      [...byLeader].map(async ([node, perTopic]) => {
        try {
          return (await this.consumer.fetch({ node, topics: [...perTopic.values()], connectionPool: this.connections })) as unknown as FetchResponse;
        } catch (err) {
          // Partition-level errors still carry the response: the other partitions' records are good.
          const response = responseOf(err);
          if (response === undefined) throw err;
          await this.partitionErrors(response, names, requested, err);
          return response;
        }
      }),
    );
    const batches: PartitionBatch[] = [];
    for (const response of responses) batches.push(...fetchedBatches(response, names, requested));
    return { batches, requested };
  }

  /** OFFSET_OUT_OF_RANGE: the position is below the log start (trimmed) or past its end: move to the nearer end. */
  private async partitionErrors(response: FetchResponse, names: Map<string, string>, requested: Map<string, { offset: bigint }>, err: unknown): Promise<void> {
    for (const t of response.responses) {
      const topic = names.get(t.topicId);
      if (topic === undefined) continue;
      for (const p of t.partitions) {
        if (p.errorCode === 0) continue;
        if (p.errorCode !== 1) {
          this.consumer.clearMetadata(); // a moved leader, mostly: the next fetch asks again
          this.o.log.debug({ topic, partition: p.partitionIndex, errorCode: p.errorCode, err: kafkaErrorText(err) }, 'fetch error on a partition');
          continue;
        }
        const at = requested.get(partitionKey(topic, p.partitionIndex))?.offset ?? 0n;
        const [earliest, latest] = await Promise.all(
          [ListOffsetTimestamps.EARLIEST, ListOffsetTimestamps.LATEST].map(async (timestamp) => (await this.consumer.listOffsets({ topics: [topic], partitions: { [topic]: [p.partitionIndex] }, timestamp })).get(topic)?.[p.partitionIndex] ?? 0n),
        );
        const to = at < earliest! ? earliest! : latest!;
        this.o.log.warn({ topic, partition: p.partitionIndex, offset: at.toString(), to: to.toString() }, 'fetch offset out of range: moving to the log');
        this.seek(topic, p.partitionIndex, to);
      }
    }
  }

  private async handle(batch: PartitionBatch, asked: Requested): Promise<void> {
    const k = partitionKey(batch.topic, batch.partition);
    const stale = () =>
      (this.epochs.get(k) ?? 0) !== asked.epoch || !this.assigned.some((tp) => tp.topic === batch.topic && tp.partition === batch.partition);
    if (stale() || this.positions.get(k) !== asked.offset) return;
    let resolved: bigint | undefined;
    if (batch.records.length === 0) {
      // Only control records (or nothing): step over them.
      const last = BigInt(batch.lastOffset());
      if (last >= asked.offset) {
        this.positions.set(k, last + 1n);
        this.o.onSkip?.(batch);
      }
      return;
    }
    await this.o.eachBatch({
      batch,
      resolveOffset: (offset) => {
        const o = BigInt(offset);
        if (resolved === undefined || o > resolved) resolved = o;
      },
      isStale: stale,
      heartbeat: async () => {},
    });
    if (resolved !== undefined && !stale()) this.positions.set(k, resolved + 1n);
  }
}
