// A local stand-in for Binance on 127.0.0.1, for tests and benchmarks: a WebSocket server speaking the combined-stream
// protocol (/stream?streams=a/b), with pings, and a REST server with the backfill endpoints (historicalTrades,
// aggTrades, spot /api/v3 and USD-M /fapi/v1) and the order book snapshot (depth) answering from the same recorded
// messages of ../shared/data, with weight headers and optional 429 + Retry-After. Its order books start from the
// recording's REST snapshot line and follow every depth diff it publishes, so a snapshot is always the current book. Like the exchange, it publishes on its own clock: whatever is
// published while a client is away is only to be had over REST. It can drop connections, go silent, announce
// serverShutdown and mix extra (e.g. malformed) frames into the stream. It serves exchangeInfo from a mutable instrument
// list (list and delist symbols while it runs), honours SUBSCRIBE / UNSUBSCRIBE on its combined-stream connections
// (answering {"result":null,"id":N}) and, like Binance, closes a connection that sends more than 5 messages a second
// (pongs not counted here: tests ping far more often than Binance).
//
// Run directly (benchmarks, manual tests) it prints {"wsUrl","restUrl"} on stdout and serves until stdin closes:
//   tsx test/binance-server.ts [--rate=0] [--max-events=N] [--repeat=N]
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { readCapture } from '../ingestion/capture.ts';

/** ../shared/data relative to the repository root. */
export const SHARED_DATA = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../shared/data');

/** For `describe.skipIf(...)`: why recorded data cannot be used here, or undefined. */
export function missingRecordings(): string | undefined {
  if (existsSync(join(SHARED_DATA, 'binance-spot')) && existsSync(join(SHARED_DATA, 'binance-usdm'))) return undefined;
  const msg = `needs the recorded market data in ${SHARED_DATA} (binance-spot, binance-usdm)`;
  console.warn(`[skipped] ${msg}`);
  return msg;
}

export type RecordedSymbol = 'BTCUSDT' | 'ETHUSDT' | 'BNBUSDT';

export interface RecordedEvent {
  readonly stream: string;
  /** The combined-stream frame as sent. */
  readonly text: string;
  readonly receiveNs: bigint;
  readonly symbol: string;
  readonly type: 'trade' | 'aggTrade' | 'bookTicker' | 'depth';
  /** Trade id, aggTrade id or book update id (depth: the diff's last update id u). */
  readonly id: number;
}

export interface TradeRow {
  readonly id: number;
  readonly price: string;
  readonly qty: string;
  readonly quoteQty: string;
  readonly time: number;
  readonly isBuyerMaker: boolean;
  readonly isBestMatch: boolean;
}
export interface AggTradeRow {
  readonly a: number;
  readonly p: string;
  readonly q: string;
  readonly f: number;
  readonly l: number;
  readonly T: number;
  readonly m: boolean;
  readonly M: boolean;
}

export interface DepthSnapshotBody {
  readonly lastUpdateId: number;
  readonly bids: readonly (readonly [string, string])[];
  readonly asks: readonly (readonly [string, string])[];
}

export interface Recording {
  readonly events: readonly RecordedEvent[];
  readonly trades: ReadonlyMap<string, readonly TradeRow[]>;
  readonly aggTrades: ReadonlyMap<string, readonly AggTradeRow[]>;
  /** The recorded REST depth snapshot per symbol (spot captures only), where depth events were loaded. */
  readonly depthSnapshots: ReadonlyMap<string, DepthSnapshotBody>;
}

export interface LoadOptions {
  readonly symbols?: readonly RecordedSymbol[];
  /** Default: trade, aggTrade, bookTicker; `depth` adds the spot depth diffs (and their snapshot for REST). */
  readonly types?: readonly ('trade' | 'aggTrade' | 'bookTicker' | 'depth')[];
  /** Keep only the first N events of the merged timeline. */
  readonly maxEvents?: number;
  /** Also read the second spot file of each symbol (after midnight). */
  readonly bothDays?: boolean;
}

