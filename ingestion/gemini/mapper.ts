// Gemini v2 market data (`l2` subscription) -> normalized values, in pure code. The first `l2_updates` of a symbol is
// the whole book and carries the latest trades (`trades`); later ones carry level changes only. `trade` events are live
// trades (side = taker side). v2 has no sequence numbers, so the session deduplicates trades by event id.
import type { VenueTrade } from '../../common/records.ts';
import { crossFieldProblem, isDecimal, isId, isPositiveDecimal, isVenueTimeMs, newTrade, withVenueSymbol } from '../../common/tick-schema.ts';
import type { LevelChange } from '../book/order-book.ts';
import { parseVenueFrame, shortValue, type SymbolMap } from '../venues.ts';

export type GeminiEvent =
  | {
      readonly kind: 'l2';
      readonly venueSymbol: string;
      readonly symbol: string;
      /** The initial message of a subscription: `changes` is the whole book. */
      readonly snapshot: boolean;
      readonly changes: readonly LevelChange[];
      readonly trades: readonly VenueTrade[];
    }
  | { readonly kind: 'trade'; readonly trade: VenueTrade }
  | { readonly kind: 'ignored'; readonly stream: string | null; readonly why: string }
  | { readonly kind: 'rejected'; readonly stream: string | null; readonly reason: string };

type Fields = Record<string, unknown>;

const short = shortValue;

/** One trade object (live or embedded); the reason it is bad as a string. */
function mapTrade(d: Fields, venueSymbol: string, symbol: string, receiveTimeUs: number): VenueTrade | string {
  const bad =
    (d.symbol !== venueSymbol ? `trade symbol ${short(d.symbol)} does not match ${venueSymbol}` : undefined) ??
    (!isId(d.event_id) ? `field event_id is not an id: ${short(d.event_id)}` : undefined) ??
    (!isVenueTimeMs(d.timestamp) ? `field timestamp is not a time in ms: ${short(d.timestamp)}` : undefined) ??
    (!isPositiveDecimal(d.price) ? `field price is not a positive decimal string: ${short(d.price)}` : undefined) ??
    (!isDecimal(d.quantity) ? `field quantity is not a decimal string: ${short(d.quantity)}` : undefined) ??
    (d.side !== 'buy' && d.side !== 'sell' ? `field side is not buy or sell: ${short(d.side)}` : undefined);
  if (bad) return bad;
  // Gemini's side is the taker's.
  const t = newTrade('gemini', 'spot', symbol, receiveTimeUs, d.event_id as number, d.price as string, d.quantity as string, d.side === 'sell', d.timestamp as number, d.timestamp as number);
  return crossFieldProblem(t) ?? withVenueSymbol(t, venueSymbol);
}

export function mapGemini(text: string, receiveTimeUs: number, symbols: SymbolMap): GeminiEvent {
  const parsed = parseVenueFrame(text);
  if ('reason' in parsed) return { kind: 'rejected', stream: null, reason: parsed.reason };
  const m = parsed.fields;
  const type = m.type;
  if (type === 'heartbeat') return { kind: 'ignored', stream: 'heartbeat', why: 'heartbeat' };
  if (typeof type !== 'string') return { kind: 'rejected', stream: null, reason: 'missing field type' };
  if (type !== 'l2_updates' && type !== 'trade') {
    // Errors and unknown types keep their text in the dead letter: Gemini reports problems with `result: "error"`.
    if (m.result === 'error') return { kind: 'rejected', stream: type, reason: `venue error: ${short(m.reason)} ${short(m.message)}` };
    return { kind: 'ignored', stream: type, why: 'message type not ingested' };
  }
  const venueSymbol = m.symbol;
  if (typeof venueSymbol !== 'string') return { kind: 'rejected', stream: type, reason: 'missing field symbol' };
  const stream = `${type}:${venueSymbol}`;
  const symbol = symbols.canonical(venueSymbol);
  if (symbol === undefined) return { kind: 'rejected', stream, reason: `symbol ${short(venueSymbol)} has no known quote currency` };

  if (type === 'trade') {
    const t = mapTrade(m, venueSymbol, symbol, receiveTimeUs);
    return typeof t === 'string' ? { kind: 'rejected', stream, reason: t } : { kind: 'trade', trade: t };
  }
  if (!Array.isArray(m.changes)) return { kind: 'rejected', stream, reason: 'field changes is not an array' };
  const changes: LevelChange[] = [];
  for (let i = 0; i < m.changes.length; i++) {
    const c = m.changes[i] as unknown;
    if (!Array.isArray(c) || c.length !== 3) return { kind: 'rejected', stream, reason: `changes[${i}] is not [side, price, quantity]` };
    if (c[0] !== 'buy' && c[0] !== 'sell') return { kind: 'rejected', stream, reason: `changes[${i}] side is not buy or sell` };
    if (!isPositiveDecimal(c[1])) return { kind: 'rejected', stream, reason: `changes[${i}] price is not a positive decimal string` };
    if (!isDecimal(c[2])) return { kind: 'rejected', stream, reason: `changes[${i}] quantity is not a decimal string` };
    changes.push({ side: c[0] === 'buy' ? 'bid' : 'ask', price: c[1], quantity: c[2] });
  }
  const snapshot = m.trades !== undefined;
  const trades: VenueTrade[] = [];
  if (snapshot) {
    if (!Array.isArray(m.trades)) return { kind: 'rejected', stream, reason: 'field trades is not an array' };
    for (let i = 0; i < m.trades.length; i++) {
      const d = m.trades[i] as unknown;
      if (typeof d !== 'object' || d === null) return { kind: 'rejected', stream, reason: `trades[${i}] is not an object` };
      const t = mapTrade(d as Fields, venueSymbol, symbol, receiveTimeUs);
      if (typeof t === 'string') return { kind: 'rejected', stream, reason: `trades[${i}]: ${t}` };
      trades.push(t);
    }
    // Gemini lists them newest first; records go out in time order.
    trades.sort((a, b) => a.exchangeTimeMs - b.exchangeTimeMs || a.tradeId - b.tradeId);
  }
  return { kind: 'l2', venueSymbol, symbol, snapshot, changes, trades };
}
