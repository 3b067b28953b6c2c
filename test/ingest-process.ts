// `tickwatch ingest` as a child process for the tests that kill it: exactly the environment given (no config variable
// of the test's own environment leaks in), an HTTP port of its own, and its /healthz and /metrics read from outside.
import { spawn, type ChildProcess } from 'node:child_process';
import { ENV_VARIABLES, type Config } from '../common/config.ts';
import { TICKWATCH_ARGS } from '../common/paths.ts';

export function spawnIngest(env: Record<string, string>): ChildProcess {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !(ENV_VARIABLES as string[]).includes(k)));
  return spawn(process.execPath, [...TICKWATCH_ARGS, 'ingest'], { env: { ...base, ...env }, stdio: ['ignore', process.env.TEST_CHILD_LOGS ? 'inherit' : 'ignore', 'inherit'] });
}

/** The child's /healthz, or undefined while it serves none (starting); with a lease, `role` is standby or active. */
export async function health(port: number): Promise<Record<string, unknown> | undefined> {
  try {
    return (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** `tickwatch_ingestion_records_produced_total` of one topic, from the child's /metrics. */
export async function producedTo(port: number, topic: string): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`tickwatch_ingestion_records_produced_total{topic="${topic}"}`));
    return line ? Number(line.split(' ').at(-1)) : 0;
  } catch {
    return 0;
  }
}

/** The variables a child needs to run against the test's stand-in, Kafka and topics. */
export function ingestEnv(config: Config, server: { wsUrl: string; restUrl: string }, port: number): Record<string, string> {
  const t = config.kafka.topics;
  return {
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    KAFKA_BROKERS: config.kafka.brokers.join(','),
    BINANCE_WS_URL: server.wsUrl,
    BINANCE_REST_URL: server.restUrl,
    TOPIC_TRADES: t.trade,
    TOPIC_AGG_TRADES: t.aggTrade,
    TOPIC_BOOK_TICKERS: t.bookTicker,
    TOPIC_GAPS: t.gap,
    TOPIC_DEAD_LETTER: t.deadLetter,
    KAFKA_PARTITIONS: '3',
    RECONNECT_MIN_MS: '50',
    HTTP_HOST: '127.0.0.1',
    INGESTION_HTTP_PORT: String(port),
  };
}

/** SIGTERM to a child still running, and its exit awaited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}
