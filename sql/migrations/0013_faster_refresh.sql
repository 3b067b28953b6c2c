-- A cheaper refresh_metrics (same results): replaces functions of 0010/0011 (CREATE OR REPLACE only, no relation is
-- rebuilt, so this works right after 0012 on a fresh database and after 0020/0021 on an existing one) and adds the
-- time indexes the refresh scans need on plain PostgreSQL. What changed and why: metrics/README.md, "Refresh cost".

-- Same rounding, but the powers of ten are IMMUTABLE expressions: after inlining they fold into constants (the
-- `'1e' || digits` of 0010 uses the STABLE text || anynonarray operator, so it was built and parsed again per row).
CREATE OR REPLACE FUNCTION decimal_div(a numeric, b numeric, digits integer) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN b = 0 THEN NULL
                ELSE sign(a) * sign(b) * div(2 * abs(a) * ('1e' || digits::text)::numeric + abs(b), 2 * abs(b))
                     * ('1e-' || digits::text)::numeric
           END
$$;

-- Plain PostgreSQL: every refresh selects ticks by time alone (the primary keys lead with the symbol), which was a
-- scan of the whole table. TimescaleDB hypertables have their time index already.
DO $$
BEGIN
    IF NOT metrics_timescale() THEN
        CREATE INDEX IF NOT EXISTS trades_by_time ON trades (time);
        CREATE INDEX IF NOT EXISTS book_tickers_by_time ON book_tickers (time);
    END IF;
END;
$$;

-- Trade bar sums. TimescaleDB: unchanged (first/last in the cagg). Plain PostgreSQL: the plain aggregates per bucket,
-- then open/close and the first/last trade id from one primary-key lookup each per bucket, instead of four
-- array_agg(... ORDER BY) that sort every bucket's trades four times. Same columns, same order, same values.
CREATE OR REPLACE FUNCTION trade_bar_sql(width interval, filtered boolean) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    b   text := metric_bucket_sql(width, 'time');
    key text := 'extract(epoch FROM time) * 1000000 * 1e20 + trade_id';
    win text := CASE WHEN filtered THEN 'WHERE time >= $1 AND time < $2' ELSE '' END;
    xwin text := CASE WHEN filtered THEN ' AND x.time >= $1 AND x.time < $2' ELSE '' END;
BEGIN
    IF metrics_timescale() THEN
        RETURN format(
            'SELECT exchange, market, symbol, %s AS bucket, '
            '%s AS open, max(price) AS high, min(price) AS low, %s AS close, '
            'sum(quantity) AS volume, sum(price * quantity) AS quote_volume, count(*) AS trade_count, '
            'sum(CASE WHEN buyer_is_maker THEN 0 ELSE quantity END) AS taker_buy_volume, '
            'sum(CASE WHEN buyer_is_maker THEN 0 ELSE price * quantity END) AS taker_buy_quote_volume, '
            '%s AS first_trade_id, %s AS last_trade_id, '
            'sum(price) AS sum_price, sum(price * price) AS sum_price_sq '
            'FROM trades %s GROUP BY 1, 2, 3, 4',
            b,
            metric_first_sql('price', key, 'time, trade_id', false),
            metric_first_sql('price', key, 'time, trade_id', true),
            metric_first_sql('trade_id', key, 'time, trade_id', false),
            metric_first_sql('trade_id', key, 'time, trade_id', true),
            win);
    END IF;
    RETURN format(
        'SELECT g.exchange, g.market, g.symbol, g.bucket, o.price AS open, g.high, g.low, c.price AS close, '
        'g.volume, g.quote_volume, g.trade_count, g.taker_buy_volume, g.taker_buy_quote_volume, '
        'o.trade_id AS first_trade_id, c.trade_id AS last_trade_id, g.sum_price, g.sum_price_sq '
        'FROM (SELECT exchange, market, symbol, %s AS bucket, max(price) AS high, min(price) AS low, '
        'sum(quantity) AS volume, sum(price * quantity) AS quote_volume, count(*) AS trade_count, '
        'sum(CASE WHEN buyer_is_maker THEN 0 ELSE quantity END) AS taker_buy_volume, '
        'sum(CASE WHEN buyer_is_maker THEN 0 ELSE price * quantity END) AS taker_buy_quote_volume, '
        'sum(price) AS sum_price, sum(price * price) AS sum_price_sq '
        'FROM trades %s GROUP BY 1, 2, 3, 4) g '
        'CROSS JOIN LATERAL (SELECT x.price, x.trade_id FROM trades x '
        'WHERE x.exchange = g.exchange AND x.market = g.market AND x.symbol = g.symbol '
        'AND x.time >= g.bucket AND x.time < g.bucket + %L::interval%s ORDER BY x.time, x.trade_id LIMIT 1) o '
        'CROSS JOIN LATERAL (SELECT x.price, x.trade_id FROM trades x '
        'WHERE x.exchange = g.exchange AND x.market = g.market AND x.symbol = g.symbol '
        'AND x.time >= g.bucket AND x.time < g.bucket + %L::interval%s ORDER BY x.time DESC, x.trade_id DESC LIMIT 1) c',
        b, win, width, xwin, width, xwin);
