// The writer families: which topic each consumes, how a record is checked (a record that fails is a dead letter) and
// which tables its rows go to. Ticks fill one table each; a book fills `books` and, from the same record, `top_of_book`;
// gap events fill `gap_events`, read by the data-quality rule and the Risk Monitor.
import type { Config } from '../common/config.ts';
import { decodeBook, decodeGap, decodeTick, RecordError, tickTimeMs, type Book, type GapEvent, type Tick, type TickType } from '../common/records.ts';
import { topOfBook } from '../metrics/top-of-book.ts';
import type { TableRows } from './copy.ts';
import { bookTimeMs, checkWritable, checkWritableBook, checkWritableGap, TABLE_OF, type CopyTextEncoder, type WriteTable } from './copy-rows.ts';

export type Family = TickType | 'book' | 'gap';
export const FAMILIES: readonly Family[] = ['trade', 'aggTrade', 'bookTicker', 'book', 'gap'];

export type WriterRecord = Tick | Book | GapEvent;

export interface FamilyCodec {
  readonly family: Family;
  /** The family's own table (metrics label); a batch may write more (FamilyCodec.encode). */
  readonly table: WriteTable;
  topic(config: Config): string;
  /** The record, or a RecordError saying why it is poison. */
  decode(value: Buffer | null, schemaVersion: string | undefined): WriterRecord;
  /** The time the row is keyed on (exchange time, else receive time), ms. */
  timeMs(r: WriterRecord): number;
  /** The record's exchange time (ms, null where none) and receive time (µs), for the end-to-end latency. */
  latencyTimes(r: WriterRecord): { readonly exchangeMs: number | null; readonly receiveUs: number };
  encode(records: readonly WriterRecord[], enc: CopyTextEncoder): TableRows[];
}

function tickCodec(family: TickType): FamilyCodec {
  const table = TABLE_OF[family];
  return {
    family,
    table,
    topic: (config) => config.kafka.topics[family],
    decode(value, schemaVersion) {
      const t = decodeTick(value, schemaVersion);
      if (t.type !== family) throw new RecordError(`a ${t.type} record on the ${family} topic`);
      checkWritable(t);
      return t;
    },
    timeMs: (r) => tickTimeMs(r as Tick),
    latencyTimes: (r) => ({ exchangeMs: (r as Tick).exchangeTimeMs, receiveUs: (r as Tick).receiveTimeUs }),
    encode: (records, enc) => [{ table, rows: Buffer.from(enc.rows(records as Tick[])), count: records.length }],
  };
}

const bookCodec: FamilyCodec = {
  family: 'book',
  table: 'books',
  topic: (config) => config.books.topic,
  decode(value, schemaVersion) {
    const b = decodeBook(value, schemaVersion);
    checkWritableBook(b);
    return b;
  },
  timeMs: (r) => bookTimeMs(r as Book),
  latencyTimes: (r) => ({ exchangeMs: (r as Book).exchangeTimeMs, receiveUs: (r as Book).receiveTimeUs }),
  encode(records, enc) {
    let books = '';
    let tops = '';
    let topCount = 0;
    for (const r of records as Book[]) {
      books += enc.bookRow(r);
      // A book with an empty side has no mid: stored, but without analytics.
      const t = topOfBook(r);
      if (t) {
        tops += enc.topOfBookRow(t);
        topCount++;
      }
    }
    return [
      { table: 'books', rows: Buffer.from(books), count: records.length },
      { table: 'top_of_book', rows: Buffer.from(tops), count: topCount },
    ];
  },
};

const gapCodec: FamilyCodec = {
  family: 'gap',
  table: 'gap_events',
  topic: (config) => config.kafka.topics.gap,
  decode(value, schemaVersion) {
    const g = decodeGap(value, schemaVersion);
    checkWritableGap(g);
    return g;
  },
  timeMs: (r) => (r as GapEvent).toTimeMs,
  // A gap is "received" when it is detected; its exchange-side time is the end of the hole.
  latencyTimes: (r) => ({ exchangeMs: (r as GapEvent).toTimeMs, receiveUs: (r as GapEvent).detectedAtUs }),
  encode(records, enc) {
    let rows = '';
    for (const g of records as GapEvent[]) rows += enc.gapRow(g);
    return [{ table: 'gap_events', rows: Buffer.from(rows), count: records.length }];
  },
};

export function familyCodec(family: Family): FamilyCodec {
  if (family === 'book') return bookCodec;
  if (family === 'gap') return gapCodec;
  return tickCodec(family);
}
