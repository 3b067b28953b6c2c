-- Bars from the raw trade stream (never from aggTrades, so nothing is counted twice): per exchange, market, symbol and
-- bucket, at a configurable short width (10 s by default), 1 minute, and 5 minute / 1 hour rollups built from sums.
--
-- Layout (same relation names and columns on both databases; readers use the bars_* views):
--   trade_bars_short, trade_bars_1m      sums over trades          TimescaleDB: continuous aggregates on `trades`
--   trade_bars_5m, trade_bars_1h         sums over the level below TimescaleDB: hierarchical caggs (cagg on cagg)
--                                                                   plain PostgreSQL: tables filled by the refresh
--   trade_returns_{short,1m,5m,1h}       tick-to-tick log-return sums (need consecutive-trade pairs, i.e. a window
--                                        function, which caggs forbid): plain tables on both, filled by the refresh
--   bars_short, bars_1m, bars_5m, bars_1h   views: the sums joined and turned into OHLC, VWAP, volatility, ...
--   metric_invalidations                 1-minute buckets touched by inserted ticks (statement trigger), so late and
--                                        backfilled ticks get their buckets refreshed again
-- The worker calls one thing: CALL refresh_metrics(from, to) (defined in 0011), a procedure so that on TimescaleDB it
-- may call refresh_continuous_aggregate, which refuses to run inside a function or transaction block.
--
-- Exactness: every sum is numeric (sum(price * quantity) is exact). Derived ratios use decimal_div(): the exact
-- quotient rounded half away from zero to a fixed number of decimals (VWAP: 18).

CREATE FUNCTION metrics_timescale() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
$$;

-- a / b rounded half away from zero to `digits` decimals, computed exactly (numeric `/` rounds at a scale of its own
-- choosing, which can be fewer digits than asked for). Not STRICT, so the planner inlines it (NULL in, NULL out anyway):
-- a non-inlined SQL function call per row costs more than the arithmetic.
CREATE FUNCTION decimal_div(a numeric, b numeric, digits integer) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN b = 0 THEN NULL
                ELSE sign(a) * sign(b) * div(2 * abs(a) * ('1e' || digits)::numeric + abs(b), 2 * abs(b))
                     * ('1e-' || digits)::numeric
           END
$$;

-- The bucket expression of each database: time_bucket on TimescaleDB, date_bin with time_bucket's default origin
-- (Monday 2000-01-03 UTC) on plain PostgreSQL, so both put every tick in the same bucket for any width.
CREATE FUNCTION metric_bucket_sql(width interval, col text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN metrics_timescale() THEN format('time_bucket(%L::interval, %I)', width, col)
                ELSE format('date_bin(%L::interval, %I, %L::timestamptz)', width, col, '2000-01-03 00:00:00+00') END
$$;

-- first/last value ordered by a key: TimescaleDB's first()/last() (allowed in caggs), array_agg elsewhere.
-- `key_ts` is the TimescaleDB ordering expression, `order_by` the same order as a SQL ORDER BY list.
CREATE FUNCTION metric_first_sql(val text, key_ts text, order_by text, is_last boolean) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN metrics_timescale() THEN format('%s(%s, %s)', CASE WHEN is_last THEN 'last' ELSE 'first' END, val, key_ts)
                ELSE format('(array_agg(%s ORDER BY %s))[1]', val,
                            CASE WHEN is_last THEN regexp_replace(order_by, '(\w+)', '\1 DESC', 'g') ELSE order_by END) END
$$;

-- The one definition of a trade bar's sums, as SQL text: used to create the cagg (TimescaleDB) or the table, and by the
-- plain-PostgreSQL refresh (filtered = true adds WHERE time >= $1 AND time < $2). Trades are ordered by exchange
-- time, then trade id; the TimescaleDB key packs both into one numeric (epoch microseconds * 1e20 + trade id).
CREATE FUNCTION trade_bar_sql(width interval, filtered boolean) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    b   text := metric_bucket_sql(width, 'time');
    key text := 'extract(epoch FROM time) * 1000000 * 1e20 + trade_id';
BEGIN
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
        CASE WHEN filtered THEN 'WHERE time >= $1 AND time < $2' ELSE '' END);
