// The tick writers of one process: a Kafka consumer group member per table family (tick-writer.ts), sharing one
// dead-letter producer, started and stopped together; their health is what /healthz reports.
import type { Config } from '../common/config.ts';
import type { KafkaClients } from '../common/kafka.ts';
import type { Logger } from '../common/log.ts';
import { DeadLetterSink } from './dead-letters.ts';
import { FAMILIES, type Family } from './families.ts';
import type { WriterMetrics } from './metrics.ts';
import { TickWriter, type WriterHealth } from './tick-writer.ts';

export interface WriterSet {
  readonly writers: readonly TickWriter[];
  readonly done: Promise<void>;
  stop(): Promise<void>;
  health(): { ok: boolean; writers: WriterHealth[] };
}

/** Starts one group member per family, sharing one dead-letter producer. */
export async function startWriters(opts: {
  config: Config;
  log: Logger;
  kafka: KafkaClients;
  metrics: WriterMetrics;
  families?: readonly Family[];
  memberName?: string;
}): Promise<WriterSet> {
  const { config, log, kafka, metrics } = opts;
  // Idempotent, acks = all; dead letters are few, so the client's own retries are enough.
  const producer = kafka.producer({ clientSuffix: 'dead-letters', retries: 8 });
  const deadLetters = new DeadLetterSink(producer, config.kafka.topics.deadLetter, config.source.deadLetterMaxBytes);
  const writers = (opts.families ?? FAMILIES).map(
    (family) => new TickWriter({ config, log, kafka, family, metrics, deadLetters, memberName: opts.memberName }),
  );
  try {
    for (const w of writers) await w.start();
  } catch (err) {
    await Promise.allSettled(writers.map((w) => w.stop()));
    await producer.close();
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    writers,
    done: Promise.all(writers.map((w) => w.done)).then(() => undefined),
    stop: () =>
      (stopped ??= (async () => {
        const results = await Promise.allSettled(writers.map((w) => w.stop()));
        await producer.close();
        const failed = results.find((r) => r.status === 'rejected');
        if (failed) throw (failed as PromiseRejectedResult).reason;
      })()),
    health: () => {
      const hs = writers.map((w) => w.health());
      return { ok: hs.every((h) => h.ok), writers: hs };
    },
  };
}
