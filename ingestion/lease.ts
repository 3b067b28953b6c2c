// A standby per shard (INGEST_LEASE=true): the process streams only while it holds its shard's lease, which Kafka
// provides as partition 0 of a one-partition topic (<prefix>.ingest-lease) in a consumer group per shard
// (<prefix>-ingest-lease-<i>-of-<N>). The member assigned the partition is active; the others wait. The assignor keeps
// the partition with the member that says it holds it (its join metadata), so a standby joining does not move it.
//
// Never two active at once: the broker gives the partition to another member only after the holder's session has
// expired (no heartbeat for INGEST_LEASE_SESSION_MS, measured from the last heartbeat the broker received) or it left.
// The holder stops on its own first: once no heartbeat or join has succeeded for half the session timeout, or a
// rebalance hands it no partition, or the client reports a group error, it declares the lease lost, and the worker
// exits at once, without flushing (ingestion/cli.ts): records it held unacknowledged are read back from Kafka's tail
// and backfilled by the successor. Half the session leaves the other half for the last produce request on the wire.
import type { Config } from '../common/config.ts';
import { ensureTopics, kafkaErrorText, type KafkaClients, type KafkaConsumer } from '../common/kafka.ts';
import type { Logger } from '../common/log.ts';
import type { IngestMetrics } from './metrics.ts';

const HOLDER = 'holder';
const STANDBY = 'standby';

type Members = Map<string, { memberId: string; metadata?: Buffer | string | null }>;

/** Pure: partition 0 of the lease topic to the member that holds it (the smallest id if several say so), else the smallest id. */
export function leaseAssignment(members: Members, topic: string): { memberId: string; assignments: Map<string, { topic: string; partitions: number[] }> }[] {
  const ids = [...members.keys()].sort();
  const holders = ids.filter((id) => String(members.get(id)?.metadata ?? '') === HOLDER);
  const winner = holders[0] ?? ids[0];
  return ids.map((memberId) => ({ memberId, assignments: new Map(memberId === winner ? [[topic, { topic, partitions: [0] }]] : []) }));
}

export interface ShardLeaseOptions {
  readonly kafka: KafkaClients;
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: IngestMetrics;
  /** Called once when a held lease is lost (the caller must stop producing at once), or when waiting failed for good. */
  readonly onLost: (reason: string) => void;
  readonly now?: () => number;
}

export class ShardLease {
  readonly topic: string;
  readonly groupId: string;
  readonly sessionTimeoutMs: number;
  /** Without a successful heartbeat or join for this long, the holder gives the lease up. */
  readonly fenceAfterMs: number;
  private consumer: KafkaConsumer | undefined;
  private readonly protocol = { name: 'tickwatch-lease', version: 1, metadata: Buffer.from(STANDBY) };
  private held = false;
  private lost = false;
  private lastAliveMs = 0;
  private fenceTimer: NodeJS.Timeout | undefined;
  private resolveAcquired!: () => void;
  readonly acquired: Promise<void>;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly o: ShardLeaseOptions) {
    const lease = o.config.source.lease;
    if (!lease) throw new Error('ShardLease needs INGEST_LEASE=true');
    const { index, count } = o.config.source.shard;
    this.topic = `${lease.prefix}.ingest-lease`;
    this.groupId = `${lease.prefix}-ingest-lease-${index}-of-${count}`;
    this.sessionTimeoutMs = lease.sessionTimeoutMs;
    this.fenceAfterMs = Math.floor(lease.sessionTimeoutMs / 2);
    this.acquired = new Promise((r) => (this.resolveAcquired = r));
    this.log = o.log.child({ component: 'lease', group: this.groupId });
    this.now = o.now ?? Date.now;
  }

  get active(): boolean {
    return this.held && !this.lost;
  }

  /** Joins the group; `acquired` resolves when this process holds the lease. */
  async start(): Promise<void> {
    const admin = this.o.kafka.admin();
    try {
      await ensureTopics(admin, [this.topic], { kafka: { ...this.o.config.kafka, partitions: 1 } });
    } finally {
      await admin.close();
    }
    const s = this.sessionTimeoutMs;
    const heartbeatInterval = Math.max(100, Math.floor(s / 6));
    const group = { sessionTimeout: s, heartbeatInterval, rebalanceTimeout: s };
    const c = this.o.kafka.consumer({ groupId: this.groupId, autocommit: false, ...group });
    this.consumer = c;
    c.topics.track(this.topic);
    c.on('consumer:group:join', (p) => this.onJoin(p.assignments ?? []));
    c.on('consumer:heartbeat:end', () => (this.lastAliveMs = this.now()));
    c.on('consumer:heartbeat:error', (p) => this.log.warn({ err: kafkaErrorText(p.error) }, 'lease heartbeat failed'));
    // The client gave up on the group (a rejoin failed for good): the holder loses the lease, and a standby that can no
    // longer be assigned it ends as well (a supervisor starts it again) rather than wait for nothing.
    c.on('error', (err: Error) => (this.held ? this.lose(`group error: ${kafkaErrorText(err)}`) : this.fail(`group error: ${kafkaErrorText(err)}`)));
    this.o.metrics.leaseActive.set(0);
    this.log.info({ topic: this.topic, sessionTimeoutMs: s, fenceAfterMs: this.fenceAfterMs }, 'waiting for the shard lease');
    await c.joinGroup({
      ...group,
      protocols: [this.protocol],
      partitionAssigner: (_current, members) => leaseAssignment(members, this.topic),
    });
  }

  /** Leaves the group, so a standby takes over at once (after this process has stopped producing). */
  async release(): Promise<void> {
    if (this.fenceTimer) clearInterval(this.fenceTimer);
    this.held = false;
    this.o.metrics.leaseActive.set(0);
    await this.consumer?.close().catch((err: Error) => this.log.warn({ err: kafkaErrorText(err) }, 'leaving the lease group failed'));
  }

  private onJoin(assignments: readonly { topic: string; partitions: number[] }[]): void {
    this.lastAliveMs = this.now();
    const holds = assignments.some((a) => a.topic === this.topic && a.partitions.includes(0));
    if (holds && !this.held && !this.lost) {
      this.held = true;
      // Rejoins (another member joining) say so, and the assignor leaves the partition here.
      this.protocol.metadata = Buffer.from(HOLDER);
      this.o.metrics.leaseActive.set(1);
      this.log.info('shard lease acquired: this process is the active one');
      this.fenceTimer = setInterval(() => this.checkAlive(), Math.max(50, Math.floor(this.fenceAfterMs / 10)));
      this.resolveAcquired();
    } else if (!holds && this.held) this.lose('a rebalance gave the lease to another member');
  }

  /** Before each record: ends the lease (and so the process) at once when it may have expired. */
  check(): void {
    if (this.held && !this.lost) this.checkAlive();
  }

  private checkAlive(): void {
    const silent = this.now() - this.lastAliveMs;
    if (this.held && silent > this.fenceAfterMs) this.lose(`no successful heartbeat for ${silent} ms (session timeout ${this.sessionTimeoutMs} ms)`);
  }

  private fail(reason: string): void {
    if (this.lost) return;
    this.lost = true;
    this.log.error({ reason }, 'the lease group failed while waiting: ending');
    this.o.onLost(reason);
  }

  private lose(reason: string): void {
    if (!this.held || this.lost) return;
    this.lost = true;
    if (this.fenceTimer) clearInterval(this.fenceTimer);
    this.o.metrics.leaseActive.set(0);
    this.log.error({ reason }, 'shard lease lost: stopping at once');
    this.o.onLost(reason);
  }
}