END;
$$;

-- A coarser bar from the finer one's sums (hierarchical): never an average of averages.
CREATE FUNCTION trade_bar_rollup_sql(source text, width interval, filtered boolean) RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN format(
        'SELECT exchange, market, symbol, %s AS bucket, '
        '%s AS open, max(high) AS high, min(low) AS low, %s AS close, '
        'sum(volume) AS volume, sum(quote_volume) AS quote_volume, sum(trade_count)::bigint AS trade_count, '
        'sum(taker_buy_volume) AS taker_buy_volume, sum(taker_buy_quote_volume) AS taker_buy_quote_volume, '
        '%s AS first_trade_id, %s AS last_trade_id, '
        'sum(sum_price) AS sum_price, sum(sum_price_sq) AS sum_price_sq '
        'FROM %I %s GROUP BY 1, 2, 3, 4',
        metric_bucket_sql(width, 'bucket'),
        metric_first_sql('open', 'bucket', 'bucket', false),
        metric_first_sql('close', 'bucket', 'bucket', true),
        metric_first_sql('first_trade_id', 'bucket', 'bucket', false),
        metric_first_sql('last_trade_id', 'bucket', 'bucket', true),
        source,
        CASE WHEN filtered THEN 'WHERE bucket >= $1 AND bucket < $2' ELSE '' END);
END;
$$;

