// Ticks into the database the way the writer stores them, for tests that need the writer's own transaction without a
// broker (metrics/bars.int.test.ts, metrics/timescale-policies.int.test.ts).
import type pg from 'pg';
import { expect } from 'vitest';
import type { BookTicker, Tick, Trade } from '../common/records.ts';
import { CopyBinaryEncoder } from '../consumer/copy-binary.ts';
import { writeBatch } from '../consumer/write-batch.fixture.ts';
import type { TickTable } from '../consumer/copy-rows.ts';
import { CopyRowBuffer } from '../consumer/tick-rows.ts';

/** Ticks per batch: an odd size, so that most seconds are summarized by several batches and merged. */
export const BATCH_TICKS = 97;

/**
 * The writer's own transaction (writeBatch: COPY binary rows, their per-second slices, the offset claim), in batches of
 * BATCH_TICKS.
 */
export function writing(pool: pg.Pool) {
  const next: Record<string, bigint | null> = { trades: null, book_tickers: null };
  const enc = new CopyBinaryEncoder();
  const write = async (table: TickTable, ticks: readonly Tick[]) => {
    for (let i = 0; i < ticks.length; i += BATCH_TICKS) {
      const part = ticks.slice(i, i + BATCH_TICKS);
      const out = new CopyRowBuffer(part.length * 200, part.length);
      for (const t of part) enc.row(t, out);
      const expected = next[table]!;
      const to = (expected ?? 0n) + BigInt(part.length);
      const r = await writeBatch(pool, table, out.bytes(), part.length, { groupId: 'bars-test', topic: table, partition: 0, expected, next: to });
      expect(r.outcome).toBe('written');
      next[table] = to;
    }
  };
  return { trades: (l: readonly Trade[]) => write('trades', l), quotes: (l: readonly BookTicker[]) => write('book_tickers', l) };
}

