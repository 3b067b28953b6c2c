-- Tick slices: per-second partial sums of the raw ticks, so that on plain PostgreSQL the refresh merges a few rows per
-- second instead of reading every tick again (at 100x live, re-reading ~2.6 million ticks a minute cost 13-18 % of a
-- core). Same relations, same values; only where the refresh reads from changes. What and why: metrics/README.md,
-- "Tick slices".
--
-- The writer (consumer/tick-slices.ts) summarizes each COPYed batch per stream and second and inserts the summaries in
-- the same transaction as the ticks (exactly once with them), with the setting tickwatch.ticks_summarized = 'on', so
-- the invalidation trigger knows those ticks are covered. Ticks inserted any other way (the writer's duplicate path,
-- tests, a hand-made INSERT) mark their minute `raw`, and the refresh rebuilds that minute's slices from the raw ticks
-- first. Several summaries of one second (one per batch) merge exactly when their (time, id) ranges do not interleave;
-- when they do (a late tick inside a second already summarized), the minute is rebuilt from the raw ticks too.
--
-- TimescaleDB keeps its continuous aggregates on the raw tables (0010-0013); there the refresh ignores the slices
-- and the writer does not write them (tick_slices_wanted()).

CREATE TABLE trade_slices (
    slice                   timestamptz NOT NULL,  -- second start
    exchange                text        NOT NULL,
    market                  text        NOT NULL,
    symbol                  text        NOT NULL,
    first_time              timestamptz NOT NULL,  -- first trade by (time, trade_id)
    first_id                bigint      NOT NULL,
    first_price             numeric     NOT NULL,
    last_time               timestamptz NOT NULL,  -- last trade by (time, trade_id)
    last_id                 bigint      NOT NULL,
    last_price              numeric     NOT NULL,
    trade_count             bigint      NOT NULL,
    high                    numeric     NOT NULL,
    low                     numeric     NOT NULL,
    volume                  numeric     NOT NULL,
    quote_volume            numeric     NOT NULL,
    taker_buy_volume        numeric     NOT NULL,
    taker_buy_quote_volume  numeric     NOT NULL,
    sum_price               numeric     NOT NULL,
    sum_price_sq            numeric     NOT NULL,
    -- the trade_count - 1 tick-to-tick returns inside the summary (the one into its first trade is added on merge)
    sum_log_return          float8      NOT NULL,
    sum_log_return_sq       float8      NOT NULL,
    max_move                numeric,
    max_move_bps            numeric,
    PRIMARY KEY (slice, exchange, market, symbol, first_time, first_id)
);

