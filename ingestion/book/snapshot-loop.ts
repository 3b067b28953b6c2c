// The order-book snapshot loop: a Binance book that lost its diffs (or has none yet) waits for a REST depth snapshot;
// one fetch per symbol at a time, asked again while the answer is older than the diffs held or unusable, with backoff.
// What the books put out on it goes through the router like a frame's outputs.
import { nowUs, sleep } from '../../common/time.ts';
import { RestLoop, type RestLoopOptions } from '../backfill-loop.ts';
import type { BinanceBooks } from './binance-depth.ts';

export interface SnapshotLoopOptions extends RestLoopOptions {
  readonly books: BinanceBooks;
}

export class SnapshotLoop extends RestLoop<SnapshotLoopOptions> {
  /** Symbols whose book wants a REST snapshot. */
  private readonly wanted = new Set<string>();

  /** Fetches a snapshot for `symbol` (one fetch per symbol at a time), again while its book still waits for one. */
  request(symbol: string, reason: string): void {
    const { log: baseLog, backfiller: bf, books } = this.opts;
    baseLog.info({ symbol, reason }, 'order book needs a snapshot');
    this.wanted.add(symbol);
    if (this.has(symbol) || this.stopped) return;
    if (!bf) {
      baseLog.warn({ symbol }, 'order book needs a snapshot but there is no REST source: it stays unsynced');
      return;
    }
    const log = baseLog.child({ stream: 'book', symbol });
    const task = async () => {
      for (let attempt = 1; this.wanted.has(symbol) && !this.stopped; attempt++) {
        this.wanted.delete(symbol);
        await this.opts.sink.writable();
        let body: unknown;
        try {
          body = await bf.depthSnapshot(symbol);
        } catch (err) {
          log.warn({ err: (err as Error).message, attempt }, 'depth snapshot failed: retrying');
          this.wanted.add(symbol);
          await sleep(Math.min(10_000, 250 * 2 ** attempt));
          continue;
        }
        if (this.stopped) return;
        const receiveTimeUs = nowUs();
        books.snapshot(symbol, body, receiveTimeUs, this.out);
        this.opts.route(this.out, JSON.stringify(body), receiveTimeUs);
        // Older than the diffs held (REST lagging the stream) or unusable: ask again, a little later.
        if (books.syncs.get(symbol)?.state === 'awaitingSnapshot') {
          this.wanted.add(symbol);
          await sleep(Math.min(5_000, 100 * 2 ** attempt));
        } else {
          log.info({ sequence: books.syncs.get(symbol)?.sequence, attempt }, 'order book synced from its snapshot');
        }
      }
    };
    this.run(symbol, task(), (err) => log.error({ err }, 'depth snapshot loop failed'));
  }
}
