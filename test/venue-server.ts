// A local stand-in for Coinbase Exchange or Gemini on 127.0.0.1, for tests: a WebSocket server that waits for a
// client's subscriptions and then replays a cryptofeed recording (../shared/data/cryptofeed) to it, as fast as it
// reads, optionally mixing extra (e.g. malformed) frames in. To a Coinbase client (subscribe messages with `channels`) it
// speaks Coinbase's subscriptions: a `subscriptions` reply to each accepted message, level2 only with a valid signature
// (its own check, with node:crypto, of the key, passphrase and secret it is given, the timestamp within 30 s) and
// otherwise `{"type":"error","message":"Failed to subscribe","reason":...}`; it replays once the books (level2 or
// level2_batch), ticker and matches have each been asked for, only the frames of the channels it accepted.
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { CryptofeedFrame } from '../ingestion/book/cryptofeed-capture.ts';

export interface VenueServerOptions {
  readonly frames: readonly CryptofeedFrame[];
  /** Extra raw frames sent after recorded frame i. */
  readonly extraFrames?: (i: number) => readonly string[] | undefined;
  /** Coinbase: the API key, base64 secret and passphrase whose signed level2 subscriptions are accepted. */
  readonly credentials?: { readonly key: string; readonly secret: string; readonly passphrase: string };
}

/** Coinbase channels that need a signed subscription (its documentation: full, user, level2, level3). */
const AUTHENTICATED = new Set(['full', 'user', 'level2', 'level3']);
const BOOKS = ['level2', 'level2_batch'];

/** The Coinbase channel a recorded frame belongs to, by its type; null: sent whatever is subscribed. */
function coinbaseChannel(type: string | undefined): string | null {
  if (type === 'snapshot' || type === 'l2update') return 'books';
  if (type === 'ticker') return 'ticker';
  if (type === 'match' || type === 'last_match') return 'matches';
  return null;
}

interface Subscriptions {
  /** Accepted channels (level2 and level2_batch both count as `books` for the replay). */
  readonly channels: Set<string>;
  /** Channels asked for, accepted or refused. */
  readonly asked: Set<string>;
}

export class VenueServer {
  readonly wsUrl: string;
  connectionsAccepted = 0;
  /** Every text message clients sent (subscriptions). */
  readonly received: string[] = [];
  /** Frames sent to clients: recorded, extra, and the Coinbase replies (subscriptions, errors). */
  sent = 0;
  /** The reasons of every Coinbase subscription refused. */
  readonly refusals: string[] = [];
  private readonly types: readonly (string | undefined)[];
  private readonly clients = new Set<WebSocket>();
  private readonly finishedClients: Promise<void>[] = [];

  private constructor(
    private readonly opts: VenueServerOptions,
    private readonly http: Server,
    private readonly wss: WebSocketServer,
  ) {
    this.wsUrl = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
    this.types = opts.frames.map((f) => /"type":\s*"(\w+)"/.exec(f.text)?.[1]);
  }

  static async start(opts: VenueServerOptions): Promise<VenueServer> {
    const http = createServer((_, res) => res.writeHead(404).end());
    const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const s = new VenueServer(opts, http, wss);
    wss.on('connection', (ws) => s.accept(ws));
    return s;
  }

