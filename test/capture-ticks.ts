// Ticks for writer tests and benchmarks, built straight from the recorded Binance captures in ../shared/data (read only,
// never copied). Deliberately independent of the ingestion mapper: a plain, small mapping of @trade and @bookTicker
// messages to the common record types; aggTrades are derived by grouping consecutive trades of one symbol with the same
// price, taker side and trade time (what Binance aggregates, closely enough for storage tests).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import type { AggTrade, BookTicker, Market, Tick, Trade } from '../common/records.ts';

export const CAPTURE_DIR = fileURLToPath(new URL('../../shared/data', import.meta.url));

/** For describe.skipIf: why the captures cannot be used here, or undefined. */
export function capturesMissing(): string | undefined {
  if (existsSync(`${CAPTURE_DIR}/binance-spot`) && existsSync(`${CAPTURE_DIR}/binance-usdm`)) return undefined;
  const msg = `needs the recorded captures in ${CAPTURE_DIR} (../shared/data next to the repository)`;
  console.warn(`[skipped] ${msg}`);
  return msg;
}

export interface CaptureTicks {
  readonly trades: Trade[];
  readonly aggTrades: AggTrade[];
  readonly bookTickers: BookTicker[];
}

interface RawTrade {
  E: number;
  s: string;
  t: number;
  p: string;
  q: string;
  T: number;
  m: boolean;
}
interface RawBookTicker {
  u: number;
  s: string;
  b: string;
  B: string;
  a: string;
  A: string;
  E?: number;
  T?: number;
}

function readCapture(file: string, market: Market, out: { trades: Trade[]; bookTickers: BookTicker[] }): void {
  const text = gunzipSync(readFileSync(file)).toString('utf8');
  for (const line of text.split('\n')) {
    const space = line.indexOf(' ');
    if (space < 0) continue;
    // '<receive ns> <message>': drop the last three digits for µs (exact, no float).
    const receiveTimeUs = Number(line.slice(0, space - 3));
    const body = line.slice(space + 1);
    if (!body.startsWith('{"stream"')) continue; // the REST snapshot line
    const isTrade = body.includes('@trade"');
    if (!isTrade && !body.includes('@bookTicker"')) continue; // depth
    const { data } = JSON.parse(body) as { data: RawTrade & RawBookTicker };
    if (isTrade) {
      const d = data as RawTrade;
      if (!/[1-9]/.test(d.p)) continue; // a zero-price print (futures special executions) is not a trade to store
      out.trades.push({
        type: 'trade',
        exchange: 'binance',
        market,
        symbol: d.s,
        receiveTimeUs,
        tradeId: d.t,
        price: d.p,
        quantity: d.q,
        buyerIsMaker: d.m,
        side: d.m ? 'sell' : 'buy',
        exchangeTimeMs: d.T,
        eventTimeMs: d.E,
      });
    } else {
      const d = data as RawBookTicker;
      out.bookTickers.push({
        type: 'bookTicker',
        exchange: 'binance',
        market,
        symbol: d.s,
        receiveTimeUs,
        updateId: d.u,
        bidPrice: d.b,
        bidQty: d.B,
        askPrice: d.a,
        askQty: d.A,
        exchangeTimeMs: d.T ?? null,
        eventTimeMs: d.E ?? null,
      });
    }
  }
}

/** Exact sum of two non-negative decimal strings (BigInt on a common scale). */
export function addDecimals(a: string, b: string): string {
  const scale = Math.max(a.split('.')[1]?.length ?? 0, b.split('.')[1]?.length ?? 0);
  const toInt = (s: string) => {
    const [i, f = ''] = s.split('.');
    return BigInt(`${i}${f.padEnd(scale, '0')}`);
  };
  const sum = (toInt(a) + toInt(b)).toString().padStart(scale + 1, '0');
  return scale === 0 ? sum : `${sum.slice(0, -scale)}.${sum.slice(-scale)}`;
}

