// The database side of a writer: one transaction per batch on a client checked out for that batch alone. The
// transaction first claims the partition's offset range in writer_offsets (refused if another member moved it), then
// COPYs the rows straight into the table (or tables: a book and its top-of-book row go in together); a batch that hits
// a unique key (a tick produced twice) is redone through temporary staging tables and INSERT ... ON CONFLICT DO NOTHING.
// On TimescaleDB the rows always pass through the staging table and an INSERT: its COPY into a hypertable with our
// invalidation triggers records no continuous-aggregate invalidation (ticks_copied_via_stage in sql/slices.sql).
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { askOnce, withClient } from '../common/db.ts';
import { from as copyFrom } from 'pg-copy-streams';
import { COPY_BINARY_HEADER, COPY_BINARY_TRAILER } from './copy-binary.ts';
import { COLUMNS, COPY_FORMAT, type TickTable, type WriteTable } from './copy-rows.ts';
import { insertSlices, markSummarized, slicesWanted, summarizeRows, type SliceBatch } from './slice-store.ts';

// --- SQL (constants; every value travels as a parameter or inside the COPY stream) ---------------------------------

export const READ_OFFSET_SQL = 'SELECT next_offset FROM writer_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3';

/**
 * Moves the partition's next offset from $5 (what this member last read) to $4, or inserts it when the partition has
 * no row yet. Zero rows affected means another member wrote first: the caller's view is stale and nothing may be written.
 */
export const CLAIM_OFFSETS_SQL = `
INSERT INTO writer_offsets AS w (group_id, topic, partition, next_offset, updated_at)
VALUES ($1, $2, $3, $4::bigint, now())
ON CONFLICT (group_id, topic, partition) DO UPDATE
   SET next_offset = EXCLUDED.next_offset, updated_at = EXCLUDED.updated_at
 WHERE w.next_offset = $5::bigint AND EXCLUDED.next_offset > w.next_offset`;

const cols = (t: WriteTable) => COLUMNS[t].join(', ');
const TABLES = Object.keys(COLUMNS) as WriteTable[];
// Table names come from this fixed list, never from data.
const perTable = <V>(make: (t: WriteTable) => V): Readonly<Record<WriteTable, V>> =>
  Object.fromEntries(TABLES.map((t) => [t, make(t)])) as Record<WriteTable, V>;

/** COPY of a table's columns into `into` (the table, or its staging twin) in the given format. */
export const copySql = (t: WriteTable, into: string, format: 'text' | 'binary'): string =>
  `COPY ${into} (${cols(t)}) FROM STDIN${format === 'binary' ? ' (FORMAT binary)' : ''}`;

export const COPY_SQL = perTable((t) => copySql(t, t, COPY_FORMAT[t]));

/** The fallback for a batch that hits the unique key: COPY into a temporary twin, then insert what is new. */
export const STAGE_SQL = perTable((t) => ({
  create: `CREATE TEMP TABLE IF NOT EXISTS ${t}_stage (LIKE ${t}) ON COMMIT DELETE ROWS`,
  copy: copySql(t, `${t}_stage`, COPY_FORMAT[t]),
  merge: `INSERT INTO ${t} (${cols(t)}) SELECT ${cols(t)} FROM ${t}_stage ON CONFLICT DO NOTHING`,
  /** TimescaleDB's first path: like a COPY (a duplicate raises 23505 and the batch is redone by `merge`). */
  insert: `INSERT INTO ${t} (${cols(t)}) SELECT ${cols(t)} FROM ${t}_stage`,
}));

/** Whether a database takes the COPY through the staging table (TimescaleDB). */
export const copiedViaStage = (db: pg.Pool | pg.ClientBase): Promise<boolean> => askOnce(db, 'SELECT ticks_copied_via_stage() AS yes');

// --- Writing ----------------------------------------------------------------------------------------------------------

export interface OffsetClaim {
  readonly groupId: string;
  readonly topic: string;
  readonly partition: number;
  /** What this member last read from writer_offsets (null: no row). */
  readonly expected: bigint | null;
  /** The partition's next offset once this batch is in. */
  readonly next: bigint;
}

/** The COPY rows of one table in a batch, in the table's COPY_FORMAT (binary rows without header and trailer). */
export interface TableRows {
  readonly table: WriteTable;
  readonly rows: Buffer;
  readonly count: number;
}

export type WriteResult =
  /** rowsInserted: rows of the first table; inserted: per table, in the order given. */
  | {
      readonly outcome: 'written';
      readonly path: 'copy' | 'merge';
      readonly rowsInserted: number;
      readonly inserted: readonly number[];
      readonly copyMs: number;
      /** Time spent summarizing the rows into slices (before the transaction). */
      readonly summarizeMs: number;
      /** Why the rows could not be summarized (they went in unsummarized), if so. */
      readonly summaryError?: Error;
    }
  | { readonly outcome: 'stale'; readonly current: bigint | null };

const UNIQUE_VIOLATION = '23505';

