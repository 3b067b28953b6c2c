// The normalized records that flow from ingestion through Kafka to the writers: readonly, discriminated by `type`,
// prices and quantities kept as the exchange's decimal strings so nothing is rounded between socket and database.
import { crossFieldProblem, isDecimal, isId, isPositiveDecimal, isStorableTimeMs, isTime, sideOf } from './tick-schema.ts';

export const SCHEMA_VERSION = 1;

export type Exchange = 'binance' | 'coinbase' | 'gemini';
export type Market = 'spot' | 'usdm';
/** A non-negative decimal exactly as the exchange wrote it, e.g. "61837.63000000". */
export type Decimal = string;

interface TickBase {
  readonly exchange: Exchange;
  readonly market: Market;
  /** Upper-case venue symbol, e.g. BTCUSDT. */
  readonly symbol: string;
  /** Local receive time, microseconds since the epoch. */
  readonly receiveTimeUs: number;
}

/** What a trade and an aggregate trade both carry. */
interface TakerTick extends TickBase {
  readonly price: Decimal;
  readonly quantity: Decimal;
  /** Binance `m`: the buyer was the maker, so the taker sold. */
  readonly buyerIsMaker: boolean;
  /** Taker side. */
  readonly side: 'buy' | 'sell';
  /** Trade time `T`, ms since the epoch. */
  readonly exchangeTimeMs: number;
  /** Event time `E`, ms since the epoch. */
  readonly eventTimeMs: number;
}

export interface Trade extends TakerTick {
  readonly type: 'trade';
  readonly tradeId: number;
}

export interface AggTrade extends TakerTick {
  readonly type: 'aggTrade';
  readonly aggId: number;
  readonly firstTradeId: number;
  readonly lastTradeId: number;
}

export interface BookTicker extends TickBase {
  readonly type: 'bookTicker';
  /** Order book update id `u`. */
  readonly updateId: number;
  readonly bidPrice: Decimal;
  readonly bidQty: Decimal;
  readonly askPrice: Decimal;
  readonly askQty: Decimal;
  /** Transaction time `T` (USD-M only; spot book tickers carry no exchange time). */
  readonly exchangeTimeMs: number | null;
  readonly eventTimeMs: number | null;
}

export type Tick = Trade | AggTrade | BookTicker;
export type TickType = Tick['type'];

/** A hole in a stream: ids that never arrived (backfillable for trades) or a span of time without book tickers. */
export interface GapEvent {
  readonly type: 'gap';
  readonly exchange: Exchange;
  readonly market: Market;
  readonly symbol: string;
  /** The stream with the hole; 'book' for an order book rebuilt from a new snapshot (BookGapEvent). */
  readonly stream: TickType | 'book';
  /** First and last missing id, when the stream has contiguous ids. */
  readonly fromId: number | null;
  readonly toId: number | null;
  /** Time span of the hole, ms since the epoch. */
  readonly fromTimeMs: number;
  readonly toTimeMs: number;
  readonly reason: string;
  readonly detectedAtUs: number;
}

/** The longest gap reason decodeGap accepts: a sentence, not a payload. */
export const GAP_REASON_MAX = 2_000;

/** A gap's reason from text that may come from outside (a socket's error): without NUL, which no text column holds, and cut to GAP_REASON_MAX. */
export const gapReason = (text: string): string => text.replaceAll('\u0000', '').slice(0, GAP_REASON_MAX);

/** A message that could not be turned into a record, kept with enough context to investigate. */
export interface DeadLetter {
  readonly type: 'deadLetter';
  readonly source: string;
  readonly stream: string | null;
  readonly reason: string;
  /** The raw text, truncated to a bound. */
  readonly raw: string;
  readonly truncated: boolean;
  readonly receiveTimeUs: number;
  /** Kafka coordinates when the bad record was consumed rather than received. */
  readonly topic?: string;
  readonly partition?: number;
  readonly offset?: string;
}

/** Kafka key: exchange + market + symbol, so one symbol's ticks stay ordered in one partition. */
export function tickKey(t: Pick<TickBase, 'exchange' | 'market' | 'symbol'>): string {
  return `${t.exchange}:${t.market}:${t.symbol}`;
}

/**
 * Kafka headers for records produced outside ingestion (bars, alerts, re-produced dead letters). Ingestion's records
 * carry no headers: encoding every header of every record on the producer's one thread cost ~30% of the throughput
 * (measured with kafkajs, and @platformatic/kafka builds two Maps per record that has any); their schema version
 * travels in the value instead (encodeRecord).
 */
export function recordHeaders(type: string): Record<string, string> {
  return { 'schema-version': String(SCHEMA_VERSION), 'record-type': type };
}