/** Exact decimal arithmetic on decimal strings, for derived aggTrade quantities and quote quantities. */
function toScaled(s: string, scale: number): bigint {
  const [i, f = ''] = s.split('.');
  return BigInt(i! + f.padEnd(scale, '0').slice(0, scale));
}
function fromScaled(v: bigint, scale: number): string {
  const s = v.toString().padStart(scale + 1, '0');
  return scale === 0 ? s : `${s.slice(0, -scale)}.${s.slice(-scale)}`;
}
const decimals = (s: string) => (s.split('.')[1] ?? '').length;
function addDecimal(a: string, b: string): string {
  const scale = Math.max(decimals(a), decimals(b));
  return fromScaled(toScaled(a, scale) + toScaled(b, scale), scale);
}
function mulDecimal(a: string, b: string): string {
  const sa = decimals(a);
  const sb = decimals(b);
  return fromScaled(toScaled(a, sa) * toScaled(b, sb), sa + sb);
}

interface RawTrade {
  t: number;
  p: string;
  q: string;
  T: number;
  E: number;
  m: boolean;
}

/**
 * Loads recorded messages. BTCUSDT and ETHUSDT are real spot captures. There is no BNBUSDT capture: its stream is
 * the real USD-M BTCUSDT capture relabelled as BNBUSDT and rewritten to spot form (no X on trades, no e/E/T on book
 * tickers). There is no spot aggTrade capture either: aggTrades are derived from the recorded trades the way Binance
 * aggregates them (consecutive trades with the same price, side and time), and published when their last trade is.
 */
