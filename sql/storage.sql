-- Repeatable: brings the storage of the tick tables (hypertables, compression, retention) in line with the configured
-- settings on every migrate run, and defines sync_metric_storage(), which sql/aggregates.sql calls for the bar
-- aggregates' refresh, compression and retention policies. A no-op on plain PostgreSQL and when nothing changed. The settings arrive as session settings (sql/migrate.ts):
-- tickwatch.tick_chunk_interval, tick_compress_after, tick_retention, bar_compress_after, bar_retention; 'none' means
-- no such policy (an existing one is removed).

-- One policy of a relation: removes it when the wanted interval is NULL ('none'), (re)creates it when it differs.
CREATE OR REPLACE FUNCTION sync_policy(rel regclass, proc text, setting text, wanted interval) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    current_value interval;
BEGIN
    -- A continuous aggregate's policies are listed under its materialization hypertable.
    SELECT (j.config ->> setting)::interval INTO current_value
      FROM timescaledb_information.jobs j
     WHERE j.proc_name = proc
       AND (j.hypertable_schema, j.hypertable_name) IN (
               SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.oid = rel
               UNION ALL
               SELECT ca.materialization_hypertable_schema::text, ca.materialization_hypertable_name::text
                 FROM timescaledb_information.continuous_aggregates ca
                WHERE format('%I.%I', ca.view_schema, ca.view_name)::regclass = rel);
    IF wanted IS NULL THEN
        IF proc = 'policy_retention' THEN PERFORM remove_retention_policy(rel, if_exists => true);
        ELSE PERFORM remove_compression_policy(rel, if_exists => true); END IF;
    ELSIF current_value IS DISTINCT FROM wanted THEN
        IF proc = 'policy_retention' THEN
            PERFORM remove_retention_policy(rel, if_exists => true);
            PERFORM add_retention_policy(rel, wanted);
        ELSE
            PERFORM remove_compression_policy(rel, if_exists => true);
            PERFORM add_compression_policy(rel, wanted);
        END IF;
    END IF;
END;
$$;

-- An interval setting: NULL when unset or 'none'.
CREATE OR REPLACE FUNCTION storage_setting(name text) RETURNS interval LANGUAGE sql STABLE AS $$
    SELECT nullif(nullif(current_setting(name, true), ''), 'none')::interval
$$;

-- The tick tables (and the book tables, and the per-second slices of trades and book tickers): hypertables with chunks
-- of tick_chunk_interval, compressed per stream after tick_compress_after, dropped after tick_retention.
CREATE OR REPLACE FUNCTION sync_hypertable_storage(tbl text, time_col text, segment_by text, order_by text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    chunk_interval interval := storage_setting('tickwatch.tick_chunk_interval');
BEGIN
    IF NOT metrics_timescale() THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = tbl) THEN
        PERFORM create_hypertable(tbl::regclass, by_range(time_col, coalesce(chunk_interval, interval '1 day')),
                                  create_default_indexes => false, migrate_data => true);
    ELSIF chunk_interval IS NOT NULL THEN
        -- Applies to chunks created from now on; existing chunks keep their size.
        PERFORM set_chunk_time_interval(tbl::regclass, chunk_interval);
    END IF;
    IF NOT (SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = tbl) THEN
        EXECUTE format('ALTER TABLE %I SET (timescaledb.compress, timescaledb.compress_segmentby = %L, '
                       'timescaledb.compress_orderby = %L)', tbl, segment_by, order_by);
    END IF;
    PERFORM sync_policy(tbl::regclass, 'policy_compression', 'compress_after', storage_setting('tickwatch.tick_compress_after'));
    PERFORM sync_policy(tbl::regclass, 'policy_retention', 'drop_after', storage_setting('tickwatch.tick_retention'));
END;
$$;

CREATE OR REPLACE FUNCTION sync_tick_storage(tbl text, segment_by text, order_by text) RETURNS void
LANGUAGE sql AS $$
    SELECT sync_hypertable_storage(tbl, 'time', segment_by, order_by)
$$;

-- A bar aggregate (continuous aggregate) of the given bucket width: TimescaleDB's own refresh policy re-materializes
-- whatever changed in the last `lookback` (late and backfilled ticks, or everything while the metrics worker is down),
-- for buckets closed at least `width` ago; compressed (segmented by the GROUP BY columns) after bar_compress_after;
-- dropped after bar_retention. Bars outlive the ticks: their defaults are years, the ticks' days.
CREATE OR REPLACE FUNCTION sync_metric_storage(cagg text, width interval, lookback interval) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    rel regclass := to_regclass(cagg);
    compress_after interval := storage_setting('tickwatch.bar_compress_after');
BEGIN
    IF NOT metrics_timescale() OR rel IS NULL THEN
        RETURN;
    END IF;
    PERFORM add_continuous_aggregate_policy(rel, start_offset => lookback, end_offset => width,
                                            schedule_interval => width, if_not_exists => true);
    IF NOT (SELECT compression_enabled FROM timescaledb_information.continuous_aggregates WHERE view_name = cagg) THEN
        EXECUTE format('ALTER MATERIALIZED VIEW %I SET (timescaledb.compress = true)', cagg);
    END IF;
    -- Compressed regions must lie beyond the refresh policy's window.
    PERFORM sync_policy(rel, 'policy_compression', 'compress_after',
                        CASE WHEN compress_after IS NOT NULL THEN greatest(compress_after, lookback + width) END);
    PERFORM sync_policy(rel, 'policy_retention', 'drop_after', storage_setting('tickwatch.bar_retention'));
END;
$$;

SELECT sync_tick_storage('trades',       'exchange, market, symbol', 'time DESC, trade_id DESC');
SELECT sync_tick_storage('agg_trades',   'exchange, market, symbol', 'time DESC, agg_id DESC');
SELECT sync_tick_storage('book_tickers', 'exchange, market, symbol', 'time DESC, update_id DESC');
SELECT sync_tick_storage('books',        'exchange, market, symbol', 'time DESC, sequence DESC');
SELECT sync_tick_storage('top_of_book',  'exchange, market, symbol', 'time DESC, sequence DESC');
SELECT sync_hypertable_storage('trade_slices', 'slice', 'exchange, market, symbol', 'slice DESC, first_time DESC, first_id DESC');
SELECT sync_hypertable_storage('quote_slices', 'slice', 'exchange, market, symbol', 'slice DESC, first_time DESC, first_id DESC');
