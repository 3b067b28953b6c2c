// The metrics worker's outboxes (thin adapters): bar and anomaly records and alert mails are written to tables in the
// transaction that decides them (metrics/worker.ts), then published to Kafka in transactions that fence a predecessor
// and record how far they got, and mailed with a state per mail, so a worker taking over publishes and mails exactly
// what its predecessor had not. The design and its limits: metrics/README.md, "Standby".
import { hostname } from 'node:os';
import { FindCoordinatorKeyTypes, type Message } from '@platformatic/kafka';
import type { Counter } from 'prom-client';
import type { Config } from '../common/config.ts';
import type { SqlSession } from '../common/db.ts';
import { kafkaErrorText, kafkaMessage, type KafkaClients, type KafkaConsumer, type KafkaProducer } from '../common/kafka.ts';
import type { Logger } from '../common/log.ts';
import { recordHeaders, tickKey, type AnomalyRecord, type BarRecord } from '../common/records.ts';
import type { AlertMail } from './alert-state.ts';
import type { AlertMailer } from './alerts-mail.ts';
import type { MetricsSink } from './engine.ts';

/** Writes the records into metrics_outbox on the step's session (inside its transaction). */
export function outboxSink(db: SqlSession, topics: Config['kafka']['topics']): MetricsSink {
  const put = async (topic: string, kind: 'bar' | 'anomaly', records: readonly (BarRecord | AnomalyRecord)[]) => {
    if (records.length === 0) return;
    await db.query(
      `INSERT INTO metrics_outbox (topic, key, value, kind) SELECT $1, k, v, $2 FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS r(k, v, n) ORDER BY n`,
      [topic, kind, records.map((r) => tickKey(r)), records.map((r) => JSON.stringify(r))],
    );
  };
  return {
    publishBars: (bars) => put(topics.bar, 'bar', bars),
    publishAnomalies: (events) => put(topics.alert, 'anomaly', events),
  };
}

/** Writes a decided mail into alert_mail_outbox on the step's session (inside its transaction). */
export async function queueMail(db: SqlSession, m: AlertMail): Promise<void> {
  await db.query('INSERT INTO alert_mail_outbox (key, mail) VALUES ($1, $2::jsonb)', [m.key, JSON.stringify(m)]);
}

/**
 * Publishes metrics_outbox in Kafka transactions of one fixed transactional id. Each transaction carries the records
 * and, as the committed offset of the outbox's consumer group, the id after the last of them; both become visible at
 * its commit, or neither. A new publisher's first transaction fences its predecessor's producer (its open transaction
 * is aborted, or completed if it was committing); the publisher then reads that offset (stable: no transaction of the
 * id pending) and drops the rows published before, whether or not the predecessor lived to delete them.
 */
export class OutboxPublisher {
  private producer: KafkaProducer | undefined;
  private reconciled = false;
  private coordinatorId: number | undefined;
  readonly transactionalId: string;
  readonly groupId: string;

  constructor(
    private readonly kafka: KafkaClients,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly batch = 2_000,
  ) {
    this.transactionalId = `${config.kafka.clientId}-metrics-publisher`;
    this.groupId = `${config.kafka.clientId}-metrics-outbox`;
  }

  /**
   * Publishes what the outbox holds, `batch` records per Kafka transaction. `held` is asked before each transaction
   * and before its commit: a worker that lost its lease commits nothing more. Returns the records published.
   */
  async flush(db: SqlSession, held: () => boolean): Promise<number> {
    let published = 0;
    try {
      for (;;) {
        if (!held()) return published;
        const txn = await this.transaction(db);
        const rows = (
          await db.query<{ id: string; topic: string; key: string; value: string; kind: 'bar' | 'anomaly' }>(
            'SELECT id, topic, key, value, kind FROM metrics_outbox ORDER BY id LIMIT $1',
            [this.batch],
          )
        ).rows;
        if (rows.length === 0) return published;
        const last = BigInt(rows[rows.length - 1]!.id);
        await txn.send({ messages: rows.map((r) => kafkaMessage(r.topic, { key: r.key, value: r.value, headers: { ...recordHeaders(r.kind), 'tickwatch-outbox-id': r.id } })) });
        await txn.addConsumer({ groupId: this.groupId } as KafkaConsumer);
        await txn.addOffset(await this.positionMarker(last));
        if (!held()) return published; // the open transaction is aborted by the successor's first one
        await txn.commit();
        published += rows.length;
        await db.query('DELETE FROM metrics_outbox WHERE id <= $1', [String(last)]);
      }
    } catch (err) {
      // The producer may be half way through a transaction: the next flush starts a new one, whose first transaction
      // aborts what this one left open, and reconciles again.
      await this.reset();
      throw err;
    }
  }

