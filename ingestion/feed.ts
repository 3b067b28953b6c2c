// All the socket trouble of one connection slot in one place: it answers pings (ws-client.ts does, echoing the
// payload), replaces a socket that has gone silent (watchdog), reconnects with capped exponential backoff and jitter
// within the connection-attempt limit, and before the 24-hour limit or on request (serverShutdown) opens the new socket
// first and closes the old one only once the new one delivers (make before break). It knows nothing about what the
// frames say: the overlap is dropped by id downstream. Binance slots name their streams in the URL
// (/stream?streams=a/b); other venues (Coinbase, Gemini) connect to their URL as is and send their subscribe messages
// on every open. A Binance slot's streams may change while it runs (setStreams): its open sockets follow by SUBSCRIBE /
// UNSUBSCRIBE (subscriptions.ts), and a socket opened later names the new list in its URL.
import { WsClient } from './ws-client.ts';
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/log.ts';
import { backoffDelay } from '../common/backoff.ts';
import { AttemptLimiter } from './backoff.ts';
import type { IngestMetrics, ReconnectReason } from './metrics.ts';
import { ConnectionSubscriptions } from './subscriptions.ts';
import { usAt } from '../common/time.ts';

/** Wall-clock time in ms; injected so tests can move a connection's age past 24 hours. */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export interface FeedSink {
  /** One text frame, with its receive time in µs since the epoch. */
  frame(text: string, receiveTimeUs: number): void;
  /** The slot has no open socket any more: what arrives next follows a hole. */
  disconnected(reason: string): void;
  /** Streams an open socket stopped carrying (UNSUBSCRIBE acknowledged): their frames sent before it have arrived. */
  unsubscribed?(streams: readonly string[]): void;
}

export interface FeedOptions {
  readonly name: string;
  readonly wsUrl: string;
  /** Binance combined streams, named in the URL; empty for a venue that subscribes by message. */
  readonly streams: readonly string[];
  /** Messages sent on every open (a venue's subscriptions); with them the URL is wsUrl as is. */
  readonly subscribe?: () => readonly string[];
  readonly watchdogMs: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly maxAgeMs: number;
  /**
   * The largest frame the socket takes in; a larger one closes it (1009) before it is buffered, and the slot reconnects.
   * Binance slots use a few times MAX_FRAME_BYTES, so a frame a little over the limit is dead-lettered by the mapper
   * with its reason instead; venues use VENUE_MAX_FRAME_BYTES (their book snapshots are large).
   */
  readonly maxPayloadBytes: number;
  /** How long both sockets deliver during a switch-over once the new one has spoken. */
  readonly overlapMs?: number;
  readonly clock: Clock;
  readonly limiter: AttemptLimiter;
  readonly log: Logger;
  readonly metrics: IngestMetrics;
  readonly sink: FeedSink;
}

export type FeedState = 'down' | 'connecting' | 'open' | 'switching';
const STATE_VALUE: Record<FeedState, number> = { down: 0, connecting: 1, open: 2, switching: 3 };

interface Conn {
  readonly id: number;
  readonly ws: WsClient;
  openedAt: number;
  lastHeardMs: number;
  spoke: boolean;
  open: boolean;
  /** The socket was closed for a frame over maxPayloadBytes. */
  oversized: boolean;
  /** Binance slots: the socket's subscriptions, changed by message while it is open. */
  subs: ConnectionSubscriptions | undefined;
  /** Set while stop() waits for the close handshake. */
  closed: (() => void) | undefined;
}


export class Feed {
  private active: Conn | undefined;
  private next: Conn | undefined;
  private seq = 0;
  private attempt = 0;
  private stopped = false;
  private paused = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly ticker: NodeJS.Timeout;
  private switchReason: ReconnectReason | undefined;
  private readonly log: Logger;
  private wanted: Set<string>;

  constructor(private readonly opts: FeedOptions) {
    this.log = opts.log.child({ feed: opts.name });
    this.wanted = new Set(opts.streams);
    const every = Math.max(20, Math.min(1000, opts.watchdogMs / 4));
    this.ticker = setInterval(() => this.tick(), every);
    this.setState('down');
  }

