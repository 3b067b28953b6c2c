-- Storage policy for the raw tick tables. With TimescaleDB: hypertables with chunk intervals suited to tick data,
-- compression segmented by symbol, and retention. On plain PostgreSQL the function is a no-op, so both databases
-- expose the same tables and names to every reader.
--
-- It is called on every migrate run (sql/storage.sql) with the configured intervals, read from the session settings
-- tickwatch.tick_chunk_interval, tickwatch.tick_compress_after and tickwatch.tick_retention; calling it again with
-- the same settings changes nothing.

CREATE FUNCTION sync_tick_storage(tbl text, segment_by text, order_by text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    chunk_interval  interval := current_setting('tickwatch.tick_chunk_interval', true)::interval;
    compress_after  interval := current_setting('tickwatch.tick_compress_after', true)::interval;
    retention       interval := current_setting('tickwatch.tick_retention', true)::interval;
    current_after   interval;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = tbl) THEN
        PERFORM create_hypertable(tbl::regclass, by_range('time', coalesce(chunk_interval, interval '1 day')),
                                  create_default_indexes => false, migrate_data => true);
    ELSIF chunk_interval IS NOT NULL THEN
        -- Applies to chunks created from now on; existing chunks keep their size.
        PERFORM set_chunk_time_interval(tbl::regclass, chunk_interval);
    END IF;

    IF NOT (SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = tbl) THEN
        EXECUTE format('ALTER TABLE %I SET (timescaledb.compress, timescaledb.compress_segmentby = %L, '
                       'timescaledb.compress_orderby = %L)', tbl, segment_by, order_by);
    END IF;

    SELECT (config ->> 'compress_after')::interval INTO current_after
      FROM timescaledb_information.jobs WHERE hypertable_name = tbl AND proc_name = 'policy_compression';
    IF compress_after IS NOT NULL AND current_after IS DISTINCT FROM compress_after THEN
        PERFORM remove_compression_policy(tbl::regclass, if_exists => true);
        PERFORM add_compression_policy(tbl::regclass, compress_after);
    END IF;

    SELECT (config ->> 'drop_after')::interval INTO current_after
      FROM timescaledb_information.jobs WHERE hypertable_name = tbl AND proc_name = 'policy_retention';
    IF retention IS NOT NULL AND current_after IS DISTINCT FROM retention THEN
        PERFORM remove_retention_policy(tbl::regclass, if_exists => true);
        PERFORM add_retention_policy(tbl::regclass, retention);
    END IF;
END;
$$;
