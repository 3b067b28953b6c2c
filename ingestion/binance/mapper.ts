// Binance combined-stream frames -> normalized records, in pure code: one frame of text and its receive time in,
// a typed record, a control event, an "ignored" or a rejection with its reason out. Nothing here knows about sockets.
import type { StreamType } from '../../common/config.ts';
import type { AggTrade, Market, Tick, TickType, Trade } from '../../common/records.ts';
import { crossFieldProblem, isDecimal, isId, isPositiveDecimal, isTime, newAggTrade, newBookTicker, newTrade, tickField, type TickField } from '../../common/tick-schema.ts';

export type MapResult =
  | { readonly kind: 'tick'; readonly stream: string; readonly tick: Tick }
  /** The exchange announced it is going away: the feed opens a new connection at once. */
  | { readonly kind: 'serverShutdown'; readonly eventTimeMs: number | null }
  /** Well-formed but not wanted here (subscription replies, depth streams in a capture, unsubscribed symbols). */
  | { readonly kind: 'ignored'; readonly stream: string | null; readonly why: string }
  | { readonly kind: 'rejected'; readonly stream: string | null; readonly reason: string };

export interface MapperOptions {
  readonly market: Market;
  /** Frames longer than this are rejected before parsing. */
  readonly maxFrameBytes: number;
  /** Stream types to map; others are ignored. */
  readonly streamTypes: readonly StreamType[];
  /** Upper-case symbols to map; others are ignored. Undefined: every symbol. A Set is read live (symbols by rule). */
  readonly symbols?: readonly string[] | ReadonlySet<string>;
}

export interface Mapper {
  readonly market: Market;
  map(text: string, receiveTimeUs: number): MapResult;
}

const SYMBOL = /^[A-Z0-9]{2,20}$/;

type Fields = Record<string, unknown>;

