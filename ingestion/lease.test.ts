// The lease's rules without a broker: who is assigned the partition, when the holder gives it up (before the broker
// could hand it on: half the session timeout after its last successful heartbeat), and that it gives it up before a
// record when it has been frozen. The group itself is exercised against real Kafka in standby.int.test.ts.
import { EventEmitter } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../common/config.ts';
import type { KafkaClients } from '../common/kafka.ts';
import { createLogger } from '../common/log.ts';
import { leaseAssignment, ShardLease } from './lease.ts';
import { createIngestMetrics } from './metrics.ts';

const log = createLogger('silent', 'test');

describe('leaseAssignment', () => {
  const members = (m: Record<string, string>) => new Map(Object.entries(m).map(([memberId, metadata]) => [memberId, { memberId, metadata: Buffer.from(metadata) }]));
  const owner = (a: ReturnType<typeof leaseAssignment>) => a.filter((x) => x.assignments.get('t')?.partitions.includes(0)).map((x) => x.memberId);
  it('keeps the partition with its holder when a standby joins, whatever the ids', () => {
    expect(owner(leaseAssignment(members({ b: 'holder', a: 'standby' }), 't'))).toEqual(['b']);
    expect(owner(leaseAssignment(members({ z: 'holder', a: 'standby', m: 'standby' }), 't'))).toEqual(['z']);
  });
  it('gives it to exactly one member when nobody holds it, or (misbehaviour) several say they do', () => {
    expect(owner(leaseAssignment(members({ c: 'standby', a: 'standby' }), 't'))).toEqual(['a']);
    expect(owner(leaseAssignment(members({ c: 'holder', b: 'holder' }), 't'))).toEqual(['b']);
    expect(leaseAssignment(members({ c: 'standby', a: 'standby' }), 't')).toHaveLength(2);
  });
});

/** The consumer and admin the lease uses, as far as it uses them. */
function fakeKafka() {
  const consumer = Object.assign(new EventEmitter(), {
    topics: { track: vi.fn() },
    joinOptions: undefined as undefined | { sessionTimeout: number; protocols: { metadata: Buffer }[] },
    joinGroup: vi.fn(async function (this: unknown, o: { sessionTimeout: number; protocols: { metadata: Buffer }[] }) {
      consumer.joinOptions = o;
      return '';
    }),
    close: vi.fn(async () => {}),
  });
  const admin = {
    listTopics: async () => ['x.ingest-lease'],
    metadata: async () => ({ topics: new Map([['x.ingest-lease', { partitions: [{ leader: 1 }] }]]) }),
    close: async () => {},
  };
  return { kafka: { consumer: () => consumer, admin: () => admin } as unknown as KafkaClients, consumer };
}

describe('ShardLease', () => {
  const config = loadConfig({ INGEST_LEASE: 'true', INGEST_LEASE_PREFIX: 'x', INGEST_LEASE_SESSION_MS: '6000', SHARD: '1/3' });
  const join = (c: EventEmitter, partitions: number[]) => c.emit('consumer:group:join', { assignments: partitions.length ? [{ topic: 'x.ingest-lease', partitions }] : [] });

  it('names its group per shard, waits as a standby, and says so in its join metadata once it holds the lease', async () => {
    const { kafka, consumer } = fakeKafka();
    const lease = new ShardLease({ kafka, config, log, metrics: createIngestMetrics({ defaultMetrics: false }), onLost: () => {} });
    expect(lease.groupId).toBe('x-ingest-lease-1-of-3');
    await lease.start();
    expect(consumer.joinOptions!.sessionTimeout).toBe(6000);
    expect(consumer.joinOptions!.protocols[0]!.metadata.toString()).toBe('standby');
    join(consumer, []);
    expect(lease.active).toBe(false);
    join(consumer, [0]);
    expect(lease.active).toBe(true);
    await lease.acquired;
    expect(consumer.joinOptions!.protocols[0]!.metadata.toString()).toBe('holder');
    await lease.release();
  });

  it('gives the lease up at half the session timeout without a heartbeat: before the broker could hand it on', async () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const { kafka, consumer } = fakeKafka();
      const lost: number[] = [];
      const lease = new ShardLease({ kafka, config, log, metrics: createIngestMetrics({ defaultMetrics: false }), onLost: () => lost.push(Date.now()) });
      await lease.start();
      join(consumer, [0]);
      // Heartbeats every second keep it.
      for (let i = 0; i < 10; i++) {
        vi.advanceTimersByTime(1000);
        consumer.emit('consumer:heartbeat:end');
      }
      expect(lost).toEqual([]);
      // Then silence (the coordinator unreachable): lost after 3 s, half of the 6 s after which the broker expires it.
      const lastBeat = Date.now();
      vi.advanceTimersByTime(6000);
      expect(lost).toHaveLength(1);
      expect(lost[0]! - lastBeat).toBeGreaterThan(3000);
      expect(lost[0]! - lastBeat).toBeLessThanOrEqual(3000 + 300);
      expect(lease.active).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  it('checks before a record: a process frozen past half its session stops at its first record, not at its next timer', async () => {
    let now = 0;
    const { kafka, consumer } = fakeKafka();
    const lost: string[] = [];
    const lease = new ShardLease({ kafka, config, log, metrics: createIngestMetrics({ defaultMetrics: false }), onLost: (r) => lost.push(r), now: () => now });
    await lease.start();
    join(consumer, [0]);
    now = 2000;
    lease.check();
    expect(lost).toEqual([]);
    now = 3500;
    lease.check();
    expect(lost).toEqual([expect.stringMatching(/no successful heartbeat for 3500 ms/)]);
    await lease.release();
  });

  it('a standby whose group failed for good ends instead of waiting for nothing', async () => {
    const { kafka, consumer } = fakeKafka();
    const lost: string[] = [];
    const lease = new ShardLease({ kafka, config, log, metrics: createIngestMetrics({ defaultMetrics: false }), onLost: (r) => lost.push(r) });
    await lease.start();
    consumer.emit('error', new Error('rejoin failed'));
    expect(lost).toEqual([expect.stringMatching(/group error/)]);
    expect(lease.active).toBe(false);
  });

  it('a rebalance that moves the partition away ends the lease', async () => {
    const { kafka, consumer } = fakeKafka();
    const lost: string[] = [];
    const lease = new ShardLease({ kafka, config, log, metrics: createIngestMetrics({ defaultMetrics: false }), onLost: (r) => lost.push(r) });
    await lease.start();
    join(consumer, [0]);
    join(consumer, []);
    expect(lost).toEqual([expect.stringMatching(/another member/)]);
    await lease.release();
  });
});