/** Everything ingestion produces to Kafka. */
export type ProducedRecord = Tick | GapEvent | DeadLetter | Book | BookGapEvent;

// The schema version goes last, so decoders can delete it again cheaply (V8 keeps an object's fast properties when its
// last-added property is deleted, not any other).
const VERSION_SUFFIX = `,"v":${SCHEMA_VERSION}}`;

/** The record as JSON with the schema version as its last field `v`, e.g. {"type":"trade",...,"v":1}. */
export function encodeRecord(r: ProducedRecord): Buffer {
  return Buffer.from(encodeRecordText(r));
}

/** encodeRecord's text, for writers that put the bytes where they want them (the producer's record queue). */
export function encodeRecordText(r: ProducedRecord): string {
  // Every record has a `type`, so its JSON never is `{}`.
  return JSON.stringify(r).slice(0, -1) + VERSION_SUFFIX;
}

/**
 * The value's schema version `v` (the decoders check the `schema-version` header first, which records produced before
 * the version moved into the value carry): either may be missing, neither may name another version. `v` is removed, so
 * the decoded record is the record that was produced.
 */
function checkVersion(r: Record<string, unknown>): void {
  if (r.v === undefined) return;
  need(r.v === SCHEMA_VERSION, `unsupported schema version ${JSON.stringify(r.v)}`);
  delete r.v;
}

/** The common start of every decoder: a non-empty JSON object of a known schema version (header or `v`). */
function parseRecord(value: Buffer | string | null, schemaVersion: string | undefined): Record<string, unknown> {
  need(value !== null && value.length > 0, 'empty record value');
  need(schemaVersion === undefined || schemaVersion === String(SCHEMA_VERSION), `unsupported schema version ${schemaVersion}`);
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(value!.toString());
  } catch {
    throw new RecordError('value is not JSON');
  }
  need(typeof r === 'object' && r !== null && !Array.isArray(r), 'value is not a JSON object');
  checkVersion(r);
  return r;
}

export class RecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecordError';
  }
}

const MAX_INT4 = 2_147_483_647;

function need(cond: boolean, what: string): void {
  if (!cond) throw new RecordError(what);
}

const CANONICAL_SYMBOL = /^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$/;
const VENUE_SYMBOL = /^[A-Za-z0-9_/-]{2,30}$/;

/**
 * Decodes and checks a tick read back from Kafka. The writers use it to tell a poison record (dead letter) from a
 * good one; it accepts exactly what ingestion produces for the given schema version. Its checks are TICK_SCHEMA's
 * (tick-schema.ts), written out for their messages; tick-schema.test.ts holds them to the schema field by field.
 */
export function decodeTick(value: Buffer | string | null, schemaVersion: string | undefined): Tick {
  const r = parseRecord(value, schemaVersion);
  if (r.exchange === 'binance') {
    need(r.market === 'spot' || r.market === 'usdm', 'market must be spot or usdm');
    need(typeof r.symbol === 'string' && /^[A-Z0-9]{2,20}$/.test(r.symbol), 'symbol is missing or malformed');
  } else {
    // Other venues: spot only, the canonical BASE-QUOTE symbol, and the venue's own symbol where it differs.
    need(r.exchange === 'coinbase' || r.exchange === 'gemini', 'exchange must be binance, coinbase or gemini');
    need(r.market === 'spot', 'market must be spot');
    need(typeof r.symbol === 'string' && CANONICAL_SYMBOL.test(r.symbol), 'symbol must look like BTC-USD');
    need(r.venueSymbol === undefined || (typeof r.venueSymbol === 'string' && VENUE_SYMBOL.test(r.venueSymbol)), 'venueSymbol is malformed');
  }
  need(isTime(r.receiveTimeUs), 'receiveTimeUs must be a positive integer');
  switch (r.type) {
    case 'trade':
    case 'aggTrade':
      need(isPositiveDecimal(r.price), 'price must be a positive decimal string');
      need(isDecimal(r.quantity), 'quantity must be a non-negative decimal string');
      need(typeof r.buyerIsMaker === 'boolean', 'buyerIsMaker must be a boolean');
      need(r.side === sideOf(r.buyerIsMaker as boolean), 'side must match buyerIsMaker');
      need(isTime(r.exchangeTimeMs) && isTime(r.eventTimeMs), 'exchangeTimeMs and eventTimeMs must be positive integers');
      if (r.type === 'trade') need(isId(r.tradeId), 'tradeId must be a non-negative integer');
      else {
        need(isId(r.aggId) && isId(r.firstTradeId) && isId(r.lastTradeId), 'aggId, firstTradeId and lastTradeId must be integers');
        need((r.firstTradeId as number) <= (r.lastTradeId as number), 'firstTradeId must not exceed lastTradeId');
      }
      break;
    case 'bookTicker':
      need(isId(r.updateId), 'updateId must be a non-negative integer');
      need(isPositiveDecimal(r.bidPrice) && isPositiveDecimal(r.askPrice), 'bid and ask prices must be positive decimal strings');
      need(isDecimal(r.bidQty) && isDecimal(r.askQty), 'bid and ask quantities must be decimal strings');
      need(r.exchangeTimeMs === null || isTime(r.exchangeTimeMs), 'exchangeTimeMs must be null or a positive integer');
      need(r.eventTimeMs === null || isTime(r.eventTimeMs), 'eventTimeMs must be null or a positive integer');
      break;
    default:
      throw new RecordError(`unknown record type ${JSON.stringify(r.type)}`);
  }
  const problem = crossFieldProblem(r as unknown as Tick);
  if (problem !== undefined) throw new RecordError(problem);
  return r as unknown as Tick;
}

