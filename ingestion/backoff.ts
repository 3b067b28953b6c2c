// Reconnect pacing in pure code: a sliding-window limit on connection attempts (Binance allows 300 per 5 minutes per
// IP), shared by every connection of the process. The backoff itself is common/backoff.ts.

export class AttemptLimiter {
  private readonly attempts: number[] = [];

  constructor(
    readonly maxAttempts = 300,
    readonly windowMs = 5 * 60_000,
  ) {}

  /** Milliseconds to wait before the next attempt is allowed at `nowMs` (0: go ahead). */
  waitMs(nowMs: number): number {
    while (this.attempts.length > 0 && this.attempts[0]! <= nowMs - this.windowMs) this.attempts.shift();
    if (this.attempts.length < this.maxAttempts) return 0;
    return this.attempts[0]! + this.windowMs - nowMs;
  }

  record(nowMs: number): void {
    this.attempts.push(nowMs);
  }
}
