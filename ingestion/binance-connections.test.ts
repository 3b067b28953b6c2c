import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/log.ts';
import { AttemptLimiter } from './backoff.ts';
import { BinanceConnections } from './binance-connections.ts';
import { systemClock } from './feed.ts';
import { createIngestMetrics } from './metrics.ts';

const log = createLogger('silent', 'test');

describe('BinanceConnections', () => {
  let pool: BinanceConnections | undefined;
  afterEach(async () => {
    await Promise.all(pool?.feeds.map((f) => f.stop()) ?? []);
  });

  const make = (perConnection: number) => {
    const config = loadConfig({ STREAMS_PER_CONNECTION: String(perConnection), STREAM_TYPES: 'trade,aggTrade,bookTicker', BINANCE_WS_URL: 'ws://127.0.0.1:9' });
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
});