export async function loadRecording(opts: LoadOptions = {}): Promise<Recording> {
  const symbols = opts.symbols ?? ['BTCUSDT', 'ETHUSDT', 'BNBUSDT'];
  const types = new Set(opts.types ?? ['trade', 'aggTrade', 'bookTicker']);
  const depthSnapshots = new Map<string, DepthSnapshotBody>();
  const files: { path: string; symbol: string; relabel: boolean }[] = [];
  for (const s of symbols) {
    if (s === 'BNBUSDT') files.push({ path: join(SHARED_DATA, 'binance-usdm/btcusdt_20240808.gz'), symbol: s, relabel: true });
    else {
      const lower = s.toLowerCase();
      files.push({ path: join(SHARED_DATA, `binance-spot/${lower}_20240808.gz`), symbol: s, relabel: false });
      if (opts.bothDays) files.push({ path: join(SHARED_DATA, `binance-spot/${lower}_20240809.gz`), symbol: s, relabel: false });
    }
  }
  const events: RecordedEvent[] = [];
  const trades = new Map<string, TradeRow[]>();
  const aggTrades = new Map<string, AggTradeRow[]>();
  for (const f of files) {
    const lower = f.symbol.toLowerCase();
    const tradeRows = trades.get(f.symbol) ?? [];
    const aggRows = aggTrades.get(f.symbol) ?? [];
    trades.set(f.symbol, tradeRows);
    {
      // Open aggregate: consecutive trades with the same price, side and time.
      let open: { first: RawTrade; last: RawTrade; q: string; receiveNs: bigint } | undefined;
      let nextAggId = 100_000_000 + (aggRows.at(-1)?.a ?? 0);
      const closeAgg = () => {
        if (!open) return;
        const row: AggTradeRow = { a: nextAggId++, p: open.first.p, q: open.q, f: open.first.t, l: open.last.t, T: open.first.T, m: open.first.m, M: true };
        aggRows.push(row);
        if (types.has('aggTrade')) {
          const data = { e: 'aggTrade', E: open.last.E, s: f.symbol, ...row };
          events.push({ stream: `${lower}@aggTrade`, text: JSON.stringify({ stream: `${lower}@aggTrade`, data }), receiveNs: open.receiveNs, symbol: f.symbol, type: 'aggTrade', id: row.a });
        }
        open = undefined;
      };
      for await (const frame of readCapture(f.path)) {
        if (frame.text.startsWith('{"lastUpdateId"') && types.has('depth') && !f.relabel && !depthSnapshots.has(f.symbol)) {
          depthSnapshots.set(f.symbol, JSON.parse(frame.text) as DepthSnapshotBody);
          continue;
        }
        if (!frame.text.startsWith('{"stream"')) continue;
        const msg = JSON.parse(frame.text) as { stream: string; data: Record<string, unknown> };
        const kind = msg.stream.slice(msg.stream.indexOf('@') + 1);
        if (kind === 'trade') {
          const d = msg.data as unknown as RawTrade & { X?: string };
          if (d.X !== undefined && d.X !== 'MARKET') continue; // USD-M: only market trades are public trades
          tradeRows.push({ id: d.t, price: d.p, qty: d.q, quoteQty: mulDecimal(d.p, d.q), time: d.T, isBuyerMaker: d.m, isBestMatch: true });
          if (open && (open.first.p !== d.p || open.first.m !== d.m || open.first.T !== d.T)) closeAgg();
          if (open) {
            open.last = d;
            open.q = addDecimal(open.q, d.q);
            open.receiveNs = frame.receiveNs;
          } else open = { first: d, last: d, q: d.q, receiveNs: frame.receiveNs };
          if (types.has('trade')) {
            const data = { e: 'trade', E: d.E, s: f.symbol, t: d.t, p: d.p, q: d.q, T: d.T, m: d.m, M: true };
            const text = f.relabel ? JSON.stringify({ stream: `${lower}@trade`, data }) : frame.text;
            events.push({ stream: `${lower}@trade`, text, receiveNs: frame.receiveNs, symbol: f.symbol, type: 'trade', id: d.t });
          }
        } else if (kind.startsWith('depth') && types.has('depth') && !f.relabel) {
          events.push({ stream: msg.stream, text: frame.text, receiveNs: frame.receiveNs, symbol: f.symbol, type: 'depth', id: msg.data.u as number });
        } else if (kind === 'bookTicker' && types.has('bookTicker')) {
          const d = msg.data as { u: number; b: string; B: string; a: string; A: string };
          const text = f.relabel ? JSON.stringify({ stream: `${lower}@bookTicker`, data: { u: d.u, s: f.symbol, b: d.b, B: d.B, a: d.a, A: d.A } }) : frame.text;
          events.push({ stream: `${lower}@bookTicker`, text, receiveNs: frame.receiveNs, symbol: f.symbol, type: 'bookTicker', id: d.u });
        }
      }
      closeAgg();
    }
    aggTrades.set(f.symbol, aggRows);
  }
  events.sort((a, b) => (a.receiveNs < b.receiveNs ? -1 : a.receiveNs > b.receiveNs ? 1 : 0));
  const kept = opts.maxEvents ? events.slice(0, opts.maxEvents) : events;
  // REST answers only for what the kept timeline contains.
  const lastId = new Map<string, number>();
  for (const e of kept) if (e.type === 'trade' || e.type === 'aggTrade') lastId.set(`${e.type}:${e.symbol}`, e.id);
  for (const [s, rows] of trades) trades.set(s, rows.filter((r) => r.id <= (lastId.get(`trade:${s}`) ?? -1)));
  for (const [s, rows] of aggTrades) aggTrades.set(s, rows.filter((r) => r.a <= (lastId.get(`aggTrade:${s}`) ?? -1)));
  return { events: kept, trades, aggTrades, depthSnapshots };
}

/** Trade ids of the recording per symbol, in order: what a gap-free topic must hold. */
export function expectedIds(rec: Recording, type: 'trade' | 'aggTrade'): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const e of rec.events) {
    if (e.type !== type) continue;
    let l = m.get(e.symbol);
    if (!l) m.set(e.symbol, (l = []));
    l.push(e.id);
  }
  return m;
}

export interface ServerOptions {
  readonly recording: Recording;
  /** Events published per second; 0 = as fast as the clients read (no client is dropped for being slow). */
  readonly rate?: number;
  /** Publish from the start (default) or wait for play(). */
  readonly autoplay?: boolean;
  readonly pingIntervalMs?: number;
  /** Publish the recording this many times (ids shifted each time), for benchmarks. */
  readonly repeat?: number;
  /** With repeat: also shift every exchange and event time (T, E) by this many ms per round, so rounds fill new minutes. */
  readonly repeatShiftMs?: number;
  /** At a fixed rate, publish what the rate owes by the clock since play() (a benchmark's offered rate), rather than
   * rate x 10 ms per timer tick (timers fire late, so that runs some 10-15 % under the rate). */
  readonly byClock?: boolean;
  /** At a fixed rate, a client that has this many bytes unread is disconnected, as Binance does with slow clients. */
  readonly slowClientBytes?: number;
  /**
   * Extra raw text frames sent after event i (before the next), to every client subscribed to that event's stream; a
   * Buffer goes as a text frame of exactly its bytes (UTF-8 or not).
   */
  readonly extraFrames?: (i: number, event: RecordedEvent) => readonly (string | Buffer)[] | undefined;
  /** Events published (the exchange's clock and books move on) but sent to no client: a lost frame. */
  readonly skip?: (i: number, event: RecordedEvent) => boolean;
}

