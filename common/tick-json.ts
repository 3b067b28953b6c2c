// A tick's Kafka record value — encodeRecord's JSON, byte for byte — written straight into a byte buffer: the
// producer's hot path writes every trade, aggregate trade and book ticker this way, at about half the CPU of
// JSON.stringify and with no string per record. It takes only ticks of exactly the shape the tick constructors build
// (common/tick-schema.ts: the same keys in the same order), whose strings are short printable ASCII needing no escape
// and whose numbers are non-negative safe integers; it declines anything else (-1), which then takes JSON.stringify.
import { SCHEMA_VERSION, type AggTrade, type BookTicker, type ProducedRecord, type TickType, type Trade } from './records.ts';

const STR = 0;
const INT = 1;
const FLAG = 2;
/** A non-negative safe integer or null. */
const INT_OR_NULL = 3;

/** The longest string the writer takes: decimals are at most 39 characters, symbols 20. */
const STR_MAX = 64;

/**
 * Fields after `type` of each tick type, in the order its constructor (newTrade, newAggTrade, newBookTicker) sets
 * them, with their kind. tick-json.test.ts holds every tick of the recorded streams against JSON.stringify.
 */
const FIELDS: Readonly<Record<TickType, readonly (readonly [string, number])[]>> = {
  trade: [['exchange', STR], ['market', STR], ['symbol', STR], ['receiveTimeUs', INT], ['tradeId', INT], ['price', STR], ['quantity', STR], ['buyerIsMaker', FLAG], ['side', STR], ['exchangeTimeMs', INT], ['eventTimeMs', INT]],
  aggTrade: [['exchange', STR], ['market', STR], ['symbol', STR], ['receiveTimeUs', INT], ['aggId', INT], ['firstTradeId', INT], ['lastTradeId', INT], ['price', STR], ['quantity', STR], ['buyerIsMaker', FLAG], ['side', STR], ['exchangeTimeMs', INT], ['eventTimeMs', INT]],
  bookTicker: [['exchange', STR], ['market', STR], ['symbol', STR], ['receiveTimeUs', INT], ['updateId', INT], ['bidPrice', STR], ['bidQty', STR], ['askPrice', STR], ['askQty', STR], ['exchangeTimeMs', INT_OR_NULL], ['eventTimeMs', INT_OR_NULL]],
};

/** The bytes before each field's value (`{"type":"trade","exchange":"`, `","market":"` ...) and after the last. */
function pieces(type: TickType): readonly Buffer[] {
  const out: Buffer[] = [];
  let open = `{"type":${JSON.stringify(type)}`;
  for (const [name, kind] of FIELDS[type]) {
    out.push(Buffer.from(`${open},${JSON.stringify(name)}:${kind === STR ? '"' : ''}`, 'latin1'));
    open = kind === STR ? '"' : '';
  }
  out.push(Buffer.from(`${open},"v":${SCHEMA_VERSION}}`, 'latin1'));
  return out;
}

const TRADE = pieces('trade');
const AGG_TRADE = pieces('aggTrade');
const BOOK_TICKER = pieces('bookTicker');
/** Each type's keys in the constructors' order, `type` first. */
const KEYS = {
  trade: ['type', ...FIELDS.trade.map(([name]) => name)],
  aggTrade: ['type', ...FIELDS.aggTrade.map(([name]) => name)],
  bookTicker: ['type', ...FIELDS.bookTicker.map(([name]) => name)],
};

/** Bytes writeTickJson may write at most: every key and constant, strings at their longest, integers at 16 digits. */
export const TICK_JSON_MAX = Math.max(...[TRADE, AGG_TRADE, BOOK_TICKER].map((p) => p.reduce((n, b) => n + b.length + STR_MAX, 0)));

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

// Each writer below takes the offset the previous one returned, -1 included (then it writes nothing and returns -1),
// so a record is written as one chain of calls checked once at its end.

// TypedArray#set even for a piece of a few bytes: over the recorded ticks, a byte loop for the pieces up to 12 bytes
// took about 585 ns per record against 525, and a byte loop for every piece about 900.
function put(b: Buffer, o: number, bytes: Buffer): number {
  if (o < 0) return -1;
  b.set(bytes, o);
  return o + bytes.length;
}

/** `before`, then a string JSON writes as it is between quotes: printable ASCII without `"` or `\`. */
function str(b: Buffer, o: number, before: Buffer, s: unknown): number {
  o = put(b, o, before);
  if (o < 0 || typeof s !== 'string' || s.length > STR_MAX) return -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return -1;
    b[o + i] = c;
  }
  return o + s.length;
}

/** Decimal digits of an integer in [0, 2^32), as Number#toString writes them. */
function uint32(b: Buffer, o: number, n: number): number {
  let digits = 1;
  for (let m = n; m >= 10; m = (m / 10) >>> 0) digits++;
  const end = o + digits;
  for (let i = end - 1, m = n; i >= o; i--) {
    const q = (m / 10) >>> 0;
    b[i] = 48 + m - q * 10;
    m = q;
  }
  return end;
}

/** `before`, then a non-negative safe integer as Number#toString writes it (below 2^53: never in exponent form). */
function int(b: Buffer, o: number, before: Buffer, n: unknown): number {
  o = put(b, o, before);
  if (o < 0 || !Number.isSafeInteger(n) || (n as number) < 0) return -1;
  const v = n as number;
  if (v < 4_294_967_296) return uint32(b, o, v);
  const high = Math.floor(v / 1e9);
  o = uint32(b, o, high);
  // The low nine digits, zero-padded.
  for (let i = o + 8, m = v - high * 1e9; i >= o; i--) {
    const q = (m / 10) >>> 0;
    b[i] = 48 + m - q * 10;
    m = q;
  }
  return o + 9;
}