/**
 * The time a tick, book or quote row is stored, bucketed and keyed on: exchange time, or receive time where the venue
 * sends none. Every path that places a row in time calls this.
 */
export function rowTimeMs(r: { readonly exchangeTimeMs: number | null; readonly receiveTimeUs: number }): number {
  return rowTimeMsOf(r.exchangeTimeMs, r.receiveTimeUs);
}

/** rowTimeMs of the two times themselves (the writer's fast path has no record object). */
export const rowTimeMsOf = (exchangeTimeMs: number | null, receiveTimeUs: number): number => exchangeTimeMs ?? Math.floor(receiveTimeUs / 1000);

/** A closed bar published by the metrics worker (topic TOPIC_BARS, key exchange:market:symbol). A bar refreshed again
 * after late or backfilled ticks is published again with a newer `publishedAtMs`; the latest one wins. */
export interface BarRecord {
  readonly type: 'bar';
  readonly exchange: Exchange;
  readonly market: Market;
  readonly symbol: string;
  readonly width: 'short' | '1m' | '5m' | '1h';
  readonly widthSeconds: number;
  /** Bucket start, ms since the epoch (the bucket is [bucketMs, bucketMs + widthSeconds * 1000)). */
  readonly bucketMs: number;
  readonly open: Decimal;
  readonly high: Decimal;
  readonly low: Decimal;
  readonly close: Decimal;
  readonly volume: Decimal;
  readonly quoteVolume: Decimal;
  readonly vwap: Decimal | null;
  readonly tradeCount: number;
  readonly takerBuyVolume: Decimal;
  readonly takerBuyQuoteVolume: Decimal;
  readonly firstTradeId: number;
  readonly lastTradeId: number;
  readonly volatility: number | null;
  readonly priceStddev: number | null;
  readonly maxMoveBps: number | null;
  readonly publishedAtMs: number;
}

/** An anomaly rule firing (or its resolution), published by the metrics worker (topic TOPIC_ALERTS). */
export interface AnomalyRecord {
  readonly type: 'anomaly';
  readonly state: 'firing' | 'resolved';
  readonly rule: string;
  readonly exchange: Exchange;
  readonly market: Market;
  readonly symbol: string;
  readonly bucketMs: number;
  readonly observed: number;
  readonly threshold: number;
  readonly detectedAtMs: number;
}

// --- Order books and venue symbols ---

/** One price level, best first within its side: [price, quantity] as the venue wrote them. */
export type BookLevel = readonly [price: Decimal, quantity: Decimal];

/**
 * The top of one venue's rebuilt order book (topic TOPIC_BOOKS, key exchange:market:symbol). `symbol` is the canonical
 * BASE-QUOTE form shared by every venue (BTC-USDT, BTC-USD), `venueSymbol` the venue's own (BTCUSDT, BTC-USD, BTCUSD).
 */
export interface Book {
  readonly type: 'book';
  readonly exchange: Exchange;
  readonly market: Market;
  readonly symbol: string;
  readonly venueSymbol: string;
  /** Binance: the last applied update id `u`. Venues without book sequence numbers (Coinbase level2, Gemini v2 l2):
   * updates applied since the connection's snapshot, a local count. Increases within one book session. */
  readonly sequence: number;
  /** Levels asked per side (a thin book may show fewer). */
  readonly depth: number;
  readonly bids: readonly BookLevel[];
  readonly asks: readonly BookLevel[];
  /** Event time of the last applied update, ms; null where the venue sends none (Gemini l2). */
  readonly exchangeTimeMs: number | null;
  readonly receiveTimeUs: number;
}

/** A book that lost updates (missed update ids, a crossed book): rebuilt from a new snapshot. Same fields as GapEvent,
 * so it lands in gap_events; fromId/toId are the missing update ids where the venue numbers its updates. */
