// The Kafka side of ingestion: idempotent producers (@platformatic/kafka, acks = all, lz4) fed from a bounded
// in-memory buffer. Records leave the buffer only once Kafka has acknowledged them; a failed send is retried with the
// same records in the same order, so a broker outage costs time, never records. When the buffer is full (bytes) the
// caller stops reading sockets.
import { cachedKeyHash, isKafkaError, kafkaErrorText, type KafkaClients, type KafkaProducer } from '../common/kafka.ts';
import { LZ4, nextSequence, sealBatch } from '../common/kafka-batch.ts';
import { partitionCounts, produceBatches, requireProduceV9, unsendable, type SealedBatch } from '../common/kafka-produce.ts';
import { backoffDelay } from '../common/backoff.ts';
import { compressionsAlgorithms } from '@platformatic/kafka';
import type { Logger } from '../common/log.ts';
import { encodeRecordText, type ProducedRecord } from '../common/records.ts';
import { TICK_JSON_MAX, writeTickJson } from '../common/tick-json.ts';
import type { IngestMetrics } from './metrics.ts';
import { KEYS_MAX, RecordQueue } from './record-queue.ts';
import { nowUs } from '../common/time.ts';

// A buffered record is only what Kafka needs (topic, key and value bytes, no headers: the schema version is in the
// value, see encodeRecord) and its receive time, kept in the lane's RecordQueue without an object of its own; the
// record object is dropped once encoded. A request is encoded from the queue straight into one lz4 record batch per
// partition (common/kafka-batch.ts), sent through the client's connections (common/kafka-produce.ts).

export interface ProducerOptions {
  /** Most bytes (keys and values) waiting for Kafka's acknowledgement before `full` (PRODUCER_BUFFER_MAX_BYTES). */
  readonly bufferMaxBytes: number;
  /** Most records per produce request (default 2,000: measured best for records/s and RSS). */
  readonly batchMax?: number;
  /** Idempotent producers the records are spread over by key (default 2). */
  readonly lanes?: number;
  readonly log: Logger;
  readonly metrics: IngestMetrics;
  /** Called with every acknowledged record's receive-to-ack latency in µs (the benchmark samples it). */
  readonly onAck?: (latencyUs: number) => void;
}



/** FNV-1a of the key: a key always lands in the same lane, so its records keep their order. */
function laneOf(key: string, lanes: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) % lanes;
}

/**
 * Records are spread over `lanes` idempotent producers by key. An idempotent producer holds one produce request per
 * broker in flight, so a single one idles while the broker writes and acknowledges; two lanes keep encoding while the
 * other waits.
 */
export class TickProducer {
  private readonly lanes: Lane[];
  private stopped = false;
  private readonly waiters: (() => void)[] = [];
  /** Per key (few: exchange:market:symbol, dead-letter sources): its bytes, encoded once, and its lane. */
  private readonly keys = new Map<string, { bytes: Buffer; lane: Lane }>();

