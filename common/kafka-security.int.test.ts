// Kafka as a managed cluster serves it: TLS and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) on the test broker's
// SASL_SSL listener (scripts/services.sh: a self-signed certificate, its PEM as KAFKA_SSL_CA_FILE). Every client the
// product makes goes through createKafka, so a round trip per mechanism, a worker run end to end and doctor cover them;
// a wrong password and an unknown CA must be refused, not ignored.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from './config.ts';
import { createKafka, ensureTopics, kafkaErrorText, kafkaMessage, topicOffsets } from './kafka.ts';
import { readRanges } from './kafka-read.ts';
import { capturesMissing, CAPTURE_DIR } from '../test/capture-ticks.ts';
import { testLog, uniqueName } from '../test/services.ts';
import { tickwatch } from '../test/tickwatch.ts';

const tls = {
  brokers: process.env.KAFKA_TLS_BROKERS,
  caFile: process.env.KAFKA_TLS_CA_FILE,
  username: process.env.KAFKA_TLS_USERNAME,
  password: process.env.KAFKA_TLS_PASSWORD,
};
function tlsMissing(): string | undefined {
  if (tls.brokers && tls.caFile && tls.username && tls.password) return undefined;
  const msg = "needs the test broker's SASL_SSL listener (KAFKA_TLS_BROKERS, _CA_FILE, _USERNAME, _PASSWORD from scripts/services.sh env)";
  if (process.env.CI === 'true') throw new Error(`CI=true but ${msg}`);
  console.warn(`[skipped] ${msg}`);
  return msg;
}
const skip = tlsMissing() ?? capturesMissing();

type Mechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';
function securityEnv(mechanism: Mechanism, password = tls.password!): Record<string, string> {
  return {
    KAFKA_BROKERS: tls.brokers!,
    KAFKA_SSL: 'true',
    KAFKA_SSL_CA_FILE: tls.caFile!,
    KAFKA_SASL_MECHANISM: mechanism,
    KAFKA_SASL_USERNAME: tls.username!,
    KAFKA_SASL_PASSWORD: password,
  };
}
const configFor = (env: Record<string, string>): Config => loadConfig({ LOG_LEVEL: 'warn', ...env });

async function readBack(config: Config, topic: string, expected: number): Promise<string[]> {
  const kafka = createKafka(config, testLog, 'tls-read');
  const admin = kafka.admin();
  const ranges = (await topicOffsets(admin, topic)).map((p) => ({ topic, partition: p.partition, from: p.low, to: p.high }));
  await admin.close();
  const values: string[] = [];
  await readRanges(kafka, ranges, testLog, (_topic, _partition, message) => void values.push(message.value!.toString()), { timeoutMs: 60_000 });
  if (values.length !== expected) throw new Error(`read ${values.length} of ${expected} records`);
  return values;
}

/** The admin's first request (the client connects lazily): its failure, with the client's nested errors spelled out. */
async function firstRequest(admin: { listTopics(): Promise<string[]> }): Promise<void> {
  try {
    await admin.listTopics();
  } catch (err) {
    throw new Error(kafkaErrorText(err));
  }
}

describe.skipIf(skip)('Kafka over TLS with SASL', () => {
  const topics: string[] = [];
  afterAll(async () => {
    const admin = createKafka(configFor(securityEnv('scram-sha-512')), testLog, 'tls-cleanup').admin();
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.close();
  });

  for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512'] as const) {
    it(`${mechanism}: creates a topic, produces idempotently with acks=all and consumes every record back`, async () => {
      const config = configFor(securityEnv(mechanism));
      const kafka = createKafka(config, testLog, `tls-${mechanism}`);
      const topic = uniqueName(`tls-${mechanism}`);
      topics.push(topic);
      const admin = kafka.admin();
      expect(await ensureTopics(admin, [topic], config)).toEqual([topic]);
      await admin.close();
      const producer = kafka.producer({ idempotent: true });
      const sent = Array.from({ length: 500 }, (_, n) => JSON.stringify({ n }));
      await producer.send({ messages: sent.map((value, n) => kafkaMessage(topic, { key: `k${n % 7}`, value })) });
      await producer.close();
      expect((await readBack(config, topic, sent.length)).sort()).toEqual([...sent].sort());
    });
  }

  it('a wrong password is refused with an authentication error', async () => {
    for (const mechanism of ['plain', 'scram-sha-512'] as const) {
      const admin = createKafka(configFor(securityEnv(mechanism, 'not-the-password')), testLog, 'tls-wrong').admin();
      await expect(firstRequest(admin)).rejects.toThrow(/authentication failed|SASL/i);
      await admin.close().catch(() => undefined);
    }
  });

  it("without the broker's CA the self-signed certificate is refused (the check is never off)", async () => {
    const { KAFKA_SSL_CA_FILE: _unused, ...env } = securityEnv('scram-sha-512');
    const admin = createKafka(configFor(env), testLog, 'tls-noca').admin();
    await expect(firstRequest(admin)).rejects.toThrow(/self[- ]signed|certificate/i);
    await admin.close().catch(() => undefined);
  });

  it('the ingestion worker replays a capture through SCRAM-SHA-512 over TLS, and doctor says Kafka OK', async () => {
    // The first 2,000 lines of a recorded capture (279 trades), in a temporary file.
    const dir = mkdtempSync(join(tmpdir(), 'tickwatch-tls-'));
    try {
      const lines = gunzipSync(readFileSync(`${CAPTURE_DIR}/binance-spot/ethusdt_20240808.gz`)).toString('utf8').split('\n').slice(0, 2_000);
      const trades = lines.filter((l) => l.includes('"stream":"ethusdt@trade"')).length;
      const file = join(dir, 'ethusdt.capture');
      writeFileSync(file, `${lines.join('\n')}\n`);
      const p = uniqueName('tls-replay');
      const names = { TOPIC_TRADES: `${p}.trades`, TOPIC_AGG_TRADES: `${p}.aggtrades`, TOPIC_BOOK_TICKERS: `${p}.booktickers`, TOPIC_GAPS: `${p}.gaps`, TOPIC_DEAD_LETTER: `${p}.deadletter` };
      topics.push(...Object.values(names));
      const env = { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...securityEnv('scram-sha-512'), ...names };
      const replay = await run(['replay', '--speed', '0', file], env);
      expect(replay.code, replay.out).toBe(0);
      expect(replay.out).toMatch(new RegExp(`${p}\\.trades\\s+${trades}\\b`));
      const stored = await readBack(configFor(securityEnv('plain')), names.TOPIC_TRADES, trades);
      expect(new Set(stored.map((v) => (JSON.parse(v) as { tradeId: number }).tradeId)).size).toBe(trades);

      const doctor = await run(['doctor'], env);
      expect(doctor.out).toMatch(/^kafka\s+OK\s+/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  const t = tickwatch(args, env);
  return { code: await t.exited, out: t.output() };
}