END;
$$;

-- Quote sums. TimescaleDB: unchanged. Plain PostgreSQL: the ticks of a bucket are first grouped by their (ask, bid)
-- prices (most book tickers only change a quantity), with the count and the summed quantities; the spread in bps is then
-- computed once per price pair (the OFFSET 0 subquery keeps the planner from copying the expression into sum, min and
-- max) and every sum is rebuilt exactly from the pairs: sum(x) = x * n, sum(p * q) = p * sum(q), sum(mid) =
-- sum(ask + bid) * 0.5. The last values come from one primary-key lookup per bucket instead of five
-- array_agg(... ORDER BY) sorts. Same columns, same order, same values.
CREATE OR REPLACE FUNCTION quote_stats_sql(width interval, filtered boolean) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    key text := 'extract(epoch FROM time) * 1000000 * 1e20 + update_id';
    bps text := 'decimal_div((ask_price - bid_price) * 20000, ask_price + bid_price, 12)';
    ob  text := 'time, update_id';
    win text := CASE WHEN filtered THEN 'WHERE time >= $1 AND time < $2' ELSE '' END;
    xwin text := CASE WHEN filtered THEN ' AND x.time >= $1 AND x.time < $2' ELSE '' END;
BEGIN
    IF metrics_timescale() THEN
        RETURN format(
            'SELECT exchange, market, symbol, %s AS bucket, count(*) AS quote_count, '
            'sum(ask_price - bid_price) AS sum_spread, min(ask_price - bid_price) AS min_spread, '
            'max(ask_price - bid_price) AS max_spread, %s AS last_spread, '
            'sum(%s) AS sum_spread_bps, min(%s) AS min_spread_bps, max(%s) AS max_spread_bps, %s AS last_spread_bps, '
            'sum((ask_price + bid_price) * 0.5) AS sum_mid, %s AS last_mid, '
            'sum(bid_price * bid_qty) AS sum_bid_notional, sum(ask_price * ask_qty) AS sum_ask_notional, '
            '%s AS last_bid_notional, %s AS last_ask_notional '
            'FROM book_tickers %s GROUP BY 1, 2, 3, 4',
            metric_bucket_sql(width, 'time'),
            metric_first_sql('ask_price - bid_price', key, ob, true),
            bps, bps, bps,
            metric_first_sql(bps, key, ob, true),
            metric_first_sql('(ask_price + bid_price) * 0.5', key, ob, true),
            metric_first_sql('bid_price * bid_qty', key, ob, true),
            metric_first_sql('ask_price * ask_qty', key, ob, true),
            win);
    END IF;
    RETURN format(
        'SELECT g.exchange, g.market, g.symbol, g.bucket, g.quote_count, '
        'g.sum_spread, g.min_spread, g.max_spread, l.spread AS last_spread, '
        'g.sum_spread_bps, g.min_spread_bps, g.max_spread_bps, l.spread_bps AS last_spread_bps, '
        'g.sum_mid, l.mid AS last_mid, g.sum_bid_notional, g.sum_ask_notional, '
        'l.bid_notional AS last_bid_notional, l.ask_notional AS last_ask_notional '
        'FROM (SELECT exchange, market, symbol, bucket, sum(n) AS quote_count, '
        'sum((ask_price - bid_price) * n) AS sum_spread, min(ask_price - bid_price) AS min_spread, '
        'max(ask_price - bid_price) AS max_spread, sum(bps * n) AS sum_spread_bps, min(bps) AS min_spread_bps, '
        'max(bps) AS max_spread_bps, sum((ask_price + bid_price) * n) * 0.5 AS sum_mid, '
        'sum(bid_price * bid_qty) AS sum_bid_notional, sum(ask_price * ask_qty) AS sum_ask_notional '
        'FROM (SELECT exchange, market, symbol, bucket, ask_price, bid_price, n, bid_qty, ask_qty, %s AS bps '
        'FROM (SELECT exchange, market, symbol, %s AS bucket, ask_price, bid_price, count(*) AS n, '
        'sum(bid_qty) AS bid_qty, sum(ask_qty) AS ask_qty '
        'FROM book_tickers %s GROUP BY 1, 2, 3, 4, 5, 6) p OFFSET 0) q GROUP BY 1, 2, 3, 4) g '
        'CROSS JOIN LATERAL (SELECT x.ask_price - x.bid_price AS spread, '
        'decimal_div((x.ask_price - x.bid_price) * 20000, x.ask_price + x.bid_price, 12) AS spread_bps, '
        '(x.ask_price + x.bid_price) * 0.5 AS mid, x.bid_price * x.bid_qty AS bid_notional, '
        'x.ask_price * x.ask_qty AS ask_notional FROM book_tickers x '
        'WHERE x.exchange = g.exchange AND x.market = g.market AND x.symbol = g.symbol '
        'AND x.time >= g.bucket AND x.time < g.bucket + %L::interval%s '
        'ORDER BY x.time DESC, x.update_id DESC LIMIT 1) l',
        bps, metric_bucket_sql(width, 'time'), win, width, xwin);