  get state(): FeedState {
    if (this.next) return 'switching';
    if (this.active?.open) return 'open';
    return this.active || this.reconnectTimer ? 'connecting' : 'down';
  }

  start(): void {
    this.connect();
  }

  /** The URL the next socket opens: a Binance slot names its streams of the moment. */
  get url(): string {
    return this.opts.subscribe ? this.opts.wsUrl : streamUrl(this.opts.wsUrl, this.wanted);
  }

  /** The Binance streams this slot should carry now. */
  get streams(): ReadonlySet<string> {
    return this.wanted;
  }

  /** Binance slots: carry `streams` from now on; open sockets subscribe and unsubscribe by message. */
  setStreams(streams: Iterable<string>): void {
    this.wanted = new Set(streams);
    for (const c of [this.active, this.next]) if (c?.open) c.subs?.sync();
  }

  /** Subscription requests sent on the open sockets and not answered yet. */
  get unansweredSubscriptions(): number {
    return (this.active?.subs?.unanswered ?? 0) + (this.next?.subs?.unanswered ?? 0);
  }

  /** Opens a replacement socket and switches over to it (make before break). */
  rollover(reason: ReconnectReason): void {
    if (this.stopped || this.next || !this.active?.open) return;
    this.switchReason = reason;
    this.log.info({ reason, streams: this.wanted.size }, 'opening a replacement connection');
    this.opts.metrics.reconnects(reason);
    this.next = this.open();
    this.setState('switching');
  }

  /** Sends a text frame on the open connection (a venue's resubscription); false when none is open. */
  send(text: string): boolean {
    const c = this.active;
    if (!c?.open) return false;
    c.ws.send(text);
    return true;
  }

