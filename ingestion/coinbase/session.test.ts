// Coinbase level2/ticker/matches replayed from cryptofeed's recording: books never cross and agree with every ticker
// sent after their snapshot, every recorded match (and last_match) is one normalized trade, bad frames are rejected
// with reasons, and a missing trade id is a gap event.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readCryptofeedCapture } from '../book/cryptofeed-capture.ts';
import type { VenueOutput } from '../book/output.ts';
import { expectEachRejected } from '../book/session-checks.ts';
import { CoinbaseSession } from './session.ts';

const FILE = fileURLToPath(new URL('../../../shared/data/cryptofeed/COINBASE.ws.28.0', import.meta.url));
const missing = existsSync(FILE) ? undefined : `needs the recorded capture ${FILE}`;
if (missing) console.warn(`[skipped] ${missing}`);

const of = <K extends VenueOutput['kind']>(outs: VenueOutput[], kind: K) => outs.filter((o): o is Extract<VenueOutput, { kind: K }> => o.kind === kind);

describe.skipIf(missing)('Coinbase session on the recorded capture', () => {
  it('rebuilds ten books that never cross and agree with the tickers; every match is one trade', () => {
    const cap = readCryptofeedCapture(FILE);
    expect(cap.badLines).toBe(0);
    const session = new CoinbaseSession({ depth: 20, intervalMs: 0 });
    const out: VenueOutput[] = [];
    const snapshotAtMs = new Map<string, number>();
    const recordedTrades: string[] = [];
    const problems: string[] = [];
    let tickerChecks = 0;
    for (const f of cap.frames) {
      session.frame(f.text, f.receiveTimeUs, out);
      const m = JSON.parse(f.text) as Record<string, string>;
      const product = m.product_id!;
      if (m.type === 'snapshot') snapshotAtMs.set(product, f.receiveTimeUs / 1000);
      if (m.type === 'match' || m.type === 'last_match') recordedTrades.push(`${product}:${m.trade_id}`);
      const book = session.books.book(product);
      if (book?.crossed()) problems.push(`${product} crossed after ${f.text.slice(0, 80)}`);
      // A ticker describes the book just after its trade; those sent before the snapshot describe an older book.
      if (m.type === 'ticker' && book && Date.parse(m.time!) > snapshotAtMs.get(product)!) {
        tickerChecks++;
        const [bid] = book.bids.top(1);
        const [ask] = book.asks.top(1);
        if (Number(bid![0]) !== Number(m.best_bid) || Number(ask![0]) !== Number(m.best_ask)) problems.push(`${product} ${m.time}: book ${bid![0]}/${ask![0]} ticker ${m.best_bid}/${m.best_ask}`);
      }
    }
    expect(problems).toEqual([]);
    expect(tickerChecks).toBeGreaterThanOrEqual(90);
    expect(of(out, 'rejected')).toEqual([]);
    expect(of(out, 'gap')).toEqual([]);
    expect(session.books.venueSymbols()).toHaveLength(10);

    const trades = of(out, 'trade').map((o) => o.record);
    expect(trades.map((t) => `${t.venueSymbol}:${t.tradeId}`).sort()).toEqual(recordedTrades.sort());
    expect(new Set(recordedTrades).size).toBe(recordedTrades.length);
    expect(trades.find((t) => t.tradeId === 280232)).toEqual({
      type: 'trade', exchange: 'coinbase', market: 'spot', symbol: 'SKL-BTC', venueSymbol: 'SKL-BTC', receiveTimeUs: 1618677817129516,
      tradeId: 280232, price: '0.00001305', quantity: '985', buyerIsMaker: false, side: 'buy', // maker side sell: the taker bought
      exchangeTimeMs: Date.parse('2021-04-17T16:43:37.089Z'), eventTimeMs: Date.parse('2021-04-17T16:43:37.089Z'),
    });
    const books = of(out, 'book').map((o) => o.record);
    expect(books.length).toBeGreaterThan(1000);
    for (const b of books) expect(b.bids.length > 0 && b.asks.length > 0 && Number(b.bids[0]![0]) < Number(b.asks[0]![0])).toBe(true);
    // The 2021 ticker has no best bid/ask sizes: no book ticker is invented from it.
    expect(of(out, 'bookTicker')).toEqual([]);
  });
});

