// Anomaly rules as plain functions over bar series (pure). Relative, not absolute: each compares the just-closed bucket
// with the symbol's own trailing window (z-score, ratio to mean, ratio to median), except the price jump (a tick-to-
// tick move in basis points) and the data-quality rules (a gap event, a stale stream).
import type { Config } from '../common/config.ts';

export type RuleSettings = Config['metrics']['rules'];
export type RuleName = 'volatilitySpike' | 'volumeSpike' | 'spreadWarning' | 'priceJump' | 'gap' | 'staleStream';

/** One closed 1-minute bucket of one symbol, as the rules see it. */
export interface BucketPoint {
  readonly bucketMs: number;
  readonly volume: number;
  readonly volatility: number | null;
  readonly maxMoveBps: number | null;
  /** Mean spread in basis points of the mid, from the quote metrics (null without book tickers). */
  readonly meanSpreadBps: number | null;
}

/** A rule's verdict on one bucket: firing or clear. Rules that lack data return no verdict at all. */
export interface Verdict {
  readonly rule: RuleName;
  readonly firing: boolean;
  readonly observed: number;
  readonly threshold: number;
}

/** Fewer trailing buckets than this and the relative rules stay silent (no baseline yet). */
export const MIN_TRAILING = 10;

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
function std(xs: readonly number[]): number {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}
function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
const present = (xs: readonly (number | null)[]) => xs.filter((x): x is number => x !== null && Number.isFinite(x));

/** Evaluates the bar and quote rules for `current` against `trailing` (the buckets before it, oldest first). */
export function evaluateBucket(current: BucketPoint, trailing: readonly BucketPoint[], rules: RuleSettings): Verdict[] {
  const out: Verdict[] = [];
  const vols = present(trailing.map((b) => b.volatility));
  if (current.volatility !== null && vols.length >= MIN_TRAILING) {
    const sd = std(vols);
    if (sd > 0) {
      const z = (current.volatility - mean(vols)) / sd;
      out.push({ rule: 'volatilitySpike', firing: z > rules.volatilityZ, observed: z, threshold: rules.volatilityZ });
    }
  }
  const volumes = trailing.map((b) => b.volume);
  if (volumes.length >= MIN_TRAILING && mean(volumes) > 0) {
    const ratio = current.volume / mean(volumes);
    out.push({ rule: 'volumeSpike', firing: ratio > rules.volumeSpikeRatio, observed: ratio, threshold: rules.volumeSpikeRatio });
  }
  const spreads = present(trailing.map((b) => b.meanSpreadBps));
  if (current.meanSpreadBps !== null && spreads.length >= MIN_TRAILING && median(spreads) > 0) {
    const ratio = current.meanSpreadBps / median(spreads);
    out.push({ rule: 'spreadWarning', firing: ratio > rules.spreadWarnRatio, observed: ratio, threshold: rules.spreadWarnRatio });
  }
  if (current.maxMoveBps !== null) {
    out.push({ rule: 'priceJump', firing: current.maxMoveBps > rules.priceJumpBps, observed: current.maxMoveBps, threshold: rules.priceJumpBps });
  }
  return out;
}

/** Data quality: gap events overlapping the bucket (observed = how many). */
export function evaluateGaps(gapCount: number): Verdict {
  return { rule: 'gap', firing: gapCount > 0, observed: gapCount, threshold: 0 };
}

/** Data quality: the stream has been silent for longer than allowed (observed = ms since its last tick). */
export function evaluateStale(lastTickMs: number | null, nowMs: number, rules: RuleSettings): Verdict | null {
  if (lastTickMs === null) return null;
  const silentMs = nowMs - lastTickMs;
  return { rule: 'staleStream', firing: silentMs > rules.staleStreamMs, observed: silentMs, threshold: rules.staleStreamMs };
}

/** The rule settings of one symbol: the configured defaults with that symbol's overrides (RULE_OVERRIDES). */
export function rulesFor(symbol: string, defaults: RuleSettings, overrides: Config['metrics']['ruleOverrides']): RuleSettings {
  return { ...defaults, ...(overrides[symbol] ?? {}) };
}