  /** Stops reading the sockets (backpressure); the watchdog sleeps meanwhile. */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    for (const c of [this.active, this.next]) c?.ws.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const now = performance.now();
    for (const c of [this.active, this.next]) {
      if (!c) continue;
      c.lastHeardMs = now;
      c.ws.resume();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.ticker);
    for (const c of [this.active, this.next]) c?.subs?.close();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const closing = [this.active, this.next].filter((c): c is Conn => c !== undefined);
    this.active = this.next = undefined;
    await Promise.all(
      closing.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.ws.closed) return resolve();
            c.closed = resolve;
            c.ws.close(1000, 'stopping');
            setTimeout(() => {
              c.ws.terminate();
              resolve();
            }, 2000).unref();
          }),
      ),
    );
    this.setState('down');
  }

  private setState(s: FeedState): void {
    this.opts.metrics.connections.labels(this.opts.name).set(STATE_VALUE[s]);
  }

  private connect(): void {
    if (this.stopped) return;
    this.reconnectTimer = undefined;
    const wait = this.opts.limiter.waitMs(Date.now());
    if (wait > 0) {
      this.log.warn({ waitMs: wait }, 'connection attempt limit reached: waiting');
      this.reconnectTimer = setTimeout(() => this.connect(), wait);
      return;
    }
    this.active = this.open();
    this.setState('connecting');
  }

  private open(): Conn {
    this.opts.limiter.record(Date.now());
    const url = this.url;
    // A text frame that is not UTF-8 is one bad frame: decoded with U+FFFD in place of its bad bytes, the mapper
    // dead-letters it, where closing the connection (1007) would leave a gap to backfill. The handlers below use `c`,
    // made after the client: they run only on socket events, which never come before the constructor returns.
    const ws = new WsClient(url, { handshakeTimeoutMs: 10_000, maxPayload: this.opts.maxPayloadBytes }, {
      open: () => {
        c.open = true;
        c.openedAt = this.opts.clock.now();
        c.lastHeardMs = performance.now();
        if (this.paused) ws.pause();
        for (const m of this.opts.subscribe?.() ?? []) ws.send(m);
        // Streams changed while the socket was opening: it follows at once.
        c.subs?.sync();
        this.log.info({ conn: c.id, url: url.length > 300 ? `${url.slice(0, 300)}...` : url }, 'connected');
        if (c === this.active) this.setState('open');
      },
      ping: () => (c.lastHeardMs = performance.now()),
      message: (text, _binary, readAtMs) => this.onMessage(c, text, readAtMs),
      error: (err, oversized) => {
        if (oversized) c.oversized = true;
        this.log.warn({ conn: c.id, err: err.message }, 'socket error');
      },
      close: (code, reason) => {
        c.subs?.close();
        c.closed?.();
        this.onClose(c, code, reason);
      },
    });
    const c: Conn = { id: ++this.seq, ws, openedAt: this.opts.clock.now(), lastHeardMs: performance.now(), spoke: false, open: false, oversized: false, subs: undefined, closed: undefined };
    if (!this.opts.subscribe) {
      c.subs = new ConnectionSubscriptions({
        carried: [...this.wanted],
        wanted: () => this.wanted,
        send: (text) => ws.send(text),
        log: this.log.child({ conn: c.id }),
        metrics: this.opts.metrics,
        unsubscribed: (streams) => this.opts.sink.unsubscribed?.(streams),
      });
    }
    return c;
  }

  /** A message, received when the socket read that completed it was made (`readAtMs`, performance.now()). */
  private onMessage(c: Conn, text: string, readAtMs: number): void {
    c.lastHeardMs = readAtMs;
    const receiveTimeUs = usAt(readAtMs);
    if (c !== this.active && c !== this.next) return;
    if (!c.spoke) {
      c.spoke = true;
      if (c === this.active) this.attempt = 0;
      if (c === this.next) this.finishSwitch(c);
    }
    // Combined-stream frames start with {"stream"; a reply to a subscription change is counted here and goes no further.
    if (c.subs && !text.startsWith('{"stream"') && c.subs.reply(text)) return;
    this.opts.sink.frame(text, receiveTimeUs);
  }

  /** The replacement has spoken: keep both for a moment so the old one delivers what it holds, then close it. */
  private finishSwitch(c: Conn): void {
    const old = this.active;
    setTimeout(() => {
      if (this.next !== c) return;
      this.active = c;
      this.next = undefined;
      this.attempt = 0;
      this.setState('open');
      this.log.info({ from: old?.id, to: c.id, reason: this.switchReason }, 'switched over to the replacement connection');
      if (old) {
        old.open = false;
        old.ws.close(1000, 'replaced');
        setTimeout(() => old.ws.terminate(), 2000).unref();
      }
    }, this.opts.overlapMs ?? 1000);
  }

  private onClose(c: Conn, code: number, reason: string): void {
    const wasOpen = c.open;
    c.open = false;
    if (this.stopped) return;
    if (c === this.next) {
      // The replacement failed before taking over: keep the old one, try again later.
      this.next = undefined;
      this.log.warn({ conn: c.id, code, reason }, 'replacement connection closed before the switch-over');
      this.setState(this.active?.open ? 'open' : 'connecting');
      return;
    }
    if (c !== this.active) return;
    this.active = undefined;
    // A socket that never opened means the exchange cannot be reached (no network, DNS, firewall): say so plainly.
    if (c.oversized) this.lost(`a frame over ${this.opts.maxPayloadBytes} bytes`, 'oversized', 'oversized frame: socket closed, reconnecting');
    else if (wasOpen) this.lost(`closed (${code}${reason ? ` ${reason}` : ''})`, 'closed');
    else this.lost(`could not connect to ${this.url}`, 'closed', 'exchange unreachable: retrying with backoff');
  }

  private lost(detail: string, reason: ReconnectReason, message = 'connection lost: reconnecting'): void {
    if (this.next) {
      // A replacement is on its way: it becomes the active connection at once.
      const n = this.next;
      this.next = undefined;
      this.active = n;
      this.log.warn({ detail }, 'connection lost during a switch-over: the replacement takes over');
      if (!n.spoke) this.opts.sink.disconnected(reason);
      this.setState(n.open ? 'open' : 'connecting');
      return;
    }
    this.opts.sink.disconnected(reason);
    this.opts.metrics.reconnects(reason);
    const delay = backoffDelay(this.attempt++, this.opts.reconnectMinMs, this.opts.reconnectMaxMs);
    this.log.warn({ detail, reason, delayMs: delay, attempt: this.attempt }, message);
    this.setState('connecting');
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private tick(): void {
    if (this.stopped) return;
    const now = performance.now();
    const n = this.next;
    if (n && !this.paused && now - n.lastHeardMs > this.opts.watchdogMs) {
      this.log.warn({ conn: n.id }, 'watchdog: replacement connection silent, dropping it');
      n.ws.terminate();
    }
    const c = this.active;
    if (!c) return;
    if (!this.paused && now - c.lastHeardMs > this.opts.watchdogMs) {
      this.log.warn({ conn: c.id, silentMs: Math.round(now - c.lastHeardMs) }, 'watchdog: socket silent, replacing it');
      this.active = undefined;
      c.open = false;
      c.ws.terminate();
      this.lost('silent', 'watchdog');
      return;
    }
    if (c.open && !this.next && this.opts.clock.now() - c.openedAt >= this.opts.maxAgeMs) this.rollover('max-age');
  }
}

