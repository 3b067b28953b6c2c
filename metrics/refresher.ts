// The SQL side of the refresh (thin adapter): reads the touched buckets (metric_invalidations), calls the one
// refresh procedure for each planned window, and clears what it refreshed. The same calls work on plain PostgreSQL
// and TimescaleDB; the procedure hides the difference (sql/refresh.sql).
import type { SqlSession } from '../common/db.ts';
import { planRefresh, type RefreshWindow } from './schedule.ts';
import { iso } from '../common/time.ts';

export interface RefreshResult {
  /** Closed minute windows refreshed at every width. */
  readonly minutes: RefreshWindow[];
  /** Short-bucket window refreshed inside the open minute, or null. */
  readonly short: RefreshWindow | null;
  readonly durationMs: number;
}


/** Rebuilds the short-bar relations when the configured width changed; true when it did. */
export async function configureShortBars(db: SqlSession, shortBarSeconds: number): Promise<boolean> {
  const r = await db.query<{ changed: boolean }>('SELECT configure_short_bars(make_interval(secs => $1)) AS changed', [shortBarSeconds]);
  return r.rows[0]?.changed === true;
}

/**
 * CALL refresh_metrics(from, to): every bar and quote metric whose bucket lies wholly inside the window; and
 * CALL refresh_top_of_book(from, to): the per-minute top-of-book metrics of every venue's books in it.
 */
export async function refreshWindow(db: SqlSession, w: RefreshWindow): Promise<void> {
  await db.query('CALL refresh_metrics($1::timestamptz, $2::timestamptz)', [iso(w.fromMs), iso(w.toMs)]);
  await db.query('CALL refresh_top_of_book($1::timestamptz, $2::timestamptz)', [iso(w.fromMs), iso(w.toMs)]);
}

export class Refresher {
  private shortRefreshedUntilMs = 0;

  constructor(
    private readonly db: SqlSession,
    private readonly shortWidthMs: number,
  ) {}

  /** One pass: refresh every closed touched minute and the newly closed short buckets, given cutoff = now - lateness. */
  async runOnce(cutoffMs: number): Promise<RefreshResult> {
    const started = performance.now();
    const touched = await this.db.query<{ bucket: Date | string; touched: string[] }>(
      'SELECT bucket, array_agg(touched::text) AS touched FROM metric_invalidations WHERE bucket < $1::timestamptz GROUP BY bucket',
      [iso(cutoffMs)],
    );
    const buckets = touched.rows.map((r) => new Date(r.bucket).getTime());
    const plan = planRefresh(buckets, cutoffMs, this.shortWidthMs, this.shortRefreshedUntilMs);
    for (const w of plan.minutes) await refreshWindow(this.db, w);
    if (plan.short) {
      await refreshWindow(this.db, plan.short);
      this.shortRefreshedUntilMs = plan.short.toMs;
    }
    if (plan.minutes.length > 0) {
      this.shortRefreshedUntilMs = Math.max(this.shortRefreshedUntilMs, plan.minutes[plan.minutes.length - 1]!.toMs);
      // Only the entries as they were read: a tick that touched a bucket since gave its entry a new `touched`, so it
      // stays listed. (Not "touched <= the largest read": a writer's transaction takes its number before it commits,
      // so a touch committed during the refresh, unseen by it, can carry a number below that.)
      const done = new Set(plan.doneBuckets);
      const read = touched.rows.filter((r) => done.has(new Date(r.bucket).getTime())).flatMap((r) => r.touched);
      await this.db.query('DELETE FROM metric_invalidations WHERE touched = ANY($1::bigint[])', [read]);
    }
    return { minutes: plan.minutes, short: plan.short, durationMs: performance.now() - started };
  }
}