/** One side of the stand-in's order book: price text -> quantity text. */
type Side = Map<string, string>;
interface ServerBook {
  lastUpdateId: number;
  readonly bids: Side;
  readonly asks: Side;
}

function topLevels(side: Side, limit: number, descending: boolean): [string, string][] {
  return [...side].sort((a, b) => (descending ? Number(b[0]) - Number(a[0]) : Number(a[0]) - Number(b[0]))).slice(0, limit);
}

interface Client {
  readonly ws: WebSocket;
  readonly streams: Set<string>;
  silent: boolean;
  pongs: number;
  /** Times (ms) of the text messages received in the last second. */
  readonly incoming: number[];
}

/** An instrument of exchangeInfo's `symbols[]` (the fields the product reads). */
export interface ServerInstrument {
  symbol: string;
  status: string;
  baseAsset: string;
  quoteAsset: string;
}

/** A SUBSCRIBE / UNSUBSCRIBE the stand-in received, with the last ids published when it took effect. */
export interface SubscriptionRequest {
  readonly method: string;
  readonly params: readonly string[];
  readonly id: unknown;
  readonly atPublished: number;
  readonly lastIds: ReadonlyMap<string, number>;
}

/** Binance's limit on incoming messages per second per connection (Binance counts pongs too; the stand-in does not). */
export const INCOMING_MESSAGES_PER_SECOND = 5;
/** Longest stream URL Binance accepts (scheme, host and port included). */
const URL_MAX_CHARS = 8_004;

const WEIGHTS: Record<string, number> = {
  '/api/v3/historicalTrades': 25,
  '/api/v3/aggTrades': 4,
  '/fapi/v1/historicalTrades': 20,
  '/fapi/v1/aggTrades': 20,
  '/api/v3/depth': 50,
  '/fapi/v1/depth': 20,
  '/api/v3/exchangeInfo': 20,
  '/fapi/v1/exchangeInfo': 1,
};

export class BinanceServer {
  readonly wsUrl: string;
  readonly restUrl: string;
  /** Events published so far (the exchange's clock). */
  published = 0;
  /** Connections ever accepted. */
  connectionsAccepted = 0;
  /** Upgrades refused for a URL over URL_MAX_CHARS. */
  urlsRefused = 0;
  restRequests = 0;
  /** Depth snapshot requests answered (not rate limited). */
  depthRequests = 0;
  rateLimited = 0;
  /** exchangeInfo's instruments: by default every recorded symbol, TRADING; change it to list or delist. */
  readonly instruments: ServerInstrument[];
  /** Every SUBSCRIBE / UNSUBSCRIBE received, in order. */
  readonly subscriptionRequests: SubscriptionRequest[] = [];
  /** Connections closed for sending more than INCOMING_MESSAGES_PER_SECOND messages a second. */
  messageLimitClosed = 0;
  exchangeInfoRequests = 0;
  /** Depth events published but sent to nobody (ServerOptions.skip). */
  readonly skipped: RecordedEvent[] = [];
  /** The exchange's order books, per symbol (from the recorded snapshot on). */
  readonly books = new Map<string, ServerBook>();
  readonly finished: Promise<void>;

  private readonly clients = new Set<Client>();
  private readonly lastPublished = new Map<string, number>();
  private playing = false;
  /** byClock: when the last tick published, and the fraction of an event owed. */
  private tickAt = 0;
  private owed = 0;
  private timer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private resolveFinished!: () => void;
  private limitNext = 0;
  private limitStatus = 429;
  private retryAfterS = 1;
  private weightMinute = 0;
  private weightUsed = 0;
  private readonly total: number;
  /** Per (type, symbol): last id - first id + 1 in the recording. */
  private readonly spans = new Map<string, number>();

