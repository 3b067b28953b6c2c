import { describe, expect, it } from 'vitest';
import { AlertPolicy, type AlertMail, type Firing, type StoredAlertState } from './alert-state.ts';

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

  it('a policy loaded from the stored states continues exactly as the one that ran before the restart', () => {
    // One history (storms, a clearance, another symbol), cut by a restart at every step of it.
    const script: { atMs: number; fire?: Firing; clear?: Firing }[] = [];
    for (let i = 0; i < 30; i++) script.push({ atMs: i * 5_000, fire: f(i * 5_000) });
    script.push({ atMs: 152_000, clear: f(150_000) });
    for (let i = 0; i < 10; i++) script.push({ atMs: 200_000 + i * 7_000, fire: f(200_000 + i * 7_000, 'ETHUSDT') });
    for (let i = 0; i < 5; i++) script.push({ atMs: 260_000 + i * 9_000, fire: f(260_000 + i * 9_000) });
    script.push({ atMs: 330_000, clear: f(330_000, 'ETHUSDT') });
    const steps = [...new Set([...script.map((s) => s.atMs), ...Array.from({ length: 40 }, (_, i) => i * 10_000)])].sort((a, b) => a - b);

    // Each step: due digests, then the step's firings and clearances, then the changed states are stored.
    const run = (p: AlertPolicy, fromMs: number, toMs: number, store: Map<string, StoredAlertState>) => {
      const mails: AlertMail[] = [];
      for (const t of steps.filter((t) => t >= fromMs && t < toMs)) {
        mails.push(...p.due(t));
        for (const s of script.filter((s) => s.atMs === t)) mails.push(...(s.fire ? p.firing(s.fire, t) : p.clear(s.clear!, t)));
        for (const st of p.changed()) store.set(st.key, JSON.parse(JSON.stringify(st)) as StoredAlertState);
      }
      return mails;
    };
    const show = (ms: AlertMail[]) => ms.map((m) => `${m.kind} ${m.symbol} ${m.firings.map((x) => x.bucketMs).join(',')}`);
    const continuous = run(new AlertPolicy(60_000), 0, Infinity, new Map());
    expect(continuous.map((m) => m.kind)).toContain('digest');
    expect(continuous.filter((m) => m.kind === 'resolved')).toHaveLength(2);

    for (const cut of steps) {
      const store = new Map<string, StoredAlertState>();
      const before = run(new AlertPolicy(60_000), 0, cut, store);
      const restarted = new AlertPolicy(60_000);
      restarted.load([...store.values()]);
      const after = run(restarted, cut, Infinity, store);
      expect(show([...before, ...after]), `restart at ${cut} ms`).toEqual(show(continuous));
    }
  });

  it('without its stored states a restarted policy would lose the resolved mail (the test above can fail)', () => {
    const p = new AlertPolicy(60_000);
    p.firing(f(0), 0);
    expect(new AlertPolicy(60_000).clear(f(60_000), 60_000)).toEqual([]);
    const restarted = new AlertPolicy(60_000);
    restarted.load(p.changed());
    expect(restarted.clear(f(60_000), 60_000).map((m) => m.kind)).toEqual(['resolved']);
  });
});