END;
$$;

-- Time-weighted spread: same definition as 0011, called by refresh_quote_metrics after quote_stats_1m (which names the
-- streams with quotes in the window). Each stream's quotes are read in primary-key order, so lead() needs no sort of
-- the whole window, and the quote carried in is its own piece up to the first quote. Microseconds are computed in bigint (date_part's double is exact
-- after rounding for any span under 285 years), and a quote whose time in force stays inside its bucket (nearly all)
-- becomes one piece directly; only quotes in force across a bucket boundary go through generate_series. The
-- microseconds are summed per distinct spread first (few per bucket), so sum(spread * us) multiplies numerics once per
-- spread value, not per quote.
CREATE OR REPLACE FUNCTION refresh_quote_time_weights(f timestamptz, t timestamptz) RETURNS void LANGUAGE plpgsql
SET jit = off SET work_mem = '128MB' AS $$
BEGIN
    DELETE FROM quote_time_weights_1m WHERE bucket >= f AND bucket < t;
    IF f >= t THEN
        RETURN;
    END IF;
    INSERT INTO quote_time_weights_1m
    WITH sym AS (
        -- the streams with quotes in [f, t): refresh_quote_metrics refreshed their quote_stats_1m rows just before
        SELECT DISTINCT exchange, market, symbol FROM quote_stats_1m WHERE bucket >= f AND bucket < t
    ), seg0 AS (
        -- each quote of the window in force until the next one (per stream, in primary-key order: no sort)
        SELECT s.exchange, s.market, s.symbol, q.spread, q.seg_from, q.seg_to
          FROM sym s
          CROSS JOIN LATERAL (
              SELECT x.ask_price - x.bid_price AS spread, x.time AS seg_from,
                     coalesce(lead(x.time) OVER (ORDER BY x.time, x.update_id), t) AS seg_to
                FROM book_tickers x
               WHERE x.exchange = s.exchange AND x.market = s.market AND x.symbol = s.symbol
                 AND x.time >= f AND x.time < t) q
         WHERE q.seg_to > q.seg_from
        UNION ALL
        -- the quote in force at f (at most one day back), until the window's first quote
        SELECT s.exchange, s.market, s.symbol, p.spread, f, n.time
          FROM sym s
          CROSS JOIN LATERAL (
              SELECT x.ask_price - x.bid_price AS spread FROM book_tickers x
               WHERE x.exchange = s.exchange AND x.market = s.market AND x.symbol = s.symbol
                 AND x.time < f AND x.time >= f - interval '1 day'
               ORDER BY x.time DESC, x.update_id DESC LIMIT 1) p
          CROSS JOIN LATERAL (
              SELECT x.time FROM book_tickers x
               WHERE x.exchange = s.exchange AND x.market = s.market AND x.symbol = s.symbol
                 AND x.time >= f AND x.time < t
               ORDER BY x.time, x.update_id LIMIT 1) n
         WHERE n.time > f
    ), seg AS (
        SELECT exchange, market, symbol, spread, seg_from, seg_to,
               date_bin('1 minute', seg_from, '2000-01-03 00:00:00+00') AS first_bucket
          FROM seg0
    ), piece AS (
        SELECT exchange, market, symbol, spread, first_bucket AS bucket,
               round(date_part('epoch', seg_to - seg_from) * 1000000)::bigint AS us
          FROM seg WHERE seg_to <= first_bucket + interval '1 minute'
        UNION ALL
        SELECT s.exchange, s.market, s.symbol, s.spread, b.bucket,
               round(date_part('epoch', least(s.seg_to, b.bucket + interval '1 minute') - greatest(s.seg_from, b.bucket))
                     * 1000000)::bigint AS us
          FROM seg s
          CROSS JOIN LATERAL generate_series(s.first_bucket, s.seg_to - interval '1 microsecond', interval '1 minute') AS b(bucket)
         WHERE s.seg_to > s.first_bucket + interval '1 minute'
    )
    SELECT exchange, market, symbol, bucket, sum(us), sum(spread * us)
      FROM (SELECT exchange, market, symbol, bucket, spread, sum(us) AS us FROM piece GROUP BY 1, 2, 3, 4, 5) by_spread
     GROUP BY 1, 2, 3, 4;
