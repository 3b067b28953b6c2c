// One tick table's rows written as the writer writes a batch (writeTables: the offset claim, the COPY, the per-second
// slices, one transaction), for tests and benches that need the writer's transaction without a broker.
import type pg from 'pg';
import { writeTables, type OffsetClaim, type WriteResult } from './copy.ts';
import type { TickTable } from './copy-rows.ts';

export function writeBatch(pool: pg.Pool, table: TickTable, rows: Buffer, rowCount: number, claim: OffsetClaim): Promise<WriteResult> {
  return writeTables(pool, [{ table, rows, count: rowCount }], claim);
}
