// Alert mail (thin adapter over nodemailer): renders an AlertMail, sends it through the configured SMTP server from a
// queue so that metrics never wait for mail, retries failures with backoff, and counts what happened.
import nodemailer, { type Transporter } from 'nodemailer';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/log.ts';
import { isLoopbackHost } from '../common/net.ts';
import type { AlertMail } from './alert-state.ts';

const fmt = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/** Grafana link for the symbol around the bucket (dashboard uid `tickwatch-market`, variable `symbol`). */
export function dashboardLink(dashboardUrl: string, symbol: string, bucketMs: number): string {
  const u = new URL('/d/tickwatch-market', dashboardUrl);
  u.searchParams.set('var-symbol', symbol);
  u.searchParams.set('from', String(bucketMs - 30 * 60_000));
  u.searchParams.set('to', String(bucketMs + 10 * 60_000));
  return u.toString();
}

export function renderMail(m: AlertMail, dashboardUrl: string): { subject: string; text: string } {
  const first = m.firings[0];
  const lastBucket = m.firings.length > 0 ? m.firings[m.firings.length - 1]!.bucketMs : (m.clearedBucketMs ?? 0);
  const line = (f: AlertMail['firings'][number]) =>
    `  ${fmt(f.bucketMs)}  ${f.exchange} ${f.market} ${f.symbol}  ${f.rule}  observed ${f.observed.toPrecision(6)}  threshold ${f.threshold}`;
  if (m.kind === 'firing' && first) {
    return {
      subject: `[tickwatch] ${m.symbol} ${m.rule}: ${first.observed.toPrecision(4)} > ${first.threshold} at ${fmt(first.bucketMs)}`,
      text: [
        `Symbol:    ${first.symbol} (${first.exchange} ${first.market})`,
        `Rule:      ${first.rule}`,
        `Observed:  ${first.observed}`,
        `Threshold: ${first.threshold}`,
        `Bucket:    ${fmt(first.bucketMs)} (1 minute)`,
        `Dashboard: ${dashboardLink(dashboardUrl, first.symbol, first.bucketMs)}`,
        '',
        'Further firings of this rule for this symbol are collected into one digest per cooldown.',
      ].join('\n'),
    };
  }
  if (m.kind === 'digest') {
    return {
      subject: `[tickwatch] ${m.symbol} ${m.rule}: ${m.firings.length} more firing${m.firings.length === 1 ? '' : 's'} (digest)`,
      text: [`${m.firings.length} firings since the last mail:`, ...m.firings.map(line), '', `Dashboard: ${dashboardLink(dashboardUrl, m.symbol, lastBucket)}`].join('\n'),
    };
  }
  return {
    subject: `[tickwatch] RESOLVED ${m.symbol} ${m.rule} at ${fmt(m.clearedBucketMs ?? lastBucket)}`,
    text: [
      `The condition ${m.rule} for ${m.symbol} cleared in the bucket of ${fmt(m.clearedBucketMs ?? lastBucket)}.`,
      ...(m.firings.length > 0 ? ['', `${m.firings.length} firings since the last mail:`, ...m.firings.map(line)] : []),
      '',
      `Dashboard: ${dashboardLink(dashboardUrl, m.symbol, m.clearedBucketMs ?? lastBucket)}`,
    ].join('\n'),
  };
}

/**
 * nodemailer's transport settings. Credentials never travel in clear text: with SMTP_USER and no implicit TLS
 * (SMTP_SECURE=false), STARTTLS is required, and a server that does not offer it gets no password. Only an
 * unauthenticated loopback relay (tests, a local MTA) is spoken to without TLS.
 */
export function smtpTransportOptions(s: Config['smtp']) {
  return {
    host: s.host,
    port: s.port,
    secure: s.secure,
    ...(s.user ? { auth: { user: s.user, pass: s.password ?? '' }, requireTLS: !s.secure } : { ignoreTLS: !s.secure && isLoopbackHost(s.host) }),
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
  };
}

export interface MailerOptions {
  readonly smtp: Config['smtp'];
  readonly dashboardUrl: string;
  readonly log: Logger;
  readonly registry?: Registry;
  readonly maxAttempts?: number;
  readonly retryMinMs?: number;
  /** Called after each successful send (tests, benchmark). */
  readonly onSent?: (mail: AlertMail, sentAtMs: number) => void;
}

/** What the mail outbox (metrics/outbox.ts) does around one send. */
export interface MailHooks {
  /** The same on every attempt and after a takeover, so a repeated mail can be recognized as one. */
  readonly messageId?: string;
  /** Right before each attempt: false drops the mail unsent (this worker may no longer send). */
  before?(): Promise<boolean>;
  /** After the SMTP server accepted it. */
  sent?(): Promise<void>;
  /** After the last attempt failed. */
  failed?(): Promise<void>;
}

