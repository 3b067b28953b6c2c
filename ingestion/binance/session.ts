// The state behind the Binance connections, in pure code: frames mapped by the mapper, trades and aggTrades through
// their id sequences, book tickers deduplicated by update id (their holes are time spans), depth diffs to the order
// books. Frames in, the outputs every venue gives the router out.
import type { Market, TickType } from '../../common/records.ts';
import type { BinanceBooks } from '../book/binance-depth.ts';
import type { VenueOutput } from '../book/output.ts';
import { BookTickerTracker } from '../gaps.ts';
import type { VenueSession } from '../router.ts';
import type { Mapper } from './mapper.ts';
import { TradeSequences } from './sequences.ts';

/**
 * How far a live tick's exchange time may lie behind the last one accepted of its stream. Times far ahead of receipt are
 * refused by the tick schema; far behind cannot be judged by the wall clock (a replayed capture is years old), but a
 * live stream does not jump back an hour: such a tick is a corrupt or forged frame.
 */
export const MAX_BEHIND_STREAM_MS = 3_600_000;

/** Depth frames (`<symbol>@depth...`) go to the order books, not the tick mapper. */
const DEPTH_FRAME = /^\{"stream":"([a-z0-9]+@depth[@0-9a-z]*)"/;

export interface BinanceSessionOptions {
  readonly market: Market;
  readonly mapper: Mapper;
  /** Order books of the depth streams; undefined when none are subscribed. */
  readonly books?: BinanceBooks;
  /** Receive time minus exchange time of each tick that has one, in seconds. */
  readonly lag?: (type: TickType, seconds: number) => void;
}

export class BinanceSession implements VenueSession {
  readonly sequences: TradeSequences;
  readonly books: BinanceBooks | undefined;
  private readonly bookTickers = new BookTickerTracker();
  /** Exchange time of the last tick accepted, per stream (subscribed streams only: the mapper refuses others). */
  private readonly streamTimeMs = new Map<string, number>();

  constructor(private readonly opts: BinanceSessionOptions) {
    this.sequences = new TradeSequences(opts.market);
    this.books = opts.books;
  }

  frame(text: string, receiveTimeUs: number, out: VenueOutput[]): string | undefined {
    const depth = this.books ? DEPTH_FRAME.exec(text) : null;
    if (depth) {
      this.books!.frame(text, receiveTimeUs, out);
      return depth[1]!;
    }
    const r = this.opts.mapper.map(text, receiveTimeUs);
    switch (r.kind) {
      case 'tick': {
        const t = r.tick;
        if (t.exchangeTimeMs !== null) {
          const last = this.streamTimeMs.get(r.stream);
          if (last !== undefined && last - t.exchangeTimeMs > MAX_BEHIND_STREAM_MS) {
            out.push({ kind: 'rejected', stream: r.stream, reason: `exchange time ${t.exchangeTimeMs} is not within an hour of the stream's last (${last})` });
            return r.stream;
          }
          this.streamTimeMs.set(r.stream, t.exchangeTimeMs);
          this.opts.lag?.(t.type, (receiveTimeUs / 1000 - t.exchangeTimeMs) / 1000);
        }
        if (t.type !== 'bookTicker') {
          this.sequences.offer(t, r.stream, out);
          return r.stream;
        }
        const b = this.bookTickers.offer(t, this.opts.market, receiveTimeUs);
        if (b.gap) out.push({ kind: 'gap', record: b.gap });
        out.push(b.pass ? { kind: 'bookTicker', record: t } : { kind: 'duplicate', stream: r.stream });
        return r.stream;
      }
      case 'rejected':
        out.push(r);
        return r.stream ?? 'unknown';
      case 'ignored':
      case 'serverShutdown':
        out.push(r);
        return undefined;
    }
  }

  flush(nowMs: number, out: VenueOutput[]): void {
    this.books?.flush(nowMs, nowMs * 1000, out);
  }

  /** Book tickers lost while down become a gap event; a book cannot be trusted across a hole in its diffs. */
  disconnected(reason: string, symbols: readonly string[]): void {
    this.bookTickers.disconnected(symbols, reason);
    if (this.books) for (const s of symbols) this.books.syncs.get(s)?.reset();
  }
}
