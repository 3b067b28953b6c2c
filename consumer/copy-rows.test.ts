import { describe, expect, it } from 'vitest';
import { SAMPLE_TICKS } from '../common/tick-schema.fixture.ts';
import { RecordError, type AggTrade, type Book, type BookTicker, type Trade } from '../common/records.ts';
import { topOfBook } from './top-of-book.ts';
import { COLUMNS, CopyTextEncoder, checkWritable, escapeCopyText } from './copy-rows.ts';
import { TickTextEncoder } from './tick-text.fixture.ts';

// The tick schema's sample trade: a selling taker on Binance spot.
const trade = SAMPLE_TICKS.trade as Trade;

describe('escapeCopyText', () => {
  it('escapes backslash, tab, newline and carriage return and nothing else', () => {
    expect(escapeCopyText('plain BTCUSDT')).toBe('plain BTCUSDT');
    expect(escapeCopyText('a\\b\tc\nd\re')).toBe('a\\\\b\\tc\\nd\\re');
    expect(escapeCopyText('\\N')).toBe('\\\\N');
    expect(escapeCopyText('üñí €')).toBe('üñí €');
  });
});

describe('COPY text rows of ticks (TickTextEncoder) and times', () => {
  it('encodes a trade in column order with exact decimals and UTC times', () => {
    const row = new TickTextEncoder().row(trade);
    expect(row).toBe(
      'binance\tspot\tBTCUSDT\t2024-08-08T23:54:15.342Z\t3735683259\t61837.63000000\t0.02000000\tt\tsell\t' +
        '2024-08-08T23:54:15.343Z\t2024-08-08T23:54:14.087896Z\n',
    );
    expect(row.split('\t')).toHaveLength(COLUMNS.trades.length);
  });

  it('encodes an aggTrade', () => {
    const agg: AggTrade = {
      ...trade,
      type: 'aggTrade',
      aggId: 42,
      firstTradeId: 100,
      lastTradeId: 103,
      buyerIsMaker: false,
      side: 'buy',
    } as AggTrade;
    const row = new TickTextEncoder().row(agg);
    expect(row.split('\t')).toHaveLength(COLUMNS.agg_trades.length);
    expect(row).toContain('\t42\t100\t103\t61837.63000000\t0.02000000\tf\tbuy\t');
  });

  it('encodes a spot bookTicker with NULL exchange times and the receive time (ms) as its time', () => {
    const bt: BookTicker = {
      type: 'bookTicker',
      exchange: 'binance',
      market: 'spot',
      symbol: 'ETHUSDT',
      receiveTimeUs: 1723161254116723,
      updateId: 50093239219,
      bidPrice: '2612.10',
      bidQty: '3.78826000',
      askPrice: '2612.11',
      askQty: '0',
      exchangeTimeMs: null,
      eventTimeMs: null,
    };
    const row = new TickTextEncoder().row(bt);
    expect(row).toBe(
      'binance\tspot\tETHUSDT\t2024-08-08T23:54:14.116Z\t50093239219\t2612.10\t3.78826000\t2612.11\t0\t\\N\t\\N\t2024-08-08T23:54:14.116723Z\n',
    );
    expect(row.split('\t')).toHaveLength(COLUMNS.book_tickers.length);
  });

  it('formats times across second, day and year boundaries (the per-second cache must not leak)', () => {
    const e = new CopyTextEncoder();
    for (const ms of [Date.UTC(2024, 11, 31, 23, 59, 59, 999), Date.UTC(2025, 0, 1), Date.UTC(2025, 0, 1, 0, 0, 0, 7), 1723161255342]) {
      expect(e.timeMs(ms)).toBe(new Date(ms).toISOString());
    }
    expect(e.timeUs(1735689599999999)).toBe('2024-12-31T23:59:59.999999Z');
    expect(e.timeUs(1735689600000000)).toBe('2025-01-01T00:00:00.000000Z');
    expect(e.timeUs(1735689600000001)).toBe('2025-01-01T00:00:00.000001Z');
  });
});

describe('book rows', () => {
  const book: Book = {
    type: 'book', exchange: 'gemini', market: 'spot', symbol: 'BTC-GBP', venueSymbol: 'BTCGBP', sequence: 7, depth: 3,
    bids: [['25000.10', '0.5'], ['25000', '1']], asks: [['25001.5', '2']], exchangeTimeMs: null, receiveTimeUs: 1624493666638480,
  };

  it('encodes a book with numeric[] levels, NULL exchange time and the receive time (ms) as its time', () => {
    const row = new CopyTextEncoder().bookRow(book);
    expect(row).toBe(
      'gemini\tspot\tBTC-GBP\tBTCGBP\t2021-06-24T00:14:26.638Z\t7\t3\t{25000.10,25000}\t{0.5,1}\t{25001.5}\t{2}\t\\N\t2021-06-24T00:14:26.638480Z\n',
    );
    expect(row.split('\t')).toHaveLength(COLUMNS.books.length);
    expect(new CopyTextEncoder().bookRow({ ...book, asks: [] })).toContain('\t{}\t{}\t');
  });

  it('encodes its top of book in column order', () => {
    const row = new CopyTextEncoder().topOfBookRow(topOfBook(book)!);
    expect(row.split('\t')).toHaveLength(COLUMNS.top_of_book.length);
    expect(row).toMatch(/^gemini\tspot\tBTC-GBP\tBTCGBP\t2021-06-24T00:14:26\.638Z\t7\t25000\.10\t0\.5\t25001\.5\t2\t25000\.8\t1\.4\t/);
    expect(row).toMatch(/\tt\tt\t[0-9.e-]+\t[0-9.e-]+\t2021-06-24T00:14:26\.638480Z\n$/);
  });
});

describe('checkWritable', () => {
  it('accepts real ticks and rejects times PostgreSQL would not store faithfully', () => {
    expect(() => checkWritable(trade)).not.toThrow();
    expect(() => checkWritable({ ...trade, exchangeTimeMs: 8e15 })).toThrow(RecordError);
    expect(() => checkWritable({ ...trade, receiveTimeUs: 5 })).toThrow(/receiveTimeUs/);
  });
});