describe('Coinbase session', () => {
  const match = (id: number, seq: number) =>
    JSON.stringify({ type: 'match', trade_id: id, side: 'sell', size: '1.5', price: '100.25', product_id: 'BTC-USD', sequence: seq, time: '2021-04-17T16:43:37.089723Z' });

  it('drops a repeated match and records a jump in trade ids as a gap', () => {
    const s = new CoinbaseSession({ depth: 5, intervalMs: 0 });
    const out: VenueOutput[] = [];
    for (const [id, seq] of [[10, 100], [11, 101], [11, 101], [14, 107], [15, 108]] as const) s.frame(match(id, seq), 1_618_677_817_000_000, out);
    expect(of(out, 'trade').map((o) => o.record.tradeId)).toEqual([10, 11, 14, 15]);
    expect(of(out, 'gap').map((o) => o.record)).toEqual([
      expect.objectContaining({ exchange: 'coinbase', symbol: 'BTC-USD', stream: 'trade', fromId: 12, toId: 13, reason: 'missed trade ids' }),
    ]);
    expect(s.counts.duplicateTrades).toBe(1);
  });

  it('maps a sized ticker to a book ticker and drops one that goes back in sequence', () => {
    const s = new CoinbaseSession({ depth: 5, intervalMs: 0 });
    const out: VenueOutput[] = [];
    const ticker = (seq: number) =>
      JSON.stringify({ type: 'ticker', sequence: seq, product_id: 'ETH-USD', price: '2000', best_bid: '1999.99', best_bid_size: '3', best_ask: '2000.01', best_ask_size: '4', time: '2024-01-01T00:00:00.123456Z' });
    // Received a second after the ticker's time (a time far ahead of its receipt would be refused).
    const received = Date.parse('2024-01-01T00:00:01Z') * 1000;
    s.frame(ticker(5), received, out);
    s.frame(ticker(4), received + 1, out);
    expect(of(out, 'bookTicker').map((o) => o.record)).toEqual([
      { type: 'bookTicker', exchange: 'coinbase', market: 'spot', symbol: 'ETH-USD', venueSymbol: 'ETH-USD', receiveTimeUs: received, updateId: 5, bidPrice: '1999.99', bidQty: '3', askPrice: '2000.01', askQty: '4', exchangeTimeMs: Date.parse('2024-01-01T00:00:00.123Z'), eventTimeMs: Date.parse('2024-01-01T00:00:00.123Z') },
    ]);
    expect(out.at(-1)).toEqual({ kind: 'ignored', stream: 'ticker:ETH-USD', why: 'stale ticker sequence' });
  });

  it('rejects malformed frames with a reason, never throws, and keeps the book going', () => {
    const s = new CoinbaseSession({ depth: 5, intervalMs: 0 });
    const out: VenueOutput[] = [];
    s.frame(JSON.stringify({ type: 'snapshot', product_id: 'BTC-USD', bids: [['99', '1']], asks: [['101', '1']] }), 1, out);
    const bad: [string, RegExp][] = [
      ['{"type":"l2update"', /not JSON/],
      ['[1,2]', /not a JSON object/],
      ['{"product_id":"BTC-USD"}', /missing field type/],
      ['{"type":"match","trade_id":1}', /product_id/],
      ['{"type":"l2update","product_id":"BTCUSD","changes":[],"time":"2021-04-17T16:43:37.1Z"}', /not BASE-QUOTE/],
      [match(20, 1).replace('"price":"100.25"', '"price":"abc"'), /price/],
      [match(20, 1).replace('"side":"sell"', '"side":"up"'), /side/],
      [match(20, 1).replace('2021-04-17T16:43:37.089723Z', 'yesterday'), /time/],
      ['{"type":"l2update","product_id":"BTC-USD","changes":[["buy","x","1"]],"time":"2021-04-17T16:43:37.1Z"}', /changes\[0\] price/],
      ['{"type":"l2update","product_id":"BTC-USD","changes":[["buy","100"]],"time":"2021-04-17T16:43:37.1Z"}', /changes\[0\] is not/],
      ['{"type":"snapshot","product_id":"BTC-USD","bids":[["1"]],"asks":[]}', /bids\[0\]/],
      ['{"type":"error","message":"Failed to subscribe","reason":"ETH-XYZ is not a valid product"}', /venue error/],
    ];
    expectEachRejected(s, bad, 2);
    s.frame('{"type":"l2update","product_id":"BTC-USD","changes":[["sell","100","2"]],"time":"2021-04-17T16:43:37.1Z"}', 3, out);
    expect(of(out, 'book').at(-1)!.record).toMatchObject({ symbol: 'BTC-USD', sequence: 1, bids: [['99', '1']], asks: [['100', '2'], ['101', '1']] });
  });

  it('treats a crossed book as lost: a book gap event and a resubscribe request; updates wait for the new snapshot', () => {
    const s = new CoinbaseSession({ depth: 5, intervalMs: 0 });
    const out: VenueOutput[] = [];
    s.frame(JSON.stringify({ type: 'snapshot', product_id: 'BTC-USD', bids: [['99', '1']], asks: [['101', '1']] }), 1, out);
    s.frame('{"type":"l2update","product_id":"BTC-USD","changes":[["buy","102","1"]],"time":"2021-04-17T16:43:37.1Z"}', 2, out);
    expect(of(out, 'gap').map((o) => o.record)).toEqual([expect.objectContaining({ stream: 'book', symbol: 'BTC-USD', fromId: null })]);
    expect(of(out, 'needSnapshot')).toEqual([{ kind: 'needSnapshot', venueSymbol: 'BTC-USD', reason: 'book crossed after an update: updates were lost' }]);
    const published = of(out, 'book').length;
    s.frame('{"type":"l2update","product_id":"BTC-USD","changes":[["buy","98","1"]],"time":"2021-04-17T16:43:37.2Z"}', 3, out);
    expect(of(out, 'book')).toHaveLength(published);
    s.frame(JSON.stringify({ type: 'snapshot', product_id: 'BTC-USD', bids: [['100', '1']], asks: [['101', '1']] }), 4, out);
    expect(of(out, 'book').at(-1)!.record).toMatchObject({ sequence: 0, bids: [['100', '1']] });
  });
});
