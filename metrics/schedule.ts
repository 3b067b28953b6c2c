// Which buckets to refresh when (pure): closed 1-minute buckets touched by ticks (live, late or backfilled) become
// contiguous refresh windows once the allowed lateness has passed; between minute closes, the short buckets of the
// current minute are refreshed as each closes.

/** Bucket origin shared with the SQL (time_bucket's default origin, Monday 2000-01-03 UTC). */
export const BUCKET_ORIGIN_MS = Date.UTC(2000, 0, 3);
export const MINUTE_MS = 60_000;

export function bucketStart(timeMs: number, widthMs: number): number {
  return Math.floor((timeMs - BUCKET_ORIGIN_MS) / widthMs) * widthMs + BUCKET_ORIGIN_MS;
}

/** A [fromMs, toMs) window for CALL refresh_metrics(from, to). */
export interface RefreshWindow {
  readonly fromMs: number;
  readonly toMs: number;
}

export interface RefreshPlan {
  /** Windows of whole closed minutes (every width refreshed inside them). */
  readonly minutes: RefreshWindow[];
  /** Touched minute buckets covered by `minutes` (their invalidations can be cleared). */
  readonly doneBuckets: number[];
  /** Short buckets closed inside the still-open minute, or null. */
  readonly short: RefreshWindow | null;
}

/**
 * @param touchedMinutes start times of touched 1-minute buckets (any order, duplicates allowed)
 * @param cutoffMs now minus the allowed lateness: buckets ending at or before it are closed
 * @param shortRefreshedUntilMs end of the short buckets already refreshed in the current minute
 */
export function planRefresh(touchedMinutes: readonly number[], cutoffMs: number, shortWidthMs: number, shortRefreshedUntilMs: number): RefreshPlan {
  const closed = [...new Set(touchedMinutes)].filter((b) => b + MINUTE_MS <= cutoffMs).sort((a, b) => a - b);
  const minutes: RefreshWindow[] = [];
  for (const b of closed) {
    const last = minutes[minutes.length - 1];
    if (last && last.toMs === b) minutes[minutes.length - 1] = { fromMs: last.fromMs, toMs: b + MINUTE_MS };
    else minutes.push({ fromMs: b, toMs: b + MINUTE_MS });
  }
  const openMinute = bucketStart(cutoffMs, MINUTE_MS);
  const shortEnd = bucketStart(cutoffMs, shortWidthMs);
  const shortFrom = Math.max(shortRefreshedUntilMs, bucketStart(openMinute, shortWidthMs));
  const short = shortEnd > shortFrom && shortEnd > openMinute ? { fromMs: shortFrom, toMs: shortEnd } : null;
  return { minutes, doneBuckets: closed, short };
}

/** When the next bucket (of either width) closes past the lateness: the time to wake up next. */
export function nextWakeMs(nowMs: number, allowedLatenessMs: number, shortWidthMs: number): number {
  const cutoff = nowMs - allowedLatenessMs;
  return bucketStart(cutoff, shortWidthMs) + shortWidthMs + allowedLatenessMs;
}
