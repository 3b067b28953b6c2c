// Top-of-book analytics: exact spread and mid, bps, depth bands with their completeness, imbalances; and sane values
// on every book rebuilt from the recorded Coinbase and Gemini sessions.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Book } from '../common/records.ts';
import { readCryptofeedCapture } from '../ingestion/book/cryptofeed-capture.ts';
import type { VenueOutput } from '../ingestion/book/output.ts';
import { CoinbaseSession } from '../ingestion/coinbase/session.ts';
import { GeminiSession } from '../ingestion/gemini/session.ts';
import { decimalMid, decimalSub, topOfBook } from './top-of-book.ts';

const book = (bids: [string, string][], asks: [string, string][], depth = 5): Book => ({
  type: 'book', exchange: 'binance', market: 'spot', symbol: 'BTC-USDT', venueSymbol: 'BTCUSDT', sequence: 7, depth, bids, asks,
  exchangeTimeMs: 1_723_161_255_208, receiveTimeUs: 1_723_161_253_937_085,
});

describe('top of book', () => {
  it.each([
    [decimalSub, '61837.64000000', '61837.63000000', '0.01'],
    [decimalMid, '61837.63000000', '61837.64000000', '61837.635'],
    [decimalSub, '0.1', '0.3', '-0.2'],
    [decimalMid, '1', '2.5', '1.75'],
  ])('exact decimals for spread and mid: %o(%s, %s) = %s', (f, a, b, want) => {
    expect(f(a, b)).toBe(want);
  });

  it('spread, bps, depth within 10 and 50 bps per side, imbalance', () => {
    // mid 100: 10 bps band [99.9, 100.1], 50 bps band [99.5, 100.5].
    const t = topOfBook(book([['99.95', '2'], ['99.8', '1'], ['99.4', '10']], [['100.05', '1'], ['100.3', '4'], ['100.6', '1']]))!;
    expect(t).toMatchObject({ bidPrice: '99.95', askPrice: '100.05', mid: '100', spread: '0.1', timeMs: 1_723_161_255_208, sequence: 7 });
    expect(t.spreadBps).toBeCloseTo(10, 9);
    expect(t.spreadPct).toBeCloseTo(0.1, 9);
    expect(t.bidDepth10Bps).toBeCloseTo(199.9, 9);
    expect(t.askDepth10Bps).toBeCloseTo(100.05, 9);
    expect(t.bidDepth50Bps).toBeCloseTo(199.9 + 99.8, 9);
    expect(t.askDepth50Bps).toBeCloseTo(100.05 + 401.2, 9);
    expect(t.depthComplete10Bps).toBe(true);
    expect(t.depthComplete50Bps).toBe(true);
    expect(t.imbalance).toBeCloseTo(199.9 / (199.9 + 100.05), 12);
    expect(t.depthImbalance50Bps).toBeCloseTo(299.7 / (299.7 + 501.25), 12);
  });

  it('says when the shown levels stop inside the band, and needs both sides', () => {
    const t = topOfBook(book([['99.95', '2'], ['99.9', '1']], [['100.05', '1'], ['100.07', '1']], 2))!;
    expect(t.depthComplete10Bps).toBe(false);
    // A side showing fewer levels than asked is the whole side.
    expect(topOfBook(book([['99.95', '2']], [['100.05', '1']], 5))!.depthComplete50Bps).toBe(true);
    expect(topOfBook(book([], [['100.05', '1']]))).toBeUndefined();
  });

  const dir = fileURLToPath(new URL('../../shared/data/cryptofeed', import.meta.url));
  it.skipIf(!existsSync(dir))('gives sane values for every book rebuilt from the Coinbase and Gemini recordings', () => {
    const problems: string[] = [];
    let n = 0;
    for (const [file, session] of [['COINBASE.ws.28.0', new CoinbaseSession({ depth: 20, intervalMs: 0 })], ['GEMINI.ws.1.0', new GeminiSession({ depth: 20, intervalMs: 0 })]] as const) {
      const out: VenueOutput[] = [];
      for (const f of readCryptofeedCapture(`${dir}/${file}`).frames) session.frame(f.text, f.receiveTimeUs, out);
      for (const o of out) {
        if (o.kind !== 'book') continue;
        const t = topOfBook(o.record);
        if (!t) continue;
        n++;
        if (!(Number(t.spread) > 0 && t.spreadBps > 0 && t.spreadBps < 10_000)) problems.push(`${t.symbol} spread ${t.spread}`);
        if (!(t.bidDepth50Bps >= t.bidDepth10Bps && t.askDepth50Bps >= t.askDepth10Bps)) problems.push(`${t.symbol} bands`);
        if (!(t.imbalance > 0 && t.imbalance < 1)) problems.push(`${t.symbol} imbalance ${t.imbalance}`);
      }
    }
    expect(problems).toEqual([]);
    expect(n).toBeGreaterThan(5000);
  });
});
