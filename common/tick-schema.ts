// The one schema of a valid tick: per record type its fields (kind, nullability, COPY column) and the predicates every
// path checks them with — the venue mappers, decodeTick, the writer's storable-time check and its byte-level fast path.
import type { AggTrade, BookTicker, Decimal, Exchange, Market, Tick, TickType, Trade } from './records.ts';

/** Ids are safe non-negative integers (trade, aggregate and update ids start at 0). */
export const isId = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
/** Times are safe positive integers (ms, or µs for receive times). */
export const isTime = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) > 0;

const DECIMAL = /^\d{1,20}(\.\d{1,18})?$/;

/** A non-negative decimal string that NUMERIC stores digit for digit: at most 20 integer and 18 fraction digits. */
export function isDecimal(s: unknown): s is Decimal {
  return typeof s === 'string' && DECIMAL.test(s);
}

export function isPositiveDecimal(s: unknown): s is Decimal {
  return isDecimal(s) && /[1-9]/.test(s);
}

/**
 * -1, 0 or 1 as the decimal string `a` is below, equal to or above `b` (both isDecimal): by the integer part's length
 * without leading zeros, then digit by digit, the shorter fraction read as padded with zeros.
 */
export function compareDecimals(a: string, b: string): number {
  const da = dotOf(a);
  const db = dotOf(b);
  const sa = firstNonZero(a, da);
  const sb = firstNonZero(b, db);
  if (da - sa !== db - sb) return da - sa < db - sb ? -1 : 1;
  for (let i = 0; i < da - sa; i++) {
    const d = a.charCodeAt(sa + i) - b.charCodeAt(sb + i);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  const n = Math.max(a.length - da, b.length - db);
  for (let i = 1; i < n; i++) {
    const d = (da + i < a.length ? a.charCodeAt(da + i) : 48) - (db + i < b.length ? b.charCodeAt(db + i) : 48);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** The index of the decimal point, or the length (no allocation: this runs per book ticker). */
function dotOf(s: string): number {
  const i = s.indexOf('.');
  return i < 0 ? s.length : i;
}

function firstNonZero(s: string, end: number): number {
  let i = 0;
  while (i < end && s.charCodeAt(i) === 48) i++;
  return i;
}

/**
 * A book ticker whose bid is above its ask is crossed: no venue's top of book shows one, and its spread would be
 * negative in every metric. It is a data-quality event (dead-lettered with its reason), never a stored quote.
 */
export const isCrossed = (bidPrice: string, askPrice: string): boolean => compareDecimals(bidPrice, askPrice) > 0;

/** How far a tick's exchange or event time may run ahead of its receive time: clock skew, never an hour. */
export const MAX_AHEAD_OF_RECEIVE_MS = 3_600_000;

/** Whether a time (ms) lies further ahead of the receive time (µs) than clock skew explains: a time no venue sent. */
export const isAheadOfReceive = (timeMs: number | null, receiveTimeUs: number): boolean =>
  timeMs !== null && timeMs - receiveTimeUs / 1000 > MAX_AHEAD_OF_RECEIVE_MS;

/** The reason a tick breaks a rule across its fields (times ahead of receipt, a crossed book), or undefined. */
export function crossFieldProblem(t: Tick): string | undefined {
  if (isAheadOfReceive(t.exchangeTimeMs, t.receiveTimeUs) || isAheadOfReceive(t.eventTimeMs, t.receiveTimeUs)) {
    return 'exchange or event time is not within an hour of the receive time';
  }
  if (t.type === 'bookTicker' && isCrossed(t.bidPrice, t.askPrice)) return `crossed book ticker: bid ${t.bidPrice} is above ask ${t.askPrice}`;
  return undefined;
}

/** The times a row may hold; outside it PostgreSQL would refuse the value (or a far-future year would not round-trip). */
export const MIN_TIME_MS = Date.UTC(2000, 0, 1);
export const MAX_TIME_MS = Date.UTC(2100, 0, 1);

export const isStorableTimeMs = (ms: number): boolean => ms >= MIN_TIME_MS && ms < MAX_TIME_MS;

/**
 * A venue's own time field in ms, stricter than isTime: after 2000-01-01, so a time the venue wrote in seconds (or a
 * zero) is refused at the socket instead of being taken for a date in 1970 (Coinbase's ISO times, Gemini's timestamps).
 */
export const isVenueTimeMs = (x: unknown): x is number => isTime(x) && x > MIN_TIME_MS;

/** The taker's side: Binance's `m` says the buyer was the maker, so the taker sold. */
export const sideOf = (buyerIsMaker: boolean): 'buy' | 'sell' => (buyerIsMaker ? 'sell' : 'buy');

/**
 * What a field holds. `exchange`, `market`, `symbol`: the record's identity (checked per venue by decodeTick);
 * `side`: sideOf(buyerIsMaker); `time`: ms, `timeUs`: µs, both isTime and storable; `rowTime`: no field of its own,
 * the column holds rowTimeMs(record).
 */
export type FieldKind = 'exchange' | 'market' | 'symbol' | 'side' | 'id' | 'time' | 'timeUs' | 'decimal' | 'positiveDecimal' | 'flag' | 'rowTime';

export interface TickField {
  readonly name: string;
  readonly kind: FieldKind;
  /** null is a valid value (a spot book ticker has no exchange time). */
  readonly nullable: boolean;
  /** The COPY column it fills, or null when it is stored only as the row time. */
  readonly column: string | null;
  /** How a rejection names a valid value ('a trade id'), for ids and times. */
  readonly noun: string;
}

const field = (name: string, kind: FieldKind, column: string | null, noun = '', nullable = false): TickField => ({ name, kind, nullable, column, noun });

const HEAD: readonly TickField[] = [
  field('exchange', 'exchange', 'exchange'),
  field('market', 'market', 'market'),
  field('symbol', 'symbol', 'symbol'),
  field('rowTime', 'rowTime', 'time'),
];
const TIME_MS = 'a time in ms';
const TAKER: readonly TickField[] = [
  field('price', 'positiveDecimal', 'price'),
  field('quantity', 'decimal', 'quantity'),
  field('buyerIsMaker', 'flag', 'buyer_is_maker'),
  field('side', 'side', 'side'),
  field('eventTimeMs', 'time', 'event_time', TIME_MS),
];
const RECEIVE = field('receiveTimeUs', 'timeUs', 'receive_time', 'a time in µs');
const TRADE_TIME = field('exchangeTimeMs', 'time', null, TIME_MS);

/**
 * Each tick type's fields in the order of its table's COPY columns (fields without a column anywhere among them).
 * Beyond single fields: side = sideOf(buyerIsMaker), and an aggTrade's firstTradeId <= lastTradeId.
 */
export const TICK_SCHEMA: Readonly<Record<TickType, readonly TickField[]>> = {
  trade: [...HEAD, TRADE_TIME, field('tradeId', 'id', 'trade_id', 'a trade id'), ...TAKER, RECEIVE],
  aggTrade: [
    ...HEAD,
    TRADE_TIME,
    field('aggId', 'id', 'agg_id', 'an aggregate trade id'),
    field('firstTradeId', 'id', 'first_trade_id', 'a trade id'),
    field('lastTradeId', 'id', 'last_trade_id', 'a trade id'),
    ...TAKER,
    RECEIVE,
  ],
  bookTicker: [
    ...HEAD,
    field('updateId', 'id', 'update_id', 'an update id'),
    field('bidPrice', 'positiveDecimal', 'bid_price'),
    field('bidQty', 'decimal', 'bid_qty'),
    field('askPrice', 'positiveDecimal', 'ask_price'),
    field('askQty', 'decimal', 'ask_qty'),
    field('exchangeTimeMs', 'time', 'exchange_time', TIME_MS, true),
    field('eventTimeMs', 'time', 'event_time', TIME_MS, true),
    RECEIVE,
  ],
};

export const TICK_TYPES: readonly TickType[] = ['trade', 'aggTrade', 'bookTicker'];

/** One field of a type by name (at module load only: it searches). */
export function tickField(type: TickType, name: string): TickField {
  const f = TICK_SCHEMA[type].find((x) => x.name === name);
  if (!f) throw new Error(`tick schema: ${type} has no field ${name}`);
  return f;
}

/** The record fields of every tick type (without `type` and the schema version `v`), each once. */
export const TICK_FIELD_NAMES: readonly string[] = [
  ...new Set(TICK_TYPES.flatMap((t) => TICK_SCHEMA[t].filter((f) => f.kind !== 'rowTime').map((f) => f.name))),
];

/** A tick table's COPY columns, in order. */
export const tickColumns = (type: TickType): string[] => TICK_SCHEMA[type].flatMap((f) => (f.column === null ? [] : [f.column]));

// Receive time first: it is the one every record has, so its error is the one reported when several times are bad.
const STORED_TIMES: Readonly<Record<TickType, readonly TickField[]>> = Object.fromEntries(
  TICK_TYPES.map((t) => [t, TICK_SCHEMA[t].filter((f) => f.kind === 'timeUs').concat(TICK_SCHEMA[t].filter((f) => f.kind === 'time'))]),
) as unknown as Record<TickType, readonly TickField[]>;

/** The first time field of `t` outside the storable window (MIN_TIME_MS..MAX_TIME_MS), or undefined. */
export function unstorableTime(t: Tick): string | undefined {
  for (const f of STORED_TIMES[t.type]) {
    const v = (t as unknown as Record<string, number | null>)[f.name]!;
    if (v !== null && !isStorableTimeMs(f.kind === 'timeUs' ? Math.floor(v / 1000) : v)) return f.name;
  }
  return undefined;
}

// Record constructors: every mapper builds its ticks here, so the fields are set in one order (one hidden class, one
// JSON layout) and side always follows buyerIsMaker.

export function newTrade(
  exchange: Exchange,
  market: Market,
  symbol: string,
  receiveTimeUs: number,
  tradeId: number,
  price: Decimal,
  quantity: Decimal,
  buyerIsMaker: boolean,
  exchangeTimeMs: number,
  eventTimeMs: number,
): Trade {
  return { type: 'trade', exchange, market, symbol, receiveTimeUs, tradeId, price, quantity, buyerIsMaker, side: sideOf(buyerIsMaker), exchangeTimeMs, eventTimeMs };
}

export function newAggTrade(
  market: Market,
  symbol: string,
  receiveTimeUs: number,
  aggId: number,
  firstTradeId: number,
  lastTradeId: number,
  price: Decimal,
  quantity: Decimal,
  buyerIsMaker: boolean,
  exchangeTimeMs: number,
  eventTimeMs: number,
): AggTrade {
  const side = sideOf(buyerIsMaker);
  return { type: 'aggTrade', exchange: 'binance', market, symbol, receiveTimeUs, aggId, firstTradeId, lastTradeId, price, quantity, buyerIsMaker, side, exchangeTimeMs, eventTimeMs };
}

export function newBookTicker(
  exchange: Exchange,
  market: Market,
  symbol: string,
  receiveTimeUs: number,
  updateId: number,
  bidPrice: Decimal,
  bidQty: Decimal,
  askPrice: Decimal,
  askQty: Decimal,
  exchangeTimeMs: number | null,
  eventTimeMs: number | null,
): BookTicker {
  return { type: 'bookTicker', exchange, market, symbol, receiveTimeUs, updateId, bidPrice, bidQty, askPrice, askQty, exchangeTimeMs, eventTimeMs };
}

/** A venue tick keeps the venue's own symbol beside the canonical one (VenueTrade, VenueBookTicker). */
export function withVenueSymbol<T extends Tick>(t: T, venueSymbol: string): T & { readonly venueSymbol: string } {
  (t as { venueSymbol?: string }).venueSymbol = venueSymbol;
  return t as T & { readonly venueSymbol: string };
}