  private constructor(
    private readonly opts: ServerOptions,
    private readonly http: Server,
    private readonly wss: WebSocketServer,
  ) {
    const port = (http.address() as AddressInfo).port;
    this.wsUrl = `ws://127.0.0.1:${port}`;
    this.restUrl = `http://127.0.0.1:${port}`;
    this.total = opts.recording.events.length * (opts.repeat ?? 1);
    const first = new Map<string, number>();
    for (const e of opts.recording.events) {
      const k = `${e.type}:${e.symbol}`;
      if (!first.has(k)) first.set(k, e.id);
      this.spans.set(k, e.id - first.get(k)! + 1);
    }
    this.finished = new Promise((r) => (this.resolveFinished = r));
    if (this.total === 0) this.resolveFinished();
    this.instruments = [...new Set(opts.recording.events.map((e) => e.symbol))].sort().map((symbol) => ({ symbol, status: 'TRADING', baseAsset: symbol.replace(/USDT$/, ''), quoteAsset: 'USDT' }));
    for (const [symbol, snap] of opts.recording.depthSnapshots) {
      this.books.set(symbol, { lastUpdateId: snap.lastUpdateId, bids: new Map(snap.bids.map(([p, q]) => [p, q])), asks: new Map(snap.asks.map(([p, q]) => [p, q])) });
    }
  }

  static async start(opts: ServerOptions): Promise<BinanceServer> {
    // Headers up to 64 KB, so that a URL too long for Binance (below) gets Binance's refusal, not Node's 431.
    const http = createServer({ maxHeaderSize: 64 * 1024 });
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const s = new BinanceServer(opts, http, wss);
    http.on('request', (req, res) => s.rest(req, res));
    http.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', s.restUrl);
      if (url.pathname !== '/stream') {
        socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
        return;
      }
      // Binance refuses a stream URL past 8,004 characters, however few streams it names (as client libraries report).
      if (s.wsUrl.length + (req.url ?? '').length > URL_MAX_CHARS) {
        s.urlsRefused++;
        socket.end('HTTP/1.1 414 URI Too Long\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => s.accept(ws, url));
    });
    s.pingTimer = setInterval(() => {
      for (const c of s.clients) if (!c.silent) c.ws.ping(Buffer.from(String(Date.now())));
    }, opts.pingIntervalMs ?? 20_000);
    if (opts.autoplay ?? true) s.play();
    return s;
  }

  get openConnections(): number {
    return this.clients.size;
  }

  get pongs(): number {
    let n = 0;
    for (const c of this.clients) n += c.pongs;
    return n;
  }

  get done(): boolean {
    return this.published >= this.total;
  }

  play(): void {
    if (this.playing) return;
    this.playing = true;
    this.tickAt = Date.now();
    this.owed = 0;
    this.schedule();
  }

