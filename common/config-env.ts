// The environment variables of every worker and their rules: one zod schema, each variable with its default, range and
// message. common/config.ts validates the environment with it and shapes the typed configuration.
import { z } from 'zod';
import { isSymbolRule, parseSymbolRule, type SymbolRule } from './symbol-rule.ts';

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
/** Canonical base64 (padded, no whitespace) of at least one byte. The message never repeats the value: it is a secret. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$/;
const optionalBase64Secret = () => optionalText().refine((s) => s === undefined || BASE64.test(s), 'must be base64, as Coinbase issues the secret');

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
  // A list, or a rule over the exchange's instrument list (common/symbol-rule.ts), e.g. rule:quote=USDT.
  SYMBOLS: z
    .string()
    .default('BTCUSDT,ETHUSDT,BNBUSDT')
    .transform((s, ctx): string[] | SymbolRule => {
      const problem = (message: string) => {
        ctx.addIssue({ code: 'custom', message });
        return z.NEVER;
      };
      if (isSymbolRule(s)) {
        const rule = parseSymbolRule(s);
        return typeof rule === 'string' ? problem(rule) : rule;
      }
      const list = s.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
      if (list.length === 0) return problem('must list at least one value');
      if (list.some((x) => !/^[A-Za-z0-9]{2,20}$/.test(x))) return problem('each symbol must be letters and digits, like BTCUSDT (or a rule, like rule:quote=USDT)');
      return list;
    }),
  // How often a rule is resolved again against the exchange's instrument list (listings and delistings).
  SYMBOLS_REFRESH_SECONDS: num(300, 1, 86_400),
  // This process's part of the streams: i/N, a stable hash of the symbol picks its shard (ingestion/shard.ts).
  SHARD: nonEmpty()
    .default('0/1')
    .transform((s, ctx) => {
      const m = /^(\d{1,4})\/(\d{1,4})$/.exec(s.trim());
      const index = m ? Number(m[1]) : NaN;
      const count = m ? Number(m[2]) : NaN;
      if (!m || count < 1 || index >= count) {
        ctx.addIssue({ code: 'custom', message: 'must be i/N with 0 <= i < N, like 0/1 or 2/4' });
        return z.NEVER;
      }
      return { index, count };
    }),
  // A standby per shard: the process streams only while it holds its shard's lease (a Kafka consumer group).
  INGEST_LEASE: bool(false),
  // How long Kafka keeps a silent lease holder's membership: the bound on how soon a standby takes over.
  // Kafka refuses a session under group.min.session.timeout.ms (6 s by default).
  INGEST_LEASE_SESSION_MS: int(6_000, 6_000, 300_000),
  // Names the lease: topic <prefix>.ingest-lease (one partition), group <prefix>-ingest-lease-<i>-of-<N>.
  INGEST_LEASE_PREFIX: nonEmpty().regex(/^[A-Za-z0-9._-]{1,100}$/, 'must be letters, digits, dots, dashes or underscores').default('tickwatch'),
  STREAM_TYPES: csv(DEFAULT_STREAM_TYPES.join(',')).pipe(z.array(z.enum(STREAM_TYPES, { error: `each must be one of ${STREAM_TYPES.join(', ')}` }))),
  STREAMS_PER_CONNECTION: int(1024, 1, 1024),
  WATCHDOG_SECONDS: num(30, 1, 3_600),
  RECONNECT_MIN_MS: int(500, 1),
  RECONNECT_MAX_MS: int(30_000, 1),
  CONNECTION_MAX_AGE_HOURS: num(23.5, 0.001, 24),
  MAX_FRAME_BYTES: int(65_536, 256, 16 * 1024 * 1024),
  DEAD_LETTER_MAX_BYTES: int(8_192, 64),
  PRODUCER_BUFFER_MAX: int(20_000, 1),
  // Bytes (keys and values) of records waiting for Kafka's acknowledgement; past it the sockets are paused.
  PRODUCER_BUFFER_MAX_BYTES: int(8 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
  PRODUCER_LANES: int(2, 1, 16),
  REST_WEIGHT_PER_MINUTE: int(3_000, 1, 6_000),

  // Writers
  BATCH_SIZE: int(20_000, 1, 1_000_000),
  BATCH_MAX_BYTES: int(8 * 1024 * 1024, 1024),
  BATCH_MAX_WAIT_MS: int(250, 1),
  WRITER_GROUP_PREFIX: text('tickwatch-writer'),
  WRITER_FETCH_MIN_BYTES: int(1024 * 1024, 1),
  // 1 MiB of compressed batches as stored per fetch of one family: 512 KiB was chosen with gzip batches; lz4 batches
  // (#14) take 1.7 x the bytes per tick, and 512 KiB of them cost bench:write a sixth of its rows/s (smaller
  // transactions). 1 MiB holds about as many ticks as 512 KiB of gzip did (peak RSS near 300 MB, as before).
  WRITER_FETCH_MAX_BYTES: int(1024 * 1024, 1024),
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
  // Standby: how often a standby metrics worker tries to take the lease (an advisory lock), and how often the active one
  // proves it still holds it.
  METRICS_LEASE_POLL_MS: int(1_000, 50, 60_000),

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

  // Order books and the other venues
  TOPIC_BOOKS: text('tickwatch.books'),
  BOOK_DEPTH_LEVELS: int(20, 1, 1000),
  BOOK_PUBLISH_INTERVAL_MS: int(0, 0, 60_000),
  COINBASE_PRODUCTS: venueSymbols(/^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$/, 'each product must look like BTC-USD'),
  COINBASE_WS_URL: url('wss://ws-feed.exchange.coinbase.com', ['wss:', 'ws:']),
  // All three: books from the authenticated level2 channel; none: from level2_batch (no authentication needed).
  COINBASE_API_KEY: optionalText(),
  COINBASE_API_SECRET: optionalBase64Secret(),
  COINBASE_API_PASSPHRASE: optionalText(),
  GEMINI_SYMBOLS: venueSymbols(/^[A-Za-z0-9]{2,20}$/, 'each symbol must be letters and digits, like BTCUSD'),
  GEMINI_WS_URL: url('wss://api.gemini.com/v2/marketdata', ['wss:', 'ws:']),
  VENUE_MAX_FRAME_BYTES: int(16 * 1024 * 1024, 1024, 256 * 1024 * 1024),
});

export type Env = z.output<typeof envSchema>;
export const ENV_VARIABLES = Object.keys(envSchema.shape) as (keyof Env)[];
