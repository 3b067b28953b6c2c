// The Kafka side of ingestion: an idempotent producer (acks -1, gzip) fed from a bounded in-memory buffer. Records
// leave the buffer only once Kafka has acknowledged them; a failed send is retried with the same records in the same
// order, so a broker outage costs time, never records. When the buffer is full the caller stops reading sockets.
import { CompressionTypes, type Kafka, type Message, type Producer } from 'kafkajs';
import { cachedKeyPartitioner } from '../common/kafka.ts';
import type { Logger } from '../common/log.ts';
import { encodeRecord, type ProducedRecord } from '../common/records.ts';
import type { IngestMetrics } from './metrics.ts';
import { nowUs } from '../common/time.ts';

// A buffered record is only its Kafka message: key and value as bytes, no headers (the schema version is in the value,
// see encodeRecord), the record object itself dropped once encoded.
interface Pending {
  readonly topic: string;
  readonly message: { readonly key: Buffer; readonly value: Buffer };
  /** Receive time (µs since epoch), for the receive-to-acknowledged latency; 0 when not applicable. */
  readonly receiveTimeUs: number;
}

export interface ProducerOptions {
  readonly bufferMax: number;
  /** Most records per produce request (default 2,000: kafkajs groups a request's records by partition in time
   * quadratic in their number, and encodes it in one go; 2,000 measured best for messages/s and RSS, 10,000 worst). */
  readonly batchMax?: number;
  /** Idempotent producers the records are spread over by key (default 2). */
  readonly lanes?: number;
  readonly log: Logger;
  readonly metrics: IngestMetrics;
  /** Called with every acknowledged record's receive-to-ack latency in µs (the benchmark samples it). */
  readonly onAck?: (latencyUs: number) => void;
}

/** Bound on remembered keys (a key per stream source; dead letters of unknown streams could otherwise grow it). */
const KEY_CACHE_MAX = 10_000;


/** FNV-1a of the key: a key always lands in the same lane, so its records keep their order. */
function laneOf(key: string, lanes: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) % lanes;
}

/**
 * Records are spread over `lanes` idempotent producers by key. kafkajs holds one produce request per broker in flight
 * for an idempotent producer, so a single one idles while the broker writes and acknowledges; two lanes keep encoding
 * while the other waits (measured 45k -> 74k records/s with pre-encoded records on this machine's broker).
 */
export class TickProducer {
  private readonly lanes: Lane[];
  private stopped = false;
  private readonly waiters: (() => void)[] = [];
  /** Per key (few: exchange:market:symbol, dead-letter sources): its bytes, encoded once, and its lane. */
  private readonly keys = new Map<string, { bytes: Buffer; lane: Lane }>();

  constructor(
    kafka: Kafka,
    private readonly opts: ProducerOptions,
  ) {
    this.lanes = Array.from({ length: Math.max(1, opts.lanes ?? 2) }, (_, i) => new Lane(kafka, opts, i, () => this.wake()));
  }

