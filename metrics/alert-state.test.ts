import { describe, expect, it } from 'vitest';
import { AlertPolicy, type Firing } from './alert-state.ts';

const f = (bucketMs: number, symbol = 'BTCUSDT', rule = 'volumeSpike'): Firing => ({
  rule, exchange: 'binance', market: 'spot', symbol, bucketMs, observed: 9, threshold: 5,
});

describe('AlertPolicy', () => {
  it('mails the first firing at once and holds the rest of a storm for one digest per cooldown', () => {
    const p = new AlertPolicy(60_000);
    const mails = [];
    for (let i = 0; i < 100; i++) mails.push(...p.firing(f(i * 600), i * 600), ...p.due(i * 600));
    expect(mails.map((m) => m.kind)).toEqual(['firing']);
    const digest = p.due(60_000);
    expect(digest).toHaveLength(1);
    expect(digest[0]!.kind).toBe('digest');
    expect(digest[0]!.firings).toHaveLength(99);
    expect(p.due(60_001)).toEqual([]);
  });

  it('keeps rules and symbols apart', () => {
    const p = new AlertPolicy(60_000);
    expect(p.firing(f(0), 0)).toHaveLength(1);
    expect(p.firing(f(0, 'ETHUSDT'), 0)).toHaveLength(1);
    expect(p.firing(f(0, 'BTCUSDT', 'priceJump'), 0)).toHaveLength(1);
    expect(p.firing(f(1), 1)).toHaveLength(0);
  });

  it('sends one resolved mail when the condition clears, carrying held firings', () => {
    const p = new AlertPolicy(60_000);
    p.firing(f(0), 0);
    p.firing(f(1), 1);
    const r = p.clear({ ...f(2) }, 2);
    expect(r).toHaveLength(1);
    expect(r[0]!.kind).toBe('resolved');
    expect(r[0]!.firings).toHaveLength(1);
    expect(p.clear(f(3), 3)).toEqual([]); // already resolved
    expect(p.due(70_000)).toEqual([]); // nothing held any more
  });

  it('does not resolve what never fired', () => {
    expect(new AlertPolicy(1000).clear(f(0), 0)).toEqual([]);
  });
});