END;
$$;

-- Tick-to-tick returns: same buckets and sums as 0010, but each log return is computed in double precision from the
-- exact relative move x = (p - p_prev) / p_prev: ln(1 + x) by its series for |x| < 1e-3 (error below 2e-16 relative),
-- ln(p / p_prev) otherwise. ln() on numeric was the costly part; volatility is a statistic (checked to 1e-9 relative),
-- while max_move and max_move_bps stay exact numeric. An unchanged price (most trades) skips the arithmetic: its return
-- and move are 0.
CREATE OR REPLACE FUNCTION refresh_trade_returns(s_from timestamptz, s_to timestamptz, m_from timestamptz, m_to timestamptz)
RETURNS void LANGUAGE plpgsql SET jit = off SET work_mem = '128MB' AS $$
DECLARE
    short_width interval := (SELECT short_width FROM metric_settings);
    f timestamptz := least(s_from, m_from);
    t timestamptz := greatest(s_to, m_to);
    h_from timestamptz := date_bin('1 hour', m_from, '2000-01-03 00:00:00+00');
    h_to timestamptz := date_bin('1 hour', m_to - interval '1 microsecond', '2000-01-03 00:00:00+00') + interval '1 hour';
BEGIN
    DELETE FROM trade_returns_short WHERE bucket >= s_from AND bucket < s_to;
    DELETE FROM trade_returns_1m WHERE bucket >= m_from AND bucket < m_to;
    IF f >= t THEN
        RETURN;
    END IF;
    EXECUTE format($q$
        WITH cur AS (
            SELECT exchange, market, symbol, time, trade_id, price FROM trades WHERE time >= $1 AND time < $2
        ), prev AS (
            SELECT p.* FROM (SELECT DISTINCT exchange, market, symbol FROM cur) s
            CROSS JOIN LATERAL (
                SELECT x.exchange, x.market, x.symbol, x.time, x.trade_id, x.price FROM trades x
                 WHERE x.exchange = s.exchange AND x.market = s.market AND x.symbol = s.symbol
                   AND x.time < $1 AND x.time >= $1 - interval '1 day'
                 ORDER BY x.time DESC, x.trade_id DESC LIMIT 1) p
        ), seq AS (
            SELECT u.*, lag(price) OVER (PARTITION BY exchange, market, symbol ORDER BY time, trade_id) AS prev_price
              FROM (SELECT * FROM cur UNION ALL SELECT * FROM prev) u
        ), d AS (
            SELECT exchange, market, symbol, time, price, prev_price, abs(price - prev_price) AS move,
                   CASE WHEN price <> prev_price THEN (price - prev_price)::float8 / prev_price::float8 END AS x
              FROM seq WHERE prev_price IS NOT NULL AND time >= $1
        ), r AS (
            SELECT exchange, market, symbol, time, move,
                   CASE WHEN x IS NULL THEN 0::float8
                        WHEN abs(x) < 1e-3 THEN x * (1 - x * (0.5 - x * (1.0 / 3 - x * (0.25 - x * (0.2 - x / 6)))))
                        ELSE ln(price::float8 / prev_price::float8) END AS lr,
                   CASE WHEN x IS NULL THEN 0.000000000000 ELSE decimal_div(move * 10000, prev_price, 12) END AS move_bps
              FROM d
        ), short_ins AS (
            INSERT INTO trade_returns_short
            SELECT exchange, market, symbol, date_bin(%L::interval, time, '2000-01-03 00:00:00+00'), count(*),
                   sum(lr), sum(lr * lr), max(move), max(move_bps)
              FROM r WHERE time >= $3 AND time < $4 GROUP BY 1, 2, 3, 4
        )
        INSERT INTO trade_returns_1m
        SELECT exchange, market, symbol, date_bin('1 minute', time, '2000-01-03 00:00:00+00'), count(*),
               sum(lr), sum(lr * lr), max(move), max(move_bps)
          FROM r WHERE time >= $5 AND time < $6 GROUP BY 1, 2, 3, 4$q$, short_width)
    USING f, t, s_from, s_to, m_from, m_to;

    IF m_from < m_to THEN
        DELETE FROM trade_returns_5m
         WHERE bucket >= date_bin('5 minutes', m_from, '2000-01-03 00:00:00+00')
           AND bucket < date_bin('5 minutes', m_to - interval '1 microsecond', '2000-01-03 00:00:00+00') + interval '5 minutes';
        INSERT INTO trade_returns_5m
        SELECT exchange, market, symbol, date_bin('5 minutes', bucket, '2000-01-03 00:00:00+00'), sum(return_count),
               sum(sum_log_return), sum(sum_log_return_sq), max(max_move), max(max_move_bps)
          FROM trade_returns_1m
         WHERE bucket >= date_bin('5 minutes', m_from, '2000-01-03 00:00:00+00')
           AND bucket < date_bin('5 minutes', m_to - interval '1 microsecond', '2000-01-03 00:00:00+00') + interval '5 minutes'
         GROUP BY 1, 2, 3, 4;
        DELETE FROM trade_returns_1h WHERE bucket >= h_from AND bucket < h_to;
        INSERT INTO trade_returns_1h
        SELECT exchange, market, symbol, date_bin('1 hour', bucket, '2000-01-03 00:00:00+00'), sum(return_count),
               sum(sum_log_return), sum(sum_log_return_sq), max(max_move), max(max_move_bps)
          FROM trade_returns_5m WHERE bucket >= h_from AND bucket < h_to
         GROUP BY 1, 2, 3, 4;
    END IF;
END;
$$;

-- Plain PostgreSQL's delete + insert of a sums relation now runs in a function with JIT off and more sort memory: the
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