-- Creates the sums relation `name` from `select_sql`: a continuous aggregate (materialized only: bars appear when the
-- worker refreshes them) on TimescaleDB, a keyed table on plain PostgreSQL.
CREATE FUNCTION create_metric_sums(name text, select_sql text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF metrics_timescale() THEN
        EXECUTE format('CREATE MATERIALIZED VIEW %I WITH (timescaledb.continuous, timescaledb.materialized_only = true) '
                       'AS %s WITH NO DATA', name, select_sql);
    ELSE
        EXECUTE format('CREATE TABLE %I AS %s WITH NO DATA', name, select_sql);
        EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (exchange, market, symbol, bucket)', name);
    END IF;
END;
$$;

CREATE FUNCTION create_trade_returns(name text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE %I ('
        'exchange text NOT NULL, market text NOT NULL, symbol text NOT NULL, bucket timestamptz NOT NULL, '
        'return_count bigint NOT NULL, sum_log_return numeric NOT NULL, sum_log_return_sq numeric NOT NULL, '
        'max_move numeric NOT NULL, max_move_bps numeric NOT NULL, '
        'PRIMARY KEY (exchange, market, symbol, bucket))', name);
END;
$$;

-- The reader's bar: sums turned into prices and statistics. volatility = sample standard deviation of the tick-to-tick
-- log returns whose later trade lies in the bucket; price_stddev = sample standard deviation of the trade prices.
-- Both are computed from exact numeric sums as sqrt((n*sum(x^2) - sum(x)^2) / (n*(n-1))).
CREATE FUNCTION create_bars_view(name text, sums text, returns text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($v$CREATE VIEW %I AS
        SELECT b.exchange, b.market, b.symbol, b.bucket,
               b.open, b.high, b.low, b.close, b.volume, b.quote_volume,
               decimal_div(b.quote_volume, b.volume, 18) AS vwap,
               b.trade_count, b.taker_buy_volume, b.taker_buy_quote_volume, b.first_trade_id, b.last_trade_id,
               coalesce(r.return_count, 0)::bigint AS return_count,
               CASE WHEN r.return_count >= 2 THEN
                    sqrt(greatest(0, r.return_count * r.sum_log_return_sq - r.sum_log_return * r.sum_log_return)
                         / (r.return_count * (r.return_count - 1))) END AS volatility,
               CASE WHEN b.trade_count >= 2 THEN
                    sqrt(greatest(0, b.trade_count * b.sum_price_sq - b.sum_price * b.sum_price)
                         / (b.trade_count * (b.trade_count - 1))) END AS price_stddev,
               r.max_move, r.max_move_bps
          FROM %I b LEFT JOIN %I r USING (exchange, market, symbol, bucket)$v$, name, sums, returns);
END;
$$;

-- Which short width the short relations are built for; configure_short_bars() rebuilds them when it changes.
CREATE TABLE metric_settings (
    id           boolean  PRIMARY KEY DEFAULT true CHECK (id),
    short_width  interval
);
INSERT INTO metric_settings (short_width) VALUES (NULL);

-- Generates trade_bars_short / trade_returns_short / bars_short for a width (a cagg's bucket width is fixed at
-- creation). Returns true when it (re)built them; the short bars are then empty until refreshed.
CREATE FUNCTION configure_short_bars(width interval) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    current_width interval := (SELECT short_width FROM metric_settings);
BEGIN
    IF current_width = width THEN
        RETURN false;
    END IF;
    IF interval '1 minute' < width OR width <= interval '0' THEN
        RAISE EXCEPTION 'short bar width must be between 0 and 1 minute, got %', width;
    END IF;
    DROP VIEW IF EXISTS bars_short;
    IF metrics_timescale() AND to_regclass('trade_bars_short') IS NOT NULL THEN
        DROP MATERIALIZED VIEW trade_bars_short;
    ELSE
        DROP TABLE IF EXISTS trade_bars_short;
    END IF;
    DROP TABLE IF EXISTS trade_returns_short;
    PERFORM create_metric_sums('trade_bars_short', trade_bar_sql(width, false));
    PERFORM create_trade_returns('trade_returns_short');
    PERFORM create_bars_view('bars_short', 'trade_bars_short', 'trade_returns_short');
    UPDATE metric_settings SET short_width = width;
    RETURN true;
END;
$$;

-- On TimescaleDB the caggs need `trades` to be a hypertable already (sql/storage.sql runs after the migrations and
-- adds the policies; calling it here first is idempotent and does the same thing).
DO $$
BEGIN
    IF metrics_timescale() THEN
        PERFORM sync_tick_storage('trades',       'exchange, market, symbol', 'time DESC, trade_id DESC');
        PERFORM sync_tick_storage('book_tickers', 'exchange, market, symbol', 'time DESC, update_id DESC');
    END IF;
END;
$$;

SELECT create_metric_sums('trade_bars_1m', trade_bar_sql(interval '1 minute', false));
SELECT create_metric_sums('trade_bars_5m', trade_bar_rollup_sql('trade_bars_1m', interval '5 minutes', false));
SELECT create_metric_sums('trade_bars_1h', trade_bar_rollup_sql('trade_bars_5m', interval '1 hour', false));
SELECT create_trade_returns('trade_returns_1m');
SELECT create_trade_returns('trade_returns_5m');
SELECT create_trade_returns('trade_returns_1h');
SELECT create_bars_view('bars_1m', 'trade_bars_1m', 'trade_returns_1m');
SELECT create_bars_view('bars_5m', 'trade_bars_5m', 'trade_returns_5m');
SELECT create_bars_view('bars_1h', 'trade_bars_1h', 'trade_returns_1h');
SELECT configure_short_bars(interval '10 seconds');

-- 1-minute buckets touched by inserted ticks: the refresh work list. `touched` is bumped on every new touch, so the
-- worker deletes only what it has read (a tick landing during a refresh keeps its bucket on the list). The bucket after
-- each touched one is listed too: its first tick-to-tick return (and time-weighted spread) starts in the touched one.
CREATE SEQUENCE metric_invalidation_seq;
CREATE TABLE metric_invalidations (
    exchange  text        NOT NULL,
    market    text        NOT NULL,
    symbol    text        NOT NULL,
    stream    text        NOT NULL,  -- trade | bookTicker
    bucket    timestamptz NOT NULL,  -- 1-minute bucket start
    touched   bigint      NOT NULL DEFAULT nextval('metric_invalidation_seq'),
    PRIMARY KEY (exchange, market, symbol, stream, bucket)
);

CREATE FUNCTION invalidate_metric_buckets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metric_invalidations (exchange, market, symbol, stream, bucket)
    SELECT DISTINCT n.exchange, n.market, n.symbol, TG_ARGV[0], b.bucket
      FROM new_rows n,
           LATERAL (VALUES (date_bin('1 minute', n.time, '2000-01-03 00:00:00+00')),
                           (date_bin('1 minute', n.time, '2000-01-03 00:00:00+00') + interval '1 minute')) AS b(bucket)
    ON CONFLICT (exchange, market, symbol, stream, bucket) DO UPDATE SET touched = nextval('metric_invalidation_seq');
    RETURN NULL;
END;
$$;

CREATE TRIGGER trades_invalidate_metrics AFTER INSERT ON trades
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION invalidate_metric_buckets('trade');

-- Recomputes the tick-to-tick return sums of [f, t) for the short and 1-minute widths (t exclusive, both aligned by
-- the caller), then rolls 5 minutes and 1 hour up from the 1-minute sums. Each return ln(p_i / p_{i-1}) belongs to the
-- bucket of its later trade; p_{i-1} may be the previous bucket's last trade (looked up at most one day back), so every
-- return lies in exactly one bucket of every width and the rollups are exact.
CREATE FUNCTION refresh_trade_returns(s_from timestamptz, s_to timestamptz, m_from timestamptz, m_to timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
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
        ), r AS (
            SELECT exchange, market, symbol, time, ln(price / prev_price) AS lr, abs(price - prev_price) AS move,
                   decimal_div(abs(price - prev_price) * 10000, prev_price, 12) AS move_bps
              FROM seq WHERE prev_price IS NOT NULL AND time >= $1
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

-- Refreshes one sums relation over [f, t): a cagg refresh on TimescaleDB (whole buckets only, so callers pass aligned
-- windows; an empty window is skipped because the cagg refresh rejects it), delete + insert on plain PostgreSQL.
CREATE PROCEDURE refresh_metric_sums(name text, select_sql text, f timestamptz, t timestamptz) LANGUAGE plpgsql AS $$
BEGIN
    IF f >= t THEN
        RETURN;
    END IF;
    IF metrics_timescale() THEN
        CALL refresh_continuous_aggregate(name::regclass, f, t);
    ELSE
        EXECUTE format('DELETE FROM %I WHERE bucket >= $1 AND bucket < $2', name) USING f, t;
        EXECUTE format('INSERT INTO %I %s', name, select_sql) USING f, t;
    END IF;
END;
$$;

-- All trade bars touched by ticks in [f, t): short buckets wholly inside, 1-minute buckets wholly inside, and the 5m/1h
-- buckets that contain those minutes (a still-open 5m/1h bucket is refreshed as it fills).
CREATE PROCEDURE refresh_trade_bars(f timestamptz, t timestamptz) LANGUAGE plpgsql AS $$
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
    CALL refresh_metric_sums('trade_bars_short', trade_bar_sql(short_width, true), s_from, s_to);
    CALL refresh_metric_sums('trade_bars_1m', trade_bar_sql(interval '1 minute', true), m_from, m_to);
    IF m_from < m_to THEN
        CALL refresh_metric_sums('trade_bars_5m', trade_bar_rollup_sql('trade_bars_1m', interval '5 minutes', true), f5, t5);
        CALL refresh_metric_sums('trade_bars_1h', trade_bar_rollup_sql('trade_bars_5m', interval '1 hour', true), f60, t60);
    END IF;
    PERFORM refresh_trade_returns(s_from, greatest(s_from, s_to), m_from, greatest(m_from, m_to));
END;
$$;
