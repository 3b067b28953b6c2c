// Reconnect pacing in pure code: capped exponential backoff with jitter, and a sliding-window limit on connection
// attempts (Binance allows 300 per 5 minutes per IP), shared by every connection of the process.

/** Delay before reconnect attempt `attempt` (0 = first retry): between half and all of min * 2^attempt, capped. */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

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
