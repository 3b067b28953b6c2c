import { describe, expect, it } from 'vitest';
import type { RecordedEvent, Recording } from './binance-server.ts';
import { movePoint, syntheticRecording, syntheticSymbolName } from './synthetic-symbols.ts';

const S = 1_000_000_000n;
const T0 = 1_723_161_255_000n * 1_000_000n; // 2024-08-08 23:54:15 UTC in ns

/** One trade, its aggTrade and a book ticker every second for `seconds` seconds, exchange time 1 s before receive. */
function source(symbol: string, seconds: number): RecordedEvent[] {
  const out: RecordedEvent[] = [];
  const lower = symbol.toLowerCase();
  for (let i = 0; i < seconds; i++) {
    const receiveNs = T0 + BigInt(i) * S;
    const T = Number(receiveNs / 1_000_000n) - 1000;
    const trade = { e: 'trade', E: T, s: symbol, t: 500 + i, p: '100.50', q: '0.002', T, m: false, M: true };
    const agg = { e: 'aggTrade', E: T, s: symbol, a: 70 + i, p: '100.50', q: '0.002', f: 500 + i, l: 500 + i, T, m: false, M: true };
    const book = { u: 9000 + 3 * i, s: symbol, b: '100.40', B: '1.5', a: '100.60', A: '2' };
    out.push(
      { stream: `${lower}@trade`, text: JSON.stringify({ stream: `${lower}@trade`, data: trade }), receiveNs, symbol, type: 'trade', id: trade.t },
      { stream: `${lower}@aggTrade`, text: JSON.stringify({ stream: `${lower}@aggTrade`, data: agg }), receiveNs, symbol, type: 'aggTrade', id: agg.a },
      { stream: `${lower}@bookTicker`, text: JSON.stringify({ stream: `${lower}@bookTicker`, data: book }), receiveNs, symbol, type: 'bookTicker', id: book.u },
    );
  }
  return out;
}

const recording: Recording = {
  events: [...source('BTCUSDT', 10), ...source('ETHUSDT', 10)].sort((a, b) => (a.receiveNs < b.receiveNs ? -1 : 1)),
  trades: new Map(),
  aggTrades: new Map(),
  depthSnapshots: new Map(),
};
const data = (e: RecordedEvent) => JSON.parse(e.text) as { stream: string; data: Record<string, string | number> };

describe('movePoint', () => {
  it('moves the decimal point exactly, both ways', () => {
    expect(movePoint('58123.45', -2)).toBe('581.2345');
    expect(movePoint('58123.45', -6)).toBe('0.05812345');
    expect(movePoint('0.00100000', 2)).toBe('0.100000');
    expect(movePoint('1.5', 3)).toBe('1500');
    expect(movePoint('42', 0)).toBe('42');
  });
});

describe('syntheticRecording', () => {
  it('names N symbols, takes the recorded symbols in turn and thins the rate by rank', () => {
    const { symbols, recording: r } = syntheticRecording(recording, { symbols: 4, seconds: 10, exponent: 1 });
    expect(symbols.map((s) => [s.symbol, s.source, s.factor])).toEqual([
      [syntheticSymbolName(1), 'BTCUSDT', 1],
      ['S0002USDT', 'ETHUSDT', 0.5],
      ['S0003USDT', 'BTCUSDT', 1 / 3],
      ['S0004USDT', 'ETHUSDT', 0.25],
    ]);
    // 10 s of a 3-events-per-second source at factor 1, 1/2, 1/3, 1/4.
    expect(symbols.map((s) => s.events)).toEqual([30, 15, 12, 9]);
    expect(r.events.length).toBe(66);
    expect(new Set(r.events.map((e) => e.symbol))).toEqual(new Set(symbols.map((s) => s.symbol)));
    for (let i = 1; i < r.events.length; i++) expect(r.events[i]!.receiveNs >= r.events[i - 1]!.receiveNs).toBe(true);
  });

  it('rewrites each frame under its own name and scale, keeping exchange time 1 s before receive', () => {
    const { recording: r } = syntheticRecording(recording, { symbols: 2, seconds: 10, exponent: 1 });
    const trade = r.events.find((e) => e.symbol === 'S0002USDT' && e.type === 'trade' && e.id === 501)!;
    const m = data(trade);
    expect(m.stream).toBe('s0002usdt@trade');
    expect(m.data).toMatchObject({ s: 'S0002USDT', t: 501, p: '10.050', q: '0.02' });
    // The second source second runs 2 s after the first at half the rate; exchange time stays 1 s behind receive.
    expect(trade.receiveNs).toBe(T0 + 2n * S);
    expect(m.data.T).toBe(Number(trade.receiveNs / 1_000_000n) - 1000);
    const book = data(r.events.find((e) => e.symbol === 'S0002USDT' && e.type === 'bookTicker')!);
    expect(book.data).toMatchObject({ s: 'S0002USDT', b: '10.040', B: '15', a: '10.060', A: '20' });
  });

  it('cycles the recording with ids that run on without a hole when the run is longer, or the rate higher', () => {
    const { recording: r } = syntheticRecording(recording, { symbols: 1, seconds: 10, exponent: 1, rateFactor: 3 });
    const trades = r.events.filter((e) => e.type === 'trade');
    expect(trades.length).toBe(30);
    expect(trades.map((e) => e.id)).toEqual(Array.from({ length: 30 }, (_, i) => 500 + i));
    const aggs = r.events.filter((e) => e.type === 'aggTrade').map((e) => data(e).data);
    expect(aggs.map((a) => a.a)).toEqual(Array.from({ length: 30 }, (_, i) => 70 + i));
    expect(aggs.every((a) => a.f === (a.a as number) + 430)).toBe(true);
    const ticks = r.events.filter((e) => e.type === 'bookTicker').map((e) => e.id);
    expect(ticks.every((u, i) => i === 0 || u > ticks[i - 1]!)).toBe(true);
  });

  it('numbers aggTrades afresh where the recording jumps (loadRecording starts a second day 10^8 on)', () => {
    const jumped = recording.events.map((e) => (e.type === 'aggTrade' && e.id >= 75 ? { ...e, id: e.id + 100_000_000, text: e.text.replace(`"a":${e.id}`, `"a":${e.id + 100_000_000}`) } : e));
    const { recording: r } = syntheticRecording({ ...recording, events: jumped }, { symbols: 1, seconds: 10, exponent: 1 });
    const aggs = r.events.filter((e) => e.type === 'aggTrade');
    expect(aggs.map((e) => e.id)).toEqual(Array.from({ length: 10 }, (_, i) => 70 + i));
    expect(aggs.map((e) => data(e).data.a)).toEqual(aggs.map((e) => e.id));
  });
});
