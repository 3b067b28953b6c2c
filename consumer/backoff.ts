// Capped exponential backoff with jitter for the writers' retries while the database is down or failing.

/** Delay before retry number `attempt` (1-based): min * 2^(attempt-1), capped at max, minus up to 20% jitter. */
export function retryDelayMs(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.max(1, Math.round(exp * (1 - 0.2 * random())));
}
