// Binance depth sync replayed from the recorded captures (diffs + the REST snapshot line): the rebuilt books never
// cross, agree with the recorded book tickers wherever both describe the same update id, and a dropped diff forces a
// gap event and a new snapshot after which the book is whole again.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Book, BookGapEvent } from '../../common/records.ts';
import { readCapture } from '../capture.ts';
import { BinanceBooks, BinanceDepthSync, parseDepthFrame, parseDepthSnapshot, type DepthDiff } from './binance-depth.ts';
import type { VenueOutput } from './output.ts';

const DATA = fileURLToPath(new URL('../../../shared/data', import.meta.url));
const missing = existsSync(`${DATA}/binance-spot`) ? undefined : `needs the recorded captures in ${DATA}`;
if (missing) console.warn(`[skipped] ${missing}`);

interface Frame {
  readonly text: string;
  readonly receiveTimeUs: number;
}

async function frames(...files: string[]): Promise<Frame[]> {
  const out: Frame[] = [];
  for (const f of files) for await (const x of readCapture(`${DATA}/${f}`)) out.push({ text: x.text, receiveTimeUs: x.receiveTimeUs });
  return out;
}

const isSnapshot = (t: string) => t.startsWith('{"lastUpdateId"');

interface Replay {
  books: BinanceBooks;
  outputs: VenueOutput[];
  diffs: number;
  crossedAfter: number;
  tickerChecks: number;
  tickerMismatches: string[];
}

/** Feeds frames in file order: depth diffs and the snapshot line to the books; book tickers are kept to compare. */
function replay(all: readonly Frame[], venueSymbol: string, market: 'spot' | 'usdm', drop?: (d: DepthDiff) => boolean): Replay {
  const books = new BinanceBooks({ market, depth: 20, intervalMs: 0 });
  const outputs: VenueOutput[] = [];
  const tickers = new Map<number, { b: string; a: string }>();
  const r: Replay = { books, outputs, diffs: 0, crossedAfter: 0, tickerChecks: 0, tickerMismatches: [] };
  for (const f of all) {
    if (isSnapshot(f.text)) {
      books.snapshot(venueSymbol, f.text, f.receiveTimeUs, outputs);
      continue;
    }
    if (f.text.includes('@bookTicker')) {
      const d = (JSON.parse(f.text) as { data: { u: number; b: string; a: string } }).data;
      tickers.set(d.u, { b: d.b, a: d.a });
      continue;
    }
    if (!f.text.includes('@depth')) continue;
    r.diffs++;
    if (drop) {
      const p = parseDepthFrame(f.text, market);
      if (p.kind === 'diff' && drop(p.diff)) continue;
    }
    books.frame(f.text, f.receiveTimeUs, outputs);
    const s = books.syncs.get(venueSymbol)!;
    if (s.state !== 'synced') continue;
    if (s.book.crossed()) r.crossedAfter++;
    // Spot book tickers carry the update id of the best-price change: where a diff ends at the same id, both must agree.
    const t = tickers.get(s.sequence);
    if (t) {
      r.tickerChecks++;
      const [bid] = s.book.bids.top(1);
      const [ask] = s.book.asks.top(1);
      if (bid?.[0] !== t.b || ask?.[0] !== t.a) r.tickerMismatches.push(`${s.sequence}: book ${bid?.[0]}/${ask?.[0]} ticker ${t.b}/${t.a}`);
    }
  }
  return r;
}

const of = <K extends VenueOutput['kind']>(outs: VenueOutput[], kind: K) => outs.filter((o): o is Extract<VenueOutput, { kind: K }> => o.kind === kind);