export interface BookGapEvent extends Omit<GapEvent, 'stream'> {
  readonly stream: 'book';
}

/** Trades and book tickers of venues whose symbol differs from the canonical form keep the venue's own as well. */
export type VenueTrade = Trade & { readonly venueSymbol: string };
export type VenueBookTicker = BookTicker & { readonly venueSymbol: string };


function checkLevels(x: unknown, side: string): void {
  need(Array.isArray(x), `${side} must be an array`);
  for (const l of x as unknown[]) {
    need(Array.isArray(l) && l.length === 2 && isPositiveDecimal(l[0]) && isPositiveDecimal(l[1]), `${side} levels must be [price, quantity] positive decimal strings`);
  }
}

/** Decodes and checks a book record read back from Kafka (the book writer's poison test, like decodeTick). */
export function decodeBook(value: Buffer | string | null, schemaVersion: string | undefined): Book {
  const r = parseRecord(value, schemaVersion);
  need(r.type === 'book', `unknown record type ${JSON.stringify(r.type)}`);
  need(r.exchange === 'binance' || r.exchange === 'coinbase' || r.exchange === 'gemini', 'exchange must be binance, coinbase or gemini');
  need(r.market === 'spot' || r.market === 'usdm', 'market must be spot or usdm');
  need(typeof r.symbol === 'string' && CANONICAL_SYMBOL.test(r.symbol), 'symbol must look like BTC-USD');
  need(typeof r.venueSymbol === 'string' && VENUE_SYMBOL.test(r.venueSymbol), 'venueSymbol is missing or malformed');
  need(isId(r.sequence), 'sequence must be a non-negative integer');
  // depth is an `integer` column: a larger value would be refused by PostgreSQL, not here.
  need(Number.isSafeInteger(r.depth) && (r.depth as number) > 0 && (r.depth as number) <= MAX_INT4, 'depth must be a positive integer below 2^31');
  checkLevels(r.bids, 'bids');
  checkLevels(r.asks, 'asks');
  need((r.bids as unknown[]).length <= (r.depth as number) && (r.asks as unknown[]).length <= (r.depth as number), 'more levels than depth');
  need(r.exchangeTimeMs === null || (isTime(r.exchangeTimeMs) && isStorableTimeMs(r.exchangeTimeMs)), 'exchangeTimeMs must be null or a time in 2000..2100');
  need(isTime(r.receiveTimeUs) && isStorableTimeMs(Math.floor(r.receiveTimeUs / 1000)), 'receiveTimeUs must be a time in 2000..2100');
  return r as unknown as Book;
}

/**
 * Decodes and checks a gap event read back from Kafka (the writers store them in gap_events, where the data-quality
 * rule and the Risk Monitor read them).
 */
export function decodeGap(value: Buffer | string | null, schemaVersion: string | undefined): GapEvent {
  const r = parseRecord(value, schemaVersion);
  need(r.type === 'gap', `unknown record type ${JSON.stringify(r.type)}`);
  need(r.exchange === 'binance' || r.exchange === 'coinbase' || r.exchange === 'gemini', 'exchange must be binance, coinbase or gemini');
  need(r.market === 'spot' || r.market === 'usdm', 'market must be spot or usdm');
  need(typeof r.symbol === 'string' && /^[A-Z0-9-]{2,33}$/.test(r.symbol), 'symbol is missing or malformed');
  need(['trade', 'aggTrade', 'bookTicker', 'book'].includes(r.stream as string), 'stream must be trade, aggTrade, bookTicker or book');
  need((r.fromId === null) === (r.toId === null), 'fromId and toId must both be set or both null');
  need(r.fromId === null || (isId(r.fromId) && isId(r.toId) && (r.fromId as number) <= (r.toId as number)), 'fromId..toId must be an id range');
  need(isTime(r.fromTimeMs) && isTime(r.toTimeMs) && (r.fromTimeMs as number) <= (r.toTimeMs as number), 'fromTimeMs..toTimeMs must be a time span');
  need(isStorableTimeMs(r.fromTimeMs as number) && isStorableTimeMs(r.toTimeMs as number), 'fromTimeMs..toTimeMs must lie in 2000..2100');
  // A text column cannot hold NUL; a reason is a sentence, not a payload.
  need(typeof r.reason === 'string' && r.reason.length > 0 && r.reason === gapReason(r.reason), 'reason must be a non-empty text of at most 2,000 characters without NUL');
  need(isTime(r.detectedAtUs) && isStorableTimeMs(Math.floor((r.detectedAtUs as number) / 1000)), 'detectedAtUs must be a time in 2000..2100');
  return r as unknown as GapEvent;
}
