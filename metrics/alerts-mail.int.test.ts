// Alert mail against a real SMTP server (smtp-server on loopback): a storm of 100 firings in one minute sends one mail
// per rule and symbol per cooldown plus the resolved mail; a digest follows when the cooldown ends; a failed send is
// retried and counted without blocking the caller.
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { AlertPolicy, type AlertMail, type Firing } from './alert-state.ts';
import { AlertMailer } from './alerts-mail.ts';
import { testLog } from '../test/services.ts';

/** Bodies arrive quoted-printable when lines are long (the dashboard link). */
const decodeQuotedPrintable = (s: string) => s.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

interface Received {
  subject: string;
  body: string;
  to: string[];
}

describe('alert mail through a real SMTP server', () => {
  const received: Received[] = [];
  let rejectNext = 0;
  const logins: string[] = [];
  let server: SMTPServer;
  let port: number;

  beforeAll(async () => {
    server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true, // this server would take a password in clear text: the mailer must not offer one
      logger: false,
      onAuth(auth, _session, callback) {
        logins.push(`${auth.username}:${auth.password}`);
        callback(null, { user: auth.username });
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          if (rejectNext > 0) {
            rejectNext -= 1;
            return callback(Object.assign(new Error('451 try again later'), { responseCode: 451 }));
          }
          const raw = Buffer.concat(chunks).toString('utf8');
          const subject = /^Subject: (.*(?:\r\n[ \t].*)*)/m.exec(raw)?.[1]?.replace(/\r\n[ \t]/g, ' ') ?? '';
          received.push({ subject, body: decodeQuotedPrintable(raw.split('\r\n\r\n').slice(1).join('\r\n\r\n')), to: session.envelope.rcptTo.map((r) => r.address) });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const mailer = (registry: Registry, onSent?: (m: AlertMail) => void) => {
    const config = loadConfig({ SMTP_HOST: '127.0.0.1', SMTP_PORT: String(port), ALERT_EMAIL_TO: 'desk@example.com,risk@example.com', DASHBOARD_URL: 'http://grafana.test:3000' });
    return new AlertMailer({ smtp: config.smtp, dashboardUrl: config.metrics.dashboardUrl, log: testLog, registry, retryMinMs: 50, onSent });
  };

  const firing = (i: number, symbol: string, rule = 'volumeSpike'): Firing => ({
    rule, exchange: 'binance', market: 'spot', symbol, bucketMs: Date.UTC(2024, 7, 8, 23, 55) + i * 600, observed: 6 + i / 100, threshold: 5,
  });

  it('a storm of 100 firings per symbol in a minute sends one mail per rule and symbol per cooldown, plus the resolved mail', async () => {
    received.length = 0;
    const registry = new Registry();
    const m = mailer(registry);
    const policy = new AlertPolicy(300_000);
    const t0 = Date.UTC(2024, 7, 8, 23, 56);
    for (let i = 0; i < 100; i++) {
      const now = t0 + i * 600; // 100 firings within one minute
      for (const symbol of ['BTCUSDT', 'ETHUSDT']) for (const mail of policy.firing(firing(i, symbol), now)) m.send(mail);
      for (const mail of policy.due(now)) m.send(mail);
    }
    for (const mail of policy.clear({ ...firing(100, 'BTCUSDT') }, t0 + 61_000)) m.send(mail);
    await m.drain();
    const subjects = received.map((r) => r.subject).sort();
    expect(subjects).toHaveLength(3);
    expect(subjects.filter((s) => s.includes('BTCUSDT'))).toHaveLength(2);
    expect(subjects.filter((s) => s.includes('ETHUSDT') && !s.includes('RESOLVED'))).toHaveLength(1);
    const first = received.find((r) => r.subject.includes('BTCUSDT') && !r.subject.includes('RESOLVED'))!;
    expect(first.to.sort()).toEqual(['desk@example.com', 'risk@example.com']);
    expect(first.body).toContain('Symbol:    BTCUSDT');
    expect(first.body).toContain('Rule:      volumeSpike');
    expect(first.body).toContain('Observed:  6');
    expect(first.body).toContain('Threshold: 5');
    expect(first.body).toContain('Bucket:    2024-08-08T23:55:00Z');
    expect(first.body).toMatch(/Dashboard: http:\/\/grafana\.test:3000\/d\/tickwatch-market\?var-symbol=BTCUSDT/);
    const resolved = received.find((r) => r.subject.includes('RESOLVED'))!;
    expect(resolved.subject).toContain('BTCUSDT volumeSpike');
    expect(resolved.body).toContain('99 firings since the last mail');
    // ETHUSDT is still firing: its held firings go out as one digest when the cooldown ends, and nothing more.
    for (const mail of policy.due(t0 + 300_000)) m.send(mail);
    for (const mail of policy.due(t0 + 300_001)) m.send(mail);
    await m.drain();
    expect(received).toHaveLength(4);
    expect(received[3]!.subject).toMatch(/ETHUSDT volumeSpike: 99 more firings \(digest\)/);
    await m.close();
  });

  it('retries a failed send, counts it, and never blocks the caller', async () => {
    received.length = 0;
    rejectNext = 2;
    const registry = new Registry();
    const m = mailer(registry);
    const started = performance.now();
    m.send({ kind: 'firing', key: 'k', rule: 'priceJump', symbol: 'BTCUSDT', firings: [firing(0, 'BTCUSDT', 'priceJump')] });
    expect(performance.now() - started).toBeLessThan(5);
    await m.drain();
    expect(received).toHaveLength(1);
    const metrics = await registry.getMetricsAsJSON();
    const value = (name: string) => metrics.find((x) => x.name === name)?.values.reduce((a, v) => a + v.value, 0);
    expect(value('tickwatch_alert_mail_retries_total')).toBe(2);
    expect(value('tickwatch_alert_mails_sent_total')).toBe(1);
    expect(value('tickwatch_alert_mails_failed_total')).toBe(0);
    await m.close();
  });

  it('with credentials, a server that offers no STARTTLS gets no password and no mail', async () => {
    received.length = 0;
    const registry = new Registry();
    const config = loadConfig({ SMTP_HOST: '127.0.0.1', SMTP_PORT: String(port), SMTP_USER: 'alerts', SMTP_PASSWORD: 'hunter2', ALERT_EMAIL_TO: 'desk@example.com' });
    const m = new AlertMailer({ smtp: config.smtp, dashboardUrl: config.metrics.dashboardUrl, log: testLog, registry, retryMinMs: 10, maxAttempts: 2 });
    m.send({ kind: 'firing', key: 'k', rule: 'priceJump', symbol: 'BTCUSDT', firings: [firing(0, 'BTCUSDT', 'priceJump')] });
    await m.drain();
    await m.close();
    expect(logins).toEqual([]);
    expect(received).toEqual([]);
    const metrics = await registry.getMetricsAsJSON();
    expect(metrics.find((x) => x.name === 'tickwatch_alert_mails_failed_total')?.values[0]?.value).toBe(1);
  });

  it('a stop gives up, within its grace time, on mails an absent SMTP server cannot take, and counts them', async () => {
    const registry = new Registry();
    // A port nothing listens on: every attempt is refused, and retries would take 1 + 2 + 4 + 8 s per mail.
    const config = loadConfig({ SMTP_HOST: '127.0.0.1', SMTP_PORT: '9', ALERT_EMAIL_TO: 'desk@example.com', DASHBOARD_URL: 'http://grafana.test:3000' });
    const m = new AlertMailer({ smtp: config.smtp, dashboardUrl: config.metrics.dashboardUrl, log: testLog, registry, retryMinMs: 1_000 });
    for (const symbol of ['BTCUSDT', 'ETHUSDT', 'BNBUSDT']) m.send({ kind: 'firing', key: symbol, rule: 'staleStream', symbol, firings: [firing(0, symbol, 'staleStream')] });
    const started = performance.now();
    await m.close(500);
    expect(performance.now() - started).toBeLessThan(2_000);
    const metrics = await registry.getMetricsAsJSON();
    const value = (name: string) => metrics.find((x) => x.name === name)?.values.reduce((a, v) => a + v.value, 0);
    expect(value('tickwatch_alert_mails_failed_total')).toBe(3);
    expect(value('tickwatch_alert_mails_sent_total')).toBe(0);
  });
});
