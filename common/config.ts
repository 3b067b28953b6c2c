// The one configuration of every worker: environment variables validated once by a single zod schema,
// then handed down as a typed, nested value. Nothing else in the code reads process.env.
import { existsSync } from 'node:fs';
import { z } from 'zod';

const csv = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((s) => s.split(',').map((x) => x.trim()).filter((x) => x.length > 0))
    .pipe(z.array(z.string()).min(1, 'must list at least one value'));

// Numbers arrive as text: an empty variable is a mistake (it would read as 0), not a request for the default.
const numberText = (fallback: number) => z.string().min(1, 'must not be empty').default(String(fallback));

const int = (fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER) =>
  numberText(fallback).pipe(
    z.coerce
      .number<string>({ error: 'must be a number' })
      .int('must be an integer')
      .min(min, `must be >= ${min}`)
      .max(max, `must be <= ${max}`),
  );

/** Seconds and ratios; the default bound keeps every duration a valid timer (setTimeout takes at most ~24.8 days). */
const num = (fallback: number, min = 0, max = 2_000_000) =>
  numberText(fallback).pipe(
    z.coerce
      .number<string>({ error: 'must be a number' })
      .refine(Number.isFinite, 'must be finite')
      .pipe(z.number().min(min, `must be >= ${min}`).max(max, `must be <= ${max}`)),
  );

const port = (fallback: number) => int(fallback, 0, 65535);

const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
    .default(fallback ? 'true' : 'false')
    .transform((s) => s === 'true' || s === '1' || s === 'yes');

/** A non-empty string: an empty variable is a mistake, not a request for the default. */
const nonEmpty = () => z.string().min(1, 'must not be empty');
const text = (fallback: string) => nonEmpty().default(fallback);
const roleName = (fallback: string) => nonEmpty().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case role name').default(fallback);
const optionalText = () => z.string().optional().transform((s) => (s === undefined || s === '' ? undefined : s));

const pgInterval = (fallback: string) =>
  nonEmpty()
    .regex(/^\d+\s*(second|minute|hour|day|week|month|year)s?$/i, "must look like '7 days' or '12 hours'")
    .default(fallback);
/** An interval, or 'none' for "no such policy" (kept forever, never compressed). */
const policyInterval = (fallback: string) =>
  nonEmpty()
    .regex(/^(\d+\s*(second|minute|hour|day|week|month|year)s?|none)$/i, "must look like '7 days' or '12 hours', or be none")
    .transform((s) => s.toLowerCase() === 'none' ? 'none' : s)
    .default(fallback);

const url = (fallback: string, protocols: readonly string[]) =>
  nonEmpty()
    .refine((s) => {
      try {
        return protocols.includes(new URL(s).protocol);
      } catch {
        return false;
      }
    }, `must be a URL (${protocols.join(' or ')})`)
    .default(fallback);

/** Per-symbol anomaly rule settings as JSON, e.g. {"BTCUSDT":{"volumeSpikeRatio":8}}. */
const ruleOverrides = () =>
  z
    .string()
    .default('{}')
    .transform((s, ctx) => {
      try {
        return JSON.parse(s === '' ? '{}' : s) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be JSON like {"BTCUSDT":{"volumeSpikeRatio":8}}' });
        return z.NEVER;
      }
    })
    .pipe(
      z.record(
        z.string().regex(/^[A-Z0-9]{2,20}$/, 'keys must be upper-case symbols like BTCUSDT'),
        z
          .object({
            volatilityZ: z.number().min(0),
            volumeSpikeRatio: z.number().min(1),
            spreadWarnRatio: z.number().min(1),
            priceJumpBps: z.number().min(0),
            staleStreamMs: z.number().min(1000),
          })
          .partial()
          .strict(),
      ),
    );

/** A comma-separated list that may be empty (the venue is then off). */
const venueSymbols = (pattern: RegExp, message: string) =>
  z
    .string()
    .default('')
    .transform((s) => s.split(',').map((x) => x.trim()).filter((x) => x.length > 0))
    .pipe(z.array(z.string().regex(pattern, message)));

export const STREAM_TYPES = ['trade', 'aggTrade', 'bookTicker', 'depth'] as const;
export type StreamType = (typeof STREAM_TYPES)[number];
/** The tick streams subscribed by default (3 per symbol); `depth` (order books) is opt-in. */
export const DEFAULT_STREAM_TYPES: readonly StreamType[] = ['trade', 'aggTrade', 'bookTicker'];

