// Record batches in Kafka's wire format (v2) for tests, written by the client's own encoder: what a Fetch response's
// records field holds.
import { createRecordsBatch, IS_CONTROL, IS_TRANSACTIONAL, type CompressionAlgorithmValue } from '@platformatic/kafka';
import { BATCH_AT } from './kafka-batch.ts';
import type { FetchedMessage } from './kafka-records.ts';

export interface BatchSpec {
  readonly first: bigint;
  readonly records: readonly { readonly key?: Buffer | null; readonly value: Buffer | null; readonly headers?: Record<string, Buffer> }[];
  readonly producerId?: bigint;
  readonly transactional?: boolean;
  /** A transaction marker (its one record's content does not matter here). */
  readonly control?: boolean;
  readonly compression?: CompressionAlgorithmValue;
}

/** The batches, one after the other, each with its base offset. */
export function recordBatches(specs: readonly BatchSpec[]): Buffer {
  return Buffer.concat(
    specs.map((s) => {
      const messages = s.records.map((r) => ({
        topic: 't',
        value: r.value as Buffer,
        ...(r.key ? { key: r.key } : {}),
        ...(r.headers ? { headers: new Map(Object.entries(r.headers).map(([k, v]) => [Buffer.from(k), v])) } : {}),
      }));
      const bytes = Buffer.from(createRecordsBatch(messages, { compression: s.compression ?? 'none', producerId: s.producerId ?? -1n }).buffer);
      bytes.writeBigInt64BE(s.first, 0);
      // Attributes are not covered by anything read here (the CRC is not checked on fetch).
      bytes.writeInt16BE(bytes.readInt16BE(BATCH_AT.attributes) | (s.transactional || s.control ? IS_TRANSACTIONAL : 0) | (s.control ? IS_CONTROL : 0), BATCH_AT.attributes);
      return bytes;
    }),
  );
}

/** Records with consecutive offsets, as one batch. */
export function batchOfMessages(messages: readonly FetchedMessage[], compression: CompressionAlgorithmValue = 'none'): Buffer {
  return recordBatches([{ first: BigInt(messages[0]!.offset), records: messages, compression }]);
}