  /** The open transaction, or a new one; the first of a producer fences its predecessors and reconciles the outbox. */
  private async transaction(db: SqlSession) {
    this.producer ??= this.kafka.producer({ idempotent: true, transactionalId: this.transactionalId, clientSuffix: 'publisher' });
    // A new producer asks for the id with no producer id and epoch of its own (-1, as Kafka's clients do): the client's
    // default (0, 0) reads as "producer 0 at epoch 0", which the broker refuses as fenced once the id has a producer.
    const txn = this.producer.transaction ?? (await this.producer.beginTransaction({ producerId: -1n, producerEpoch: -1 }));
    if (!this.reconciled) {
      const next = await this.publishedUpTo();
      if (next > 0n) {
        const r = await db.query<{ n: string }>('WITH d AS (DELETE FROM metrics_outbox WHERE id < $1 RETURNING 1) SELECT count(*) AS n FROM d', [String(next)]);
        if (Number(r.rows[0]?.n ?? 0) > 0) this.log.info({ records: Number(r.rows[0]!.n), upTo: String(next - 1n) }, 'outbox records a predecessor published, dropped');
      }
      this.reconciled = true;
    }
    return txn;
  }

  /** The outbox id after the last one published (0 before the first), as committed by the last committed transaction. */
  private async publishedUpTo(): Promise<bigint> {
    const admin = this.kafka.admin();
    try {
      const [group] = await admin.listConsumerGroupOffsets({
        groups: [{ groupId: this.groupId, topics: [{ name: this.config.kafka.topics.bar, partitionIndexes: [0] }] }],
        requireStable: true,
      });
      const offset = group?.topics.find((t) => t.name === this.config.kafka.topics.bar)?.partitions[0]?.committedOffset ?? -1n;
      return offset < 0n ? 0n : offset;
    } finally {
      await admin.close();
    }
  }

  /**
   * The "message" whose offset the transaction commits: partition 0 of the bars topic at the last outbox id (the client
   * commits offset + 1). Not a read position (nothing consumes with this group): the outbox's published mark. A
   * group without members takes commits with generation -1 and no member id, as Kafka's standalone commits do.
   */
  private async positionMarker(lastId: bigint): Promise<Message> {
    if (this.coordinatorId === undefined) {
      const admin = this.kafka.admin();
      try {
        const [c] = await admin.findCoordinator({ keyType: FindCoordinatorKeyTypes.GROUP, keys: [this.groupId] });
        this.coordinatorId = c!.nodeId;
      } finally {
        await admin.close();
      }
    }
    return {
      topic: this.config.kafka.topics.bar,
      partition: 0,
      offset: lastId,
      metadata: { consumer: { groupId: this.groupId, generationId: -1, memberId: '', coordinatorId: this.coordinatorId } },
    } as unknown as Message;
  }

  /** Drops the producer (a lost lease, a failed transaction, a stop). */
  async reset(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    this.reconciled = false;
    this.coordinatorId = undefined;
    try {
      await p?.close(true);
    } catch (err) {
      this.log.debug({ err: kafkaErrorText(err) }, 'closing the publisher failed');
    }
  }
}

/**
 * Sends alert_mail_outbox through the mailer: each mail marked `sending` (on the lease's session: proof the lease is
 * still held) right before it goes to SMTP, and `sent` once accepted. A successor sends what is `pending`, and again
 * what its predecessor left `sending` (it may or may not have reached the SMTP server), with the same Message-ID.
 */
export class MailOutbox {
  private queuedUpTo = 0n;

  constructor(
    private readonly mailer: AlertMailer,
    private readonly log: Logger,
    private readonly repeats: Counter,
    private readonly domain = hostname(),
  ) {}

  /** A new holder of the lease starts from the table. */
  reset(): void {
    this.queuedUpTo = 0n;
  }

  /** Hands the mails not yet handed over to the mailer; `session` runs one unit of work on the lease connection. */
  async pump(db: SqlSession, exclusive: <T>(work: () => Promise<T>) => Promise<T>, held: () => boolean): Promise<void> {
    const rows = (
      await db.query<{ id: string; mail: AlertMail; state: string }>(
        `SELECT id, mail, state FROM alert_mail_outbox WHERE state IN ('pending', 'sending') AND id > $1 ORDER BY id`,
        [String(this.queuedUpTo)],
      )
    ).rows;
    for (const r of rows) {
      this.queuedUpTo = BigInt(r.id);
      if (r.state === 'sending') {
        this.repeats.inc();
        this.log.warn({ id: r.id, key: r.mail.key, kind: r.mail.kind }, 'alert mail left sending by the previous worker: sent again with the same Message-ID (it may be a repeat)');
      }
      const mark = (sql: string) => exclusive(() => db.query(sql, [r.id]));
      this.mailer.send(r.mail, {
        messageId: `<tickwatch-alert-${r.id}@${this.domain}>`,
        before: async () => {
          if (!held()) return false;
          try {
            await mark(`UPDATE alert_mail_outbox SET state = 'sending', attempts = attempts + 1 WHERE id = $1`);
            return true;
          } catch (err) {
            this.log.warn({ err, id: r.id }, 'alert mail not sent: its state could not be recorded (lease lost?)');
            return false;
          }
        },
        sent: async () => void (await mark(`UPDATE alert_mail_outbox SET state = 'sent', sent_at = now() WHERE id = $1`)),
        failed: async () => void (await mark(`UPDATE alert_mail_outbox SET state = 'failed' WHERE id = $1`)),
      });
    }
  }
}
