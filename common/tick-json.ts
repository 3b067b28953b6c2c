// A tick's Kafka record value — encodeRecord's JSON, byte for byte — written straight into a byte buffer: the
// producer's hot path writes every trade, aggregate trade and book ticker this way, at about half the CPU of
// JSON.stringify and with no string per record. It takes only ticks of exactly the shape the tick constructors build
// (common/tick-schema.ts: the same keys in the same order), whose strings are short printable ASCII needing no escape
// and whose numbers are non-negative safe integers; it declines anything else (-1), which then takes JSON.stringify.
import { SCHEMA_VERSION, type ProducedRecord, type TickType } from './records.ts';
import { TICK_TYPES } from './tick-schema.ts';

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

/** One tick type as flat tables: the bytes before each value (`{"type":"trade","exchange":"` ...), its key and kind. */
interface Plan {
  readonly keyCount: number;
  readonly names: readonly string[];
  readonly kinds: Uint8Array;
  readonly before: readonly Buffer[];
  readonly end: Buffer;
}

function plan(type: TickType): Plan {
  const fields = FIELDS[type];
  const before: Buffer[] = [];
  let open = `{"type":${JSON.stringify(type)}`;
  for (const [name, kind] of fields) {
    before.push(Buffer.from(`${open},${JSON.stringify(name)}:${kind === STR ? '"' : ''}`, 'latin1'));
    open = kind === STR ? '"' : '';
  }
  return {
    keyCount: fields.length + 1,
    names: fields.map(([name]) => name),
    kinds: Uint8Array.from(fields, ([, kind]) => kind),
    before,
    end: Buffer.from(`${open},"v":${SCHEMA_VERSION}}`, 'latin1'),
  };
}

const PLANS: ReadonlyMap<string, Plan> = new Map(TICK_TYPES.map((t) => [t, plan(t)]));

/** Bytes writeTickJson may write at most: every key and constant, strings at their longest, integers at 16 digits. */
export const TICK_JSON_MAX = Math.max(...[...PLANS.values()].map((p) => p.before.reduce((n, b) => n + b.length + STR_MAX, p.end.length)));

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

function put(b: Buffer, o: number, bytes: Buffer): number {
  if (bytes.length > 12) {
    b.set(bytes, o);
    return o + bytes.length;
  }
  for (let i = 0; i < bytes.length; i++) b[o + i] = bytes[i]!;
  return o + bytes.length;
}

/** A string JSON writes as it is between quotes: printable ASCII without `"` or `\`. */
function putPlain(b: Buffer, o: number, s: unknown): number {
  if (typeof s !== 'string' || s.length > STR_MAX) return -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return -1;
    b[o + i] = c;
  }
  return o + s.length;
}

/** Decimal digits of an integer in [0, 2^32), as Number#toString writes them. */
function putUint32(b: Buffer, o: number, n: number): number {
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

/** A non-negative safe integer as Number#toString writes it (below 2^53: never in exponent form). */
function putInt(b: Buffer, o: number, n: unknown): number {
  if (!Number.isSafeInteger(n) || (n as number) < 0) return -1;
  const v = n as number;
  if (v < 4_294_967_296) return putUint32(b, o, v);
  const high = Math.floor(v / 1e9);
  o = putUint32(b, o, high);
  // The low nine digits, zero-padded.
  for (let i = o + 8, m = v - high * 1e9; i >= o; i--) {
    const q = (m / 10) >>> 0;
    b[i] = 48 + m - q * 10;
    m = q;
  }
  return o + 9;
}

/**
 * Writes the record value of `r` (a trade, aggregate trade or book ticker of the constructors' shape) at `o` in `b`,
 * which has at least TICK_JSON_MAX bytes from `o`; returns the offset after it, or -1 (and what it wrote is garbage)
 * when it declines the record.
 */
export function writeTickJson(r: ProducedRecord, b: Buffer, o: number): number {
  const p = PLANS.get(r.type);
  if (p === undefined || Object.keys(r).length !== p.keyCount) return -1;
  const fields = r as unknown as Record<string, unknown>;
  const { names, kinds, before } = p;
  for (let i = 0; i < names.length; i++) {
    o = put(b, o, before[i]!);
    const v = fields[names[i]!];
    switch (kinds[i]) {
      case STR:
        o = putPlain(b, o, v);
        break;
      case INT:
        o = putInt(b, o, v);
        break;
      case FLAG:
        o = v === true ? put(b, o, TRUE) : v === false ? put(b, o, FALSE) : -1;
        break;
      default:
        o = v === null ? put(b, o, NULL) : putInt(b, o, v);
    }
    if (o < 0) return -1;
  }
  return put(b, o, p.end);
}