  constructor(
    kafka: KafkaClients,
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

  /** Bytes (keys and values) waiting for an acknowledgement. */
  get bytes(): number {
    let n = 0;
    for (const l of this.lanes) n += l.bytes;
    return n;
  }

  get full(): boolean {
    return this.bytes >= this.opts.bufferMaxBytes;
  }

  /** Kafka's state as the producer sees it: consecutive failed sends and the last error (of the worst lane). */
  get health(): { failures: number; lastError: string | undefined } {
    const worst = this.lanes.reduce((a, b) => (b.failures > a.failures ? b : a));
    return { failures: worst.failures, lastError: worst.lastError };
  }

  produce(topic: string, key: string, record: ProducedRecord, receiveTimeUs = 0): void {
    if (this.stopped) throw new Error(`producer stopped: cannot produce to ${topic}`);
    const k = this.keyOf(key);
    k.lane.push(topic, k.bytes, record, receiveTimeUs);
  }

  private keyOf(key: string): { bytes: Buffer; lane: Lane } {
    let k = this.keys.get(key);
    if (k === undefined) {
      // A key per stream source; dead letters of unknown streams could otherwise grow it.
      if (this.keys.size >= KEYS_MAX) this.keys.clear();
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

/** A request being sent: the first `count` queued records as lz4 record batches, sealed for the current session. */
interface Pending {
  readonly count: number;
  readonly parts: { readonly topic: string; readonly partition: number; readonly count: number; readonly compressed: Buffer }[];
  readonly timestampMs: number;
  sealed: SealedBatch[];
}

/** Retryable session errors after which only a new producer id helps. */
const SESSION_LOST = /OUT_OF_ORDER_SEQUENCE|UNKNOWN_PRODUCER_ID|INVALID_PRODUCER_EPOCH|PRODUCER_FENCED|out of order sequence|unknown producer|producer epoch|fenced/i;

/**
 * One idempotent producer session (its producer id, epoch and per-partition sequence numbers) and the records waiting
 * for it, sent in order, one request at a time.
 */
class Lane {
  private producer: KafkaProducer;
  private readonly queue = new RecordQueue();
  private readonly hash = cachedKeyHash();
  private session: { producerId: bigint; producerEpoch: number } | undefined;
  /** Next sequence number per `topic:partition` of this session. */
  private sequences = new Map<string, number>();
  private pending: Pending | undefined;
  private sending = false;
  private stopped = false;
  failures = 0;
  lastError: string | undefined;
  private batchMax: number;
  private delay: NodeJS.Timeout | undefined;
  /** Ends the wait between failed sends (stop). */
  private wakeDelay: (() => void) | undefined;
  private readonly log: Logger;

  constructor(
    private readonly kafka: KafkaClients,
    private readonly opts: ProducerOptions,
    private readonly lane: number,
    private readonly onAcked: () => void,
  ) {
    this.batchMax = opts.batchMax ?? 2_000;
    this.log = opts.log.child({ lane });
    this.producer = this.create();
  }

  /**
   * The client gives the session (InitProducerId), metadata and connections; the lane encodes, numbers and sends the
   * batches itself, so a failed send is repeated with the same bytes and sequence numbers and the broker drops what
   * it already has.
   */
  private create(): KafkaProducer {
    return this.kafka.producer({ idempotent: true, compression: 'lz4', retries: 3, clientSuffix: `lane${this.lane}` });
  }

  /**
   * After a broker restart the idempotent session can be beyond repair (out-of-order sequence, unknown producer id):
   * a new producer (new id) resends the batch. The records of a batch the broker had written before it went down
   * may then appear twice; the writers drop such repeats by id.
   */
  private async renew(err: string): Promise<void> {
    this.log.warn({ err }, 'starting a new idempotent producer session');
    await this.producer.close().catch(() => undefined);
    this.producer = this.create();
    this.session = undefined;
  }

  /** Opens the idempotent session (a producer id from the broker): fails when Kafka cannot be reached or refuses us. */
  async connect(): Promise<void> {
    await this.open();
  }

  private async open(): Promise<{ producerId: bigint; producerEpoch: number }> {
    if (this.session === undefined) {
      await requireProduceV9(this.producer);
      const info = await this.producer.initIdempotentProducer({});
      this.session = { producerId: info.producerId, producerEpoch: info.producerEpoch };
      this.sequences = new Map();
      if (this.pending) this.pending.sealed = this.seal(this.pending);
    }
    return this.session;
  }

  get depth(): number {
    return this.queue.length;
  }

  /** Bytes of the queued records' keys and values. */
  get bytes(): number {
    return this.queue.bytes;
  }

  push(topic: string, key: Buffer, record: ProducedRecord, receiveTimeUs: number): void {
    // Ticks are written straight into the queue; anything else (or a tick the writer declines) as JSON.stringify's.
    if (!this.queue.pushWritten(topic, key, record, writeTickJson, TICK_JSON_MAX, receiveTimeUs)) this.queue.push(topic, key, encodeRecordText(record), receiveTimeUs);
    if (!this.sending && this.delay === undefined) {
      // Let the current burst of frames accumulate into one request.
      this.sending = true;
      setImmediate(() => void this.sendLoop());
    }
  }

  /** The first `count` queued records as one compressed batch per partition, placed as Java's default partitioner. */
  private async prepare(count: number): Promise<Pending> {
    const counts = await partitionCounts(this.producer, this.queue.topicsOf(count));
    const parts = this.queue
      .encode(count, (topic, key) => this.hash(key) % counts.get(topic)!)
      .map((e) => ({ topic: e.topic, partition: e.partition, count: e.count, compressed: compressionsAlgorithms.lz4.compressSync(e.records) as Buffer }));
    const pending: Pending = { count, parts, timestampMs: Date.now(), sealed: [] };
    if (this.session) pending.sealed = this.seal(pending);
    return pending;
  }

  /** Header and sequence numbers of the current session (the sequences advance only once Kafka has the batch). */
  private seal(p: Pending): SealedBatch[] {
    const session = this.session!;
    return p.parts.map((part) => ({
      topic: part.topic,
      partition: part.partition,
      batch: sealBatch(part.compressed, part.count, p.timestampMs, LZ4, { ...session, baseSequence: this.sequences.get(`${part.topic}:${part.partition}`) ?? 0 }),
    }));
  }

  private async sendLoop(): Promise<void> {
    while (this.queue.length > 0 && !this.stopped) {
      let pending = this.pending;
      try {
        pending ??= this.pending = await this.prepare(Math.min(this.queue.length, this.batchMax));
        await this.open();
        await produceBatches(this.producer, pending.sealed, 30_000);
      } catch (err) {
        if (this.stopped) break;
        this.failures++;
        this.lastError = kafkaErrorText(err);
        if (SESSION_LOST.test(this.lastError)) await this.renew(this.lastError);
        else if (pending && unsendable(err)) {
          // These bytes can never be accepted as they are, and other partitions of the request may have been written
          // under these sequence numbers: the records are encoded again for a new session (repeats of what was
          // written are dropped by the writers by id, as after any lost session).
          await this.renew(this.lastError);
          this.pending = undefined;
          if (isKafkaError(err, 'MESSAGE_TOO_LARGE')) {
            if (pending.count > 1) {
              // The broker's max.message.bytes is smaller than this batch: send smaller ones from now on.
              this.batchMax = Math.max(1, Math.floor(pending.count / 2));
              this.log.warn({ batchMax: this.batchMax }, 'batch too large for the broker: halving it');
              continue;
            }
            // One record larger than the broker takes (its max.message.bytes is below the frame bound) is never
            // storable: said and counted instead of blocking the lane for ever.
            this.log.error({ topic: pending.parts[0]?.topic }, 'a record is larger than the broker accepts (max.message.bytes): dropped');
            this.opts.metrics.deadLettered('record too large for Kafka');
            this.queue.acknowledge(1, () => {});
            this.onAcked();
            continue;
          }
        }
        const waitMs = backoffDelay(this.failures, 200, 5_000, 0);
        this.log.warn({ err: this.lastError, records: pending?.count, depth: this.depth, failures: this.failures, waitMs }, 'kafka send failed: keeping the records and retrying');
        await new Promise<void>((resolve) => {
          this.wakeDelay = resolve;
          this.delay = setTimeout(resolve, waitMs);
        });
        this.delay = this.wakeDelay = undefined;
        continue;
      }
      for (const part of pending.parts) {
        const tp = `${part.topic}:${part.partition}`;
        this.sequences.set(tp, nextSequence(this.sequences.get(tp) ?? 0, part.count));
      }
      this.pending = undefined;
      this.failures = 0;
      this.lastError = undefined;
      this.acknowledge(pending.count);
    }
    this.sending = false;
    this.onAcked();
  }

  /** Acknowledged records are let go at once, with the chunks no queued record uses any more. */
  private acknowledge(count: number): void {
    const ackUs = nowUs();
    const m = this.opts.metrics;
    let topic: string | undefined;
    let run = 0;
    this.queue.acknowledge(count, (t, receiveTimeUs) => {
      if (t !== topic) {
        if (run > 0) m.produced(topic!).inc(run);
        topic = t;
        run = 0;
      }
      run++;
      if (receiveTimeUs > 0) {
        const latencyUs = ackUs - receiveTimeUs;
        m.ackLatency.observe(latencyUs / 1e6);
        this.opts.onAck?.(latencyUs);
      }
    });
    if (run > 0) m.produced(topic!).inc(run);
    this.onAcked();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.delay) clearTimeout(this.delay);
    this.wakeDelay?.();
    await this.producer.close();
  }
}