  async connect(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.connect()));
  }

  /** Records waiting for an acknowledgement. */
  get depth(): number {
    let n = 0;
    for (const l of this.lanes) n += l.depth;
    return n;
  }

  get full(): boolean {
    return this.depth >= this.opts.bufferMax;
  }

  /** Kafka's state as the producer sees it: consecutive failed sends and the last error (of the worst lane). */
  get health(): { failures: number; lastError: string | undefined } {
    const worst = this.lanes.reduce((a, b) => (b.failures > a.failures ? b : a));
    return { failures: worst.failures, lastError: worst.lastError };
  }

  produce(topic: string, key: string, record: ProducedRecord, receiveTimeUs = 0): void {
    if (this.stopped) throw new Error(`producer stopped: cannot produce to ${topic}`);
    const k = this.keyOf(key);
    k.lane.push({ topic, message: { key: k.bytes, value: encodeRecord(record) }, receiveTimeUs });
  }

  private keyOf(key: string): { bytes: Buffer; lane: Lane } {
    let k = this.keys.get(key);
    if (k === undefined) {
      if (this.keys.size >= KEY_CACHE_MAX) this.keys.clear();
      this.keys.set(key, (k = { bytes: Buffer.from(key), lane: this.lanes[laneOf(key, this.lanes.length)]! }));
    }
    return k;
  }

  /** Resolves once the buffer is below its bound (backfill waits on it; sockets are paused instead). */
  async writable(): Promise<void> {
    while (this.full && !this.stopped) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Resolves once every record produced so far has been acknowledged. */
  async flush(): Promise<void> {
    while (this.depth > 0 && !this.stopped) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    this.opts.metrics.bufferDepth.set(this.depth);
    for (const w of this.waiters.splice(0)) w();
  }

  /** Flushes (bounded by `timeoutMs`), then disconnects. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.depth > 0) {
      const left = await Promise.race([this.flush().then(() => 0), new Promise<number>((r) => setTimeout(() => r(this.depth), timeoutMs).unref())]);
      if (left > 0) this.opts.log.error({ records: left }, 'stopping with records Kafka has not acknowledged: they will be backfilled at the next start');
    }
    this.stopped = true;
    this.wake();
    await Promise.all(this.lanes.map((l) => l.stop()));
  }
}

/** One idempotent producer and the records waiting for it, sent in order, one request at a time. */
class Lane {
  private producer: Producer;
  private queue: Pending[] = [];
  private sending = false;
  private stopped = false;
  failures = 0;
  lastError: string | undefined;
  private batchMax: number;
  private delay: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: ProducerOptions,
    lane: number,
    private readonly onAcked: () => void,
  ) {
    this.batchMax = opts.batchMax ?? 2_000;
    this.log = opts.log.child({ lane });
    this.producer = this.create();
  }

  private create(): Producer {
    return this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: cachedKeyPartitioner,
      // The idempotent producer keeps its guarantees only if it never gives up on a request by itself.
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5_000 },
    });
  }

  /**
   * After a broker restart the idempotent session can be beyond repair (out-of-order sequence, unknown producer id):
   * a new producer (new id) resends the batch. The records of a batch the broker had written before it went down
   * may then appear twice; the writers drop such repeats by id.
   */
  private async renew(err: Error): Promise<void> {
    this.log.warn({ err: err.message }, 'idempotent producer session lost: starting a new one');
    await this.producer.disconnect().catch(() => undefined);
    this.producer = this.create();
    await this.producer.connect().catch((e: Error) => this.log.warn({ err: e.message }, 'kafka connect failed: will retry'));
  }

  async connect(): Promise<void> {
    await this.producer.connect();
  }

  get depth(): number {
    return this.queue.length;
  }

  push(p: Pending): void {
    this.queue.push(p);
    if (!this.sending && this.delay === undefined) {
      // Let the current burst of frames accumulate into one request.
      this.sending = true;
      setImmediate(() => void this.sendLoop());
    }
  }

  private async sendLoop(): Promise<void> {
    while (this.queue.length > 0 && !this.stopped) {
      const end = Math.min(this.queue.length, this.batchMax);
      const batch = this.queue.slice(0, end);
      const byTopic = new Map<string, Message[]>();
      for (const p of batch) {
        let list = byTopic.get(p.topic);
        if (!list) byTopic.set(p.topic, (list = []));
        list.push(p.message);
      }
      try {
        await this.producer.sendBatch({
          acks: -1,
          compression: CompressionTypes.GZIP,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        });
      } catch (err) {
        this.failures++;
        this.lastError = (err as Error).message;
        if (/out of order sequence|unknown producer|producer epoch|fenced/i.test(this.lastError)) await this.renew(err as Error);
        if ((err as { type?: string }).type === 'MESSAGE_TOO_LARGE' && batch.length > 1) {
          // The broker's max.message.bytes is smaller than this batch: send smaller ones from now on.
          this.batchMax = Math.max(1, Math.floor(batch.length / 2));
          this.log.warn({ batchMax: this.batchMax }, 'batch too large for the broker: halving it');
          continue;
        }
        const waitMs = Math.min(5_000, 200 * 2 ** Math.min(this.failures, 5));
        this.log.warn({ err, records: batch.length, depth: this.depth, failures: this.failures, waitMs }, 'kafka send failed: keeping the records and retrying');
        await new Promise<void>((resolve) => (this.delay = setTimeout(resolve, waitMs)));
        this.delay = undefined;
        continue;
      }
      this.failures = 0;
      this.lastError = undefined;
      const ackUs = nowUs();
      const m = this.opts.metrics;
      for (const [topic, messages] of byTopic) m.produced(topic).inc(messages.length);
      for (const p of batch) {
        if (p.receiveTimeUs > 0) {
          const latencyUs = ackUs - p.receiveTimeUs;
          m.ackLatency.observe(latencyUs / 1e6);
          this.opts.onAck?.(latencyUs);
        }
      }
      // Acknowledged records are let go at once (holding them until a rare compaction kept tens of MB alive).
      this.queue = this.queue.slice(end);
      this.onAcked();
    }
    this.sending = false;
    this.onAcked();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.delay) clearTimeout(this.delay);
    await this.producer.disconnect();
  }
}
