// The one configuration of every worker: environment variables validated once by a single zod schema
// (common/config-env.ts), then handed down as a typed, nested value. Nothing else in the code reads process.env.
import { existsSync } from 'node:fs';
import { envSchema, type Env } from './config-env.ts';

export { DEFAULT_STREAM_TYPES, ENV_VARIABLES, envSchema, STREAM_TYPES, type Env, type StreamType } from './config-env.ts';

const DEFAULT_URLS = {
  spot: { ws: 'wss://stream.binance.com:9443', rest: 'https://api.binance.com' },
  usdm: { ws: 'wss://fstream.binance.com', rest: 'https://fapi.binance.com' },
} as const;

function shape(e: Env) {
  return {
    logLevel: e.LOG_LEVEL,
    kafka: {
      brokers: e.KAFKA_BROKERS,
      clientId: e.KAFKA_CLIENT_ID,
      partitions: e.KAFKA_PARTITIONS,
      replicationFactor: e.KAFKA_REPLICATION_FACTOR,
      /** TLS to the brokers; `caFile` replaces the system's CAs (a private CA or a self-signed broker). */
      ssl: e.KAFKA_SSL ? { caFile: e.KAFKA_SSL_CA_FILE } : undefined,
      sasl:
        e.KAFKA_SASL_MECHANISM === 'none'
          ? undefined
          : { mechanism: e.KAFKA_SASL_MECHANISM, username: e.KAFKA_SASL_USERNAME ?? '', password: e.KAFKA_SASL_PASSWORD ?? '' },
      topics: {
        trade: e.TOPIC_TRADES,
        aggTrade: e.TOPIC_AGG_TRADES,
        bookTicker: e.TOPIC_BOOK_TICKERS,
        gap: e.TOPIC_GAPS,
        deadLetter: e.TOPIC_DEAD_LETTER,
        bar: e.TOPIC_BARS,
        alert: e.TOPIC_ALERTS,
      },
    },
    database: {
      url: e.DATABASE_URL,
      poolSize: e.DATABASE_POOL_SIZE,
      timescaledb: e.TIMESCALEDB,
      tickChunkInterval: e.TICK_CHUNK_INTERVAL,
      tickCompressAfter: e.TICK_COMPRESS_AFTER,
      tickRetention: e.TICK_RETENTION,
      barCompressAfter: e.BAR_COMPRESS_AFTER,
      barRetention: e.BAR_RETENTION,
      reader: { user: e.GRAFANA_DB_USER, password: e.GRAFANA_DB_PASSWORD },
      /** The roles the workers log in as when their password is set (else DATABASE_URL's user); migrate creates them. */
      writer: { user: e.WRITER_DB_USER, password: e.WRITER_DB_PASSWORD },
      metrics: { user: e.METRICS_DB_USER, password: e.METRICS_DB_PASSWORD },
    },
    source: {
      exchange: 'binance' as const,
      market: e.BINANCE_MARKET,
      wsUrl: e.BINANCE_WS_URL ?? DEFAULT_URLS[e.BINANCE_MARKET].ws,
      restUrl: e.BINANCE_REST_URL ?? DEFAULT_URLS[e.BINANCE_MARKET].rest,
      /** The listed symbols; empty when SYMBOLS is a rule (the worker resolves it from the exchange's instruments). */
      symbols: Array.isArray(e.SYMBOLS) ? e.SYMBOLS.map((s) => s.toUpperCase()) : [],
      symbolRule: Array.isArray(e.SYMBOLS) ? undefined : e.SYMBOLS,
      symbolsRefreshMs: e.SYMBOLS_REFRESH_SECONDS * 1000,
      shard: e.SHARD,
      /** With a lease, the process is the active one of its shard only while it holds the lease. */
      lease: e.INGEST_LEASE ? { sessionTimeoutMs: e.INGEST_LEASE_SESSION_MS, prefix: e.INGEST_LEASE_PREFIX } : undefined,
      streamTypes: [...new Set(e.STREAM_TYPES)],
      streamsPerConnection: e.STREAMS_PER_CONNECTION,
      /** The watchdog and reconnect timing of every socket slot, Binance's and the venues'. */
      timing: { watchdogMs: e.WATCHDOG_SECONDS * 1000, reconnectMinMs: e.RECONNECT_MIN_MS, reconnectMaxMs: e.RECONNECT_MAX_MS },
      connectionMaxAgeMs: e.CONNECTION_MAX_AGE_HOURS * 3_600_000,
      maxFrameBytes: e.MAX_FRAME_BYTES,
      // A frame somewhat over the limit is dead-lettered with its reason; one far over it never gets buffered.
      socketMaxPayloadBytes: e.MAX_FRAME_BYTES * 4,
      deadLetterMaxBytes: e.DEAD_LETTER_MAX_BYTES,
      /** Records waiting for Kafka plus ticks held behind holes (held ticks are objects, so they count by number). */
      producerBufferMax: e.PRODUCER_BUFFER_MAX,
      /** Bytes of encoded records waiting for Kafka's acknowledgement: the producer buffer's own bound. */
      producerBufferMaxBytes: e.PRODUCER_BUFFER_MAX_BYTES,
      producerLanes: e.PRODUCER_LANES,
      restWeightPerMinute: e.REST_WEIGHT_PER_MINUTE,
    },
    writer: {
      batchSize: e.BATCH_SIZE,
      batchMaxBytes: e.BATCH_MAX_BYTES,
      batchMaxWaitMs: e.BATCH_MAX_WAIT_MS,
      groupPrefix: e.WRITER_GROUP_PREFIX,
      fetchMinBytes: e.WRITER_FETCH_MIN_BYTES,
      fetchMaxBytes: e.WRITER_FETCH_MAX_BYTES,
      sessionTimeoutMs: e.WRITER_SESSION_TIMEOUT_MS,
      retryMinMs: e.WRITER_RETRY_MIN_MS,
      retryMaxMs: e.WRITER_RETRY_MAX_MS,
      stuckRetries: e.WRITER_STUCK_RETRIES,
    },
    metrics: {
      shortBarSeconds: e.BAR_SHORT_SECONDS,
      allowedLatenessMs: e.ALLOWED_LATENESS_SECONDS * 1000,
      trailingWindowMinutes: e.TRAILING_WINDOW_MINUTES,
      rules: {
        volatilityZ: e.VOLATILITY_Z_THRESHOLD,
        volumeSpikeRatio: e.VOLUME_SPIKE_RATIO,
        spreadWarnRatio: e.SPREAD_WARN_RATIO,
        priceJumpBps: e.PRICE_JUMP_BPS,
        staleStreamMs: e.STALE_STREAM_SECONDS * 1000,
      },
      ruleOverrides: e.RULE_OVERRIDES,
      alertCooldownMs: e.ALERT_COOLDOWN_SECONDS * 1000,
      dashboardUrl: e.DASHBOARD_URL,
      /** A standby tries the lease, and the active worker checks it, this often. */
      leasePollMs: e.METRICS_LEASE_POLL_MS,
    },
    smtp: {
      host: e.SMTP_HOST,
      port: e.SMTP_PORT,
      secure: e.SMTP_SECURE,
      user: e.SMTP_USER,
      password: e.SMTP_PASSWORD,
      from: e.ALERT_EMAIL_FROM,
      to: e.ALERT_EMAIL_TO,
    },
    http: {
      host: e.HTTP_HOST,
      ports: { ingestion: e.INGESTION_HTTP_PORT, writer: e.WRITER_HTTP_PORT, metrics: e.METRICS_HTTP_PORT },
    },
    books: {
      topic: e.TOPIC_BOOKS,
      depth: e.BOOK_DEPTH_LEVELS,
      publishIntervalMs: e.BOOK_PUBLISH_INTERVAL_MS,
    },
    venues: {
      coinbase: {
        products: e.COINBASE_PRODUCTS.map((s) => s.toUpperCase()),
        wsUrl: e.COINBASE_WS_URL,
        /** Books from the authenticated level2 channel when set, else from level2_batch. Never logged. */
        credentials:
          e.COINBASE_API_KEY !== undefined && e.COINBASE_API_SECRET !== undefined && e.COINBASE_API_PASSPHRASE !== undefined
            ? { key: e.COINBASE_API_KEY, secret: e.COINBASE_API_SECRET, passphrase: e.COINBASE_API_PASSPHRASE }
            : undefined,
      },
      gemini: { symbols: e.GEMINI_SYMBOLS.map((s) => s.toUpperCase()), wsUrl: e.GEMINI_WS_URL },
      maxFrameBytes: e.VENUE_MAX_FRAME_BYTES,
    },
  };
}

