// A comparable picture of a database's schema (tables, columns, indexes, constraints, functions, migrations),
// used to show that a second migrate run changes nothing.
import type { SqlSession } from '../common/db.ts';

export async function schemaSnapshot(db: SqlSession): Promise<unknown> {
  const q = async (sql: string) => (await db.query(sql)).rows;
  return {
    columns: await q(`SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
                       WHERE table_schema = 'public' ORDER BY 1, 2`),
    indexes: await q(`SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2`),
    constraints: await q(`SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def
                            FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2`),
    functions: await q(`SELECT proname, md5(prosrc) AS src FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1, 2`),
    migrations: await q(`SELECT version, checksum, applied_at::text FROM schema_migrations ORDER BY 1`),
    jobs: (await q(`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`)).length
      ? await q(`SELECT job_id, proc_name, hypertable_name, config::text FROM timescaledb_information.jobs ORDER BY job_id`)
      : [],
  };
}
