// Gemini v2 l2 replayed from cryptofeed's recording: each symbol's book is its initial message, never crosses, every
// recorded trade (embedded in the initial message or live) is one normalized trade even after a resubscribe, and bad
// frames are rejected with reasons.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readCryptofeedCapture } from '../book/cryptofeed-capture.ts';
import type { VenueOutput } from '../book/output.ts';
import { expectEachRejected } from '../book/session-checks.ts';
import { GeminiSession } from './session.ts';

const FILE = fileURLToPath(new URL('../../../shared/data/cryptofeed/GEMINI.ws.1.0', import.meta.url));
const missing = existsSync(FILE) ? undefined : `needs the recorded capture ${FILE}`;
if (missing) console.warn(`[skipped] ${missing}`);

const of = <K extends VenueOutput['kind']>(outs: VenueOutput[], kind: K) => outs.filter((o): o is Extract<VenueOutput, { kind: K }> => o.kind === kind);

describe.skipIf(missing)('Gemini session on the recorded capture', () => {
  const cap = missing ? undefined : readCryptofeedCapture(FILE);

  it('rebuilds books equal to their initial message that never cross; every recorded trade once', () => {
    const session = new GeminiSession({ depth: 20, intervalMs: 0 });
    const out: VenueOutput[] = [];
    const recorded: string[] = [];
    const problems: string[] = [];
    for (const f of cap!.frames) {
      session.frame(f.text, f.receiveTimeUs, out);
      const m = JSON.parse(f.text) as { type: string; symbol: string; event_id?: number; changes?: [string, string, string][]; trades?: { event_id: number }[] };
      if (m.type === 'trade') recorded.push(`${m.symbol}:${m.event_id}`);
      if (m.type !== 'l2_updates') continue;
      const book = session.books.book(m.symbol)!;
      if (book.crossed()) problems.push(`${m.symbol} crossed`);
      if (m.trades) {
        for (const t of m.trades) recorded.push(`${m.symbol}:${t.event_id}`);
        // Right after the initial message the book is exactly its levels.
        const bids = m.changes!.filter((c) => c[0] === 'buy').map((c) => [c[1], c[2]]).sort((a, b) => Number(b[0]) - Number(a[0]));
        const asks = m.changes!.filter((c) => c[0] === 'sell').map((c) => [c[1], c[2]]).sort((a, b) => Number(a[0]) - Number(b[0]));
        expect(book.bids.top(1e6)).toEqual(bids);
        expect(book.asks.top(1e6)).toEqual(asks);
      }
    }
    expect(problems).toEqual([]);
    expect(of(out, 'rejected')).toEqual([]);
    expect(of(out, 'gap')).toEqual([]);
    expect(session.books.venueSymbols()).toHaveLength(10);
    const trades = of(out, 'trade').map((o) => o.record);
    expect(recorded).toHaveLength(516);
    expect(trades.map((t) => `${t.venueSymbol}:${t.tradeId}`).sort()).toEqual([...new Set(recorded)].sort());
    expect(trades.find((t) => t.tradeId === 45465818387)).toMatchObject({
      exchange: 'gemini', symbol: 'ANKR-USD', venueSymbol: 'ANKRUSD', price: '0.07946', quantity: '1020.482111', side: 'buy', buyerIsMaker: false, exchangeTimeMs: 1624493670759,
    });
    // v2 l2 has no ticker: book tickers come from the rebuilt best bid/ask.
    const tickers = of(out, 'bookTicker').map((o) => o.record);
    expect(tickers.length).toBeGreaterThan(100);
    for (const t of tickers) expect(Number(t.bidPrice)).toBeLessThan(Number(t.askPrice));
    expect(new Set(of(out, 'book').map((o) => o.record.symbol))).toEqual(new Set(['ALCX-USD', 'ANKR-USD', 'BAT-BTC', 'BTC-GBP', 'ETH-EUR', 'FIL-USD', 'GRT-USD', 'LINK-ETH', 'LTC-ETH', 'ZEC-LTC']));
  });

  it('a resubscribe (the initial message again) replaces the book and repeats no trade', () => {
    const session = new GeminiSession({ depth: 20, intervalMs: 0 });
    const out: VenueOutput[] = [];
    for (const f of cap!.frames) session.frame(f.text, f.receiveTimeUs, out);
    const first = cap!.frames.find((f) => f.text.includes('"trades"'))!;
    const before = of(out, 'trade').length;
    session.disconnected();
    session.frame(first.text, first.receiveTimeUs + 1, out);
    expect(of(out, 'trade')).toHaveLength(before);
    expect(session.counts.duplicateTrades).toBe(50);
  });
});

describe('Gemini session', () => {
  it('rejects malformed frames with a reason and never throws', () => {
    const s = new GeminiSession({ depth: 5, intervalMs: 0 });
    const trade = '{"type":"trade","symbol":"BTCUSD","event_id":1,"timestamp":1624493670759,"price":"35000.1","quantity":"0.1","side":"buy"}';
    const bad: [string, RegExp][] = [
      ['{"type":', /not JSON/],
      ['"x"', /not a JSON object/],
      ['{"symbol":"BTCUSD"}', /missing field type/],
      ['{"type":"trade","event_id":1}', /missing field symbol/],
      [trade.replace('"BTCUSD"', '"BTCXYZ"'), /no known quote/],
      [trade.replace('"event_id":1', '"event_id":-1'), /event_id/],
      [trade.replace('"35000.1"', '35000.1'), /price/],
      [trade.replace('"side":"buy"', '"side":"maker"'), /side/],
      ['{"type":"l2_updates","symbol":"BTCUSD","changes":"none"}', /changes is not an array/],
      ['{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","1","x"]]}', /changes\[0\] quantity/],
      ['{"type":"l2_updates","symbol":"BTCUSD","changes":[],"trades":[{"type":"trade","symbol":"ETHUSD"}]}', /trades\[0\]/],
      ['{"type":"error","result":"error","reason":"InvalidJson","message":"bad"}', /venue error/],
    ];
    expectEachRejected(s, bad, 1);
    const o: VenueOutput[] = [];
    s.frame('{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","1","2"]]}', 1, o);
    expect(o.map((x) => x.kind)).toEqual(['ignored', 'needSnapshot']);
  });
});
