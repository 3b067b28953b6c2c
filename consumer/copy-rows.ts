// The tables the writer COPYs into (column lists, COPY format, storable times), and COPY text-format rows (pure) for
// the book, top-of-book and gap tables (the ticks go in binary: copy-binary.ts): escaping, and timestamps rendered
// exactly (ms for exchange times, µs for receive times, always UTC 'Z'). Decimals go through as the exchange's strings.
import { RecordError, rowTimeMs, type Book, type BookLevel, type GapEvent, type Tick, type TickType } from '../common/records.ts';
import { isStorableTimeMs, unstorableTime } from '../common/tick-schema.ts';
import type { TopOfBook } from './top-of-book.ts';

export type TickTable = 'trades' | 'agg_trades' | 'book_tickers';
/** Every table a writer family COPYs into: the tick tables, and books with their top_of_book analytics. */
export type WriteTable = TickTable | 'books' | 'top_of_book' | 'gap_events';

export const TABLE_OF: Readonly<Record<TickType, TickTable>> = {
  trade: 'trades',
  aggTrade: 'agg_trades',
  bookTicker: 'book_tickers',
};

export const COLUMNS: Readonly<Record<WriteTable, readonly string[]>> = {
  trades: ['exchange', 'market', 'symbol', 'time', 'trade_id', 'price', 'quantity', 'buyer_is_maker', 'side', 'event_time', 'receive_time'],
  agg_trades: [
    'exchange', 'market', 'symbol', 'time', 'agg_id', 'first_trade_id', 'last_trade_id', 'price', 'quantity', 'buyer_is_maker', 'side',
    'event_time', 'receive_time',
  ],
  book_tickers: [
    'exchange', 'market', 'symbol', 'time', 'update_id', 'bid_price', 'bid_qty', 'ask_price', 'ask_qty', 'exchange_time', 'event_time',
    'receive_time',
  ],
  books: [
    'exchange', 'market', 'symbol', 'venue_symbol', 'time', 'sequence', 'depth', 'bid_prices', 'bid_qtys', 'ask_prices', 'ask_qtys',
    'exchange_time', 'receive_time',
  ],
  top_of_book: [
    'exchange', 'market', 'symbol', 'venue_symbol', 'time', 'sequence', 'bid_price', 'bid_qty', 'ask_price', 'ask_qty', 'mid', 'spread',
    'spread_pct', 'spread_bps', 'bid_depth_10bps', 'ask_depth_10bps', 'bid_depth_50bps', 'ask_depth_50bps', 'depth_complete_10bps',
    'depth_complete_50bps', 'imbalance', 'depth_imbalance_50bps', 'receive_time',
  ],
  gap_events: ['exchange', 'market', 'symbol', 'stream', 'from_time', 'to_time', 'from_id', 'to_id', 'reason', 'detected_at'],
};

/**
 * The COPY format the writer sends per table. Ticks go in binary: PostgreSQL parses no text per field (about 20% less
 * server work per row, measured by bench:write); books and gaps hold arrays and few rows, and stay in text.
 */
export const COPY_FORMAT: Readonly<Record<WriteTable, 'text' | 'binary'>> = {
  trades: 'binary',
  agg_trades: 'binary',
  book_tickers: 'binary',
  books: 'text',
  top_of_book: 'text',
  gap_events: 'text',
};

// Times outside the storable window (common/tick-schema.ts) are poison: PostgreSQL would reject them.
function checkTime(ms: number | null, what: string): void {
  if (ms !== null && !isStorableTimeMs(ms)) throw new RecordError(`${what} is outside 2000..2100`);
}

/** The writer's own check on top of decodeTick: every time field of the tick schema must be storable. */
export function checkWritable(t: Tick): void {
  const bad = unstorableTime(t);
  if (bad !== undefined) throw new RecordError(`${bad} is outside 2000..2100`);
}

/** The book writer's check on top of decodeBook: its times must be storable. */
export function checkWritableBook(b: Book): void {
  checkTime(Math.floor(b.receiveTimeUs / 1000), 'receiveTimeUs');
  checkTime(b.exchangeTimeMs, 'exchangeTimeMs');
}

/** The gap writer's check on top of decodeGap: its times must be storable. */
export function checkWritableGap(g: GapEvent): void {
  checkTime(g.fromTimeMs, 'fromTimeMs');
  checkTime(g.toTimeMs, 'toTimeMs');
  checkTime(Math.floor(g.detectedAtUs / 1000), 'detectedAtUs');
}

