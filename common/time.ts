// Clock and waiting helpers shared by every worker, test and bench: one definition of "now" in microseconds (the
// unit of receive times and latencies) and of an ISO timestamp for SQL parameters and logs.
export { setTimeout as sleep } from 'node:timers/promises';

const ORIGIN_MS = performance.timeOrigin;

/** Wall-clock microseconds at a `performance.now()` reading (one clock read per frame serves both). */
export const usAt = (performanceNowMs: number): number => Math.round((ORIGIN_MS + performanceNowMs) * 1000);

/** Wall-clock microseconds, finer than Date.now(): receive times and latencies are measured in it. */
export const nowUs = (): number => usAt(performance.now());

/** Milliseconds since the epoch as an ISO-8601 string (a timestamptz parameter, a log field). */
export const iso = (ms: number): string => new Date(ms).toISOString();
