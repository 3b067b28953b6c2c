// COPY text-format rows for the three raw tick tables (pure): column lists, escaping, and timestamps rendered exactly
// (ms for exchange times, µs for receive times, always UTC 'Z'). Prices and quantities go through as the exchange's
// decimal strings, so NUMERIC stores them digit for digit.
import { RecordError, type Tick, type TickType } from '../common/records.ts';

export type TickTable = 'trades' | 'agg_trades' | 'book_tickers';

export const TABLE_OF: Readonly<Record<TickType, TickTable>> = {
  trade: 'trades',
  aggTrade: 'agg_trades',
  bookTicker: 'book_tickers',
};

export const COLUMNS: Readonly<Record<TickTable, readonly string[]>> = {
  trades: ['exchange', 'market', 'symbol', 'time', 'trade_id', 'price', 'quantity', 'buyer_is_maker', 'side', 'event_time', 'receive_time'],
  agg_trades: [
    'exchange', 'market', 'symbol', 'time', 'agg_id', 'first_trade_id', 'last_trade_id', 'price', 'quantity', 'buyer_is_maker', 'side',
    'event_time', 'receive_time',
  ],
  book_tickers: [
    'exchange', 'market', 'symbol', 'time', 'update_id', 'bid_price', 'bid_qty', 'ask_price', 'ask_qty', 'exchange_time', 'event_time',
    'receive_time',
  ],
};

// Times outside this window are poison: PostgreSQL would reject them (or a far-future year would not round-trip).
const MIN_TIME_MS = Date.UTC(2000, 0, 1);
const MAX_TIME_MS = Date.UTC(2100, 0, 1);

function checkTime(ms: number | null, what: string): void {
  if (ms !== null && !(ms >= MIN_TIME_MS && ms < MAX_TIME_MS)) throw new RecordError(`${what} is outside 2000..2100`);
}

/** The writer's own check on top of decodeTick: every value must be storable, or the record is a dead letter. */
export function checkWritable(t: Tick): void {
  checkTime(Math.floor(t.receiveTimeUs / 1000), 'receiveTimeUs');
  if (t.type === 'bookTicker') {
    checkTime(t.exchangeTimeMs, 'exchangeTimeMs');
    checkTime(t.eventTimeMs, 'eventTimeMs');
  } else {
    checkTime(t.exchangeTimeMs, 'exchangeTimeMs');
    checkTime(t.eventTimeMs, 'eventTimeMs');
  }
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

const NULL = '\\N';
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);
const pad6 = (n: number) => `${n}`.padStart(6, '0');

/**
 * Encodes ticks into COPY text rows. Keeps the formatted 'YYYY-MM-DDTHH:MM:SS' of the last second it saw, because
 * ticks arrive in time order and Date#toISOString dominates the cost otherwise.
 */
export class CopyTextEncoder {
  private msSecond = NaN;
  private msPrefix = '';
  private usSecond = NaN;
  private usPrefix = '';

  /** ms since the epoch -> '2024-08-08T23:54:15.342Z'. */
  timeMs(ms: number): string {
    const sec = Math.floor(ms / 1000);
    if (sec !== this.msSecond) {
      this.msSecond = sec;
      this.msPrefix = new Date(sec * 1000).toISOString().slice(0, 19);
    }
    return `${this.msPrefix}.${pad3(ms - sec * 1000)}Z`;
  }

  /** µs since the epoch -> '2024-08-08T23:54:15.342123Z'. */
  timeUs(us: number): string {
    const sec = Math.floor(us / 1_000_000);
    if (sec !== this.usSecond) {
      this.usSecond = sec;
      this.usPrefix = new Date(sec * 1000).toISOString().slice(0, 19);
    }
    return `${this.usPrefix}.${pad6(us - sec * 1_000_000)}Z`;
  }

  /** One row with its trailing newline, columns in COLUMNS order of the tick's table. */
  row(t: Tick): string {
    const head = `${escapeCopyText(t.exchange)}\t${escapeCopyText(t.market)}\t${escapeCopyText(t.symbol)}\t`;
    switch (t.type) {
      case 'trade':
        return (
          `${head}${this.timeMs(t.exchangeTimeMs)}\t${t.tradeId}\t${t.price}\t${t.quantity}\t${t.buyerIsMaker ? 't' : 'f'}\t` +
          `${escapeCopyText(t.side)}\t${this.timeMs(t.eventTimeMs)}\t${this.timeUs(t.receiveTimeUs)}\n`
        );
      case 'aggTrade':
        return (
          `${head}${this.timeMs(t.exchangeTimeMs)}\t${t.aggId}\t${t.firstTradeId}\t${t.lastTradeId}\t${t.price}\t${t.quantity}\t` +
          `${t.buyerIsMaker ? 't' : 'f'}\t${escapeCopyText(t.side)}\t${this.timeMs(t.eventTimeMs)}\t${this.timeUs(t.receiveTimeUs)}\n`
        );
      case 'bookTicker': {
        // The row's time: exchange time where the venue sends one, else receive time (ms, as tickTimeMs).
        const time = t.exchangeTimeMs ?? Math.floor(t.receiveTimeUs / 1000);
        return (
          `${head}${this.timeMs(time)}\t${t.updateId}\t${t.bidPrice}\t${t.bidQty}\t${t.askPrice}\t${t.askQty}\t` +
          `${t.exchangeTimeMs === null ? NULL : this.timeMs(t.exchangeTimeMs)}\t${t.eventTimeMs === null ? NULL : this.timeMs(t.eventTimeMs)}\t` +
          `${this.timeUs(t.receiveTimeUs)}\n`
        );
      }
    }
  }

  rows(ticks: readonly Tick[]): string {
    let out = '';
    for (const t of ticks) out += this.row(t);
    return out;
  }
}