/** A numeric[] literal of one column of levels: {61837.63,61837.62}. Decimal strings need no quoting. */
function levelArray(levels: readonly BookLevel[], i: 0 | 1): string {
  let out = '{';
  for (let k = 0; k < levels.length; k++) out += (k > 0 ? ',' : '') + levels[k]![i];
  return `${out}}`;
}

const SPECIAL = /[\\\t\n\r]/;

/** Escapes a value for COPY text format: backslash, tab, newline and carriage return. */
export function escapeCopyText(s: string): string {
  if (!SPECIAL.test(s)) return s;
  let out = '';
  for (const ch of s) {
    if (ch === '\\') out += '\\\\';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else out += ch;
  }
  return out;
}

export const NULL = '\\N';
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);
const pad6 = (n: number) => `${n}`.padStart(6, '0');

/** 'YYYY-MM-DDTHH:MM:SS' of a second, kept for the last one: rows come in time order, and toISOString is slow. */
class SecondText {
  private second = NaN;
  private text = '';

  of(second: number): string {
    if (second !== this.second) {
      this.second = second;
      this.text = new Date(second * 1000).toISOString().slice(0, 19);
    }
    return this.text;
  }
}

/** Encodes book, top-of-book and gap rows into COPY text rows. */
export class CopyTextEncoder {
  private readonly msSecond = new SecondText();
  private readonly usSecond = new SecondText();

  /** ms since the epoch -> '2024-08-08T23:54:15.342Z'. */
  timeMs(ms: number): string {
    const sec = Math.floor(ms / 1000);
    return `${this.msSecond.of(sec)}.${pad3(ms - sec * 1000)}Z`;
  }

  /** µs since the epoch -> '2024-08-08T23:54:15.342123Z'. */
  timeUs(us: number): string {
    const sec = Math.floor(us / 1_000_000);
    return `${this.usSecond.of(sec)}.${pad6(us - sec * 1_000_000)}Z`;
  }

  /** One `books` row, columns in COLUMNS.books order. */
  bookRow(b: Book): string {
    return (
      `${escapeCopyText(b.exchange)}\t${escapeCopyText(b.market)}\t${escapeCopyText(b.symbol)}\t${escapeCopyText(b.venueSymbol)}\t` +
      `${this.timeMs(rowTimeMs(b))}\t${b.sequence}\t${b.depth}\t${levelArray(b.bids, 0)}\t${levelArray(b.bids, 1)}\t` +
      `${levelArray(b.asks, 0)}\t${levelArray(b.asks, 1)}\t${b.exchangeTimeMs === null ? NULL : this.timeMs(b.exchangeTimeMs)}\t` +
      `${this.timeUs(b.receiveTimeUs)}\n`
    );
  }

  /** One `gap_events` row, columns in COLUMNS.gap_events order. */
  gapRow(g: GapEvent): string {
    return (
      `${escapeCopyText(g.exchange)}\t${escapeCopyText(g.market)}\t${escapeCopyText(g.symbol)}\t${escapeCopyText(g.stream)}\t` +
      `${this.timeMs(g.fromTimeMs)}\t${this.timeMs(g.toTimeMs)}\t${g.fromId ?? NULL}\t${g.toId ?? NULL}\t${escapeCopyText(g.reason)}\t` +
      `${this.timeUs(g.detectedAtUs)}\n`
    );
  }

  /** One `top_of_book` row, columns in COLUMNS.top_of_book order. */
  topOfBookRow(t: TopOfBook): string {
    return (
      `${escapeCopyText(t.exchange)}\t${escapeCopyText(t.market)}\t${escapeCopyText(t.symbol)}\t${escapeCopyText(t.venueSymbol)}\t` +
      `${this.timeMs(t.timeMs)}\t${t.sequence}\t${t.bidPrice}\t${t.bidQty}\t${t.askPrice}\t${t.askQty}\t${t.mid}\t${t.spread}\t` +
      `${t.spreadPct}\t${t.spreadBps}\t${t.bidDepth10Bps}\t${t.askDepth10Bps}\t${t.bidDepth50Bps}\t${t.askDepth50Bps}\t` +
      `${t.depthComplete10Bps ? 't' : 'f'}\t${t.depthComplete50Bps ? 't' : 'f'}\t${t.imbalance}\t` +
      `${t.depthImbalance50Bps === null ? NULL : t.depthImbalance50Bps}\t${this.timeUs(t.receiveTimeUs)}\n`
    );
  }
}