  pause(): void {
    this.playing = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Drops every connection abruptly (no close frame), as a network failure would. */
  dropConnections(): void {
    for (const c of this.clients) c.ws.terminate();
    this.clients.clear();
  }

  /** The current connections get nothing more (no data, no pings); new ones are served normally. */
  silence(): void {
    for (const c of this.clients) c.silent = true;
  }

  /** Announces serverShutdown on every connection and closes them after `graceMs`. */
  serverShutdown(graceMs = 3000): void {
    const text = JSON.stringify({ event: { e: 'serverShutdown', E: Date.now() } });
    const going = [...this.clients];
    for (const c of going) c.ws.send(text);
    setTimeout(() => {
      for (const c of going) {
        c.ws.close(1001, 'server shutdown');
        this.clients.delete(c);
      }
    }, graceMs).unref();
  }

  /** Sets an instrument's status (TRADING lists it, BREAK or absent delists it for a rule); adds it when unknown. */
  setInstrument(symbol: string, status: string, quoteAsset = 'USDT'): void {
    const i = this.instruments.find((x) => x.symbol === symbol);
    if (i) i.status = status;
    else this.instruments.push({ symbol, status, baseAsset: symbol.replace(new RegExp(`${quoteAsset}$`), ''), quoteAsset });
  }

  /** The streams the open connections carry now. */
  subscribedStreams(): Set<string> {
    const out = new Set<string>();
    for (const c of this.clients) for (const s of c.streams) out.add(s);
    return out;
  }

  /** The next `n` REST requests get `status` (429 or 418) with Retry-After. */
  rateLimitNext(n: number, retryAfterS = 1, status = 429): void {
    this.limitNext = n;
    this.retryAfterS = retryAfterS;
    this.limitStatus = status;
  }

  async close(): Promise<void> {
    this.pause();
    clearInterval(this.pingTimer);
    for (const c of this.clients) c.ws.terminate();
    this.clients.clear();
    await new Promise<void>((r) => this.wss.close(() => r()));
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  private accept(ws: WebSocket, url: URL): void {
    const streams = new Set((url.searchParams.get('streams') ?? '').split('/').filter(Boolean));
    const c: Client = { ws, streams, silent: false, pongs: 0, incoming: [] };
    this.connectionsAccepted++;
    this.clients.add(c);
    // Binance counts pongs among the 5 messages a second too; here they are not, because tests ping many times faster
    // than Binance's every 20 s (and ws answers each ping on its own).
    ws.on('pong', () => c.pongs++);
    ws.on('message', (data) => {
      if (!this.countIncoming(c)) return;
      this.subscription(c, data.toString());
    });
    ws.on('close', () => this.clients.delete(c));
    ws.on('error', () => this.clients.delete(c));
  }

  /** Counts one incoming message; over the limit the connection is closed (false). */
  private countIncoming(c: Client): boolean {
    const now = Date.now();
    while (c.incoming.length > 0 && c.incoming[0]! <= now - 1000) c.incoming.shift();
    c.incoming.push(now);
    if (c.incoming.length <= INCOMING_MESSAGES_PER_SECOND) return true;
    this.messageLimitClosed++;
    c.ws.close(1008, 'too many messages');
    this.clients.delete(c);
    return false;
  }

  /** SUBSCRIBE / UNSUBSCRIBE, as Binance answers them on a combined-stream connection. */
  private subscription(c: Client, text: string): void {
    let m: { method?: unknown; params?: unknown; id?: unknown };
    try {
      m = JSON.parse(text) as typeof m;
    } catch {
      c.ws.send(JSON.stringify({ error: { code: 3, msg: 'Invalid JSON' }, id: null }));
      return;
    }
    const params = Array.isArray(m.params) && m.params.every((p) => typeof p === 'string') ? (m.params as string[]) : undefined;
    if ((m.method !== 'SUBSCRIBE' && m.method !== 'UNSUBSCRIBE') || !params) {
      c.ws.send(JSON.stringify({ error: { code: 2, msg: 'Invalid request' }, id: m.id ?? null }));
      return;
    }
    if (m.method === 'SUBSCRIBE' && new Set([...c.streams, ...params]).size > 1024) {
      c.ws.send(JSON.stringify({ error: { code: 2, msg: 'Too many streams' }, id: m.id ?? null }));
      return;
    }
    for (const p of params) if (m.method === 'SUBSCRIBE') c.streams.add(p);
    else c.streams.delete(p);
    this.subscriptionRequests.push({ method: m.method, params, id: m.id, atPublished: this.published, lastIds: new Map(this.lastPublished) });
    c.ws.send(JSON.stringify({ result: null, id: m.id }));
  }

  private event(i: number): RecordedEvent {
    const evs = this.opts.recording.events;
    const e = evs[i % evs.length]!;
    const round = Math.floor(i / evs.length);
    // Depth diffs are not repeated with shifted ids (U, u and the book would all have to move): benchmarks only.
    if (round === 0 || e.type === 'depth') return e;
    // Repeats shift ids past the recording's own span, so each id sequence runs on without a hole.
    const shift = round * (this.spans.get(`${e.type}:${e.symbol}`) ?? 0);
    let text = e.type === 'trade' ? e.text.replace(`"t":${e.id}`, `"t":${e.id + shift}`) : e.type === 'aggTrade' ? e.text.replace(`"a":${e.id}`, `"a":${e.id + shift}`) : e.text.replace(`"u":${e.id}`, `"u":${e.id + shift}`);
    const dMs = round * (this.opts.repeatShiftMs ?? 0);
    if (dMs !== 0) text = text.replace(/"([TE])":(\d+)/g, (_, k: string, v: string) => `"${k}":${Number(v) + dMs}`);
    return { ...e, text, id: e.id + shift };
  }

  /** The top of the stand-in's book of `symbol`, best first, as the REST snapshot shows it. */
  bookTop(symbol: string, limit: number): DepthSnapshotBody | undefined {
    const b = this.books.get(symbol);
    return b && { lastUpdateId: b.lastUpdateId, bids: topLevels(b.bids, limit, true), asks: topLevels(b.asks, limit, false) };
  }

  private applyDepth(e: RecordedEvent): void {
    const book = this.books.get(e.symbol);
    if (!book || e.id <= book.lastUpdateId) return;
    const d = (JSON.parse(e.text) as { data: { b: [string, string][]; a: [string, string][] } }).data;
    for (const [side, levels] of [[book.bids, d.b], [book.asks, d.a]] as const) {
      for (const [p, q] of levels) {
        if (Number(q) === 0) side.delete(p);
        else side.set(p, q);
      }
    }
    book.lastUpdateId = e.id;
  }

  private publish(i: number): void {
    const e = this.event(i);
    if (e.type === 'depth') this.applyDepth(e);
    if (this.opts.skip?.(i, e)) {
      this.skipped.push(e);
      this.published = i + 1;
      return;
    }
    const extra = this.opts.extraFrames?.(i, e);
    for (const c of this.clients) {
      if (c.silent || !c.streams.has(e.stream)) continue;
      c.ws.send(e.text);
      if (extra) for (const x of extra) c.ws.send(x, { binary: false });
    }
    if (e.type === 'trade' || e.type === 'aggTrade') this.lastPublished.set(`${e.type}:${e.symbol}`, e.id);
    this.published = i + 1;
  }

  private schedule(): void {
    if (!this.playing) return;
    const rate = this.opts.rate ?? 1000;
    if (this.published >= this.total) {
      this.playing = false;
      this.resolveFinished();
      return;
    }
    if (rate <= 0) {
      // As fast as the clients read: publish while every subscriber has little unread.
      let n = 0;
      while (n < 2000 && this.published < this.total) {
        let busy = false;
        for (const c of this.clients) if (c.ws.bufferedAmount > 4 * 1024 * 1024) busy = true;
        if (busy) break;
        this.publish(this.published);
        n++;
      }
      this.timer = n > 0 ? (setImmediate(() => this.schedule()) as unknown as NodeJS.Timeout) : setTimeout(() => this.schedule(), 1);
      return;
    }
    const tickMs = 10;
    let perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
    if (this.opts.byClock) {
      const now = Date.now();
      this.owed = Math.min(rate, this.owed + ((now - this.tickAt) * rate) / 1000); // at most a second's worth at once
      this.tickAt = now;
      perTick = Math.floor(this.owed);
      this.owed -= perTick;
    }
    for (let n = 0; n < perTick && this.published < this.total; n++) this.publish(this.published);
    const limit = this.opts.slowClientBytes;
    if (limit !== undefined) {
      for (const c of [...this.clients]) {
        if (c.ws.bufferedAmount > limit) {
          c.ws.terminate();
          this.clients.delete(c);
        }
      }
    }
    this.timer = setTimeout(() => this.schedule(), tickMs);
  }

  private rest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.restUrl);
    const weight = WEIGHTS[url.pathname];
    if (weight === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"code":-1,"msg":"not found"}');
      return;
    }
    this.restRequests++;
    const minute = Math.floor(Date.now() / 60_000);
    if (minute !== this.weightMinute) {
      this.weightMinute = minute;
      this.weightUsed = 0;
    }
    this.weightUsed += weight;
    const headers = { 'content-type': 'application/json', 'x-mbx-used-weight-1m': String(this.weightUsed) };
    if (this.limitNext > 0) {
      this.limitNext--;
      this.rateLimited++;
      res.writeHead(this.limitStatus, { ...headers, 'retry-after': String(this.retryAfterS) });
      res.end(JSON.stringify({ code: -1003, msg: 'Too many requests' }));
      return;
    }
    if (url.pathname.endsWith('/exchangeInfo')) {
      this.exchangeInfoRequests++;
      res.writeHead(200, headers);
      res.end(JSON.stringify({ timezone: 'UTC', serverTime: Date.now(), rateLimits: [], exchangeFilters: [], symbols: this.instruments }));
      return;
    }
    const symbol = url.searchParams.get('symbol') ?? '';
    const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get('limit') ?? 500)));
    if (url.pathname.endsWith('/depth')) {
      const top = this.bookTop(symbol, limit);
      res.writeHead(top ? 200 : 400, headers);
      res.end(JSON.stringify(top ?? { code: -1121, msg: 'Invalid symbol.' }));
      if (top) this.depthRequests++;
      return;
    }
    const fromIdParam = url.searchParams.get('fromId');
    const agg = url.pathname.endsWith('aggTrades');
    const rows: readonly (TradeRow | AggTradeRow)[] = (agg ? this.opts.recording.aggTrades.get(symbol) : this.opts.recording.trades.get(symbol)) ?? [];
    if (!/^[A-Z0-9]{2,20}$/.test(symbol) || (!agg && !this.opts.recording.trades.has(symbol)) || (agg && !this.opts.recording.aggTrades.has(symbol))) {
      res.writeHead(400, headers);
      res.end(JSON.stringify({ code: -1121, msg: 'Invalid symbol.' }));
      return;
    }
    const idOf = (r: TradeRow | AggTradeRow) => ('a' in r ? r.a : r.id);
    const published = this.lastPublished.get(`${agg ? 'aggTrade' : 'trade'}:${symbol}`) ?? -1;
    let out: (TradeRow | AggTradeRow)[];
    // Repeats: answer from the round the asked id belongs to, with that round's id and time shift.
    const span = this.spans.get(`${agg ? 'aggTrade' : 'trade'}:${symbol}`) ?? 0;
    const firstId = rows.length > 0 ? idOf(rows[0]!) : 0;
    const asked = fromIdParam === null ? published : Number(fromIdParam);
    const round = span > 0 && (this.opts.repeat ?? 1) > 1 ? Math.max(0, Math.floor((asked - firstId) / span)) : 0;
    if (round > 0) {
      const dId = round * span;
      const dMs = round * (this.opts.repeatShiftMs ?? 0);
      const base = rows.filter((r) => idOf(r) + dId >= (fromIdParam === null ? -Infinity : asked) && idOf(r) + dId <= published);
      const picked = fromIdParam === null ? base.slice(-limit) : base.slice(0, limit);
      out = picked.map((r) => ('a' in r ? { ...r, a: r.a + dId, T: r.T + dMs } : { ...r, id: r.id + dId, time: r.time + dMs }));
      res.writeHead(200, headers);
      res.end(JSON.stringify(out));
      return;
    }
    if (fromIdParam === null) {
      const visible = rows.filter((r) => idOf(r) <= published);
      out = visible.slice(-limit);
    } else {
      const fromId = Number(fromIdParam);
      // Binary search for the first row at or after fromId.
      let lo = 0;
      let hi = rows.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (idOf(rows[mid]!) < fromId) lo = mid + 1;
        else hi = mid;
      }
      out = [];
      for (let i = lo; i < rows.length && out.length < limit && idOf(rows[i]!) <= published; i++) out.push(rows[i]!);
    }
    res.writeHead(200, headers);
    res.end(JSON.stringify(out));
  }
}

// Standalone: serve the recording, print the URLs, stop when stdin closes.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name: string, fallback: number) => {
    const a = process.argv.find((x) => x.startsWith(`--${name}=`));
    return a ? Number(a.split('=')[1]) : fallback;
  };
  const maxEvents = arg('max-events', 0);
  const recording = await loadRecording(maxEvents > 0 ? { maxEvents } : {});
  const server = await BinanceServer.start({ recording, rate: arg('rate', 0), repeat: arg('repeat', 1), autoplay: arg('autoplay', 1) === 1 });
  process.stdout.write(`${JSON.stringify({ wsUrl: server.wsUrl, restUrl: server.restUrl, events: recording.events.length })}\n`);
  process.stdin.resume();
  process.stdin.on('data', (d) => {
    if (d.toString().includes('play')) server.play();
  });
  process.stdin.on('end', () => void server.close().then(() => process.exit(0)));
}
