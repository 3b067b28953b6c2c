// The metrics worker process: the engine (metrics/engine.ts) wired to PostgreSQL, Kafka, SMTP and HTTP, active only
// while it holds the lease (metrics/lease.ts), a standby otherwise.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { backoffDelay, retryUntilReady } from '../common/backoff.ts';
import type { Config } from '../common/config.ts';
import type { SqlSession } from '../common/db.ts';
import { startHttpEndpoint } from '../common/http.ts';
import { createKafka, createTopics, kafkaMessage, type KafkaProducer } from '../common/kafka.ts';
import type { Worker } from '../common/lifecycle.ts';
import type { Logger } from '../common/log.ts';
import { recordHeaders, tickKey } from '../common/records.ts';
import { AlertMailer } from './alerts-mail.ts';
import { MetricsEngine, type MetricsSink } from './engine.ts';
import { Lease, LeaseLostError } from './lease.ts';
import { MailOutbox, OutboxPublisher, outboxSink, queueMail } from './outbox.ts';

/** Publishes bars and anomalies as JSON records keyed by exchange:market:symbol. */
export function kafkaSink(producer: KafkaProducer, topics: Config['kafka']['topics']): MetricsSink {
  return {
    publishBars: async (bars) => {
      await producer.send({ messages: bars.map((b) => kafkaMessage(topics.bar, { key: tickKey(b), value: JSON.stringify(b), headers: recordHeaders('bar') })) });
    },
    publishAnomalies: async (events) => {
      await producer.send({ messages: events.map((e) => kafkaMessage(topics.alert, { key: tickKey(e), value: JSON.stringify(e), headers: recordHeaders('anomaly') })) });
    },
  };
}

export type MetricsRole = 'standby' | 'active';

/**
 * Wires the engine to PostgreSQL, Kafka, SMTP and HTTP and runs it until stopped. Any number of these may run against
 * one database: the one holding the lease (metrics/lease.ts) is active, the others are standbys that try it every
 * METRICS_LEASE_POLL_MS. The active one works on the lease's connection only; it publishes and mails through the
 * outboxes (metrics/outbox.ts), and the moment its lease is lost it stops and becomes a standby.
 */