CREATE TABLE quote_slices (
    slice                   timestamptz NOT NULL,
    exchange                text        NOT NULL,
    market                  text        NOT NULL,
    symbol                  text        NOT NULL,
    first_time              timestamptz NOT NULL,  -- first book ticker by (time, update_id)
    first_id                bigint      NOT NULL,
    last_time               timestamptz NOT NULL,
    last_id                 bigint      NOT NULL,
    quote_count             bigint      NOT NULL,
    sum_spread              numeric     NOT NULL,
    min_spread              numeric     NOT NULL,
    max_spread              numeric     NOT NULL,
    last_spread             numeric     NOT NULL,
    sum_spread_bps          numeric     NOT NULL,
    min_spread_bps          numeric     NOT NULL,
    max_spread_bps          numeric     NOT NULL,
    last_spread_bps         numeric     NOT NULL,
    sum_mid                 numeric     NOT NULL,
    last_mid                numeric     NOT NULL,
    sum_bid_notional        numeric     NOT NULL,
    sum_ask_notional        numeric     NOT NULL,
    last_bid_notional       numeric     NOT NULL,
    last_ask_notional       numeric     NOT NULL,
    -- spread * µs in force between consecutive quotes inside the summary (the piece into its first quote, and the
    -- last quote's piece, are added on merge)
    tw_us                   bigint      NOT NULL,
    tw_spread_us            numeric     NOT NULL,
    PRIMARY KEY (slice, exchange, market, symbol, first_time, first_id)
);

-- Where the slices are complete. A database that already held ticks has no slices for them: minutes before the
-- migration are always rebuilt from the raw ticks (a late tick there touches an unsummarized minute).
ALTER TABLE metric_settings ADD COLUMN slices_since timestamptz;
UPDATE metric_settings SET slices_since = CASE
    WHEN EXISTS (SELECT 1 FROM trades) OR EXISTS (SELECT 1 FROM book_tickers)
    THEN date_bin('1 minute', now(), '2000-01-03 00:00:00+00') + interval '2 minutes'
    ELSE '-infinity' END;

CREATE FUNCTION tick_slices_wanted() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT NOT metrics_timescale()
$$;

-- raw: ticks of this minute went in without slices (rebuild them before merging). Existing entries: raw.
ALTER TABLE metric_invalidations ADD COLUMN raw boolean NOT NULL DEFAULT true;

CREATE OR REPLACE FUNCTION invalidate_metric_buckets() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    summarized boolean := coalesce(current_setting('tickwatch.ticks_summarized', true), '') = 'on';
BEGIN
    INSERT INTO metric_invalidations (exchange, market, symbol, stream, bucket, raw)
    SELECT m.exchange, m.market, m.symbol, TG_ARGV[0], b.bucket, bool_or(b.raw)
      FROM (SELECT DISTINCT n.exchange, n.market, n.symbol, date_bin('1 minute', n.time, '2000-01-03 00:00:00+00') AS minute
              FROM new_rows n) m,
           LATERAL (VALUES (m.minute, NOT summarized), (m.minute + interval '1 minute', false)) AS b(bucket, raw)
     GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (exchange, market, symbol, stream, bucket)
    DO UPDATE SET touched = nextval('metric_invalidation_seq'), raw = metric_invalidations.raw OR excluded.raw;
    RETURN NULL;
END;
$$;

-- The tick-to-tick log return of 0013, given x = (price - prev) / prev in double precision (NULL: unchanged price):
-- the series of ln(1 + x) for |x| < 1e-3, ln of the double ratio above. Callers compute x once per row in a
-- materialized step: inlined, an expression argument would be evaluated again at every use of x.
CREATE FUNCTION tick_log_return(x float8, price numeric, prev numeric) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN x IS NULL THEN 0::float8
                WHEN abs(x) < 1e-3 THEN x * (1 - x * (0.5 - x * (1.0 / 3 - x * (0.25 - x * (0.2 - x / 6)))))
                ELSE ln(price::float8 / prev::float8) END
$$;

CREATE FUNCTION tick_move_bps(price numeric, prev numeric) RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN price = prev THEN 0.000000000000 ELSE decimal_div(abs(price - prev) * 10000, prev, 12) END
$$;

-- Rebuilds the slices of [f, t) from the raw trades, for the streams given as (exchange, market, symbol) arrays (or
-- every stream when they are NULL). The lock
-- waits for the writers' open transactions and holds new ones back until the refresh commits, so the slices deleted
-- and the ticks read are the same batches (rare: only unsummarized or interleaved minutes are rebuilt).
CREATE FUNCTION rebuild_trade_slices(f timestamptz, t timestamptz, exs text[], mks text[], sys text[]) RETURNS void LANGUAGE sql
SET jit = off SET work_mem = '128MB' AS $$
    LOCK TABLE trade_slices IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM trade_slices
     WHERE slice >= f AND slice < t AND (exs IS NULL OR (exchange, market, symbol) IN (SELECT * FROM unnest(exs, mks, sys)));
    -- one sort: each trade with its predecessor in the second, and whether it is the second's first or last
    WITH d AS MATERIALIZED (
        SELECT x.*, CASE WHEN price <> prev THEN (price - prev)::float8 / prev::float8 END AS rel_move
          FROM (SELECT exchange, market, symbol, time, trade_id, price, quantity, buyer_is_maker,
                       date_bin('1 second', time, '2000-01-03 00:00:00+00') AS slice,
                       lag(price) OVER w AS prev, row_number() OVER w = 1 AS is_first, lead(trade_id) OVER w IS NULL AS is_last
                  FROM trades
                 WHERE time >= f AND time < t AND (exs IS NULL OR (exchange, market, symbol) IN (SELECT * FROM unnest(exs, mks, sys)))
                WINDOW w AS (PARTITION BY exchange, market, symbol, date_bin('1 second', time, '2000-01-03 00:00:00+00')
                             ORDER BY time, trade_id)) x
    ), r AS (
        SELECT d.*, CASE WHEN prev IS NOT NULL THEN tick_log_return(rel_move, price, prev) END AS lr FROM d
    )
    INSERT INTO trade_slices
    SELECT slice, exchange, market, symbol,
           min(time), min(trade_id) FILTER (WHERE is_first), min(price) FILTER (WHERE is_first),
           max(time), min(trade_id) FILTER (WHERE is_last), min(price) FILTER (WHERE is_last),
           count(*), max(price), min(price), sum(quantity), sum(price * quantity),
           sum(CASE WHEN buyer_is_maker THEN 0 ELSE quantity END),
           sum(CASE WHEN buyer_is_maker THEN 0 ELSE price * quantity END),
           sum(price), sum(price * price),
           coalesce(sum(lr), 0), coalesce(sum(lr * lr), 0),
           max(abs(price - prev)), max(CASE WHEN prev IS NOT NULL THEN tick_move_bps(price, prev) END)
      FROM r GROUP BY slice, exchange, market, symbol
$$;

CREATE FUNCTION rebuild_quote_slices(f timestamptz, t timestamptz, exs text[], mks text[], sys text[]) RETURNS void LANGUAGE sql
SET jit = off SET work_mem = '128MB' AS $$
    LOCK TABLE quote_slices IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM quote_slices
     WHERE slice >= f AND slice < t AND (exs IS NULL OR (exchange, market, symbol) IN (SELECT * FROM unnest(exs, mks, sys)));
    WITH x AS (
        SELECT exchange, market, symbol, time, update_id,
               ask_price - bid_price AS spread,
               decimal_div((ask_price - bid_price) * 20000, ask_price + bid_price, 12) AS bps,
               (ask_price + bid_price) * 0.5 AS mid, bid_price * bid_qty AS bid_notional, ask_price * ask_qty AS ask_notional,
               date_bin('1 second', time, '2000-01-03 00:00:00+00') AS slice,
               lead(time) OVER w AS next_time, row_number() OVER w = 1 AS is_first
          FROM book_tickers
         WHERE time >= f AND time < t AND (exs IS NULL OR (exchange, market, symbol) IN (SELECT * FROM unnest(exs, mks, sys)))
        WINDOW w AS (PARTITION BY exchange, market, symbol, date_bin('1 second', time, '2000-01-03 00:00:00+00')
                     ORDER BY time, update_id)
    ), p AS MATERIALIZED (
        SELECT x.*, round(date_part('epoch', next_time - time) * 1000000)::bigint AS us FROM x
    )
    INSERT INTO quote_slices
    SELECT slice, exchange, market, symbol,
           min(time), min(update_id) FILTER (WHERE is_first),
           max(time), min(update_id) FILTER (WHERE us IS NULL),
           count(*), sum(spread), min(spread), max(spread), min(spread) FILTER (WHERE us IS NULL),
           sum(bps), min(bps), max(bps), min(bps) FILTER (WHERE us IS NULL),
           sum(mid), min(mid) FILTER (WHERE us IS NULL),
           sum(bid_notional), sum(ask_notional),
           min(bid_notional) FILTER (WHERE us IS NULL), min(ask_notional) FILTER (WHERE us IS NULL),
           coalesce(sum(us), 0), coalesce(sum(spread * us), 0)
      FROM p GROUP BY slice, exchange, market, symbol
$$;

-- Before merging the slices of [f, t): rebuild from the raw ticks every stream-minute in it that is not covered by
-- summaries alone (a raw invalidation, a minute before slices_since) or whose summaries of one second interleave.
-- The rebuild is cut to [f, t), so a short window of an open minute rebuilds only its own seconds.
CREATE FUNCTION prepare_slices(stream text, f timestamptz, t timestamptz) RETURNS void LANGUAGE plpgsql
SET jit = off SET work_mem = '128MB' AS $$
DECLARE
    origin constant timestamptz := '2000-01-03 00:00:00+00';
    since timestamptz := (SELECT slices_since FROM metric_settings);
    m record;
BEGIN
    IF f >= t THEN
        RETURN;
    END IF;
    IF f < since THEN
        IF stream = 'trade' THEN
            PERFORM rebuild_trade_slices(f, least(t, since), NULL, NULL, NULL);
        ELSE
            PERFORM rebuild_quote_slices(f, least(t, since), NULL, NULL, NULL);
        END IF;
    END IF;
    FOR m IN
      SELECT minute, array_agg(exchange) AS exs, array_agg(market) AS mks, array_agg(symbol) AS sys FROM (
        SELECT i.exchange, i.market, i.symbol, i.bucket AS minute
          FROM metric_invalidations i
         WHERE i.stream = prepare_slices.stream AND i.raw
           AND i.bucket >= date_bin('1 minute', f, origin) AND i.bucket < t
        UNION
        SELECT DISTINCT o.exchange, o.market, o.symbol, date_bin('1 minute', o.slice, origin)
          FROM (SELECT s.slice, s.exchange, s.market, s.symbol, s.first_time, s.first_id,
                       lag(s.last_time) OVER w AS prev_time, lag(s.last_id) OVER w AS prev_id
                  FROM trade_slices s
                 WHERE prepare_slices.stream = 'trade' AND s.slice >= f AND s.slice < t
                WINDOW w AS (PARTITION BY s.slice, s.exchange, s.market, s.symbol ORDER BY s.first_time, s.first_id)
                UNION ALL
                SELECT s.slice, s.exchange, s.market, s.symbol, s.first_time, s.first_id,
                       lag(s.last_time) OVER w AS prev_time, lag(s.last_id) OVER w AS prev_id
                  FROM quote_slices s
                 WHERE prepare_slices.stream = 'bookTicker' AND s.slice >= f AND s.slice < t
                WINDOW w AS (PARTITION BY s.slice, s.exchange, s.market, s.symbol ORDER BY s.first_time, s.first_id)) o
         WHERE (o.first_time, o.first_id) <= (o.prev_time, o.prev_id)
      ) need GROUP BY minute  -- one rebuild per minute for all its streams
    LOOP
        IF greatest(f, m.minute, since) < least(t, m.minute + interval '1 minute') THEN
            IF stream = 'trade' THEN
                PERFORM rebuild_trade_slices(greatest(f, m.minute, since), least(t, m.minute + interval '1 minute'),
                                             m.exs, m.mks, m.sys);
            ELSE
                PERFORM rebuild_quote_slices(greatest(f, m.minute, since), least(t, m.minute + interval '1 minute'),
                                             m.exs, m.mks, m.sys);
            END IF;
        END IF;
    END LOOP;
END;
$$;

-- Trade bar sums of width `width` from the slices of [$1, $2): the same columns, in the same order, as trade_bar_sql.
CREATE FUNCTION trade_bar_slices_sql(width interval) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format(
        'SELECT exchange, market, symbol, date_bin(%L::interval, slice, %L::timestamptz) AS bucket, '
        '(array_agg(first_price ORDER BY first_time, first_id))[1] AS open, max(high) AS high, min(low) AS low, '
        '(array_agg(last_price ORDER BY last_time DESC, last_id DESC))[1] AS close, '
        'sum(volume) AS volume, sum(quote_volume) AS quote_volume, sum(trade_count)::bigint AS trade_count, '
        'sum(taker_buy_volume) AS taker_buy_volume, sum(taker_buy_quote_volume) AS taker_buy_quote_volume, '
        '(array_agg(first_id ORDER BY first_time, first_id))[1] AS first_trade_id, '
        '(array_agg(last_id ORDER BY last_time DESC, last_id DESC))[1] AS last_trade_id, '
        'sum(sum_price) AS sum_price, sum(sum_price_sq) AS sum_price_sq '
        'FROM trade_slices WHERE slice >= $1 AND slice < $2 GROUP BY 1, 2, 3, 4',
        width, '2000-01-03 00:00:00+00')
$$;

-- Quote sums of the 1-minute buckets in [$1, $2) from the slices: the same columns, in the same order, as quote_stats_sql.
CREATE FUNCTION quote_stats_slices_sql() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT 'SELECT exchange, market, symbol, date_bin(''1 minute'', slice, ''2000-01-03 00:00:00+00'') AS bucket, '
           'sum(quote_count)::bigint AS quote_count, sum(sum_spread) AS sum_spread, min(min_spread) AS min_spread, '
           'max(max_spread) AS max_spread, (array_agg(last_spread ORDER BY last_time DESC, last_id DESC))[1] AS last_spread, '
           'sum(sum_spread_bps) AS sum_spread_bps, min(min_spread_bps) AS min_spread_bps, max(max_spread_bps) AS max_spread_bps, '
           '(array_agg(last_spread_bps ORDER BY last_time DESC, last_id DESC))[1] AS last_spread_bps, '
           'sum(sum_mid) AS sum_mid, (array_agg(last_mid ORDER BY last_time DESC, last_id DESC))[1] AS last_mid, '
           'sum(sum_bid_notional) AS sum_bid_notional, sum(sum_ask_notional) AS sum_ask_notional, '
           '(array_agg(last_bid_notional ORDER BY last_time DESC, last_id DESC))[1] AS last_bid_notional, '
           '(array_agg(last_ask_notional ORDER BY last_time DESC, last_id DESC))[1] AS last_ask_notional '
           'FROM quote_slices WHERE slice >= $1 AND slice < $2 GROUP BY 1, 2, 3, 4'
$$;

-- The 5-minute and 1-hour return sums rolled up from the 1-minute ones, for the 5m/1h buckets holding [m_from, m_to).
CREATE FUNCTION roll_up_trade_returns(m_from timestamptz, m_to timestamptz) RETURNS void LANGUAGE plpgsql AS $$
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
CREATE FUNCTION refresh_trade_returns_from_slices(s_from timestamptz, s_to timestamptz, m_from timestamptz, m_to timestamptz)
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
CREATE FUNCTION refresh_quote_time_weights_from_slices(f timestamptz, t timestamptz) RETURNS void LANGUAGE plpgsql
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

-- The refresh procedures of 0010/0011, now reading the slices on plain PostgreSQL (TimescaleDB: unchanged).
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
    IF metrics_timescale() THEN
        CALL refresh_metric_sums('trade_bars_short', trade_bar_sql(short_width, true), s_from, s_to);
        CALL refresh_metric_sums('trade_bars_1m', trade_bar_sql(interval '1 minute', true), m_from, m_to);
    ELSE
        PERFORM prepare_slices('trade', CASE WHEN m_from < m_to THEN least(s_from, m_from) ELSE s_from END,
                               CASE WHEN m_from < m_to THEN greatest(s_to, m_to) ELSE s_to END);
        CALL refresh_metric_sums('trade_bars_short', trade_bar_slices_sql(short_width), s_from, s_to);
        CALL refresh_metric_sums('trade_bars_1m', trade_bar_slices_sql(interval '1 minute'), m_from, m_to);
    END IF;
    IF m_from < m_to THEN
        CALL refresh_metric_sums('trade_bars_5m', trade_bar_rollup_sql('trade_bars_1m', interval '5 minutes', true), f5, t5);
        CALL refresh_metric_sums('trade_bars_1h', trade_bar_rollup_sql('trade_bars_5m', interval '1 hour', true), f60, t60);
    END IF;
    IF metrics_timescale() THEN
        PERFORM refresh_trade_returns(s_from, greatest(s_from, s_to), m_from, greatest(m_from, m_to));
    ELSE
        PERFORM refresh_trade_returns_from_slices(s_from, greatest(s_from, s_to), m_from, greatest(m_from, m_to));
    END IF;
END;
$$;

CREATE OR REPLACE PROCEDURE refresh_quote_metrics(f timestamptz, t timestamptz) LANGUAGE plpgsql AS $$
DECLARE
    origin constant timestamptz := '2000-01-03 00:00:00+00';
    m_from timestamptz := date_bin('1 minute', f - interval '1 microsecond', origin) + interval '1 minute';
    m_to   timestamptz := date_bin('1 minute', t, origin);
BEGIN
    IF metrics_timescale() THEN
        CALL refresh_metric_sums('quote_stats_1m', quote_stats_sql(interval '1 minute', true), m_from, m_to);
        PERFORM refresh_quote_time_weights(m_from, greatest(m_from, m_to));
    ELSE
        PERFORM prepare_slices('bookTicker', m_from, m_to);
        CALL refresh_metric_sums('quote_stats_1m', quote_stats_slices_sql(), m_from, m_to);
        PERFORM refresh_quote_time_weights_from_slices(m_from, greatest(m_from, m_to));
    END IF;
END;
$$;