  /** Resolves once every connection so far has been sent the whole recording. */
  async finished(): Promise<void> {
    await Promise.all(this.finishedClients);
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  private accept(ws: WebSocket): void {
    this.connectionsAccepted++;
    this.clients.add(ws);
    ws.on('close', () => this.clients.delete(ws));
    ws.on('error', () => this.clients.delete(ws));
    this.finishedClients.push(
      new Promise<void>((done) => {
        let replaying = false;
        let coinbase: Subscriptions | undefined;
        ws.on('message', (data) => {
          const text = data.toString();
          this.received.push(text);
          const m = parseSubscription(text);
          if (m) coinbase = this.subscribe(ws, (coinbase ??= { channels: new Set(), asked: new Set() }), m);
          const ready = !coinbase || (BOOKS.some((b) => coinbase!.asked.has(b)) && coinbase.asked.has('ticker') && coinbase.asked.has('matches'));
          if (replaying || !ready) return;
          replaying = true;
          void this.replay(ws, coinbase).then(done);
        });
        ws.once('close', () => done());
      }),
    );
  }

  /** A Coinbase subscribe or unsubscribe: the accepted channels updated and answered, or the refusal sent. */
  private subscribe(ws: WebSocket, subs: Subscriptions, m: CoinbaseSubscription): Subscriptions {
    if (m.type === 'unsubscribe') {
      for (const c of m.channels) subs.channels.delete(c);
    } else {
      for (const c of m.channels) subs.asked.add(c);
      const refused = m.channels.some((c) => AUTHENTICATED.has(c)) ? this.authProblem(m.fields) : undefined;
      if (refused !== undefined) {
        this.refusals.push(refused);
        this.reply(ws, { type: 'error', message: 'Failed to subscribe', reason: refused });
        return subs;
      }
      for (const c of m.channels) subs.channels.add(c);
    }
    this.reply(ws, { type: 'subscriptions', channels: [...subs.channels].map((name) => ({ name, product_ids: m.productIds })) });
    return subs;
  }

  /** Why a signed subscription is not accepted, or undefined when it is. */
  private authProblem(f: Record<string, unknown>): string | undefined {
    const c = this.opts.credentials;
    if (f.key === undefined && f.signature === undefined) return 'authentication required: sign the subscription (key, passphrase, timestamp, signature)';
    if (!c || f.key !== c.key) return 'invalid key';
    if (f.passphrase !== c.passphrase) return 'invalid passphrase';
    const ts = f.timestamp;
    if (typeof ts !== 'string' || !/^\d+(\.\d+)?$/.test(ts)) return 'invalid timestamp';
    if (Math.abs(Date.now() - Number(ts) * 1000) > 30_000) return 'request timestamp expired';
    const expected = createHmac('sha256', Buffer.from(c.secret, 'base64')).update(`${ts}GET/users/self/verify`).digest('base64');
    return f.signature === expected ? undefined : 'invalid signature';
  }

  private reply(ws: WebSocket, message: object): void {
    ws.send(JSON.stringify(message));
    this.sent++;
  }

  /**
   * The recording in order, a few hundred frames per turn of the event loop, pausing while the client lags. To a
   * Coinbase client only the frames of the channels it was granted, and not the recorded `subscriptions` replies.
   */
  private async replay(ws: WebSocket, coinbase: Subscriptions | undefined): Promise<void> {
    const frames = this.opts.frames;
    for (let i = 0; i < frames.length; i++) {
      if (ws.readyState !== ws.OPEN) return;
      if (!coinbase || this.granted(coinbase, this.types[i])) {
        ws.send(frames[i]!.text);
        this.sent++;
      }
      for (const x of this.opts.extraFrames?.(i) ?? []) {
        ws.send(x);
        this.sent++;
      }
      if (i % 200 === 199) {
        while (ws.bufferedAmount > 1024 * 1024) await new Promise((r) => setTimeout(r, 5));
        await new Promise((r) => setImmediate(r));
      }
    }
  }

  private granted(subs: Subscriptions, type: string | undefined): boolean {
    if (type === 'subscriptions') return false;
    const channel = coinbaseChannel(type);
    if (channel === 'books') return BOOKS.some((b) => subs.channels.has(b));
    return channel === null || subs.channels.has(channel);
  }
}

interface CoinbaseSubscription {
  readonly type: 'subscribe' | 'unsubscribe';
  readonly channels: readonly string[];
  readonly productIds: readonly string[];
  readonly fields: Record<string, unknown>;
}

/** A Coinbase (un)subscribe message (channels as names or `{name, product_ids}`), or undefined for anything else. */
function parseSubscription(text: string): CoinbaseSubscription | undefined {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if ((m.type !== 'subscribe' && m.type !== 'unsubscribe') || !Array.isArray(m.channels)) return undefined;
  const channels = (m.channels as unknown[]).map((c) => (typeof c === 'string' ? c : String((c as { name?: unknown }).name)));
  const productIds = Array.isArray(m.product_ids) ? (m.product_ids as string[]) : [];
  return { type: m.type, channels, productIds, fields: m };
}