export async function readOffset(db: pg.Pool | pg.ClientBase, groupId: string, topic: string, partition: number): Promise<bigint | null> {
  const res = await db.query<{ next_offset: string }>(READ_OFFSET_SQL, [groupId, topic, partition]);
  const row = res.rows[0];
  return row ? BigInt(row.next_offset) : null;
}

/** Runs one COPY of rows in `format`; binary rows get the PGCOPY header and trailer around them. */
export async function copyIn(client: pg.ClientBase, sql: string, rows: Buffer, format: 'text' | 'binary'): Promise<number> {
  const stream = client.query(copyFrom(sql));
  await pipeline(Readable.from(format === 'binary' ? [COPY_BINARY_HEADER, rows, COPY_BINARY_TRAILER] : [rows]), stream);
  return stream.rowCount;
}

async function rollbackQuietly(client: pg.PoolClient): Promise<void> {
  try {
    await client.query('ROLLBACK');
  } catch {
    // The connection is gone; the caller discards the client.
  }
}

/**
 * Writes one batch (the COPY rows of one or more tables, a book and its top-of-book row together; possibly none when
 * the batch held only dead letters) with its offsets. Throws on database errors (the caller retries the same batch);
 * returns 'stale' when another member owns the range.
 */
export async function writeTables(pool: pg.Pool, tables: readonly TableRows[], claim: OffsetClaim): Promise<WriteResult> {
  // Summaries of the COPYed ticks go in with them (slice-store.ts). Made before the transaction; only the COPY path
  // stores them: the merge path may skip duplicates, so its ticks are left for the refresh to summarize from the table.
  let summaries: (SliceBatch | null)[] | null = null;
  let summaryError: Error | undefined;
  let summarizeMs = 0;
  if (tables.some((t) => t.count > 0 && COPY_FORMAT[t.table] === 'binary') && (await slicesWanted(pool))) {
    const t0 = performance.now();
    try {
      summaries = tables.map((t) => (t.count > 0 && COPY_FORMAT[t.table] === 'binary' ? summarizeRows(t.table as TickTable, t.rows) : null));
    } catch (err) {
      // Never a reason to hold the ticks back: unsummarized, they are summarized by the refresh from the table.
      summaryError = err as Error;
    }
    summarizeMs = performance.now() - t0;
  }
  const stage = await copiedViaStage(pool);
  return withClient(pool, async (client) => {
    const first = await attempt(client, tables, claim, stage ? 'stage' : 'copy', summaries);
    if (first !== 'conflict') return first.outcome === 'written' ? { ...first, summarizeMs, ...(summaryError ? { summaryError } : {}) } : first;
    const second = await attempt(client, tables, claim, 'merge', null);
    if (second === 'conflict') throw new Error('unique violation in the merge path'); // cannot happen: ON CONFLICT
    return second.outcome === 'written' ? { ...second, summarizeMs } : second;
  });
}

async function attempt(
  client: pg.PoolClient,
  tables: readonly TableRows[],
  claim: OffsetClaim,
  path: 'copy' | 'stage' | 'merge',
  summaries: readonly (SliceBatch | null)[] | null,
): Promise<WriteResult | 'conflict'> {
  await client.query('BEGIN');
  try {
    const claimed = await client.query(CLAIM_OFFSETS_SQL, [
      claim.groupId,
      claim.topic,
      claim.partition,
      claim.next.toString(),
      claim.expected === null ? null : claim.expected.toString(),
    ]);
    if (claimed.rowCount !== 1) {
      await client.query('ROLLBACK');
      return { outcome: 'stale', current: await readOffset(client, claim.groupId, claim.topic, claim.partition) };
    }
    const t0 = performance.now();
    const inserted: number[] = [];
    if (summaries?.some((s) => s !== null)) await markSummarized(client);
    for (const [i, { table, rows, count }] of tables.entries()) {
      let n = 0;
      if (count > 0) {
        if (path === 'copy') {
          n = await copyIn(client, COPY_SQL[table], rows, COPY_FORMAT[table]);
        } else {
          const stage = STAGE_SQL[table];
          await client.query(stage.create);
          await copyIn(client, stage.copy, rows, COPY_FORMAT[table]);
          n = (await client.query(path === 'stage' ? stage.insert : stage.merge)).rowCount ?? 0;
        }
        // The merge path gets no summaries (it may skip duplicates): its minutes are summarized from the table.
        const summary = summaries?.[i];
        if (summary) await insertSlices(client, summary);
      }
      inserted.push(n);
    }
    const copyMs = performance.now() - t0;
    await client.query('COMMIT');
    return { outcome: 'written', path: path === 'merge' ? 'merge' : 'copy', rowsInserted: inserted[0] ?? 0, inserted, copyMs, summarizeMs: 0 };
  } catch (err) {
    await rollbackQuietly(client);
    if (path !== 'merge' && (err as { code?: string }).code === UNIQUE_VIOLATION) return 'conflict';
    throw err;
  }
}