export async function startMetricsWorker(
  config: Config,
  log: Logger,
  opts: { httpPort?: number; onRole?: (role: MetricsRole, reason: string) => void } = {},
): Promise<Worker & { engine: MetricsEngine; httpPort: number; readonly role: MetricsRole }> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const kafka = createKafka(config, log, 'metrics');
  // Started before the broker or the database is up (or during a restart of either), the worker waits for them.
  const startupRetry = { minMs: 500, maxMs: 10_000, log };
  const topics = [config.kafka.topics.bar, config.kafka.topics.alert];
  await retryUntilReady('creating the bar and alert topics', () => createTopics(kafka, topics, config), startupRetry);
  const leaderGauge = new Gauge({ name: 'tickwatch_metrics_leader', help: 'Whether this metrics worker holds the lease and acts (1) or is a standby (0)', registers: [registry] });
  const takeovers = new Counter({ name: 'tickwatch_metrics_takeovers_total', help: 'Times this metrics worker took the lease and became active', registers: [registry] });
  const leaseLost = new Counter({ name: 'tickwatch_metrics_lease_lost_total', help: 'Times this metrics worker lost the lease while active', registers: [registry] });
  const repeats = new Counter({ name: 'tickwatch_alert_mails_resent_total', help: 'Alert mails a predecessor left in the SMTP conversation, sent again (possibly a repeat)', registers: [registry] });
  const mailer = new AlertMailer({ smtp: config.smtp, dashboardUrl: config.metrics.dashboardUrl, log: log.child({ component: 'mail' }), registry });

  let lease = new Lease(config, log);
  // The engine's session is always the current lease's connection; once that lease is lost, every call fails.
  const db: SqlSession = { query: (sql, params) => lease.session.query(sql, params), exec: (sql) => lease.session.exec(sql) };
  const engine = new MetricsEngine({ db, config, log, sink: outboxSink(db, config.kafka.topics), mail: (m) => queueMail(db, m), registry });
  const publisher = new OutboxPublisher(kafka, config, log);
  const mails = new MailOutbox(mailer, log, repeats);
  const held = () => lease.held;

  let role: MetricsRole = 'standby';
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<unknown> = Promise.resolve();
  let failures = 0;
  let leaseError: string | undefined;
  let lastAttemptAtMs = Date.now();
  /** When this worker last lost the lease (its connection killed, or found dead). */
  let stoodDownAtMs = -Infinity;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  leaderGauge.set(0);

  const become = (next: MetricsRole, reason: string) => {
    role = next;
    leaderGauge.set(next === 'active' ? 1 : 0);
    opts.onRole?.(next, reason);
  };

  /** The lease is gone: nothing more is refreshed, published or mailed by this worker (its queue is its successor's). */
  const standDown = (reason: string) => {
    if (role !== 'active') return;
    become('standby', reason);
    if (stopped) return; // a stop gives up the lease itself, after its mails' grace time
    stoodDownAtMs = Date.now();
    leaseLost.inc();
    const dropped = mailer.abandon();
    log.warn({ reason, mailsLeftToSuccessor: dropped }, 'metrics worker is a standby again');
    void publisher.reset();
  };

  /** Took the lease: load what the predecessor stored, then act. */
  const takeOver = async (l: Lease) => {
    void l.lost.then((reason) => standDown(reason));
    try {
      await l.exclusive(() => engine.start());
    } catch (err) {
      log.error({ err }, 'taking over failed: giving the lease up');
      await l.release();
      return;
    }
    if (!l.held) return;
    failures = 0;
    mails.reset();
    takeovers.inc();
    become('active', 'lease taken');
    log.info({ leasePid: l.pid }, 'metrics lease taken: active');
  };

  const activeStep = async () => {
    await lease.exclusive(() => engine.step()).then((r) => {
      if (r.refreshedMinutes.length > 0) log.debug({ minutes: r.refreshedMinutes.length, bars: r.barsPublished, firings: r.firings, refreshMs: Math.round(r.refreshMs) }, 'refreshed');
    });
    await publisher.flush(db, held);
    await lease.exclusive(() => mails.pump(db, (w) => lease.exclusive(w), held));
  };

  const loop = () => {
    if (stopped) return;
    if (role === 'active' && !lease.held) standDown('lease lost');
    if (role === 'standby' && (lease.held || lease.lostOrReleased)) lease = new Lease(config, log);
    const l = lease;
    // A worker that just lost the lease leaves the next two polls to the other standbys: whatever cost it the lease
    // (a killed or broken connection) should not win it straight back, and which standby takes over is then certain.
    const yielding = Date.now() - stoodDownAtMs < 2 * config.metrics.leasePollMs;
    const attempt = () => (yielding ? Promise.resolve() : l.tryAcquire().then((got) => (got ? takeOver(l) : undefined)));
    current = (role === 'active' ? activeStep() : attempt()).then(
      () => {
        if (role === 'active') failures = 0;
        else leaseError = undefined;
        lastAttemptAtMs = Date.now();
      },
      (err: unknown) => {
        lastAttemptAtMs = Date.now();
        if (role === 'standby' || !l.held) {
          leaseError = (err as Error).message;
          if (!(err instanceof LeaseLostError)) log.warn({ err }, 'metrics lease attempt failed: retrying');
          return;
        }
        failures += 1;
        log.error({ err, failures }, 'refresh pass failed: retrying');
      },
    );
    void current.then(() => {
      if (stopped) return;
      // Active: wake at the next close plus lateness, at least every lease poll (each pass is a round trip on the
      // lease's connection: the proof it is still held). Standby: try the lease every poll.
      const poll = config.metrics.leasePollMs;
      const wait =
        role === 'standby' ? poll : failures > 0 ? Math.min(poll, backoffDelay(failures - 1, 1_000, 30_000, 0.2)) : Math.max(20, Math.min(poll, engine.nextWakeMs() - Date.now()));
      timer = setTimeout(loop, wait);
    });
  };
  const http = await startHttpEndpoint({
    host: config.http.host,
    port: opts.httpPort ?? config.http.ports.metrics,
    registry,
    health: () =>
      role === 'active'
        ? { ok: !stopped && failures < 5 && Date.now() - engine.lastStepAtMs < 60_000, role, lastStepAt: new Date(engine.lastStepAtMs).toISOString(), failures }
        : // A standby is ready when it can reach the database to try the lease.
          { ok: !stopped && leaseError === undefined && Date.now() - lastAttemptAtMs < 10 * config.metrics.leasePollMs + 10_000, role, ...(leaseError ? { leaseError } : {}) },
  });
  loop();
  log.info({ port: http.port, shortBarSeconds: config.metrics.shortBarSeconds, allowedLatenessMs: config.metrics.allowedLatenessMs, leasePollMs: config.metrics.leasePollMs }, 'metrics worker running');
  return {
    engine,
    httpPort: http.port,
    get role() {
      return role;
    },
    done,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await current;
      // Queued mails are given their grace time while the lease still lets them be recorded; what is left stays in
      // the outbox for the next worker.
      await mailer.close();
      await publisher.reset();
      await lease.release();
      await http.close();
      resolveDone();
    },
  };
}