/** Every variable the stack reads, with its default. `.env.example` documents the same list (a test keeps them equal). */
export const envSchema = z.object({
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),

  // Kafka
  KAFKA_BROKERS: csv('127.0.0.1:9092').pipe(
    z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'each broker must be host:port')),
  ),
  KAFKA_CLIENT_ID: text('tickwatch'),
  KAFKA_PARTITIONS: int(3, 1, 1000),
  KAFKA_REPLICATION_FACTOR: int(1, 1, 10),
  // A managed cluster: TLS (the system's CAs, or KAFKA_SSL_CA_FILE for a private one) and SASL.
  KAFKA_SSL: bool(false),
  KAFKA_SSL_CA_FILE: optionalText(),
  KAFKA_SASL_MECHANISM: z
    .enum(['none', 'plain', 'scram-sha-256', 'scram-sha-512'], { error: 'must be none, plain, scram-sha-256 or scram-sha-512' })
    .default('none'),
  KAFKA_SASL_USERNAME: optionalText(),
  KAFKA_SASL_PASSWORD: optionalText(),
  TOPIC_TRADES: text('binance.trades'),
  TOPIC_AGG_TRADES: text('binance.aggtrades'),
  TOPIC_BOOK_TICKERS: text('binance.booktickers'),
  TOPIC_GAPS: text('binance.gaps'),
  TOPIC_DEAD_LETTER: text('tickwatch.deadletter'),
  TOPIC_BARS: text('tickwatch.bars'),
  TOPIC_ALERTS: text('tickwatch.alerts'),

  // PostgreSQL / TimescaleDB
  DATABASE_URL: url('postgres://tickwatch:tickwatch@127.0.0.1:55432/tickwatch', ['postgres:', 'postgresql:']),
  DATABASE_POOL_SIZE: int(4, 1, 100),
  TIMESCALEDB: z.enum(['auto', 'on', 'off'], { error: 'must be auto, on or off' }).default('auto'),
  TICK_CHUNK_INTERVAL: pgInterval('1 day'),
  TICK_COMPRESS_AFTER: policyInterval('2 days'),
  TICK_RETENTION: policyInterval('90 days'),
  BAR_COMPRESS_AFTER: policyInterval('7 days'),
  BAR_RETENTION: policyInterval('5 years'),
  // The read-only role Grafana logs in as; migrate creates it when the password is set.
  GRAFANA_DB_USER: roleName('tickwatch_grafana'),
  GRAFANA_DB_PASSWORD: optionalText(),
  WRITER_DB_USER: roleName('tickwatch_writer'),
  WRITER_DB_PASSWORD: optionalText(),
  METRICS_DB_USER: roleName('tickwatch_metrics'),
  METRICS_DB_PASSWORD: optionalText(),

  // Exchange source (ingestion)
  BINANCE_MARKET: z.enum(['spot', 'usdm'], { error: 'must be spot or usdm' }).default('spot'),
  BINANCE_WS_URL: optionalText(),
  BINANCE_REST_URL: optionalText(),
  SYMBOLS: csv('BTCUSDT,ETHUSDT,BNBUSDT').pipe(
    z.array(z.string().regex(/^[A-Za-z0-9]{2,20}$/, 'each symbol must be letters and digits, like BTCUSDT')),
  ),
  STREAM_TYPES: csv(DEFAULT_STREAM_TYPES.join(',')).pipe(z.array(z.enum(STREAM_TYPES, { error: `each must be one of ${STREAM_TYPES.join(', ')}` }))),
  STREAMS_PER_CONNECTION: int(1024, 1, 1024),
  WATCHDOG_SECONDS: num(30, 1, 3_600),
  RECONNECT_MIN_MS: int(500, 1),
  RECONNECT_MAX_MS: int(30_000, 1),
  CONNECTION_MAX_AGE_HOURS: num(23.5, 0.001, 24),
  MAX_FRAME_BYTES: int(65_536, 256, 16 * 1024 * 1024),
  DEAD_LETTER_MAX_BYTES: int(8_192, 64),
  PRODUCER_BUFFER_MAX: int(20_000, 1),
  PRODUCER_LANES: int(2, 1, 16),
  REST_WEIGHT_PER_MINUTE: int(3_000, 1, 6_000),

  // Writers
  BATCH_SIZE: int(20_000, 1, 1_000_000),
  BATCH_MAX_BYTES: int(8 * 1024 * 1024, 1024),
  BATCH_MAX_WAIT_MS: int(250, 1),
  WRITER_GROUP_PREFIX: text('tickwatch-writer'),
  WRITER_FETCH_MIN_BYTES: int(1024 * 1024, 1),
  // 512 KiB of gzip batches (~23,000 ticks) per fetch of one family: measured by bench:write (peak RSS near 300 MB)
  WRITER_FETCH_MAX_BYTES: int(512 * 1024, 1024),
  WRITER_SESSION_TIMEOUT_MS: int(30_000, 1_000),
  WRITER_RETRY_MIN_MS: int(200, 1),
  WRITER_RETRY_MAX_MS: int(10_000, 1),
  WRITER_STUCK_RETRIES: int(10, 1, 1_000),

  // Metrics worker and alerts
  BAR_SHORT_SECONDS: int(10, 1, 59),
  ALLOWED_LATENESS_SECONDS: num(2, 0, 3_600),
  VOLATILITY_Z_THRESHOLD: num(4, 0),
  VOLUME_SPIKE_RATIO: num(5, 1),
  SPREAD_WARN_RATIO: num(3, 1),
  PRICE_JUMP_BPS: num(50, 0),
  TRAILING_WINDOW_MINUTES: int(60, 2),
  STALE_STREAM_SECONDS: num(60, 1),
  ALERT_COOLDOWN_SECONDS: num(300, 0),
  RULE_OVERRIDES: ruleOverrides(),
  DASHBOARD_URL: url('http://localhost:3000', ['http:', 'https:']),

  // SMTP (alert mail)
  SMTP_HOST: text('127.0.0.1'),
  SMTP_PORT: port(1025),
  SMTP_SECURE: bool(false),
  SMTP_USER: optionalText(),
  SMTP_PASSWORD: optionalText(),
  ALERT_EMAIL_FROM: z.email('must be an email address').default('tickwatch@localhost.localdomain'),
  ALERT_EMAIL_TO: csv('desk@localhost.localdomain').pipe(z.array(z.email('each must be an email address'))),

  // HTTP (/metrics and /healthz) of each worker
  // Loopback by default: /metrics and /healthz are for the local Prometheus; compose sets 0.0.0.0 in its network.
  HTTP_HOST: text('127.0.0.1'),
  INGESTION_HTTP_PORT: port(9464),
  WRITER_HTTP_PORT: port(9465),
  METRICS_HTTP_PORT: port(9466),

  // Order books and more venues (issue 7)
  TOPIC_BOOKS: text('tickwatch.books'),
  BOOK_DEPTH_LEVELS: int(20, 1, 1000),
  BOOK_PUBLISH_INTERVAL_MS: int(0, 0, 60_000),
  COINBASE_PRODUCTS: venueSymbols(/^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$/, 'each product must look like BTC-USD'),
  COINBASE_WS_URL: url('wss://ws-feed.exchange.coinbase.com', ['wss:', 'ws:']),
  GEMINI_SYMBOLS: venueSymbols(/^[A-Za-z0-9]{2,20}$/, 'each symbol must be letters and digits, like BTCUSD'),
  GEMINI_WS_URL: url('wss://api.gemini.com/v2/marketdata', ['wss:', 'ws:']),
  VENUE_MAX_FRAME_BYTES: int(16 * 1024 * 1024, 1024, 256 * 1024 * 1024),
});

export type Env = z.output<typeof envSchema>;
export const ENV_VARIABLES = Object.keys(envSchema.shape) as (keyof Env)[];

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
      symbols: e.SYMBOLS.map((s) => s.toUpperCase()),
      streamTypes: [...new Set(e.STREAM_TYPES)],
      streamsPerConnection: e.STREAMS_PER_CONNECTION,
      watchdogMs: e.WATCHDOG_SECONDS * 1000,
      reconnectMinMs: e.RECONNECT_MIN_MS,
      reconnectMaxMs: e.RECONNECT_MAX_MS,
      connectionMaxAgeMs: e.CONNECTION_MAX_AGE_HOURS * 3_600_000,
      maxFrameBytes: e.MAX_FRAME_BYTES,
      // A frame somewhat over the limit is dead-lettered with its reason; one far over it never gets buffered.
      socketMaxPayloadBytes: e.MAX_FRAME_BYTES * 4,
      deadLetterMaxBytes: e.DEAD_LETTER_MAX_BYTES,
      producerBufferMax: e.PRODUCER_BUFFER_MAX,
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
      coinbase: { products: e.COINBASE_PRODUCTS.map((s) => s.toUpperCase()), wsUrl: e.COINBASE_WS_URL },
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
