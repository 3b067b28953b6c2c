// One lifecycle for every worker: start, run, and on SIGTERM/SIGINT a graceful stop that flushes and commits
// what the worker holds. A second signal, or a stop that hangs, exits hard.
import type { Logger } from './log.ts';

export interface Worker {
  /** Resolves when the worker has stopped on its own (an unrecoverable error rejects). */
  readonly done: Promise<void>;
  stop(reason: string): Promise<void>;
}

export async function runWorker(log: Logger, start: () => Promise<Worker>, stopTimeoutMs = 30_000): Promise<never> {
  let worker: Worker | undefined;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'stopping');
    const timer = setTimeout(() => {
      log.error({ stopTimeoutMs }, 'graceful stop timed out: exiting');
      process.exit(1);
    }, stopTimeoutMs);
    timer.unref();
    (worker ? worker.stop(signal) : Promise.resolve()).then(
      () => {
        log.info('stopped cleanly');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    worker = await start();
    await worker.done;
    log.info('worker finished');
    process.exit(0);
  } catch (err) {
    log.fatal({ err }, 'worker failed');
    process.exit(1);
  }
}
