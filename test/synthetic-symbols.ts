// N synthetic Binance symbols derived from the recorded streams, for sizing runs (`npm run bench:e2e -- --symbols N`).
// Symbol of rank r (1-based) replays the trade, aggTrade and bookTicker stream of the ((r-1) mod k)-th busiest recorded
// symbol under its own name (S0001USDT...), prices moved (r-1) mod 4 decimal places down and quantities as many up
// (same notional), at r^-exponent of that stream's recorded rate: the recording slowed (receive and exchange times
// stretched, ids unchanged, so every id sequence stays gap-free), cycled with shifted ids and times when the run is
// longer than the recording. The recorded symbols are among the busiest, so rank 1 takes one at its full rate and the
// tail thins out as trading activity across instruments does (a Zipf-like rank law; the exponent is an assumption).
import type { RecordedEvent, Recording } from './binance-server.ts';

export interface SyntheticOptions {
  /** How many symbols. */
  readonly symbols: number;
  /** Seconds of timeline to generate, on the recording's clock from its first event. */
  readonly seconds: number;
  /** Rank r runs at r^-exponent of its source's recorded rate; 0 = every symbol at its source's full rate. */
  readonly exponent: number;
  /** Every rate multiplied by this (a busier market than the recorded one); default 1. */
  readonly rateFactor?: number;
}

export interface SyntheticSymbol {
  readonly symbol: string;
  readonly source: string;
  /** Its rate / its source's recorded rate. */
  readonly factor: number;
  readonly events: number;
}

export interface SyntheticRecording {
  readonly recording: Recording;
  readonly symbols: readonly SyntheticSymbol[];
}

export const syntheticSymbolName = (rank: number): string => `S${String(rank).padStart(4, '0')}USDT`;

/** A decimal string with its point moved `places` to the right (negative: to the left), exactly. */
export function movePoint(s: string, places: number): string {
  const [i, f = ''] = s.split('.');
  let digits = i! + f;
  let point = i!.length + places;
  if (point <= 0) {
    digits = '0'.repeat(1 - point) + digits;
    point = 1;
  }
  if (point > digits.length) digits = digits.padEnd(point, '0');
  const int = digits.slice(0, point).replace(/^0+(?=\d)/, '');
  const frac = digits.slice(point);
  return frac ? `${int}.${frac}` : int;
}

type Data = Record<string, unknown>;

/** The recorded frame rewritten for the synthetic symbol: name, its id, the shift of the trade ids an aggTrade spans,
 * exchange-time shift, decimal shift. */
function rewrite(e: RecordedEvent, symbol: string, id: number, dTradeId: number, dMs: number, places: number): string {
  const d = (JSON.parse(e.text) as { data: Data }).data;
  const price = (k: string) => (d[k] = movePoint(d[k] as string, -places));
  const qty = (k: string) => (d[k] = movePoint(d[k] as string, places));
  d.s = symbol;
  if (e.type === 'bookTicker') {
    d.u = id;
    price('b');
    price('a');
    qty('B');
    qty('A');
  } else {
    if (e.type === 'trade') d.t = id;
    else {
      d.a = id;
      d.f = (d.f as number) + dTradeId;
      d.l = (d.l as number) + dTradeId;
    }
    price('p');
    qty('q');
  }
  for (const k of ['T', 'E']) if (typeof d[k] === 'number') d[k] = (d[k] as number) + dMs;
  const stream = `${symbol.toLowerCase()}@${e.type}`;
  return JSON.stringify({ stream, data: d });
}

/** The synthetic symbols' merged timeline as a Recording for BinanceServer (REST backfill answers nothing for them). */
export function syntheticRecording(source: Recording, opts: SyntheticOptions): SyntheticRecording {
  const bySymbol = new Map<string, RecordedEvent[]>();
  for (const e of source.events) {
    if (e.type === 'depth') continue;
    const l = bySymbol.get(e.symbol) ?? bySymbol.set(e.symbol, []).get(e.symbol)!;
    l.push(e);
  }
  // Busiest first (events per second of receive time), so rank 1 takes the busiest recorded stream.
  const rate = (evs: readonly RecordedEvent[]) => evs.length / (Number(evs.at(-1)!.receiveNs - evs[0]!.receiveNs) + 1);
  const sources = [...bySymbol.keys()].sort((x, y) => rate(bySymbol.get(y)!) - rate(bySymbol.get(x)!) || (x < y ? -1 : 1));
  if (sources.length === 0) throw new Error('the recording has no trade, aggTrade or bookTicker events');
  const t0 = source.events[0]!.receiveNs;
  const horizonNs = BigInt(Math.round(opts.seconds * 1e9));
  const events: RecordedEvent[] = [];
  const symbols: SyntheticSymbol[] = [];
  const trades = new Map<string, never[]>();
  const aggTrades = new Map<string, never[]>();
  for (let rank = 1; rank <= opts.symbols; rank++) {
    const name = syntheticSymbolName(rank);
    const src = sources[(rank - 1) % sources.length]!;
    const evs = bySymbol.get(src)!;
    const factor = (opts.exponent === 0 ? 1 : rank ** -opts.exponent) * (opts.rateFactor ?? 1);
    // One round of the source: its span plus the mean gap between its receive times, so a cycled round follows on.
    const first = evs[0]!.receiveNs;
    let times = 1;
    for (let i = 1; i < evs.length; i++) if (evs[i]!.receiveNs !== evs[i - 1]!.receiveNs) times++;
    const spanNs = evs.at(-1)!.receiveNs - first;
    const roundNs = spanNs + (times > 1 ? spanNs / BigInt(times - 1) : 1_000_000_000n);
    // Per type: the ids a round covers (last - first + 1), so a cycled round's ids follow the previous round's.
    // aggTrade ids are numbered afresh: loadRecording's jump by 10^8 between two days' files is no id Binance skips.
    const ids = new Map<string, { first: number; last: number }>();
    const own = evs.map((e) => {
      const r = ids.get(e.type);
      const id = e.type !== 'aggTrade' ? e.id : r ? r.last + 1 : e.id;
      if (r) r.last = id;
      else ids.set(e.type, { first: id, last: id });
      return id;
    });
    const places = (rank - 1) % 4;
    let n = 0;
    for (let j = 0; ; j++) {
      const e = evs[j % evs.length]!;
      const ownId = own[j % evs.length]!;
      const round = Math.floor(j / evs.length);
      const offsetNs = Number(e.receiveNs - first + BigInt(round) * roundNs) / factor;
      if (offsetNs >= Number(horizonNs)) break;
      const receiveNs = t0 + BigInt(Math.round(offsetNs));
      const roundIds = (type: string) => {
        const r = ids.get(type);
        return r ? round * (r.last - r.first + 1) : 0;
      };
      const dId = roundIds(e.type);
      const dMs = Math.round(Number(receiveNs - e.receiveNs) / 1e6);
      events.push({ stream: `${name.toLowerCase()}@${e.type}`, text: rewrite(e, name, ownId + dId, roundIds('trade'), dMs, places), receiveNs, symbol: name, type: e.type, id: ownId + dId });
      n++;
    }
    symbols.push({ symbol: name, source: src, factor, events: n });
    trades.set(name, []);
    aggTrades.set(name, []);
  }
  events.sort((a, b) => (a.receiveNs < b.receiveNs ? -1 : a.receiveNs > b.receiveNs ? 1 : 0));
  return { recording: { events, trades, aggTrades, depthSnapshots: new Map() }, symbols };
}
