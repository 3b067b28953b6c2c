// Capped exponential backoff with jitter, shared by every retry in the stack: the exchange reconnects, the writers'
// database retries and the workers' start-up waits for their dependencies.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from './log.ts';

/**
 * Delay before retry number `retry` (0 = the first): min * 2^retry, capped at max, less up to `jitter` of itself
 * (0.5: between half and all of it), so that many clients do not retry in step.
 */
export function backoffDelay(retry: number, minMs: number, maxMs: number, jitter = 0.5, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(retry, 0), 30));
  return Math.max(1, Math.round(ceiling * (1 - jitter * random())));
}

/**
 * Runs `attempt` until it succeeds, waiting a capped backoff between failures: a worker starting before its database
 * or broker is up waits for it instead of exiting (a stop signal meanwhile exits the process: common/lifecycle.ts).
 * `onRetry` counts the failure (a metric).
 */
export async function retryUntilReady<T>(
  what: string,
  attempt: () => Promise<T>,
  opts: { minMs: number; maxMs: number; log: Logger; onRetry?: (err: unknown) => void },
): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await attempt();
    } catch (err) {
      opts.onRetry?.(err);
      const delayMs = backoffDelay(retry, opts.minMs, opts.maxMs, 0.2);
      opts.log.warn({ err, attempt: retry + 1, delayMs }, `${what} failed: retrying`);
      await sleep(delayMs);
    }
  }
}