/** `before`, then an integer as int() or null. */
const intOrNull = (b: Buffer, o: number, before: Buffer, n: unknown): number => (n === null ? put(b, put(b, o, before), NULL) : int(b, o, before, n));

/** `before`, then true or false. */
const flag = (b: Buffer, o: number, before: Buffer, v: unknown): number => (typeof v === 'boolean' ? put(b, put(b, o, before), v ? TRUE : FALSE) : -1);

/**
 * Whether the object's enumerable keys are `keys`, in that order (JSON.stringify writes them in the object's order),
 * checked without Object.keys's array: for-in runs on V8's enum cache.
 */
function hasKeys(r: object, keys: readonly string[]): boolean {
  let n = 0;
  for (const k in r) if (k !== keys[n++]) return false;
  return n === keys.length;
}

const NOTHING = Buffer.alloc(0);

/** Most symbols whose record heads are remembered per type; past it the cache starts over. */
const HEADS_MAX = 10_000;

/**
 * Each symbol's record head — `{"type":"trade","exchange":"binance","market":"spot","symbol":"BTCUSDT","receiveTimeUs":`
 * — written once and then copied in one piece: the same on every record of the symbol.
 */
class Heads {
  private readonly heads = new Map<string, { exchange: unknown; market: unknown; bytes: Buffer }>();
  private readonly scratch = Buffer.alloc(4 * (STR_MAX + 64));

  constructor(private readonly p: readonly Buffer[]) {}

  write(b: Buffer, o: number, t: { exchange: unknown; market: unknown; symbol: unknown }): number {
    const h = typeof t.symbol === 'string' ? this.heads.get(t.symbol) : undefined;
    if (h !== undefined && h.exchange === t.exchange && h.market === t.market) return put(b, o, h.bytes);
    const p = this.p;
    const end = put(this.scratch, str(this.scratch, str(this.scratch, str(this.scratch, 0, p[0]!, t.exchange), p[1]!, t.market), p[2]!, t.symbol), p[3]!);
    if (end < 0) return -1;
    if (this.heads.size >= HEADS_MAX) this.heads.clear();
    const bytes = Buffer.from(this.scratch.subarray(0, end));
    this.heads.set(t.symbol as string, { exchange: t.exchange, market: t.market, bytes });
    return put(b, o, bytes);
  }
}

const TRADE_HEADS = new Heads(TRADE);
const AGG_TRADE_HEADS = new Heads(AGG_TRADE);
const BOOK_TICKER_HEADS = new Heads(BOOK_TICKER);

// One writer per type, in FIELDS' order (named property reads, which V8 keeps fast, rather than a loop over names).
function trade(t: Trade, b: Buffer, o: number): number {
  o = int(b, TRADE_HEADS.write(b, o, t), NOTHING, t.receiveTimeUs);
  return taker(t, b, int(b, o, TRADE[4]!, t.tradeId), TRADE, 5);
}

function aggTrade(t: AggTrade, b: Buffer, o: number): number {
  const p = AGG_TRADE;
  o = int(b, AGG_TRADE_HEADS.write(b, o, t), NOTHING, t.receiveTimeUs);
  o = int(b, o, p[4]!, t.aggId);
  o = int(b, o, p[5]!, t.firstTradeId);
  return taker(t, b, int(b, o, p[6]!, t.lastTradeId), p, 7);
}

/** What a trade and an aggregate trade both end with, from price on; `p[i]` is the piece before the price. */
function taker(t: Trade | AggTrade, b: Buffer, o: number, p: readonly Buffer[], i: number): number {
  o = str(b, o, p[i]!, t.price);
  o = str(b, o, p[i + 1]!, t.quantity);
  o = flag(b, o, p[i + 2]!, t.buyerIsMaker);
  o = str(b, o, p[i + 3]!, t.side);
  o = int(b, o, p[i + 4]!, t.exchangeTimeMs);
  o = int(b, o, p[i + 5]!, t.eventTimeMs);
  return put(b, o, p[i + 6]!);
}

function bookTicker(t: BookTicker, b: Buffer, o: number): number {
  const p = BOOK_TICKER;
  o = BOOK_TICKER_HEADS.write(b, o, t);
  o = int(b, o, NOTHING, t.receiveTimeUs);
  o = int(b, o, p[4]!, t.updateId);
  o = str(b, o, p[5]!, t.bidPrice);
  o = str(b, o, p[6]!, t.bidQty);
  o = str(b, o, p[7]!, t.askPrice);
  o = str(b, o, p[8]!, t.askQty);
  o = intOrNull(b, o, p[9]!, t.exchangeTimeMs);
  o = intOrNull(b, o, p[10]!, t.eventTimeMs);
  return put(b, o, p[11]!);
}

/**
 * Writes the record value of `r` (a trade, aggregate trade or book ticker of the constructors' shape) at `o` in `b`,
 * which has at least TICK_JSON_MAX bytes from `o`; returns the offset after it, or -1 (and what it wrote is garbage)
 * when it declines the record.
 */
export function writeTickJson(r: ProducedRecord, b: Buffer, o: number): number {
  switch (r.type) {
    case 'trade':
      return hasKeys(r, KEYS.trade) ? trade(r, b, o) : -1;
    case 'aggTrade':
      return hasKeys(r, KEYS.aggTrade) ? aggTrade(r, b, o) : -1;
    case 'bookTicker':
      return hasKeys(r, KEYS.bookTicker) ? bookTicker(r, b, o) : -1;
    default:
      return -1;
  }
}