export class AlertMailer {
  private readonly transport: Transporter;
  private readonly queue: { mail: AlertMail; attempt: number; hooks?: MailHooks }[] = [];
  private running: Promise<void> | null = null;
  private closed = false;
  private readonly sent: Counter;
  private readonly failed: Counter;
  private readonly retried: Counter;
  private readonly queued: Gauge;

  constructor(private readonly opts: MailerOptions) {
    const s = opts.smtp;
    this.transport = nodemailer.createTransport(smtpTransportOptions(opts.smtp));
    const registers = opts.registry ? [opts.registry] : [];
    this.sent = new Counter({ name: 'tickwatch_alert_mails_sent_total', help: 'Alert mails accepted by the SMTP server', labelNames: ['kind'], registers });
    this.failed = new Counter({ name: 'tickwatch_alert_mails_failed_total', help: 'Alert mails given up after all retries', registers });
    this.retried = new Counter({ name: 'tickwatch_alert_mail_retries_total', help: 'Alert mail send attempts that failed and were retried', registers });
    this.queued = new Gauge({ name: 'tickwatch_alert_mails_queued', help: 'Alert mails waiting to be sent', registers });
  }

  /** Queues a mail; never waits for SMTP. */
  send(mail: AlertMail, hooks?: MailHooks): void {
    if (this.closed) return;
    this.queue.push({ mail, attempt: 0, ...(hooks ? { hooks } : {}) });
    this.queued.set(this.queue.length);
    this.running ??= this.pump().finally(() => {
      this.running = null;
    });
  }

  /** Resolves when the queue is empty (each mail sent or given up). */
  async drain(): Promise<void> {
    while (this.running) await this.running;
  }

  /**
   * Waits up to `graceMs` for the queue to empty, then gives up on what is left (logged and counted as failed): a
   * stop must not wait out the retries of an SMTP server that is away.
   */
  async close(graceMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([this.drain().then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
    clearTimeout(timer);
    this.closed = true;
    if (!drained) {
      const left = this.queue.splice(0).length + 1; // the queue and the one mail in hand
      this.failed.inc(left);
      this.queued.set(0);
      this.opts.log.error({ mails: left, graceMs }, 'stopping with alert mails not sent: SMTP did not take them in time');
    }
    this.transport.close();
  }

  /**
   * Drops every queued mail without counting it as failed: this worker lost the right to send them (the mail outbox
   * keeps them for its successor). A mail already in the SMTP conversation finishes.
   */
  abandon(): number {
    const n = this.queue.splice(0).length;
    this.queued.set(0);
    return n;
  }

  private async pump(): Promise<void> {
    const maxAttempts = this.opts.maxAttempts ?? 5;
    const retryMinMs = this.opts.retryMinMs ?? 1_000;
    while (this.queue.length > 0 && !this.closed) {
      const item = this.queue.shift()!;
      this.queued.set(this.queue.length);
      const { subject, text } = renderMail(item.mail, this.opts.dashboardUrl);
      const hooks = item.hooks;
      if (hooks?.before && !(await hooks.before())) continue;
      let accepted = false;
      try {
        await this.transport.sendMail({ from: this.opts.smtp.from, to: this.opts.smtp.to, subject, text, ...(hooks?.messageId ? { messageId: hooks.messageId } : {}) });
        accepted = true;
        this.sent.inc({ kind: item.mail.kind });
        this.opts.onSent?.(item.mail, Date.now());
        await hooks?.sent?.();
      } catch (err) {
        if (accepted) {
          this.opts.log.error({ err, rule: item.mail.rule, symbol: item.mail.symbol, kind: item.mail.kind }, 'alert mail sent but not recorded as sent');
          continue;
        }
        if (this.closed) return; // close() gave up on it and counted it
        item.attempt += 1;
        const ctx = { err, rule: item.mail.rule, symbol: item.mail.symbol, kind: item.mail.kind, attempt: item.attempt };
        if (item.attempt >= maxAttempts) {
          this.failed.inc();
          this.opts.log.error(ctx, 'alert mail failed: giving up');
          await hooks?.failed?.().catch((e: unknown) => this.opts.log.error({ ...ctx, err: e }, 'alert mail given up but not recorded'));
          continue;
        }
        this.retried.inc();
        this.opts.log.warn(ctx, 'alert mail failed: retrying');
        await new Promise((r) => setTimeout(r, retryMinMs * 2 ** (item.attempt - 1)).unref());
        if (this.closed) return; // close() gave up on it
        this.queue.unshift(item);
      }
    }
  }
}