export type Config = ReturnType<typeof shape>;

export class ConfigError extends Error {
  constructor(readonly problems: readonly { variable: string; message: string }[]) {
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p.variable}: ${p.message}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

/** Rules between variables, each problem named by the variable to change. */
function crossChecks(e: Env): { variable: string; message: string }[] {
  const problems: { variable: string; message: string }[] = [];
  const owner = decodeURIComponent(new URL(e.DATABASE_URL).username);
  const roles = [
    ['GRAFANA_DB_USER', e.GRAFANA_DB_USER, 'the dashboards get a read-only role of their own'],
    ['WRITER_DB_USER', e.WRITER_DB_USER, 'the writers get a role of their own'],
    ['METRICS_DB_USER', e.METRICS_DB_USER, 'the metrics worker gets a role of its own'],
  ] as const;
  roles.forEach(([variable, name, why], i) => {
    if (name === owner) problems.push({ variable, message: `must not be DATABASE_URL's user: ${why}` });
    const other = roles.slice(0, i).find(([, n]) => n === name);
    if (other) problems.push({ variable, message: `must differ from ${other[0]}: ${why}` });
  });
  if (e.RECONNECT_MIN_MS > e.RECONNECT_MAX_MS) problems.push({ variable: 'RECONNECT_MIN_MS', message: 'must not exceed RECONNECT_MAX_MS' });
  if (e.KAFKA_SSL_CA_FILE !== undefined && !e.KAFKA_SSL) problems.push({ variable: 'KAFKA_SSL_CA_FILE', message: 'is only used with KAFKA_SSL=true' });
  if (e.KAFKA_SSL_CA_FILE !== undefined && !existsSync(e.KAFKA_SSL_CA_FILE)) {
    problems.push({ variable: 'KAFKA_SSL_CA_FILE', message: `no such file: ${e.KAFKA_SSL_CA_FILE}` });
  }
  if (e.KAFKA_SASL_MECHANISM === 'none') {
    for (const v of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const) {
      if (e[v] !== undefined) problems.push({ variable: v, message: 'is set but KAFKA_SASL_MECHANISM is none' });
    }
  } else {
    for (const v of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const) {
      if (e[v] === undefined) problems.push({ variable: v, message: `is required with KAFKA_SASL_MECHANISM=${e.KAFKA_SASL_MECHANISM}` });
    }
    // PLAIN sends the password as it is: only inside TLS.
    if (e.KAFKA_SASL_MECHANISM === 'plain' && !e.KAFKA_SSL) {
      problems.push({ variable: 'KAFKA_SASL_MECHANISM', message: 'plain sends the password in clear text: set KAFKA_SSL=true (or use scram-sha-512)' });
    }
  }
  // Coinbase credentials: all three or none (a partial set would silently fall back to level2_batch).
  const coinbase = [
    ['COINBASE_API_KEY', e.COINBASE_API_KEY],
    ['COINBASE_API_SECRET', e.COINBASE_API_SECRET],
    ['COINBASE_API_PASSPHRASE', e.COINBASE_API_PASSPHRASE],
  ] as const;
  const given = coinbase.filter(([, v]) => v !== undefined).map(([k]) => k);
  if (given.length > 0 && given.length < coinbase.length) {
    for (const [variable, v] of coinbase) {
      if (v === undefined) problems.push({ variable, message: `is required with ${given.join(' and ')}: the authenticated level2 channel needs key, secret and passphrase (set none of them for level2_batch)` });
    }
  }
  return problems;
}

/** Validates the environment; throws one ConfigError that names every bad variable. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const result = envSchema.safeParse(env);
  const problems = result.success ? [] : result.error.issues.map((i) => ({ variable: String(i.path[0] ?? '(environment)'), message: i.message }));
  if (result.success) problems.push(...crossChecks(result.data));
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  return shape(result.data);
}

/** Start-up entry: on a bad environment print the one message and exit 2, with no stack trace. */
export function loadConfigOrExit(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
