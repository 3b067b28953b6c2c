// The writer's dead letters: records that cannot become rows (undecodable, invalid, or refused by the database), sent
// to the dead-letter topic with their topic, partition, offset and reason so they can be found again.
import { kafkaMessage, type KafkaProducer } from '../common/kafka.ts';
import { encodeRecord, recordHeaders, type DeadLetter } from '../common/records.ts';
import { nowUs } from '../common/time.ts';

/** A record that cannot become a row, with the coordinates needed to find it again. */
export interface PoisonRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly reason: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/** Sends poison records to the dead-letter topic (at least once: a crash before the batch commits sends them again). */
export class DeadLetterSink {
  constructor(
    private readonly producer: KafkaProducer,
    private readonly topic: string,
    private readonly maxBytes: number,
  ) {}

  async send(records: readonly PoisonRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.producer.send({
      messages: records.map((r) => {
        const raw = r.value ?? Buffer.alloc(0);
        const truncated = raw.length > this.maxBytes;
        const letter: DeadLetter = {
          type: 'deadLetter',
          source: 'writer',
          stream: r.topic,
          reason: r.reason,
          raw: raw.subarray(0, this.maxBytes).toString('utf8'),
          truncated,
          receiveTimeUs: nowUs(),
          topic: r.topic,
          partition: r.partition,
          offset: r.offset,
        };
        return kafkaMessage(this.topic, { key: r.key, value: encodeRecord(letter), headers: recordHeaders('deadLetter') });
      }),
    });
  }
}