describe.skipIf(missing)('Binance depth sync on the recorded spot captures', () => {
  for (const sym of ['btcusdt', 'ethusdt']) {
    it(`${sym}: syncs from the snapshot, never crosses, agrees with the book tickers, publishes top 20 in order`, async () => {
      const all = await frames(`binance-spot/${sym}_20240808.gz`, `binance-spot/${sym}_20240809.gz`);
      const venue = sym.toUpperCase();
      const r = replay(all, venue, 'spot');
      const s = r.books.syncs.get(venue)!;
      expect(of(r.outputs, 'gap')).toEqual([]);
      expect(of(r.outputs, 'rejected')).toEqual([]);
      // One request at start-up, answered by the recorded snapshot; diffs before it are buffered and reconciled.
      expect(of(r.outputs, 'needSnapshot')).toHaveLength(1);
      expect(s.counts.snapshots).toBe(1);
      expect(s.counts.applied + s.counts.stale).toBe(r.diffs);
      expect(s.counts.stale).toBeGreaterThan(0);
      expect(r.crossedAfter).toBe(0);
      expect(r.tickerChecks).toBeGreaterThan(100);
      expect(r.tickerMismatches).toEqual([]);

      const books = of(r.outputs, 'book').map((o) => o.record);
      expect(books.length).toBeGreaterThan(r.diffs * 0.9);
      // Plain checks in the loop (thousands of books), one assertion on the list of problems.
      const problems: string[] = [];
      let prev = 0;
      for (const b of books) {
        if (b.sequence <= prev) problems.push(`sequence ${b.sequence} after ${prev}`);
        prev = b.sequence;
        if (b.bids.length !== 20 || b.asks.length !== 20) problems.push(`${b.sequence}: ${b.bids.length}/${b.asks.length} levels`);
        if (!(Number(b.bids[0]![0]) < Number(b.asks[0]![0]))) problems.push(`${b.sequence}: crossed`);
        for (let i = 1; i < b.bids.length; i++) if (!(Number(b.bids[i]![0]) < Number(b.bids[i - 1]![0]))) problems.push(`${b.sequence}: bids out of order`);
        for (let i = 1; i < b.asks.length; i++) if (!(Number(b.asks[i]![0]) > Number(b.asks[i - 1]![0]))) problems.push(`${b.sequence}: asks out of order`);
      }
      expect(problems).toEqual([]);
      expect(books[0]).toMatchObject({ type: 'book', exchange: 'binance', market: 'spot', symbol: `${venue.slice(0, 3)}-USDT`, venueSymbol: venue, depth: 20 });
    });
  }

  it('a dropped update id records a gap, asks for a new snapshot, and the book is whole again after it', async () => {
    const all = await frames('binance-spot/btcusdt_20240808.gz');
    const reference = replay(all, 'BTCUSDT', 'spot');
    const diffs = all.filter((f) => f.text.includes('@depth')).map((f) => (parseDepthFrame(f.text, 'spot') as { diff: DepthDiff }).diff);
    const dropped = diffs[500]!;
    const r = replay(all, 'BTCUSDT', 'spot', (d) => d.lastId === dropped.lastId);
    const gaps = of(r.outputs, 'gap').map((o) => o.record as BookGapEvent);
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({ stream: 'book', exchange: 'binance', symbol: 'BTC-USDT', fromId: dropped.firstId, toId: dropped.lastId });
    expect(gaps[0]!.reason).toMatch(/missed depth update ids/);
    const requests = of(r.outputs, 'needSnapshot');
    expect(requests).toHaveLength(2);
    expect(requests[1]!.reason).toBe(gaps[0]!.reason);
    const s = r.books.syncs.get('BTCUSDT')!;
    expect(s.state).toBe('awaitingSnapshot');
    // Nothing is published for the broken book while it waits.
    const lastBook = of(r.outputs, 'book').at(-1)!.record;
    expect(lastBook.sequence).toBeLessThan(dropped.firstId);

    // A fresh snapshot taken later (the reference replay's book at a later diff) brings it back in sync.
    const ref = new BinanceDepthSync({ exchange: 'binance', market: 'spot', symbol: 'BTC-USDT', venueSymbol: 'BTCUSDT' }, { market: 'spot', depth: 20, intervalMs: 0 });
    const out: VenueOutput[] = [];
    const snapFrame = all.find((f) => isSnapshot(f.text))!;
    const at = 520;
    ref.snapshot(parseDepthSnapshot(snapFrame.text) as never, 1, out);
    for (const d of diffs.slice(0, at + 1)) ref.diff(d, 1, out);
    const later = { lastUpdateId: ref.sequence, bids: ref.book.bids.top(1e9), asks: ref.book.asks.top(1e9) };
    const resumed = new BinanceDepthSync(ref.id, { market: 'spot', depth: 20, intervalMs: 0 });
    const o2: VenueOutput[] = [];
    resumed.snapshot(parseDepthSnapshot(snapFrame.text) as never, 1, o2);
    // Same broken stream again; the later snapshot is answered once the gap has asked for it.
    let answered = false;
    for (const d of diffs) {
      if (d.lastId === dropped.lastId) continue;
      resumed.diff(d, 1, o2);
      if (!answered && resumed.state === 'awaitingSnapshot' && d.lastId >= later.lastUpdateId) {
        resumed.snapshot(later, 1, o2);
        answered = true;
      }
    }
    const sync = resumed;
    expect(answered).toBe(true);
    expect(sync.state).toBe('synced');
    expect(sync.counts.gaps).toBe(1);
    const full = reference.books.syncs.get('BTCUSDT')!;
    expect(sync.sequence).toBe(full.sequence);
    expect(sync.book.bids.top(1e9)).toEqual(full.book.bids.top(1e9));
    expect(sync.book.asks.top(1e9)).toEqual(full.book.asks.top(1e9));
  });

  it('USD-M: follows pu = previous u from its snapshot and never crosses', async () => {
    const all = await frames('binance-usdm/btcusdt_20240808.gz');
    const r = replay(all, 'BTCUSDT', 'usdm');
    const s = r.books.syncs.get('BTCUSDT')!;
    expect(of(r.outputs, 'gap')).toEqual([]);
    expect(s.state).toBe('synced');
    expect(s.counts.applied + s.counts.stale).toBe(r.diffs);
    expect(r.crossedAfter).toBe(0);
  });
});