/** Groups consecutive trades of a symbol with the same price, side and trade time into aggTrades. */
export function deriveAggTrades(trades: readonly Trade[]): AggTrade[] {
  const out: AggTrade[] = [];
  const open = new Map<string, AggTrade>();
  const nextId = new Map<string, number>();
  const flush = (key: string) => {
    const a = open.get(key);
    if (a) out.push(a);
    open.delete(key);
  };
  for (const t of trades) {
    const key = `${t.market}:${t.symbol}`;
    const cur = open.get(key);
    if (cur && cur.price === t.price && cur.buyerIsMaker === t.buyerIsMaker && cur.exchangeTimeMs === t.exchangeTimeMs) {
      open.set(key, { ...cur, lastTradeId: t.tradeId, quantity: addDecimals(cur.quantity, t.quantity), eventTimeMs: t.eventTimeMs });
      continue;
    }
    flush(key);
    const aggId = nextId.get(key) ?? 1_000_000;
    nextId.set(key, aggId + 1);
    open.set(key, {
      type: 'aggTrade',
      exchange: t.exchange,
      market: t.market,
      symbol: t.symbol,
      receiveTimeUs: t.receiveTimeUs,
      aggId,
      firstTradeId: t.tradeId,
      lastTradeId: t.tradeId,
      price: t.price,
      quantity: t.quantity,
      buyerIsMaker: t.buyerIsMaker,
      side: t.side,
      exchangeTimeMs: t.exchangeTimeMs,
      eventTimeMs: t.eventTimeMs,
    });
  }
  for (const key of [...open.keys()]) flush(key);
  return out;
}

let cached: CaptureTicks | undefined;

/** Every trade, derived aggTrade and bookTicker of the Binance spot and USD-M captures (about 55k + 40k + 200k). */
export function loadCaptureTicks(): CaptureTicks {
  if (cached) return cached;
  const trades: Trade[] = [];
  const bookTickers: BookTicker[] = [];
  for (const [folder, market] of [
    ['binance-spot', 'spot'],
    ['binance-usdm', 'usdm'],
  ] as const) {
    for (const f of readdirSync(`${CAPTURE_DIR}/${folder}`).filter((n) => n.endsWith('.gz')).sort()) {
      readCapture(`${CAPTURE_DIR}/${folder}/${f}`, market, { trades, bookTickers });
    }
  }
  cached = { trades, aggTrades: deriveAggTrades(trades), bookTickers };
  return cached;
}

/**
 * `n` ticks of all three kinds, interleaved in their recorded proportions. Beyond the recorded count the ticks are
 * cycled: cycle k shifts every id by k * 10^10 and every time by k * 1 hour, so each copy is a distinct tick.
 */
export function mixedTicks(n: number): Tick[] {
  const { trades, aggTrades, bookTickers } = loadCaptureTicks();
  const base: Tick[] = [];
  // Round-robin by proportion keeps each kind spread over the whole run.
  const lists: Tick[][] = [trades, aggTrades, bookTickers];
  const total = trades.length + aggTrades.length + bookTickers.length;
  const idx = [0, 0, 0];
  for (let i = 0; i < total; i++) {
    let pick = 0;
    let best = Infinity;
    for (let k = 0; k < 3; k++) {
      const len = lists[k]!.length;
      if (idx[k]! >= len) continue;
      const progress = idx[k]! / len;
      if (progress < best) {
        best = progress;
        pick = k;
      }
    }
    base.push(lists[pick]![idx[pick]!++]!);
  }
  const out: Tick[] = [];
  for (let i = 0; i < n; i++) {
    const t = base[i % base.length]!;
    const k = Math.floor(i / base.length);
    out.push(k === 0 ? t : shifted(t, k));
  }
  return out;
}

function shifted(t: Tick, k: number): Tick {
  const dId = k * 1e10;
  const dMs = k * 3_600_000;
  const dUs = dMs * 1000;
  switch (t.type) {
    case 'trade':
      return { ...t, tradeId: t.tradeId + dId, exchangeTimeMs: t.exchangeTimeMs + dMs, eventTimeMs: t.eventTimeMs + dMs, receiveTimeUs: t.receiveTimeUs + dUs };
    case 'aggTrade':
      return {
        ...t,
        aggId: t.aggId + dId,
        firstTradeId: t.firstTradeId + dId,
        lastTradeId: t.lastTradeId + dId,
        exchangeTimeMs: t.exchangeTimeMs + dMs,
        eventTimeMs: t.eventTimeMs + dMs,
        receiveTimeUs: t.receiveTimeUs + dUs,
      };
    case 'bookTicker':
      return {
        ...t,
        updateId: t.updateId + dId,
        exchangeTimeMs: t.exchangeTimeMs === null ? null : t.exchangeTimeMs + dMs,
        eventTimeMs: t.eventTimeMs === null ? null : t.eventTimeMs + dMs,
        receiveTimeUs: t.receiveTimeUs + dUs,
      };
  }
}

/** The primary key of a tick's row, as text: what "distinct tick" means for the tables. */
export function tickRowKey(t: Tick): string {
  const time = t.type === 'bookTicker' ? (t.exchangeTimeMs ?? Math.floor(t.receiveTimeUs / 1000)) : t.exchangeTimeMs;
  const id = t.type === 'trade' ? t.tradeId : t.type === 'aggTrade' ? t.aggId : t.updateId;
  return `${t.exchange}|${t.market}|${t.symbol}|${time}|${id}`;
}
