// Structured JSON logs (pino) for every worker; one root logger per process, children per component.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, worker: string): Logger {
  return pino({ level, base: { worker, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
