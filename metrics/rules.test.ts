import { describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { evaluateBucket, evaluateGaps, evaluateStale, rulesFor, type BucketPoint } from './rules.ts';

const config = loadConfig({ RULE_OVERRIDES: '{"BTCUSDT":{"volumeSpikeRatio":8}}' });
const rules = config.metrics.rules;

/** A calm trailing hour: small variations around fixed levels. */
const calm = (n = 60): BucketPoint[] =>
  Array.from({ length: n }, (_, i) => ({
    bucketMs: i * 60_000,
    volume: 10 + (i % 5),
    volatility: 0.0001 * (1 + (i % 7) / 10),
    maxMoveBps: 1 + (i % 3),
    meanSpreadBps: 0.02 + (i % 4) * 0.002,
  }));
const next = (over: Partial<BucketPoint>): BucketPoint => ({ ...calm(61)[60]!, ...over });
const firing = (b: BucketPoint, trailing = calm()) => evaluateBucket(b, trailing, rules).filter((v) => v.firing).map((v) => v.rule);

describe('rules', () => {
  it('stay quiet on calm data and report every verdict', () => {
    const v = evaluateBucket(next({}), calm(), rules);
    expect(v.map((x) => x.rule).sort()).toEqual(['priceJump', 'spreadWarning', 'volatilitySpike', 'volumeSpike']);
    expect(v.every((x) => !x.firing)).toBe(true);
  });
  it('fire on crafted spikes, each on its own', () => {
    expect(firing(next({ volatility: 0.01 }))).toEqual(['volatilitySpike']);
    expect(firing(next({ volume: 200 }))).toEqual(['volumeSpike']);
    expect(firing(next({ meanSpreadBps: 0.5 }))).toEqual(['spreadWarning']);
    expect(firing(next({ maxMoveBps: 120 }))).toEqual(['priceJump']);
  });
  it('stay silent without a baseline', () => {
    expect(evaluateBucket(next({ volume: 1e6 }), calm(3), rules).map((v) => v.rule)).toEqual(['priceJump']);
  });
  it('data quality: gaps and stale streams', () => {
    expect(evaluateGaps(0).firing).toBe(false);
    expect(evaluateGaps(2)).toMatchObject({ rule: 'gap', firing: true, observed: 2 });
    expect(evaluateStale(0, 61_000, rules)?.firing).toBe(true);
    expect(evaluateStale(0, 59_000, rules)?.firing).toBe(false);
    expect(evaluateStale(null, 1e12, rules)).toBeNull();
  });
  it('apply per-symbol overrides from RULE_OVERRIDES', () => {
    expect(rulesFor('BTCUSDT', rules, config.metrics.ruleOverrides).volumeSpikeRatio).toBe(8);
    expect(rulesFor('ETHUSDT', rules, config.metrics.ruleOverrides).volumeSpikeRatio).toBe(5);
    expect(() => loadConfig({ RULE_OVERRIDES: '{"BTCUSDT":{"volumeSpikeRatio":"x"}}' })).toThrow(/RULE_OVERRIDES/);
    expect(() => loadConfig({ RULE_OVERRIDES: 'not json' })).toThrow(/RULE_OVERRIDES: must be JSON/);
  });
});
