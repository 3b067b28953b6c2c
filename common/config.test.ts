import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.variable);
    throw err;
  }
  return [];
}

/** Every problem as `VARIABLE: message`. */
function said(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.variable}: ${p.message}`);
    throw err;
  }
  return [];
}

describe('config', () => {
  it('takes documented defaults from an empty environment', () => {
    const c = loadConfig({});
    expect(c.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(c.source.symbols).toEqual(['BTCUSDT', 'ETHUSDT', 'BNBUSDT']);
    expect(c.source.streamTypes).toEqual(['trade', 'aggTrade', 'bookTicker']);
    expect(c.source.wsUrl).toBe('wss://stream.binance.com:9443');
    expect(c.writer.batchSize).toBe(20000);
  });

  it('parses lists, numbers and market-dependent URLs', () => {
    const c = loadConfig({ KAFKA_BROKERS: 'a:1, b:2', SYMBOLS: 'btcusdt,solusdt', BINANCE_MARKET: 'usdm', BATCH_SIZE: '42', SMTP_SECURE: 'yes' });
    expect(c.kafka.brokers).toEqual(['a:1', 'b:2']);
    expect(c.source.symbols).toEqual(['BTCUSDT', 'SOLUSDT']);
    expect(c.source.wsUrl).toBe('wss://fstream.binance.com');
    expect(c.writer.batchSize).toBe(42);
    expect(c.smtp.secure).toBe(true);
  });

  it('names every bad variable in one error', () => {
    expect(
      problems({ KAFKA_BROKERS: '', BATCH_SIZE: '-3', STREAM_TYPES: 'trade,kline', DATABASE_URL: 'mysql://x', ALERT_EMAIL_TO: 'nobody' }).sort(),
    ).toEqual(['ALERT_EMAIL_TO', 'BATCH_SIZE', 'DATABASE_URL', 'KAFKA_BROKERS', 'STREAM_TYPES']);
    expect(problems({ TICK_RETENTION: 'forever', BATCH_SIZE: '1.5', HTTP_HOST: '' }).sort()).toEqual(['BATCH_SIZE', 'HTTP_HOST', 'TICK_RETENTION']);
    expect(problems({ RECONNECT_MIN_MS: '5000', RECONNECT_MAX_MS: '100' })).toEqual(['RECONNECT_MIN_MS']);
  });

  it('stops the CLI with exit code 2 and one message listing every problem, no stack trace', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bin/tickwatch.ts', 'migrate'], {
      env: { PATH: process.env.PATH, KAFKA_BROKERS: '', BATCH_SIZE: '-3' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('Invalid configuration (2 problems)');
    expect(r.stderr).toMatch(/KAFKA_BROKERS: .+/);
    expect(r.stderr).toMatch(/BATCH_SIZE: must be >= 1/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses an empty number and durations no timer can hold, naming each variable', () => {
    const problems = said;
    expect(problems({ INGESTION_HTTP_PORT: '' })).toEqual(['INGESTION_HTTP_PORT: must not be empty']);
    expect(problems({ BATCH_SIZE: '' })).toEqual(['BATCH_SIZE: must not be empty']);
    expect(problems({ WATCHDOG_SECONDS: '1e308' })).toEqual(['WATCHDOG_SECONDS: must be <= 3600']);
    expect(problems({ ALERT_COOLDOWN_SECONDS: '1e12' })).toEqual(['ALERT_COOLDOWN_SECONDS: must be <= 2000000']);
    expect(problems({ CONNECTION_MAX_AGE_HOURS: '48' })).toEqual(['CONNECTION_MAX_AGE_HOURS: must be <= 24']);
    expect(problems({ WATCHDOG_SECONDS: '45', INGESTION_HTTP_PORT: '9000' })).toEqual([]);
  });

  it('takes Kafka TLS and SASL settings for a managed cluster, and refuses the combinations that cannot work', () => {
    expect(loadConfig({}).kafka).toMatchObject({ ssl: undefined, sasl: undefined });
    const c = loadConfig({ KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' });
    expect(c.kafka.ssl).toEqual({ caFile: undefined });
    expect(c.kafka.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'u', password: 'p' });
    expect(loadConfig({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: 'package.json' }).kafka.ssl).toEqual({ caFile: 'package.json' });
    expect(said({ KAFKA_SASL_MECHANISM: 'gssapi' })).toEqual(['KAFKA_SASL_MECHANISM: must be none, plain, scram-sha-256 or scram-sha-512']);
    expect(said({ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'u' })).toEqual([
      'KAFKA_SASL_PASSWORD: is required with KAFKA_SASL_MECHANISM=scram-sha-256',
    ]);
    expect(said({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' })).toEqual([
      'KAFKA_SASL_MECHANISM: plain sends the password in clear text: set KAFKA_SSL=true (or use scram-sha-512)',
    ]);
    expect(said({ KAFKA_SASL_PASSWORD: 'p' })).toEqual(['KAFKA_SASL_PASSWORD: is set but KAFKA_SASL_MECHANISM is none']);
    expect(said({ KAFKA_SSL_CA_FILE: 'package.json' })).toEqual(['KAFKA_SSL_CA_FILE: is only used with KAFKA_SSL=true']);
    expect(said({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: '/no/such/ca.pem' })).toEqual(['KAFKA_SSL_CA_FILE: no such file: /no/such/ca.pem']);
  });

  it("gives Grafana a role of its own, never DATABASE_URL's", () => {
    expect(loadConfig({}).database.reader).toEqual({ user: 'tickwatch_grafana', password: undefined });
    expect(problems({ GRAFANA_DB_USER: 'tickwatch' })).toEqual(['GRAFANA_DB_USER']);
    expect(problems({ GRAFANA_DB_USER: 'Robert"); DROP' })).toEqual(['GRAFANA_DB_USER']);
  });

  it('gives the writers and the metrics worker roles of their own, distinct from each other and from the owner', () => {
    const c = loadConfig({ WRITER_DB_PASSWORD: 'w' });
    expect([c.database.writer, c.database.metrics]).toEqual([
      { user: 'tickwatch_writer', password: 'w' },
      { user: 'tickwatch_metrics', password: undefined },
    ]);
    expect(problems({ WRITER_DB_USER: 'tickwatch' })).toEqual(['WRITER_DB_USER']);
    expect(problems({ METRICS_DB_USER: 'tickwatch_grafana' })).toEqual(['METRICS_DB_USER']);
    expect(problems({ METRICS_DB_USER: 'x y' })).toEqual(['METRICS_DB_USER']);
  });

  it('listens on loopback unless told otherwise', () => {
    expect(loadConfig({}).http.host).toBe('127.0.0.1');
  });
});

describe('Coinbase credentials', () => {
  const SECRET = Buffer.from('a secret of some bytes').toString('base64');
  const all = { COINBASE_API_KEY: 'k3y', COINBASE_API_SECRET: SECRET, COINBASE_API_PASSPHRASE: 'pass phrase' };

  it('takes all three or none', () => {
    expect(loadConfig({}).venues.coinbase.credentials).toBeUndefined();
    expect(loadConfig(all).venues.coinbase.credentials).toEqual({ key: 'k3y', secret: SECRET, passphrase: 'pass phrase' });
    expect(said({ COINBASE_API_KEY: 'k3y' })).toEqual([
      'COINBASE_API_SECRET: is required with COINBASE_API_KEY: the authenticated level2 channel needs key, secret and passphrase (set none of them for level2_batch)',
      'COINBASE_API_PASSPHRASE: is required with COINBASE_API_KEY: the authenticated level2 channel needs key, secret and passphrase (set none of them for level2_batch)',
    ]);
    expect(problems({ COINBASE_API_SECRET: SECRET, COINBASE_API_PASSPHRASE: 'p' })).toEqual(['COINBASE_API_KEY']);
    expect(problems({ ...all, COINBASE_API_PASSPHRASE: '' })).toEqual(['COINBASE_API_PASSPHRASE']);
  });

  it('refuses a secret that is not base64, without repeating it', () => {
    for (const bad of ['not base64!', 'abc', 'YWJj\nZA==', 'YWJjZA']) {
      const msgs = said({ ...all, COINBASE_API_SECRET: bad });
      expect(msgs).toEqual(['COINBASE_API_SECRET: must be base64, as Coinbase issues the secret']);
      expect(msgs.join('\n')).not.toContain(bad);
    }
  });

  it('stops the CLI with exit code 2 on partial credentials, naming the missing ones and no value', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bin/tickwatch.ts', 'ingest'], {
      env: { PATH: process.env.PATH, COINBASE_API_KEY: 'k3y-value', COINBASE_API_SECRET: SECRET },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('Invalid configuration (1 problem)');
    expect(r.stderr).toMatch(/COINBASE_API_PASSPHRASE: is required with COINBASE_API_KEY and COINBASE_API_SECRET/);
    expect(r.stderr).not.toContain('k3y-value');
    expect(r.stderr).not.toContain(SECRET);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
