// The periodic re-resolution of a symbol rule: a failed resolution and a failed application both keep the symbols as
// they are and are logged, never thrown (the refresh runs from a timer: a throw there would end the process).
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/log.ts';
import { SymbolRefresh } from './instruments.ts';
import { createIngestMetrics } from './metrics.ts';

const source = loadConfig({ SYMBOLS: 'rule:quote=USDT' }).source;
const instruments = [
  { symbol: 'BTCUSDT', status: 'TRADING', baseAsset: 'BTC', quoteAsset: 'USDT' },
  { symbol: 'ETHBTC', status: 'TRADING', baseAsset: 'ETH', quoteAsset: 'BTC' },
];
const refresh = (apply: (s: readonly string[]) => { listed: string[]; delisted: string[] }, fail = false) =>
  new SymbolRefresh({
    source,
    rest: { instruments: async () => (fail ? Promise.reject(new Error('418 banned')) : instruments) },
    log: createLogger('silent', 'instruments-test'),
    metrics: createIngestMetrics({ defaultMetrics: false }),
    apply,
  });

describe('SymbolRefresh', () => {
  it('applies the rule over the instrument list', async () => {
    const seen: (readonly string[])[] = [];
    const change = await refresh((s) => (seen.push(s), { listed: [...s], delisted: [] })).refresh();
    expect(seen).toEqual([['BTCUSDT']]);
    expect(change).toEqual({ listed: ['BTCUSDT'], delisted: [] });
  });

  it('keeps the symbols when the instrument list cannot be had, or applying it fails', async () => {
    let applied = 0;
    expect(await refresh(() => (applied++, { listed: [], delisted: [] }), true).refresh()).toBeUndefined();
    expect(applied).toBe(0);
    await expect(
      refresh(() => {
        throw new Error('socket gone');
      }).refresh(),
    ).resolves.toBeUndefined();
  });
});
