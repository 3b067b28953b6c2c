-- TimescaleDB aggregates the writer's per-second slices too (0023), not the raw ticks: its continuous aggregates are
-- now defined on the slice hypertables. Measured at 100x live (bench:metrics), refreshing caggs on the raw ticks and
-- recomputing returns and time weights from them took about half a core; the slices cut the rows read per minute by
-- the ticks-per-second rate. Both databases now share one refresh: prepare the slices (rebuild the minutes that are
-- not covered by summaries alone), materialize the sums from them, then the returns and time weights from them.
--
-- A cagg over slices stays exact on its own, without the worker: first/last come from first()/last() keyed by the
-- slice's first (last) tick, sums, counts, min and max add up across any number of summaries of one second. So the
-- TimescaleDB refresh policies make bars right by themselves for every tick the writer stored with its summary. Ticks
-- that went in without one (the writer's duplicate-merge path after a crash, a hand-made INSERT) mark their minute
-- `raw`; the worker's next pass rebuilds that minute's slices and the bars with them.
--
-- Upgrading an existing TimescaleDB database: the caggs are rebuilt (a cagg's query cannot be altered), every minute
-- that still has raw ticks is listed for the worker as `raw`, and the worker's first pass recomputes them (one long
-- pass, shown in its log and metrics). Bars of minutes whose ticks retention has already dropped cannot be recomputed:
-- export them first (tickwatch export) if they matter.

CREATE OR REPLACE FUNCTION tick_slices_wanted() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT true
$$;

-- A bar's sums from the slices, as a cagg definition (TimescaleDB: first/last ordered by a numeric key packing the
-- tick's time in microseconds and its id, as in trade_bar_sql).
CREATE FUNCTION trade_bar_cagg_sql(width interval) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format(
        'SELECT exchange, market, symbol, time_bucket(%L::interval, slice) AS bucket, '
        'first(first_price, %s) AS open, max(high) AS high, min(low) AS low, last(last_price, %s) AS close, '
        'sum(volume) AS volume, sum(quote_volume) AS quote_volume, sum(trade_count)::bigint AS trade_count, '
        'sum(taker_buy_volume) AS taker_buy_volume, sum(taker_buy_quote_volume) AS taker_buy_quote_volume, '
        'first(first_id, %s) AS first_trade_id, last(last_id, %s) AS last_trade_id, '
        'sum(sum_price) AS sum_price, sum(sum_price_sq) AS sum_price_sq '
        'FROM trade_slices GROUP BY 1, 2, 3, 4',
        width, k.first_key, k.last_key, k.first_key, k.last_key)
      FROM (SELECT 'extract(epoch FROM first_time) * 1000000 * 1e20 + first_id' AS first_key,
                   'extract(epoch FROM last_time) * 1000000 * 1e20 + last_id' AS last_key) k
$$;

CREATE FUNCTION quote_stats_cagg_sql() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format(
        'SELECT exchange, market, symbol, time_bucket(''1 minute'', slice) AS bucket, '
        'sum(quote_count)::bigint AS quote_count, sum(sum_spread) AS sum_spread, min(min_spread) AS min_spread, '
        'max(max_spread) AS max_spread, last(last_spread, %1$s) AS last_spread, '
        'sum(sum_spread_bps) AS sum_spread_bps, min(min_spread_bps) AS min_spread_bps, '
        'max(max_spread_bps) AS max_spread_bps, last(last_spread_bps, %1$s) AS last_spread_bps, '
        'sum(sum_mid) AS sum_mid, last(last_mid, %1$s) AS last_mid, '
        'sum(sum_bid_notional) AS sum_bid_notional, sum(sum_ask_notional) AS sum_ask_notional, '
        'last(last_bid_notional, %1$s) AS last_bid_notional, last(last_ask_notional, %1$s) AS last_ask_notional '
        'FROM quote_slices GROUP BY 1, 2, 3, 4',
        'extract(epoch FROM last_time) * 1000000 * 1e20 + last_id')
$$;

-- The definitions that create the sums relations: the slice caggs on TimescaleDB, the raw-tick SELECTs (which give
-- the plain tables their columns) elsewhere. configure_short_bars() (0010) creates the short bars through this too.
ALTER FUNCTION trade_bar_sql(interval, boolean) RENAME TO trade_bar_raw_sql;
CREATE FUNCTION trade_bar_sql(width interval, filtered boolean) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN metrics_timescale() AND NOT filtered THEN trade_bar_cagg_sql(width)
                ELSE trade_bar_raw_sql(width, filtered) END
$$;
ALTER FUNCTION quote_stats_sql(interval, boolean) RENAME TO quote_stats_raw_sql;
CREATE FUNCTION quote_stats_sql(width interval, filtered boolean) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN metrics_timescale() AND NOT filtered THEN quote_stats_cagg_sql()
                ELSE quote_stats_raw_sql(width, filtered) END
$$;

-- The raw-tick refresh of returns and time weights: replaced by the *_from_slices functions on both databases.
DROP FUNCTION refresh_trade_returns(timestamptz, timestamptz, timestamptz, timestamptz);
DROP FUNCTION refresh_quote_time_weights(timestamptz, timestamptz);

CREATE OR REPLACE PROCEDURE refresh_trade_bars(f timestamptz, t timestamptz) LANGUAGE plpgsql AS $$
DECLARE
    short_width interval := (SELECT short_width FROM metric_settings);
    origin constant timestamptz := '2000-01-03 00:00:00+00';
    s_from timestamptz := date_bin(short_width, f - interval '1 microsecond', origin) + short_width;
    s_to   timestamptz := date_bin(short_width, t, origin);
    m_from timestamptz := date_bin('1 minute', f - interval '1 microsecond', origin) + interval '1 minute';
    m_to   timestamptz := date_bin('1 minute', t, origin);
    f5 timestamptz := date_bin('5 minutes', m_from, origin);
    t5 timestamptz := date_bin('5 minutes', m_to - interval '1 microsecond', origin) + interval '5 minutes';
    f60 timestamptz := date_bin('1 hour', m_from, origin);
    t60 timestamptz := date_bin('1 hour', m_to - interval '1 microsecond', origin) + interval '1 hour';
BEGIN
    PERFORM prepare_slices('trade', CASE WHEN m_from < m_to THEN least(s_from, m_from) ELSE s_from END,
                           CASE WHEN m_from < m_to THEN greatest(s_to, m_to) ELSE s_to END);
    CALL refresh_metric_sums('trade_bars_short', trade_bar_slices_sql(short_width), s_from, s_to);
    CALL refresh_metric_sums('trade_bars_1m', trade_bar_slices_sql(interval '1 minute'), m_from, m_to);
    IF m_from < m_to THEN
        CALL refresh_metric_sums('trade_bars_5m', trade_bar_rollup_sql('trade_bars_1m', interval '5 minutes', true), f5, t5);
        CALL refresh_metric_sums('trade_bars_1h', trade_bar_rollup_sql('trade_bars_5m', interval '1 hour', true), f60, t60);
    END IF;
    PERFORM refresh_trade_returns_from_slices(s_from, greatest(s_from, s_to), m_from, greatest(m_from, m_to));
END;
$$;

CREATE OR REPLACE PROCEDURE refresh_quote_metrics(f timestamptz, t timestamptz) LANGUAGE plpgsql AS $$
DECLARE
    origin constant timestamptz := '2000-01-03 00:00:00+00';
    m_from timestamptz := date_bin('1 minute', f - interval '1 microsecond', origin) + interval '1 minute';
    m_to   timestamptz := date_bin('1 minute', t, origin);
BEGIN
    PERFORM prepare_slices('bookTicker', m_from, m_to);
    CALL refresh_metric_sums('quote_stats_1m', quote_stats_slices_sql(), m_from, m_to);
    PERFORM refresh_quote_time_weights_from_slices(m_from, greatest(m_from, m_to));
END;
$$;

-- TimescaleDB: the slices become hypertables and the caggs are rebuilt on them (with the reader views on top, kept as
-- they are defined). Their storage policies follow in sql/storage.sql.
DO $$
DECLARE
    origin constant timestamptz := '2000-01-03 00:00:00+00';
    quote_view text;
BEGIN
    IF NOT metrics_timescale() THEN
        RETURN;
    END IF;
    PERFORM create_hypertable('trade_slices'::regclass, by_range('slice', interval '1 day'),
                              create_default_indexes => false, migrate_data => true, if_not_exists => true);
    PERFORM create_hypertable('quote_slices'::regclass, by_range('slice', interval '1 day'),
                              create_default_indexes => false, migrate_data => true, if_not_exists => true);

    quote_view := pg_get_viewdef('quote_metrics_1m'::regclass);
    DROP VIEW quote_metrics_1m;
    DROP VIEW bars_short, bars_1m, bars_5m, bars_1h;
    DROP MATERIALIZED VIEW trade_bars_1h;
    DROP MATERIALIZED VIEW trade_bars_5m;
    DROP MATERIALIZED VIEW trade_bars_1m;
    DROP MATERIALIZED VIEW trade_bars_short;
    DROP MATERIALIZED VIEW quote_stats_1m;

    PERFORM create_metric_sums('trade_bars_short', trade_bar_sql((SELECT short_width FROM metric_settings), false));
    PERFORM create_metric_sums('trade_bars_1m', trade_bar_sql(interval '1 minute', false));
    PERFORM create_metric_sums('trade_bars_5m', trade_bar_rollup_sql('trade_bars_1m', interval '5 minutes', false));
    PERFORM create_metric_sums('trade_bars_1h', trade_bar_rollup_sql('trade_bars_5m', interval '1 hour', false));
    PERFORM create_bars_view('bars_short', 'trade_bars_short', 'trade_returns_short');
    PERFORM create_bars_view('bars_1m', 'trade_bars_1m', 'trade_returns_1m');
    PERFORM create_bars_view('bars_5m', 'trade_bars_5m', 'trade_returns_5m');
    PERFORM create_bars_view('bars_1h', 'trade_bars_1h', 'trade_returns_1h');
    PERFORM create_metric_sums('quote_stats_1m', quote_stats_sql(interval '1 minute', false));
    EXECUTE 'CREATE VIEW quote_metrics_1m AS ' || quote_view;

    -- No slices were written here before: every minute with ticks is rebuilt from them by the worker's next pass.
    IF EXISTS (SELECT 1 FROM trades) OR EXISTS (SELECT 1 FROM book_tickers) THEN
        UPDATE metric_settings SET slices_since = date_bin('1 minute', now(), origin) + interval '2 minutes';
        INSERT INTO metric_invalidations (exchange, market, symbol, stream, bucket, raw)
        SELECT DISTINCT exchange, market, symbol, 'trade', date_bin('1 minute', time, origin), true FROM trades
        UNION
        SELECT DISTINCT exchange, market, symbol, 'bookTicker', date_bin('1 minute', time, origin), true FROM book_tickers
        ON CONFLICT (exchange, market, symbol, stream, bucket)
        DO UPDATE SET touched = nextval('metric_invalidation_seq'), raw = true;
    END IF;
END;
$$;
