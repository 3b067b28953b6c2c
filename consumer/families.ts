// The writer families: which topic each consumes, how a record is checked (a record that fails is a dead letter) and
// which tables its rows go to. Ticks fill one table each; a book fills `books` and, from the same record, `top_of_book`;
// gap events fill `gap_events`, read by the data-quality rule and the Risk Monitor.
import type { Config } from '../common/config.ts';
import { decodeBook, decodeGap, decodeTick, RecordError, rowTimeMs, SCHEMA_VERSION, type Book, type GapEvent, type TickType } from '../common/records.ts';
import { topOfBook } from './top-of-book.ts';
import type { TableRows } from './copy.ts';
import { CopyBinaryEncoder } from './copy-binary.ts';
import { checkWritable, checkWritableBook, checkWritableGap, CopyTextEncoder, TABLE_OF, type WriteTable } from './copy-rows.ts';
import { CopyRowBuffer, RowBufferPool, TickRowWriter, type RowTimes } from './tick-rows.ts';

export type Family = TickType | 'book' | 'gap';
export const FAMILIES: readonly Family[] = ['trade', 'aggTrade', 'bookTicker', 'book', 'gap'];

/** The COPY rows of one run (one transaction), and the times of its records for the lag and latency metrics. */
export interface EncodedRun {
  readonly tables: TableRows[];
  readonly times: RowTimes;
  /** Called once its transaction committed: its memory goes to the next runs, so nothing may read it after. */
  readonly release?: () => void;
}

/** One run being built: records go in one by one, in offset order. */
export interface RunBuilder {
  /** Adds the record's rows; throws (a RecordError saying why, usually) when it is poison, and then adds nothing. */
  add(value: Buffer | null, schemaVersion: string | undefined): void;
  finish(): EncodedRun;
}

export interface FamilyCodec {
  readonly family: Family;
  /** The family's own table (metrics label); a run may write more (a book's top_of_book rows). */
  readonly table: WriteTable;
  topic(config: Config): string;
  /** A new run, sized for about this many records of this many bytes. */
  run(records: number, bytes: number): RunBuilder;
}

/** The `schema-version` header of records produced before the version moved into the value. */
const VERSION_HEADER = String(SCHEMA_VERSION);

/**
 * Ticks (COPY binary rows): Binance ticks as ingestion writes them take the byte-level fast path (tick-rows.ts);
 * anything it declines is decoded in full (JSON.parse + decodeTick + checkWritable), so a good record of any venue
 * still becomes a row and a bad one a dead letter with its reason.
 */
const ROW_BYTES_PER_RECORD_BYTE = 0.6;

function tickCodec(family: TickType): FamilyCodec {
  const table = TABLE_OF[family];
  const fast = new TickRowWriter(family);
  const enc = new CopyBinaryEncoder();
  const pool = new RowBufferPool();
  return {
    family,
    table,
    topic: (config) => config.kafka.topics[family],
    run(records, bytes) {
      // A tick's binary row takes 0.46-0.52 of its record's bytes (recorded trades, aggTrades, bookTickers): the rows
      // of a run are held until its transaction commits, so they get little more than they need (they grow if not).
      const out = pool.take(Math.ceil(bytes * ROW_BYTES_PER_RECORD_BYTE), records);
      return {
        add(value, schemaVersion) {
          if (value !== null && (schemaVersion === undefined || schemaVersion === VERSION_HEADER) && fast.row(value, out)) return;
          const t = decodeTick(value, schemaVersion);
          if (t.type !== family) throw new RecordError(`a ${t.type} record on the ${family} topic`);
          checkWritable(t);
          enc.row(t, out);
          out.rowTimes(t.exchangeTimeMs, t.receiveTimeUs, rowTimeMs(t));
        },
        finish: () => ({ tables: [{ table, rows: out.bytes(), count: out.times.count }], times: out.times, release: () => pool.give(out) }),
      };
    },
  };
}

function bookCodec(): FamilyCodec {
  const enc = new CopyTextEncoder();
  return {
    family: 'book',
    table: 'books',
    topic: (config) => config.books.topic,
    run(records, bytes) {
      const books = new CopyRowBuffer(bytes, records);
      let tops = '';
      let topCount = 0;
      return {
        add(value, schemaVersion) {
          const b: Book = decodeBook(value, schemaVersion);
          checkWritableBook(b);
          // A book with an empty side has no mid: stored, but without analytics.
          const t = topOfBook(b);
          books.text(enc.bookRow(b));
          books.rowTimes(b.exchangeTimeMs, b.receiveTimeUs, rowTimeMs(b));
          if (t) {
            tops += enc.topOfBookRow(t);
            topCount++;
          }
        },
        finish: () => ({
          tables: [
            { table: 'books', rows: books.bytes(), count: books.times.count },
            { table: 'top_of_book', rows: Buffer.from(tops), count: topCount },
          ],
          times: books.times,
        }),
      };
    },
  };
}

function gapCodec(): FamilyCodec {
  const enc = new CopyTextEncoder();
  return {
    family: 'gap',
    table: 'gap_events',
    topic: (config) => config.kafka.topics.gap,
    run(records, bytes) {
      const out = new CopyRowBuffer(bytes, records);
      return {
        add(value, schemaVersion) {
          const g: GapEvent = decodeGap(value, schemaVersion);
          checkWritableGap(g);
          out.text(enc.gapRow(g));
          // A gap is "received" when it is detected; its exchange-side time is the end of the hole.
          out.rowTimes(g.toTimeMs, g.detectedAtUs, g.toTimeMs);
        },
        finish: () => ({ tables: [{ table: 'gap_events', rows: out.bytes(), count: out.times.count }], times: out.times }),
      };
    },
  };
}

/** A new codec (each keeps its own rendering caches: one per writer). */
export function familyCodec(family: Family): FamilyCodec {
  if (family === 'book') return bookCodec();
  if (family === 'gap') return gapCodec();
  return tickCodec(family);
}
