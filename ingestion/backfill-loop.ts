// The REST backfill loop: one task per Binance (stream, symbol) with a hole in its trade or aggTrade ids fetches the
// missing ids (backfill.ts) until the hole is filled, retries a hole REST does not cover yet, dead-letters an id the
// exchange never issued, and records what stays missing as lost. Its outputs go through the router like a frame's.
import type { Logger } from '../common/log.ts';
import { nowUs, sleep } from '../common/time.ts';
import type { RestBackfiller } from './backfill.ts';
import { streamName } from './binance/mapper.ts';
import type { TradeSequences } from './binance/sequences.ts';
import type { VenueOutput } from './book/output.ts';
import { sequenceId, type IdSequencer, type Sequenced } from './gaps.ts';
import type { IngestMetrics } from './metrics.ts';
import type { RecordSink } from './router.ts';

/** What a loop over Binance REST (the backfill, the book snapshots) needs to feed the router. */
export interface RestLoopOptions {
  /** Without one, holes are recorded as lost (replay without --backfill) and books stay unsynced. */
  readonly backfiller?: RestBackfiller;
  /** Waited on before each REST request: no fetching while Kafka cannot take the rows. */
  readonly sink: Pick<RecordSink, 'writable'>;
  /** The router's route: outputs, the raw text a rejection dead-letters, its receive time. */
  readonly route: (out: VenueOutput[], raw: string, receiveTimeUs: number) => void;
  readonly log: Logger;
}

export interface BackfillLoopOptions extends RestLoopOptions {
  readonly sequences: TradeSequences;
  readonly metrics: IngestMetrics;
  /** Wait before backfilling a hole: the overlap of a switch-over, or reordered frames, often fill it first. */
  readonly delayMs?: number;
  /** Attempts at a hole REST does not (yet) cover before it is recorded as lost. */
  readonly attempts?: number;
}

const NO_SOURCE = 'no backfill source';

/** One task per key at a time (a sequence, a book), each feeding the router; stop() ends them at their next step. */
export abstract class RestLoop<O extends RestLoopOptions> {
  private readonly tasks = new Map<string, Promise<void>>();
  protected readonly out: VenueOutput[] = [];
  protected stopped = false;

  constructor(protected readonly opts: O) {}

  /** Tasks running. */
  get running(): number {
    return this.tasks.size;
  }

  /** Resolves once no task is running. */
  async idle(): Promise<void> {
    while (this.tasks.size > 0) await Promise.all([...this.tasks.values()]);
  }

  stop(): void {
    this.stopped = true;
  }

  protected has(key: string): boolean {
    return this.tasks.has(key);
  }

  /** Runs `task` under `key`; `failed` logs what it throws, `then` follows its end. */
  protected run(key: string, task: Promise<void>, failed: (err: unknown) => void, then?: () => void): void {
    const p = task.catch(failed).finally(() => {
      this.tasks.delete(key);
      then?.();
    });
    this.tasks.set(key, p);
  }
}

export class BackfillLoop extends RestLoop<BackfillLoopOptions> {
  /** Fills the holes of one sequence (once per sequence at a time). */
  start(type: Sequenced['type'], symbol: string): void {
    const key = `${type}:${symbol}`;
    if (this.has(key) || this.stopped) return;
    const seq = this.opts.sequences.sequencer(type, symbol);
    this.run(
      key,
      this.fill(type, symbol, seq),
      (err) => this.opts.log.error({ err, type, symbol }, 'backfill failed'),
      // Holes that opened while this one was being filled get their own run.
      () => seq.gap() && !this.stopped && this.start(type, symbol),
    );
  }

  /** Whether the exchange knows the id (over REST): true, false, or undefined when it cannot say (no REST, an error). */
  async exists(type: Sequenced['type'], symbol: string, id: number): Promise<boolean | undefined> {
    const bf = this.opts.backfiller;
    if (!bf) return undefined;
    try {
      const rows = type === 'trade' ? await bf.trades(symbol, id, 1) : await bf.aggTrades(symbol, id, 1);
      return rows.length > 0 && sequenceId(rows[0]!) === id;
    } catch {
      return undefined;
    }
  }

  private async fill(type: Sequenced['type'], symbol: string, seq: IdSequencer): Promise<void> {
    const { metrics: m, sequences, route } = this.opts;
    const log = this.opts.log.child({ stream: type, symbol });
    const stream = streamName(symbol, type);
    const out = this.out;
    await sleep(this.opts.delayMs ?? 250);
    let counted = -1;
    let misses = 0;
    for (let g = seq.gap(); g && !this.stopped; g = seq.gap()) {
      if (g.fromId !== counted) {
        counted = g.fromId;
        m.gaps.labels(type).inc();
        m.gapIds.labels(type, 'detected').inc(g.toId - g.fromId + 1);
        log.info({ fromId: g.fromId, toId: g.toId }, 'gap detected');
      }
      const bf = this.opts.backfiller;
      let rows: Sequenced[] = [];
      let failure: string | undefined;
      if (!bf) failure = NO_SOURCE;
      else {
        await this.opts.sink.writable();
        try {
          rows = type === 'trade' ? await bf.trades(symbol, g.fromId, g.toId - g.fromId + 1) : await bf.aggTrades(symbol, g.fromId, g.toId - g.fromId + 1);
        } catch (err) {
          failure = (err as Error).message;
        }
      }
      if (this.stopped) return;
      const first = rows[0];
      if (!failure && first !== undefined && sequenceId(first) <= g.fromId) {
        misses = 0;
        const filled = sequences.fill(seq, rows, g, stream, out);
        route(out, '', nowUs());
        m.gapIds.labels(type, 'backfilled').inc(filled);
        log.info({ fromId: g.fromId, rows: rows.length, filled }, 'backfilled');
        continue;
      }
      // REST has nothing at fromId yet (or failed): retry a few times, then record the hole as lost.
      misses++;
      if (misses < (this.opts.attempts ?? 5) && failure !== NO_SOURCE) {
        log.warn({ fromId: g.fromId, failure, misses }, 'backfill found nothing at the start of the hole: retrying');
        await sleep(500 * misses);
        continue;
      }
      // Before ids are given up as lost, the one that opened the hole must exist: an id the exchange never issued (a
      // corrupt or hostile frame) would otherwise erase every real id below it. Unknown (REST failing): believed.
      if (bf && (await this.exists(type, symbol, g.toId + 1)) === false) {
        const outlier = seq.drop(g.toId + 1);
        if (outlier) {
          log.warn({ id: g.toId + 1, nextId: g.fromId }, 'an id the exchange does not know: dead-lettered, the sequence goes on');
          out.push({ kind: 'rejected', stream, reason: `${type} id ${g.toId + 1} is not confirmed by the exchange (REST has no such id)` });
          route(out, JSON.stringify(outlier), outlier.receiveTimeUs);
        }
        misses = 0;
        continue;
      }
      const to = first !== undefined ? Math.min(sequenceId(first), g.toId + 1) : g.toId + 1;
      sequences.skipTo(seq, type, symbol, to, `not backfilled: ${failure ?? 'REST returned nothing for these ids'}`, nowUs(), out);
      route(out, '', nowUs());
      misses = 0;
    }
  }
}