export interface SlotOptions {
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: IngestMetrics;
}

/**
 * Longest Binance stream URL a slot opens. Binance refuses longer ones whatever their stream count (client libraries
 * report 8,004 characters); 1,024 streams of `btcusdt@bookTicker` would be some 19,000.
 */
export const BINANCE_URL_MAX_CHARS = 8_000;

const STREAM_PATH = '/stream?streams=';

/** A Binance combined-stream URL: `wsUrl` naming `streams`. */
export function streamUrl(wsUrl: string, streams: Iterable<string>): string {
  return `${wsUrl.replace(/\/+$/, '')}${STREAM_PATH}${[...streams].join('/')}`;
}

/** The room a Binance slot has left: streams under STREAMS_PER_CONNECTION, characters under BINANCE_URL_MAX_CHARS. */
export class SlotRoom {
  private count = 0;
  /** The URL's characters so far (the separators between streams included). */
  private chars: number;

  constructor(
    wsUrl: string,
    private readonly maxStreams: number,
  ) {
    this.chars = streamUrl(wsUrl, []).length;
  }

  /** Whether `streams` fit as well. An empty slot takes anything, so that no stream is left without one. */
  fits(streams: readonly string[]): boolean {
    if (this.count === 0) return true;
    let chars = this.chars;
    for (const s of streams) chars += s.length + 1;
    return this.count + streams.length <= this.maxStreams && chars <= BINANCE_URL_MAX_CHARS;
  }

  add(stream: string): void {
    this.chars += stream.length + (this.count++ > 0 ? 1 : 0);
  }

  remove(stream: string): void {
    this.chars -= stream.length + (--this.count > 0 ? 1 : 0);
  }
}

/**
 * Binance slots: `streams` in order, as many on a slot as STREAMS_PER_CONNECTION and the URL length allow, sharing one
 * connection-attempt limiter. `sink` gets each slot's streams.
 */
export function binanceFeeds(src: Config['source'], streams: readonly string[], name: string, o: SlotOptions, sink: (streams: readonly string[]) => FeedSink): Feed[] {
  const limiter = new AttemptLimiter();
  const blocks: string[][] = [];
  let room: SlotRoom | undefined;
  for (const stream of streams) {
    if (!room?.fits([stream])) {
      room = new SlotRoom(src.wsUrl, src.streamsPerConnection);
      blocks.push([]);
    }
    room.add(stream);
    blocks.at(-1)!.push(stream);
  }
  const feeds: Feed[] = [];
  for (const block of blocks) {
    feeds.push(
      new Feed({
        ...src.timing,
        ...o,
        name: `${name}-${feeds.length}`,
        wsUrl: src.wsUrl,
        streams: block,
        maxAgeMs: src.connectionMaxAgeMs,
        maxPayloadBytes: src.socketMaxPayloadBytes,
        limiter,
        sink: sink(block),
      }),
    );
  }
  return feeds;
}
