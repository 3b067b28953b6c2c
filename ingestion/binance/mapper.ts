// Binance combined-stream frames -> normalized records, in pure code: one frame of text and its receive time in,
// a typed record, a control event, an "ignored" or a rejection with its reason out. Nothing here knows about sockets.
import type { StreamType } from '../../common/config.ts';
import { isDecimal, isPositiveDecimal, type AggTrade, type BookTicker, type Market, type Tick, type Trade } from '../../common/records.ts';

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
  /** Upper-case symbols to map; others are ignored. Undefined: every symbol. */
  readonly symbols?: readonly string[];
}

export interface Mapper {
  readonly market: Market;
  /** True when the frame looks like a Binance combined-stream frame (cheap test, no parsing). */
  canHandle(text: string): boolean;
  map(text: string, receiveTimeUs: number): MapResult;
}

const isId = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const isTime = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
const SYMBOL = /^[A-Z0-9]{2,20}$/;

type Fields = Record<string, unknown>;

/** Checks one payload field; returns the reason it is bad, or undefined. */
function checkPrice(d: Fields, k: string): string | undefined {
  const v = d[k];
  if (v === undefined) return `missing field ${k}`;
  if (!isDecimal(v)) return `field ${k} is not a decimal string: ${short(v)}`;
  if (!isPositiveDecimal(v)) return `field ${k} is not positive: ${short(v)}`;
  return undefined;
}

function checkQty(d: Fields, k: string): string | undefined {
  const v = d[k];
  if (v === undefined) return `missing field ${k}`;
  if (!isDecimal(v)) return `field ${k} is not a non-negative decimal string: ${short(v)}`;
  return undefined;
}

function checkInt(d: Fields, k: string, test: (x: unknown) => boolean, what: string): string | undefined {
  const v = d[k];
  if (v === undefined) return `missing field ${k}`;
  if (!test(v)) return `field ${k} is not ${what}: ${short(v)}`;
  return undefined;
}

