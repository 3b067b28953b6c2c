import { describe, expect, it } from 'vitest';
import type { BookTicker, Trade } from '../common/records.ts';
import { BookTickerTracker, IdSequencer, RECENT_UPDATE_IDS, sequenceId } from './gaps.ts';

const trade = (id: number): Trade => ({
  type: 'trade',
  exchange: 'binance',
  market: 'spot',
  symbol: 'BTCUSDT',
  receiveTimeUs: 1_700_000_000_000_000 + id,
  tradeId: id,
  price: '1.0',
  quantity: '1.0',
  buyerIsMaker: false,
  side: 'buy',
  exchangeTimeMs: 1_700_000_000_000 + id,
  eventTimeMs: 1_700_000_000_000 + id,
});

function feed(s: IdSequencer, ids: number[]): number[] {
  const out: Trade[] = [];
  for (const id of ids) s.offer(trade(id), out);
  return out.map(sequenceId);
}

describe('IdSequencer', () => {
  it('passes contiguous ids and drops repeats (reconnect overlap)', () => {
    const s = new IdSequencer();
    expect(feed(s, [10, 11, 12, 11, 12, 13])).toEqual([10, 11, 12, 13]);
    expect(s.gap()).toBeUndefined();
  });

  it('holds ticks after a hole, reports the hole, and releases everything in order once it is filled', () => {
    const s = new IdSequencer();
    expect(feed(s, [1, 2, 6, 7])).toEqual([1, 2]);
    expect(s.gap()).toEqual({ fromId: 3, toId: 5 });
    expect(s.heldCount).toBe(2);
    expect(feed(s, [3, 4])).toEqual([3, 4]);
    expect(s.gap()).toEqual({ fromId: 5, toId: 5 });
    expect(feed(s, [5, 6, 8])).toEqual([5, 6, 7, 8]);
    expect(s.gap()).toBeUndefined();
    expect(s.heldCount).toBe(0);
  });

  it('reports the next hole after the first is filled', () => {
    const s = new IdSequencer();
    feed(s, [1, 4, 8]);
    expect(s.gap()).toEqual({ fromId: 2, toId: 3 });
    expect(feed(s, [2, 3])).toEqual([2, 3, 4]);
    expect(s.gap()).toEqual({ fromId: 5, toId: 7 });
  });

  it('resumes after an id found at start-up, so the first live tick reveals the downtime hole', () => {
    const s = new IdSequencer();
    s.resumeAfter(100);
    expect(feed(s, [100, 105])).toEqual([]);
    expect(s.gap()).toEqual({ fromId: 101, toId: 104 });
  });

  it('drops an outlier id the exchange never issued: the hole it opened closes and the real ids go on', () => {
    const s = new IdSequencer();
    expect(feed(s, [100, 101, 102, 103, 104, 9e12])).toEqual([100, 101, 102, 103, 104]);
    expect(s.gap()).toEqual({ fromId: 105, toId: 9e12 - 1 });
    expect(sequenceId(s.drop(9e12)!)).toBe(9e12);
    expect(s.gap()).toBeUndefined();
    expect(s.heldCount).toBe(0);
    expect(feed(s, [105, 106, 107, 108, 109])).toEqual([105, 106, 107, 108, 109]);
    expect(s.drop(42)).toBeUndefined();
  });

  it('skips an unfillable hole and releases what was held', () => {
    const s = new IdSequencer();
    feed(s, [1, 5, 6]);
    const out: Trade[] = [];
    expect(s.skipTo(5, out)).toEqual({ fromId: 2, toId: 4 });
    expect(out.map(sequenceId)).toEqual([5, 6]);
    expect(s.next).toBe(7);
  });
});

describe('BookTickerTracker', () => {
  const bt = (u: number, receiveMs: number): BookTicker => ({
    type: 'bookTicker',
    exchange: 'binance',
    market: 'spot',
    symbol: 'BTCUSDT',
    receiveTimeUs: receiveMs * 1000,
    updateId: u,
    bidPrice: '1',
    bidQty: '1',
    askPrice: '2',
    askQty: '1',
    exchangeTimeMs: null,
    eventTimeMs: null,
  });

  it('drops repeated update ids and reports the span lost across a disconnection', () => {
    const t = new BookTickerTracker();
    expect(t.offer(bt(1, 1000), 'spot', 0).pass).toBe(true);
    expect(t.offer(bt(1, 1001), 'spot', 0).pass).toBe(false);
    t.disconnected(['BTCUSDT'], 'watchdog');
    const r = t.offer(bt(5, 4000), 'spot', 7);
    expect(r.pass).toBe(true);
    expect(r.gap).toMatchObject({ stream: 'bookTicker', fromTimeMs: 1000, toTimeMs: 4000, reason: 'watchdog', fromId: null });
    expect(t.offer(bt(6, 4001), 'spot', 0).gap).toBeUndefined();
  });

  it('an update id far ahead (a forged frame) does not make the real ids below it repeats', () => {
    const t = new BookTickerTracker();
    const passed: number[] = [];
    for (const u of [100, 103, 9e12, 104, 108, 9e12, 111]) if (t.offer(bt(u, 1000), 'spot', 0).pass) passed.push(u);
    expect(passed).toEqual([100, 103, 9e12, 104, 108, 111]);
    // Once out of the window, the forged id still does not raise the floor: real ids keep passing.
    for (let u = 200; u < 200 + 3 * RECENT_UPDATE_IDS; u++) expect(t.offer(bt(u, 1000), 'spot', 0).pass).toBe(true);
    expect(t.offer(bt(150, 1000), 'spot', 0).pass).toBe(false);
  });

  it('is a repeat exactly when the id is among the last window of passed ids or below all of them (naive model, random overlaps)', () => {
    let seed = 7;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const t = new BookTickerTracker();
    const window: number[] = [];
    let u = 1_000;
    for (let i = 0; i < 20_000; i++) {
      const r = rand();
      // Mostly increasing ids, some replays of recent ones (an overlapping socket), a few far ahead or far behind.
      const id = r < 0.7 ? (u += 1 + Math.floor(rand() * 50)) : r < 0.95 ? u - Math.floor(rand() * 2_000) : r < 0.98 ? u + 1e9 + i : Math.floor(rand() * 1_000);
      const want = !(window.includes(id) || (window.length > 0 && id < Math.min(...window)));
      expect(t.offer(bt(id, 1000), 'spot', 0).pass, `id ${id} at ${i}`).toBe(want);
      if (want) {
        window.push(id);
        if (window.length > RECENT_UPDATE_IDS) window.shift();
      }
    }
  });
});
