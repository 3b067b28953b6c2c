import { describe, expect, it } from 'vitest';
import { ema, macd, rsiWilder } from './indicators.ts';

describe('rsiWilder', () => {
  // The worked example StockCharts uses for Wilder's RSI. By hand: gains over the first 14 changes sum to 3.34 and
  // losses to 1.40, so RS = (3.34/14)/(1.40/14) and RSI = 100 - 100/(1 + RS) = 70.464. StockCharts publishes 70.53,
  // 66.32, 66.55 because its sheet rounds the averages to 2 decimals; the exact values stay within 0.1 of those.
  const closes = [
    44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.1, 45.42, 45.84, 46.08, 45.89, 46.03, 45.61, 46.28, 46.28, 46.0, 46.03, 46.41, 46.22, 45.64,
  ];
  it('matches the reference values', () => {
    const r = rsiWilder(closes, 14);
    expect(r.slice(0, 14).every((x) => x === null)).toBe(true);
    expect(r[14]).toBeCloseTo(100 - 100 / (1 + 3.34 / 1.4), 10);
    for (const [i, published] of [[14, 70.53], [15, 66.32], [16, 66.55]] as const) expect(Math.abs(r[i]! - published)).toBeLessThan(0.1);
  });
  it('is 100 on a steady rise and 0 on a steady fall', () => {
    expect(rsiWilder([...Array(20).keys()], 14)[19]).toBe(100);
    expect(rsiWilder([...Array(20).keys()].map((x) => -x), 14)[19]).toBe(0);
  });
});

describe('macd', () => {
  it('is null until the slow EMA exists, signal 8 bars later', () => {
    const closes = Array.from({ length: 60 }, (_, i) => 100 + Math.sin(i / 3) * 5);
    const m = macd(closes);
    expect(m[24]!.macd).toBeNull();
    expect(m[25]!.macd).not.toBeNull();
    expect(m[32]!.signal).toBeNull();
    expect(m[33]!.signal).not.toBeNull();
    expect(m[33]!.histogram).toBeCloseTo(m[33]!.macd! - m[33]!.signal!, 12);
  });
  it('equals the difference of the two EMAs', () => {
    const closes = Array.from({ length: 40 }, (_, i) => 10 + i * 0.5 + (i % 3));
    const f = ema(closes, 12), s = ema(closes, 26), m = macd(closes);
    expect(m[39]!.macd).toBeCloseTo(f[39]! - s[39]!, 12);
  });
  it('is zero on a flat series', () => {
    expect(macd(Array(40).fill(5))[39]).toEqual({ macd: 0, signal: 0, histogram: 0 });
  });
});