function short(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(JSON.stringify(v) ?? v);
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

const TYPES: Record<string, Exclude<StreamType, 'depth'>> = { trade: 'trade', aggTrade: 'aggTrade', bookTicker: 'bookTicker' };

export function createBinanceMapper(opts: MapperOptions): Mapper {
  const { market, maxFrameBytes } = opts;
  const wantedTypes = new Set<string>(opts.streamTypes);
  const wantedSymbols = opts.symbols ? new Set(opts.symbols.map((s) => s.toUpperCase())) : undefined;

  function reject(stream: string | null, reason: string): MapResult {
    return { kind: 'rejected', stream, reason };
  }

  function mapTrade(stream: string, symbol: string, d: Fields, receiveTimeUs: number): MapResult {
    const bad =
      (d.e !== 'trade' ? `event type ${short(d.e)} does not match stream` : undefined) ??
      checkInt(d, 't', isId, 'a trade id') ??
      checkPrice(d, 'p') ??
      checkQty(d, 'q') ??
      checkInt(d, 'T', isTime, 'a time in ms') ??
      checkInt(d, 'E', isTime, 'a time in ms') ??
      (typeof d.m !== 'boolean' ? `field m is not a boolean: ${short(d.m)}` : undefined);
    if (bad) return reject(stream, bad);
    const tick: Trade = {
      type: 'trade',
      exchange: 'binance',
      market,
      symbol,
      receiveTimeUs,
      tradeId: d.t as number,
      price: d.p as string,
      quantity: d.q as string,
      buyerIsMaker: d.m as boolean,
      side: d.m ? 'sell' : 'buy',
      exchangeTimeMs: d.T as number,
      eventTimeMs: d.E as number,
    };
    return { kind: 'tick', stream, tick };
  }

  function mapAggTrade(stream: string, symbol: string, d: Fields, receiveTimeUs: number): MapResult {
    const bad =
      (d.e !== 'aggTrade' ? `event type ${short(d.e)} does not match stream` : undefined) ??
      checkInt(d, 'a', isId, 'an aggregate trade id') ??
      checkPrice(d, 'p') ??
      checkQty(d, 'q') ??
      checkInt(d, 'f', isId, 'a trade id') ??
      checkInt(d, 'l', isId, 'a trade id') ??
      ((d.f as number) > (d.l as number) ? 'first trade id f exceeds last trade id l' : undefined) ??
      checkInt(d, 'T', isTime, 'a time in ms') ??
      checkInt(d, 'E', isTime, 'a time in ms') ??
      (typeof d.m !== 'boolean' ? `field m is not a boolean: ${short(d.m)}` : undefined);
    if (bad) return reject(stream, bad);
    const tick: AggTrade = {
      type: 'aggTrade',
      exchange: 'binance',
      market,
      symbol,
      receiveTimeUs,
      aggId: d.a as number,
      firstTradeId: d.f as number,
      lastTradeId: d.l as number,
      price: d.p as string,
      quantity: d.q as string,
      buyerIsMaker: d.m as boolean,
      side: d.m ? 'sell' : 'buy',
      exchangeTimeMs: d.T as number,
      eventTimeMs: d.E as number,
    };
    return { kind: 'tick', stream, tick };
  }

  function mapBookTicker(stream: string, symbol: string, d: Fields, receiveTimeUs: number): MapResult {
    const bad =
      (d.e !== undefined && d.e !== 'bookTicker' ? `event type ${short(d.e)} does not match stream` : undefined) ??
      checkInt(d, 'u', isId, 'an update id') ??
      checkPrice(d, 'b') ??
      checkQty(d, 'B') ??
      checkPrice(d, 'a') ??
      checkQty(d, 'A') ??
      (d.T !== undefined ? checkInt(d, 'T', isTime, 'a time in ms') : undefined) ??
      (d.E !== undefined ? checkInt(d, 'E', isTime, 'a time in ms') : undefined) ??
      // USD-M book tickers carry times; spot ones never do.
      (market === 'usdm' && (d.T === undefined || d.E === undefined) ? 'missing field T or E (USD-M book ticker)' : undefined);
    if (bad) return reject(stream, bad);
    const tick: BookTicker = {
      type: 'bookTicker',
      exchange: 'binance',
      market,
      symbol,
      receiveTimeUs,
      updateId: d.u as number,
      bidPrice: d.b as string,
      bidQty: d.B as string,
      askPrice: d.a as string,
      askQty: d.A as string,
      exchangeTimeMs: (d.T as number | undefined) ?? null,
      eventTimeMs: (d.E as number | undefined) ?? null,
    };
    return { kind: 'tick', stream, tick };
  }

  return {
    market,
    canHandle: (text) => text.startsWith('{"stream":') || text.startsWith('{ "stream"'),
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
  const bad =
    checkInt(d, 'id', isId, 'a trade id') ??
    checkPrice(d, 'price') ??
    checkQty(d, 'qty') ??
    checkInt(d, 'time', isTime, 'a time in ms') ??
    (typeof d.isBuyerMaker !== 'boolean' ? 'field isBuyerMaker is not a boolean' : undefined);
  if (bad) return bad;
  return {
    type: 'trade',
    exchange: 'binance',
    market,
    symbol,
    receiveTimeUs,
    tradeId: d.id as number,
    price: d.price as string,
    quantity: d.qty as string,
    buyerIsMaker: d.isBuyerMaker as boolean,
    side: d.isBuyerMaker ? 'sell' : 'buy',
    exchangeTimeMs: d.time as number,
    eventTimeMs: d.time as number,
  };
}

/** REST `aggTrades` row -> AggTrade. */
export function mapRestAggTrade(market: Market, symbol: string, r: unknown, receiveTimeUs: number): AggTrade | string {
  if (typeof r !== 'object' || r === null) return 'row is not an object';
  const d = r as Fields;
  const bad =
    checkInt(d, 'a', isId, 'an aggregate trade id') ??
    checkPrice(d, 'p') ??
    checkQty(d, 'q') ??
    checkInt(d, 'f', isId, 'a trade id') ??
    checkInt(d, 'l', isId, 'a trade id') ??
    checkInt(d, 'T', isTime, 'a time in ms') ??
    (typeof d.m !== 'boolean' ? 'field m is not a boolean' : undefined);
  if (bad) return bad;
  return {
    type: 'aggTrade',
    exchange: 'binance',
    market,
    symbol,
    receiveTimeUs,
    aggId: d.a as number,
    firstTradeId: d.f as number,
    lastTradeId: d.l as number,
    price: d.p as string,
    quantity: d.q as string,
    buyerIsMaker: d.m as boolean,
    side: d.m ? 'sell' : 'buy',
    exchangeTimeMs: d.T as number,
    eventTimeMs: d.T as number,
  };
}
