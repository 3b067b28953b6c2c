-- Repeatable: the refresh the metrics worker calls, CALL refresh_metrics(f, t) and CALL refresh_top_of_book(f, t), and
-- its parts. Procedures, because TimescaleDB's refresh_continuous_aggregate may not run inside a function or a
-- transaction block. Both databases share one refresh: prepare the slices, materialize the sums from them, then the
-- returns and time weights, which need consecutive ticks (a window function, which caggs forbid).

-- Plain PostgreSQL's delete + insert of a sums relation runs in a function with JIT off and more sort memory: the
-- refresh queries are numeric-bound, and their row estimates made the planner compile and optimise them with LLVM on
-- every call (up to most of a second each), and their sorts spilled to disk. (A procedure with SET clauses could not
-- call TimescaleDB's refresh_continuous_aggregate, which needs a non-atomic context, so the SET is on the function.)
CREATE OR REPLACE FUNCTION refresh_metric_table(name text, select_sql text, f timestamptz, t timestamptz) RETURNS void
LANGUAGE plpgsql SET jit = off SET work_mem = '128MB' AS $$
BEGIN
    EXECUTE format('DELETE FROM %I WHERE bucket >= $1 AND bucket < $2', name) USING f, t;
    EXECUTE format('INSERT INTO %I %s', name, select_sql) USING f, t;
END;
$$;

-- Refreshes one sums relation over [f, t): a cagg refresh on TimescaleDB (whole buckets only, so callers pass aligned
-- windows; an empty window is skipped because the cagg refresh rejects it), delete + insert on plain PostgreSQL.
CREATE OR REPLACE PROCEDURE refresh_metric_sums(name text, select_sql text, f timestamptz, t timestamptz) LANGUAGE plpgsql AS $$
BEGIN
    IF f >= t THEN
        RETURN;
    END IF;
    IF metrics_timescale() THEN
        CALL refresh_continuous_aggregate(name::regclass, f, t);
    ELSE
        PERFORM refresh_metric_table(name, select_sql, f, t);
    END IF;
END;
$$;

-- The 5-minute and 1-hour return sums rolled up from the 1-minute ones, for the 5m/1h buckets holding [m_from, m_to).
CREATE OR REPLACE FUNCTION roll_up_trade_returns(m_from timestamptz, m_to timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    origin constant timestamptz := '2000-01-03 00:00:00+00';
    f5  timestamptz := date_bin('5 minutes', m_from, origin);
    t5  timestamptz := date_bin('5 minutes', m_to - interval '1 microsecond', origin) + interval '5 minutes';
    f60 timestamptz := date_bin('1 hour', m_from, origin);
    t60 timestamptz := date_bin('1 hour', m_to - interval '1 microsecond', origin) + interval '1 hour';
BEGIN
    IF m_from >= m_to THEN
        RETURN;
    END IF;
    DELETE FROM trade_returns_5m WHERE bucket >= f5 AND bucket < t5;
    INSERT INTO trade_returns_5m
    SELECT exchange, market, symbol, date_bin('5 minutes', bucket, origin), sum(return_count),
           sum(sum_log_return), sum(sum_log_return_sq), max(max_move), max(max_move_bps)
      FROM trade_returns_1m WHERE bucket >= f5 AND bucket < t5
     GROUP BY 1, 2, 3, 4;
    DELETE FROM trade_returns_1h WHERE bucket >= f60 AND bucket < t60;
    INSERT INTO trade_returns_1h
    SELECT exchange, market, symbol, date_bin('1 hour', bucket, origin), sum(return_count),
           sum(sum_log_return), sum(sum_log_return_sq), max(max_move), max(max_move_bps)
      FROM trade_returns_5m WHERE bucket >= f60 AND bucket < t60
     GROUP BY 1, 2, 3, 4;
END;
$$;

-- Return sums of the short buckets in [s_from, s_to) and the 1-minute buckets in [m_from, m_to) from the slices: each
-- summary's inside returns, plus the return into its first trade from the trade before it (the previous summary's
-- last trade in (time, id) order; for the first summary of the window, the last raw trade at most one day back).
CREATE OR REPLACE FUNCTION refresh_trade_returns_from_slices(s_from timestamptz, s_to timestamptz, m_from timestamptz, m_to timestamptz)
RETURNS void LANGUAGE plpgsql SET jit = off SET work_mem = '128MB' AS $$
DECLARE
    short_width interval := (SELECT short_width FROM metric_settings);
    -- the summaries read: both windows, or the one that is not empty (a short pass has no minute)
    f timestamptz := CASE WHEN m_from >= m_to THEN s_from WHEN s_from >= s_to THEN m_from ELSE least(s_from, m_from) END;
    t timestamptz := CASE WHEN m_from >= m_to THEN s_to WHEN s_from >= s_to THEN m_to ELSE greatest(s_to, m_to) END;
BEGIN
    DELETE FROM trade_returns_short WHERE bucket >= s_from AND bucket < s_to;
    DELETE FROM trade_returns_1m WHERE bucket >= m_from AND bucket < m_to;
    IF f >= t THEN
        RETURN;
    END IF;
    EXECUTE format($q$
        WITH s AS MATERIALIZED (
            SELECT false AS before, slice, exchange, market, symbol, first_time, first_id, first_price, last_price,
                   trade_count, sum_log_return, sum_log_return_sq, max_move, max_move_bps
              FROM trade_slices WHERE slice >= $1 AND slice < $2
        ), j AS MATERIALIZED (
            -- each summary with the price of the trade before its first (a union, not a join: without statistics the
            -- planner would compare every summary with every stream)
            SELECT *, CASE WHEN first_price <> into_prev THEN (first_price - into_prev)::float8 / into_prev::float8 END AS rel_move
              FROM (SELECT u.*, lag(u.last_price) OVER (PARTITION BY u.exchange, u.market, u.symbol ORDER BY u.first_time, u.first_id) AS into_prev
                      FROM (SELECT * FROM s
                            UNION ALL
                            SELECT true, NULL, p.exchange, p.market, p.symbol, p.time, p.trade_id, p.price, p.price,
                                   1, 0, 0, NULL, NULL
                              FROM (SELECT DISTINCT exchange, market, symbol FROM s) b
                             CROSS JOIN LATERAL (
                                   SELECT x.exchange, x.market, x.symbol, x.time, x.trade_id, x.price FROM trades x
                                    WHERE x.exchange = b.exchange AND x.market = b.market AND x.symbol = b.symbol
                                      AND x.time < $1 AND x.time >= $1 - interval '1 day'
                                    ORDER BY x.time DESC, x.trade_id DESC LIMIT 1) p) u) w
             WHERE NOT before
        ), bridged AS MATERIALIZED (
            SELECT j.*, CASE WHEN into_prev IS NOT NULL THEN tick_log_return(rel_move, first_price, into_prev) END AS blr FROM j
        ), r AS (
            SELECT slice, exchange, market, symbol,
                   trade_count - 1 + CASE WHEN into_prev IS NULL THEN 0 ELSE 1 END AS n,
                   sum_log_return + coalesce(blr, 0) AS lr,
                   sum_log_return_sq + coalesce(blr * blr, 0) AS lr2,
                   greatest(max_move, abs(first_price - into_prev)) AS move,
                   greatest(max_move_bps, CASE WHEN into_prev IS NOT NULL THEN tick_move_bps(first_price, into_prev) END) AS move_bps
              FROM bridged
        ), short_ins AS (
            INSERT INTO trade_returns_short
            SELECT exchange, market, symbol, date_bin(%L::interval, slice, '2000-01-03 00:00:00+00'), sum(n),
                   sum(lr), sum(lr2), max(move), max(move_bps)
              FROM r WHERE slice >= $3 AND slice < $4 GROUP BY 1, 2, 3, 4 HAVING sum(n) > 0
        )
        INSERT INTO trade_returns_1m
        SELECT exchange, market, symbol, date_bin('1 minute', slice, '2000-01-03 00:00:00+00'), sum(n),
               sum(lr), sum(lr2), max(move), max(move_bps)
          FROM r WHERE slice >= $5 AND slice < $6 GROUP BY 1, 2, 3, 4 HAVING sum(n) > 0$q$, short_width)
    USING f, t, s_from, s_to, m_from, m_to;
    PERFORM roll_up_trade_returns(m_from, m_to);
END;
$$;

-- Time-weighted spread of the 1-minute buckets in [f, t) from the slices: each summary's inside pieces, the piece from
-- the previous summary's last quote to its first quote, the last quote's piece up to t, and the quote in force at f
-- (the last raw quote at most one day back) up to the window's first quote. Pieces across a bucket edge are split.
CREATE OR REPLACE FUNCTION refresh_quote_time_weights_from_slices(f timestamptz, t timestamptz) RETURNS void LANGUAGE plpgsql
SET jit = off SET work_mem = '128MB' AS $$
BEGIN
    DELETE FROM quote_time_weights_1m WHERE bucket >= f AND bucket < t;
    IF f >= t THEN
        RETURN;
    END IF;
    INSERT INTO quote_time_weights_1m
    WITH s AS MATERIALIZED (
        SELECT slice, exchange, market, symbol, first_time, last_time, last_spread, tw_us, tw_spread_us,
               lead(first_time) OVER w AS next_time,
               row_number() OVER w AS k
          FROM quote_slices WHERE slice >= f AND slice < t
        WINDOW w AS (PARTITION BY exchange, market, symbol ORDER BY first_time, first_id)
    ), seg AS (
        -- the last quote of each summary, in force until the next summary's first quote (or t)
        SELECT exchange, market, symbol, last_spread AS spread, last_time AS seg_from, coalesce(next_time, t) AS seg_to
          FROM s
        UNION ALL
        -- the quote in force at f, until the window's first quote
        SELECT s.exchange, s.market, s.symbol, p.spread, f, s.first_time
          FROM s
         CROSS JOIN LATERAL (
               SELECT x.ask_price - x.bid_price AS spread FROM book_tickers x
                WHERE x.exchange = s.exchange AND x.market = s.market AND x.symbol = s.symbol
                  AND x.time < f AND x.time >= f - interval '1 day'
                ORDER BY x.time DESC, x.update_id DESC LIMIT 1) p
         WHERE s.k = 1 AND s.first_time > f
    ), piece AS (
        SELECT s.exchange, s.market, s.symbol, b.bucket,
               round(date_part('epoch', least(s.seg_to, b.bucket + interval '1 minute') - greatest(s.seg_from, b.bucket))
                     * 1000000)::bigint AS us, s.spread
          FROM seg s
         CROSS JOIN LATERAL generate_series(date_bin('1 minute', s.seg_from, '2000-01-03 00:00:00+00'),
                                            s.seg_to - interval '1 microsecond', interval '1 minute') AS b(bucket)
         WHERE s.seg_to > s.seg_from
    ), sums AS (
        SELECT exchange, market, symbol, bucket, sum(us) AS us, sum(spread * us) AS spread_us
          FROM (SELECT exchange, market, symbol, bucket, spread, sum(us) AS us FROM piece GROUP BY 1, 2, 3, 4, 5) by_spread
         GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT exchange, market, symbol, date_bin('1 minute', slice, '2000-01-03 00:00:00+00'), sum(tw_us), sum(tw_spread_us)
          FROM s GROUP BY 1, 2, 3, 4
    )
    SELECT exchange, market, symbol, bucket, sum(us), sum(spread_us) FROM sums GROUP BY 1, 2, 3, 4;
END;
$$;

-- All trade bars touched by ticks in [f, t): the window's slices prepared, then the short and 1-minute buckets wholly
-- inside, the 5m/1h buckets holding those minutes (a still-open one is refreshed as it fills), and their returns.
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

-- The 1-minute quote metrics wholly inside [f, t): the slices prepared, the sums, then the time-weighted spread.
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

-- The one entry point of the metrics worker: every bar and quote metric whose bucket lies wholly inside [f, t).
-- A procedure (CALL, outside any transaction block) because TimescaleDB's cagg refresh may not run in a function.
CREATE OR REPLACE PROCEDURE refresh_metrics(f timestamptz, t timestamptz) LANGUAGE plpgsql AS $$
BEGIN
    CALL refresh_trade_bars(f, t);
    CALL refresh_quote_metrics(f, t);
END;
$$;

-- Whole 1-minute buckets inside [f, t), as refresh_quote_metrics. A procedure: the cagg refresh may not run in a
-- function or transaction block.
CREATE OR REPLACE PROCEDURE refresh_top_of_book(f timestamptz, t timestamptz) LANGUAGE plpgsql AS $$
DECLARE
    origin constant timestamptz := '2000-01-03 00:00:00+00';
    m_from timestamptz := date_bin('1 minute', f - interval '1 microsecond', origin) + interval '1 minute';
    m_to   timestamptz := date_bin('1 minute', t, origin);
BEGIN
    CALL refresh_metric_sums('top_of_book_stats_1m', top_of_book_stats_sql(interval '1 minute', true), m_from, m_to);
END;
$$;
