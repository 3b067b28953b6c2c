// Clock and waiting helpers shared by every worker, test and bench: one definition of "now" in microseconds (the
// unit of receive times and latencies) and of an ISO timestamp for SQL parameters and logs.
export { setTimeout as sleep } from 'node:timers/promises';

/** Wall-clock microseconds, finer than Date.now(): receive times and latencies are measured in it. */
export const nowUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

/** Milliseconds since the epoch as an ISO-8601 string (a timestamptz parameter, a log field). */
export const iso = (ms: number): string => new Date(ms).toISOString();
