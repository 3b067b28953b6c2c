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
  /** The invalidation entries this pass consumed (`touched` numbers): cleared by `done`, with what was decided from them. */
  readonly consumed: string[];
  /** The end of the short buckets refreshed once this pass is done. */
  readonly shortRefreshedUntilMs: number;
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
  /** Where the short buckets stand; a successor worker loads it (metrics_progress). */
  shortRefreshedUntilMs = 0;

  constructor(
    private readonly db: SqlSession,
    private readonly shortWidthMs: number,
  ) {}

  /** One pass, cleared at once: refresh every closed touched minute and the newly closed short buckets (tools, tests). */
  async runOnce(cutoffMs: number): Promise<RefreshResult> {
    const r = await this.refresh(cutoffMs);
    await this.done(r);
    this.committed(r);
    return r;
  }

  /**
   * One pass: refresh every closed touched minute and the newly closed short buckets, given cutoff = now - lateness.
   * Nothing is cleared yet: the caller clears the consumed entries (`done`) in the transaction that records what it
   * did with the refreshed buckets, so a worker that dies before leaves them listed for its successor.
   */
  async refresh(cutoffMs: number): Promise<RefreshResult> {
    const started = performance.now();
    const touched = await this.db.query<{ bucket: Date | string; touched: string[] }>(
      'SELECT bucket, array_agg(touched::text) AS touched FROM metric_invalidations WHERE bucket < $1::timestamptz GROUP BY bucket',
      [iso(cutoffMs)],
    );
    const buckets = touched.rows.map((r) => new Date(r.bucket).getTime());
    const plan = planRefresh(buckets, cutoffMs, this.shortWidthMs, this.shortRefreshedUntilMs);
    for (const w of plan.minutes) await refreshWindow(this.db, w);
    let shortUntil = this.shortRefreshedUntilMs;
    if (plan.short) {
      await refreshWindow(this.db, plan.short);
      shortUntil = plan.short.toMs;
    }
    if (plan.minutes.length > 0) shortUntil = Math.max(shortUntil, plan.minutes[plan.minutes.length - 1]!.toMs);
    // Only the entries as they were read: a tick that touched a bucket since gave its entry a new `touched`, so it
    // stays listed. (Not "touched <= the largest read": a writer's transaction takes its number before it commits,
    // so a touch committed during the refresh, unseen by it, can carry a number below that.)
    const done = new Set(plan.doneBuckets);
    const consumed = touched.rows.filter((r) => done.has(new Date(r.bucket).getTime())).flatMap((r) => r.touched);
    return { minutes: plan.minutes, short: plan.short, durationMs: performance.now() - started, consumed, shortRefreshedUntilMs: shortUntil };
  }

  /** Clears the consumed entries (inside the caller's transaction). */
  async done(r: RefreshResult): Promise<void> {
    if (r.consumed.length > 0) await this.db.query('DELETE FROM metric_invalidations WHERE touched = ANY($1::bigint[])', [r.consumed]);
  }

  /** Stores where the short buckets stand, for a successor (the worker, inside its step's transaction). */
  async storeProgress(r: RefreshResult): Promise<void> {
    if (r.shortRefreshedUntilMs !== this.shortRefreshedUntilMs) {
      await this.db.query('UPDATE metrics_progress SET short_refreshed_until = $1::timestamptz', [iso(r.shortRefreshedUntilMs)]);
    }
  }

  /** After the caller's transaction committed. */
  committed(r: RefreshResult): void {
    this.shortRefreshedUntilMs = r.shortRefreshedUntilMs;
  }

  /** Where a predecessor left the short buckets. */
  async load(): Promise<void> {
    const r = await this.db.query<{ until: Date | string }>('SELECT short_refreshed_until AS until FROM metrics_progress');
    const ms = r.rows[0] ? new Date(r.rows[0].until).getTime() : NaN;
    this.shortRefreshedUntilMs = Number.isFinite(ms) ? ms : 0;
  }
}