describe('Binance depth frames', () => {
  const ok = '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":10,"u":12,"b":[["61737.63","0.5"]],"a":[["61837.64","1.5"]]}}';

  it('dead-letters malformed diffs and snapshots with a reason instead of throwing', () => {
    const bad: [string, RegExp][] = [
      ['not json', /not JSON/],
      ['{"stream":"btcusdt@depth@100ms","data":7}', /data/],
      [ok.replace('"U":10', '"U":13'), /exceeds/],
      [ok.replace('"61737.63"', '"-1"'), /b\[0\] price/],
      [ok.replace('"1.5"', '1.5'), /a\[0\] quantity/],
      [ok.replace('"s":"BTCUSDT"', '"s":"ETHUSDT"'), /does not match/],
      [ok.replace('"b":[[', '"b":[7,['), /b\[0\] is not/],
    ];
    const books = new BinanceBooks({ market: 'spot', depth: 20, intervalMs: 0 });
    for (const [text, reason] of bad) {
      const out: VenueOutput[] = [];
      books.frame(text, 1, out);
      expect(out).toHaveLength(1);
      expect(out[0]).toMatchObject({ kind: 'rejected' });
      expect((out[0] as { reason: string }).reason).toMatch(reason);
    }
    const out: VenueOutput[] = [];
    books.snapshot('BTCUSDT', '{"lastUpdateId":"x","bids":[],"asks":[]}', 1, out);
    expect(out).toEqual([{ kind: 'rejected', stream: 'btcusdt@depth', reason: 'snapshot lastUpdateId is not an update id' }]);
    books.frame('{"stream":"btcusdt@trade","data":{}}', 1, out);
    expect(out.at(-1)).toMatchObject({ kind: 'ignored' });
  });

  it('publishes at most once per interval, the latest state, and only when the top levels changed', () => {
    const books = new BinanceBooks({ market: 'spot', depth: 1, intervalMs: 100 });
    const out: VenueOutput[] = [];
    books.snapshot('BTCUSDT', { lastUpdateId: 9, bids: [['100.0', '1'], ['99.0', '1']], asks: [['101.0', '1']] }, 1_000_000, out);
    expect(out.map((o) => o.kind)).toEqual(['book']);
    const diff = (U: number, bids: string, ms: number) =>
      books.frame(`{"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":${ms},"s":"BTCUSDT","U":${U},"u":${U},"b":${bids},"a":[]}}`, ms * 1000, out);
    diff(10, '[["100.0","2"]]', 1010); // top changed, but within the interval
    diff(11, '[["98.0","5"]]', 1150); // below the top level: not a change, but the earlier one is now due
    diff(12, '[["99.0","3"]]', 1200); // below the top level
    diff(13, '[["100.0","4"]]', 1300);
    const published = of(out, 'book').map((o) => o.record as Book);
    expect(published.map((b) => [b.sequence, b.bids])).toEqual([
      [9, [['100.0', '1']]],
      [11, [['100.0', '2']]],
      [13, [['100.0', '4']]],
    ]);
  });
});
