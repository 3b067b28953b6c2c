// A comparable picture of a database's schema (tables, columns, indexes, constraints, functions, views, triggers,
// migrations, TimescaleDB jobs), used to show that a second migrate run changes nothing and that an adopted database
// equals a fresh one.
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
    views: await q(`SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1`),
    triggers: await q(`SELECT tgrelid::regclass::text AS tbl, tgname, pg_get_triggerdef(oid) AS def FROM pg_trigger
                        WHERE NOT tgisinternal AND tgrelid::regclass::text NOT LIKE '\\_%' ORDER BY 1, 2`),
    migrations: await q(`SELECT version, checksum, applied_at::text FROM schema_migrations ORDER BY 1`),
    jobs: (await q(`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`)).length
      ? await q(`SELECT job_id, proc_name, hypertable_name, config::text FROM timescaledb_information.jobs ORDER BY job_id`)
      : [],
  };
}
