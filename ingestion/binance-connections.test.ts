import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/log.ts';
import { AttemptLimiter } from './backoff.ts';
import { BinanceConnections } from './binance-connections.ts';
import { BINANCE_URL_MAX_CHARS, binanceFeeds, systemClock } from './feed.ts';
import { createIngestMetrics } from './metrics.ts';

const log = createLogger('silent', 'test');

describe('BinanceConnections', () => {
  let pool: BinanceConnections | undefined;
  afterEach(async () => {
    await Promise.all(pool?.feeds.map((f) => f.stop()) ?? []);
  });

  const make = (perConnection: number, wsUrl = 'ws://127.0.0.1:9') => {
    const config = loadConfig({ STREAMS_PER_CONNECTION: String(perConnection), STREAM_TYPES: 'trade,aggTrade,bookTicker', BINANCE_WS_URL: wsUrl });
    const disconnected: string[][] = [];
    pool = new BinanceConnections({
      clock: systemClock,
      log,
      metrics: createIngestMetrics({ defaultMetrics: false }),
      source: config.source,
      name: 'conn',
      limiter: new AttemptLimiter(),
      sink: (symbols) => ({ frame: () => {}, disconnected: () => disconnected.push(symbols()) }),
      paused: () => false,
    });
    return pool;
  };
  const layout = (p: BinanceConnections) => p.feeds.map((f) => [...f.streams].map((s) => s.slice(0, s.indexOf('@'))).filter((s, i, a) => a.indexOf(s) === i));

  it("keeps a symbol's streams on one connection, opens a new one when all are full, fills freed room, closes empty ones", () => {
    const p = make(6);
    expect(p.setSymbols(['AAAUSDT', 'BBBUSDT', 'CCCUSDT'])).toEqual({ listed: ['AAAUSDT', 'BBBUSDT', 'CCCUSDT'], delisted: [] });
    expect(layout(p)).toEqual([['aaausdt', 'bbbusdt'], ['cccusdt']]);
    expect(p.feeds[0]!.url).toBe('ws://127.0.0.1:9/stream?streams=aaausdt@trade/aaausdt@aggTrade/aaausdt@bookTicker/bbbusdt@trade/bbbusdt@aggTrade/bbbusdt@bookTicker');
    expect(p.setSymbols(['BBBUSDT', 'CCCUSDT', 'DDDUSDT', 'EEEUSDT', 'FFFUSDT'])).toEqual({ listed: ['DDDUSDT', 'EEEUSDT', 'FFFUSDT'], delisted: ['AAAUSDT'] });
    expect(layout(p)).toEqual([['bbbusdt', 'dddusdt'], ['cccusdt', 'eeeusdt'], ['fffusdt']]);
    const last = p.feeds[2];
    p.setSymbols(['BBBUSDT', 'CCCUSDT']);
    expect(layout(p)).toEqual([['bbbusdt'], ['cccusdt']]);
    expect(p.feeds).not.toContain(last);
    expect(p.symbols.sort()).toEqual(['BBBUSDT', 'CCCUSDT']);
  });

  it('never puts more streams on a connection than STREAMS_PER_CONNECTION, splitting a symbol only when it cannot fit', () => {
    const p = make(2);
    p.setSymbols(['AAAUSDT', 'BBBUSDT']);
    for (const f of p.feeds) expect(f.streams.size).toBeLessThanOrEqual(2);
    expect(p.feeds.reduce((n, f) => n + f.streams.size, 0)).toBe(6);
    p.setSymbols(['BBBUSDT']);
    expect(p.feeds.flatMap((f) => [...f.streams]).sort()).toEqual(['bbbusdt@aggTrade', 'bbbusdt@bookTicker', 'bbbusdt@trade']);
  });

  const symbolsFrom = (from: number, n: number) => Array.from({ length: n }, (_, i) => `SYMBOL${from + i}USDT`);
  const placed = (p: BinanceConnections) => p.feeds.flatMap((f) => [...f.streams]);

  it('keeps every URL within BINANCE_URL_MAX_CHARS, whatever STREAMS_PER_CONNECTION allows, and fills room freed by delisting', () => {
    const p = make(1024, 'wss://stream.binance.com:9443/');
    p.setSymbols(symbolsFrom(0, 700));
    expect(placed(p)).toHaveLength(2_100);
    expect(new Set(placed(p)).size).toBe(2_100);
    for (const f of p.feeds) {
      expect(f.url.length).toBeLessThanOrEqual(BINANCE_URL_MAX_CHARS);
      expect(f.url.startsWith('wss://stream.binance.com:9443/stream?streams=')).toBe(true);
    }
    // 2,100 streams of 19-24 characters: some 46,000 characters of URL, so at least six connections, and no more
    // than one beyond what the URLs need (each slot is full but for less than one symbol's streams).
    const chars = placed(p).reduce((n, s) => n + s.length + 1, 0);
    expect(p.feeds.length).toBeGreaterThanOrEqual(Math.ceil(chars / BINANCE_URL_MAX_CHARS));
    expect(p.feeds.length).toBeLessThanOrEqual(Math.ceil(chars / (BINANCE_URL_MAX_CHARS - 200)));
    for (const f of p.feeds.slice(0, -1)) expect(f.url.length).toBeGreaterThan(BINANCE_URL_MAX_CHARS - 80);
    expect(layout(p).flat()).toHaveLength(700); // each symbol on one connection
    // Delist the first connection's symbols but one: the next symbols listed go into the room that freed.
    const first = layout(p)[0]!.map((s) => s.toUpperCase());
    const kept = symbolsFrom(0, 700).filter((s) => !first.slice(1).includes(s));
    const feeds = p.feeds.length;
    p.setSymbols([...kept, ...symbolsFrom(1000, 50)]);
    expect(p.feeds.length).toBe(feeds);
    expect(layout(p)[0]).toContain('symbol1000usdt');
    for (const f of p.feeds) expect(f.url.length).toBeLessThanOrEqual(BINANCE_URL_MAX_CHARS);
  });

  it('binanceFeeds (the record command) splits its streams by the same bounds', () => {
    const config = loadConfig({ STREAMS_PER_CONNECTION: '1024', BINANCE_WS_URL: 'ws://127.0.0.1:9' });
    const streams = symbolsFrom(0, 700).flatMap((s) => [`${s.toLowerCase()}@trade`, `${s.toLowerCase()}@bookTicker`]);
    const feeds = binanceFeeds(config.source, streams, 'record', { clock: systemClock, log, metrics: createIngestMetrics({ defaultMetrics: false }) }, () => ({ frame: () => {}, disconnected: () => {} }));
    expect(feeds.flatMap((f) => [...f.streams])).toEqual(streams);
    expect(feeds.length).toBeGreaterThan(1);
    for (const f of feeds) expect(f.url.length).toBeLessThanOrEqual(BINANCE_URL_MAX_CHARS);
    const few = binanceFeeds(loadConfig({ STREAMS_PER_CONNECTION: '2', BINANCE_WS_URL: 'ws://127.0.0.1:9' }).source, streams.slice(0, 5), 'record', { clock: systemClock, log, metrics: createIngestMetrics({ defaultMetrics: false }) }, () => ({ frame: () => {}, disconnected: () => {} }));
    expect(few.map((f) => f.streams.size)).toEqual([2, 2, 1]);
  });
});
