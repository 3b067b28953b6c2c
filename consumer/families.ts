// The writer families: which topic each consumes, how a record is checked (a record that fails is a dead letter) and
// which tables its rows go to. Ticks fill one table each; a book fills `books` and, from the same record, `top_of_book`.
import type { Config } from '../common/config.ts';
import { decodeBook, decodeTick, RecordError, tickTimeMs, type Book, type Tick, type TickType } from '../common/records.ts';
import { topOfBook } from '../metrics/top-of-book.ts';
import type { TableRows } from './copy.ts';
import { bookTimeMs, checkWritable, checkWritableBook, TABLE_OF, type CopyTextEncoder, type WriteTable } from './copy-rows.ts';

export type Family = TickType | 'book';
export const FAMILIES: readonly Family[] = ['trade', 'aggTrade', 'bookTicker', 'book'];

/** What the writer needs of any record: its times, for lag and latency. */
export type WriterRecord = Tick | Book;

export interface FamilyCodec {
  readonly family: Family;
  /** The family's own table (metrics label); a batch may write more (FamilyCodec.encode). */
  readonly table: WriteTable;
  topic(config: Config): string;
  /** The record, or a RecordError saying why it is poison. */
  decode(value: Buffer | null, schemaVersion: string | undefined): WriterRecord;
  /** The time the row is keyed on (exchange time, else receive time), ms. */
  timeMs(r: WriterRecord): number;
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

export function familyCodec(family: Family): FamilyCodec {
  return family === 'book' ? bookCodec : tickCodec(family);
}