function short(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(JSON.stringify(v) ?? v);
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

/** One payload key and the schema field it fills. */
interface KeyCheck {
  readonly key: string;
  readonly field: TickField;
}

/** Payload keys (in the order they are checked) with the schema field each fills: built once, at load. */
function keyChecks(type: TickType, keys: Readonly<Record<string, string>>): readonly KeyCheck[] {
  return Object.entries(keys).map(([key, name]) => ({ key, field: tickField(type, name) }));
}

/** Binance's WebSocket payload keys of each tick stream and the record field each fills, in the order they are checked. */
export const WS_KEYS: Readonly<Record<TickType, Readonly<Record<string, string>>>> = {
  trade: { t: 'tradeId', p: 'price', q: 'quantity', T: 'exchangeTimeMs', E: 'eventTimeMs', m: 'buyerIsMaker' },
  aggTrade: { a: 'aggId', p: 'price', q: 'quantity', f: 'firstTradeId', l: 'lastTradeId', T: 'exchangeTimeMs', E: 'eventTimeMs', m: 'buyerIsMaker' },
  bookTicker: { u: 'updateId', b: 'bidPrice', B: 'bidQty', a: 'askPrice', A: 'askQty', T: 'exchangeTimeMs', E: 'eventTimeMs' },
};
const WS_TRADE = keyChecks('trade', WS_KEYS.trade);
const WS_AGG_TRADE = keyChecks('aggTrade', WS_KEYS.aggTrade);
const WS_BOOK_TICKER = keyChecks('bookTicker', WS_KEYS.bookTicker);
const REST_TRADE = keyChecks('trade', { id: 'tradeId', price: 'price', qty: 'quantity', time: 'exchangeTimeMs', isBuyerMaker: 'buyerIsMaker' });
const REST_AGG_TRADE = keyChecks('aggTrade', { a: 'aggId', p: 'price', q: 'quantity', f: 'firstTradeId', l: 'lastTradeId', T: 'exchangeTimeMs', m: 'buyerIsMaker' });

/**
 * The first payload key that breaks its field's rule, as the rejection's reason; undefined when all hold. A nullable
 * field may be absent. `showFlag`: a bad flag's reason shows the value (the WebSocket's reasons do, REST's do not).
 */
function badKey(d: Fields, checks: readonly KeyCheck[], showFlag: boolean): string | undefined {
  for (let i = 0; i < checks.length; i++) {
    const { key, field } = checks[i]!;
    const v = d[key];
    const kind = field.kind;
    if (kind === 'flag') {
      if (typeof v !== 'boolean') return showFlag ? `field ${key} is not a boolean: ${short(v)}` : `field ${key} is not a boolean`;
      continue;
    }
    if (v === undefined) {
      if (field.nullable) continue;
      return `missing field ${key}`;
    }
    if ((kind === 'id' && !isId(v)) || (kind === 'time' && !isTime(v))) return `field ${key} is not ${field.noun}: ${short(v)}`;
    if (kind === 'decimal' && !isDecimal(v)) return `field ${key} is not a non-negative decimal string: ${short(v)}`;
    if (kind === 'positiveDecimal') {
      if (!isDecimal(v)) return `field ${key} is not a decimal string: ${short(v)}`;
      if (!isPositiveDecimal(v)) return `field ${key} is not positive: ${short(v)}`;
    }
  }
  return undefined;
}

/** An aggregate trade's trade ids run forward (checked after badKey has seen both are ids). */
const badTradeIdRange = (d: Fields): string | undefined =>
  (d.f as number) > (d.l as number) ? 'first trade id f exceeds last trade id l' : undefined;

const badEvent = (d: Fields, type: string): string | undefined => (d.e !== type ? `event type ${short(d.e)} does not match stream` : undefined);

const TYPES: Record<string, Exclude<StreamType, 'depth'>> = { trade: 'trade', aggTrade: 'aggTrade', bookTicker: 'bookTicker' };

export function createBinanceMapper(opts: MapperOptions): Mapper {
  const { market, maxFrameBytes } = opts;
  const wantedTypes = new Set<string>(opts.streamTypes);
  const wantedSymbols = opts.symbols instanceof Set ? opts.symbols : opts.symbols ? new Set([...opts.symbols].map((s) => s.toUpperCase())) : undefined;

  function reject(stream: string | null, reason: string): MapResult {
    return { kind: 'rejected', stream, reason };
  }

  function tick(stream: string, tick: Tick): MapResult {
    const problem = crossFieldProblem(tick);
    return problem === undefined ? { kind: 'tick', stream, tick } : reject(stream, problem);
  }

  function mapTrade(stream: string, symbol: string, d: Fields, receiveTimeUs: number): MapResult {
    const bad = badEvent(d, 'trade') ?? badKey(d, WS_TRADE, true);
    if (bad) return reject(stream, bad);
    const m = d.m as boolean;
    return tick(stream, newTrade('binance', market, symbol, receiveTimeUs, d.t as number, d.p as string, d.q as string, m, d.T as number, d.E as number));
  }

  function mapAggTrade(stream: string, symbol: string, d: Fields, receiveTimeUs: number): MapResult {
    const bad = badEvent(d, 'aggTrade') ?? badKey(d, WS_AGG_TRADE, true) ?? badTradeIdRange(d);
    if (bad) return reject(stream, bad);
    const first = d.f as number;
    const last = d.l as number;
    const m = d.m as boolean;
    return tick(stream, newAggTrade(market, symbol, receiveTimeUs, d.a as number, first, last, d.p as string, d.q as string, m, d.T as number, d.E as number));
  }

  function mapBookTicker(stream: string, symbol: string, d: Fields, receiveTimeUs: number): MapResult {
    const bad =
      (d.e !== undefined ? badEvent(d, 'bookTicker') : undefined) ??
      badKey(d, WS_BOOK_TICKER, true) ??
      // USD-M book tickers carry times; spot ones never do.
      (market === 'usdm' && (d.T === undefined || d.E === undefined) ? 'missing field T or E (USD-M book ticker)' : undefined);
    if (bad) return reject(stream, bad);
    const exchangeTimeMs = (d.T as number | undefined) ?? null;
    const eventTimeMs = (d.E as number | undefined) ?? null;
    const book = newBookTicker('binance', market, symbol, receiveTimeUs, d.u as number, d.b as string, d.B as string, d.a as string, d.A as string, exchangeTimeMs, eventTimeMs);
    return tick(stream, book);
  }

  return {
    market,
    map(text, receiveTimeUs) {
      // Characters never outnumber bytes, so this test needs no encoding pass.
      if (text.length > maxFrameBytes) return reject(null, `frame of ${text.length} characters exceeds ${maxFrameBytes} bytes`);
      let msg: unknown;
      try {
        msg = JSON.parse(text);
      } catch {
        return reject(null, 'not JSON');
      }
      if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return reject(null, 'not a JSON object');
      const m = msg as Fields;
      const stream = typeof m.stream === 'string' ? m.stream : null;
      const data = m.data;
      if (stream === null) {
        const ev = (typeof m.event === 'object' && m.event !== null ? (m.event as Fields) : m) as Fields;
        if (ev.e === 'serverShutdown') return { kind: 'serverShutdown', eventTimeMs: isTime(ev.E) ? ev.E : null };
        if ('result' in m && 'id' in m) return { kind: 'ignored', stream: null, why: 'subscription reply' };
        if ('lastUpdateId' in m) return { kind: 'ignored', stream: null, why: 'depth snapshot' };
        return reject(null, m.stream === undefined ? 'missing field stream' : 'field stream is not a string');
      }
      if (typeof data !== 'object' || data === null || Array.isArray(data)) return reject(stream, 'missing or non-object field data');
      const d = data as Fields;
      if (d.e === 'serverShutdown') return { kind: 'serverShutdown', eventTimeMs: isTime(d.E) ? d.E : null };
      const at = stream.indexOf('@');
      if (at <= 0) return reject(stream, 'stream name is not <symbol>@<type>');
      const symbol = stream.slice(0, at).toUpperCase();
      const type = TYPES[stream.slice(at + 1)];
      if (type === undefined || !wantedTypes.has(type)) return { kind: 'ignored', stream, why: 'stream type not ingested' };
      if (!SYMBOL.test(symbol)) return reject(stream, 'stream symbol is malformed');
      if (wantedSymbols && !wantedSymbols.has(symbol)) return { kind: 'ignored', stream, why: 'symbol not ingested' };
      if (d.s !== symbol) return reject(stream, `field s ${short(d.s)} does not match stream symbol ${symbol}`);
      if (type === 'trade') return mapTrade(stream, symbol, d, receiveTimeUs);
      if (type === 'aggTrade') return mapAggTrade(stream, symbol, d, receiveTimeUs);
      return mapBookTicker(stream, symbol, d, receiveTimeUs);
    },
  };
}

/** The diff-depth stream subscribed for order books: 100 ms diffs on spot, every update on USD-M. */
export const DEPTH_STREAM: Readonly<Record<Market, string>> = { spot: 'depth@100ms', usdm: 'depth@0ms' };

/** A tick stream's name: `btcusdt@trade` (Binance wants them lower-case). */
export const streamName = (symbol: string, type: string): string => `${symbol.toLowerCase()}@${type}`;

/** Stream names for a subscription: `btcusdt@trade`, ... */
export function streamNames(symbols: readonly string[], types: readonly StreamType[], market: Market = 'spot'): string[] {
  return symbols.flatMap((s) => types.map((t) => streamName(s, t === 'depth' ? DEPTH_STREAM[market] : t)));
}

/** REST `historicalTrades` row -> Trade (a backfilled trade has no event time: its trade time stands in). */
export function mapRestTrade(market: Market, symbol: string, r: unknown, receiveTimeUs: number): Trade | string {
  if (typeof r !== 'object' || r === null) return 'row is not an object';
  const d = r as Fields;
  const bad = badKey(d, REST_TRADE, false);
  if (bad) return bad;
  const time = d.time as number;
  const t = newTrade('binance', market, symbol, receiveTimeUs, d.id as number, d.price as string, d.qty as string, d.isBuyerMaker as boolean, time, time);
  return crossFieldProblem(t) ?? t;
}

/** REST `aggTrades` row -> AggTrade (no event time either). */
export function mapRestAggTrade(market: Market, symbol: string, r: unknown, receiveTimeUs: number): AggTrade | string {
  if (typeof r !== 'object' || r === null) return 'row is not an object';
  const d = r as Fields;
  const bad = badKey(d, REST_AGG_TRADE, false) ?? badTradeIdRange(d);
  if (bad) return bad;
  const time = d.T as number;
  const t = newAggTrade(market, symbol, receiveTimeUs, d.a as number, d.f as number, d.l as number, d.p as string, d.q as string, d.m as boolean, time, time);
  return crossFieldProblem(t) ?? t;
}
