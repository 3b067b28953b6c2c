// Indicators over the closes of closed 1-minute bars (pure): RSI with Wilder smoothing and MACD. Each returns one value
// per input close, null until enough closes exist.

/** RSI(period) with Wilder smoothing: seed = simple mean of the first `period` gains/losses, then avg = (avg*(n-1)+x)/n. */
export function rsiWilder(closes: readonly number[], period = 14): (number | null)[] {
  const out: (number | null)[] = closes.map(() => null);
  if (closes.length <= period) return out;
  let gain = 0;
  let loss = 0;
  for (let i = 1; i <= period; i++) {
    const d = closes[i]! - closes[i - 1]!;
    if (d > 0) gain += d;
    else loss -= d;
  }
  gain /= period;
  loss /= period;
  const rsi = (g: number, l: number) => (l === 0 ? (g === 0 ? 50 : 100) : 100 - 100 / (1 + g / l));
  out[period] = rsi(gain, loss);
  for (let i = period + 1; i < closes.length; i++) {
    const d = closes[i]! - closes[i - 1]!;
    gain = (gain * (period - 1) + Math.max(d, 0)) / period;
    loss = (loss * (period - 1) + Math.max(-d, 0)) / period;
    out[i] = rsi(gain, loss);
  }
  return out;
}

/** Exponential moving average seeded with the simple mean of the first `period` values; null before. */
export function ema(values: readonly (number | null)[], period: number): (number | null)[] {
  const out: (number | null)[] = values.map(() => null);
  const k = 2 / (period + 1);
  let seed: number[] = [];
  let prev: number | null = null;
  values.forEach((v, i) => {
    if (v === null) return;
    if (prev === null) {
      seed.push(v);
      if (seed.length === period) {
        prev = seed.reduce((a, b) => a + b, 0) / period;
        out[i] = prev;
        seed = [];
      }
      return;
    }
    prev = v * k + prev * (1 - k);
    out[i] = prev;
  });
  return out;
}

export interface Macd {
  readonly macd: number | null;
  readonly signal: number | null;
  readonly histogram: number | null;
}

/** MACD(fast, slow, signal): EMA(fast) - EMA(slow), its EMA(signal), and their difference. */
export function macd(closes: readonly number[], fast = 12, slow = 26, signalPeriod = 9): Macd[] {
  const f = ema(closes, fast);
  const s = ema(closes, slow);
  const line = closes.map((_, i) => (f[i] != null && s[i] != null ? f[i]! - s[i]! : null));
  const sig = ema(line, signalPeriod);
  return line.map((m, i) => ({ macd: m, signal: sig[i] ?? null, histogram: m !== null && sig[i] != null ? m - sig[i]! : null }));
}
