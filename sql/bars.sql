-- Repeatable (sql/migrate.ts applies it after the migrations on every run): how the bar, quote and top-of-book sums
-- are defined. Each sums relation's SQL is generated here once and used both to create it (a continuous aggregate over
-- the per-second slices on TimescaleDB, a table on plain PostgreSQL) and to refresh it, so the two cannot drift; the
-- functions that build those relations and the reader's bar views follow.
--
-- Exactness: every sum is numeric (sum(price * quantity) is exact); derived ratios use decimal_div(), the exact quotient
-- rounded half away from zero to a fixed number of decimals (VWAP: 18). Buckets use time_bucket's origin (Monday
-- 2000-01-03 UTC) on both databases.

-- Whether this database runs TimescaleDB: the sums relations are continuous aggregates there, tables elsewhere.
CREATE OR REPLACE FUNCTION metrics_timescale() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
$$;

-- a / b rounded half away from zero to `digits` decimals, computed exactly (numeric `/` rounds at a scale of its own
-- choosing, which can be fewer digits than asked for). Not STRICT, and its powers of ten are IMMUTABLE expressions, so
-- the planner inlines it and folds them into constants: a call or a text-to-numeric parse per row costs more than the
-- arithmetic.
CREATE OR REPLACE FUNCTION decimal_div(a numeric, b numeric, digits integer) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN b = 0 THEN NULL
                ELSE sign(a) * sign(b) * div(2 * abs(a) * ('1e' || digits::text)::numeric + abs(b), 2 * abs(b))
                     * ('1e-' || digits::text)::numeric
           END
$$;

-- The bucket expression of each database: time_bucket on TimescaleDB, date_bin with time_bucket's default origin
-- (Monday 2000-01-03 UTC) on plain PostgreSQL, so both put every tick in the same bucket for any width.
CREATE OR REPLACE FUNCTION metric_bucket_sql(width interval, col text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN metrics_timescale() THEN format('time_bucket(%L::interval, %I)', width, col)
                ELSE format('date_bin(%L::interval, %I, %L::timestamptz)', width, col, '2000-01-03 00:00:00+00') END
$$;

-- first/last value ordered by a key: TimescaleDB's first()/last() (allowed in caggs), array_agg elsewhere.
-- `key_ts` is the TimescaleDB ordering expression, `order_by` the same order as a SQL ORDER BY list.
CREATE OR REPLACE FUNCTION metric_first_sql(val text, key_ts text, order_by text, is_last boolean) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN metrics_timescale() THEN format('%s(%s, %s)', CASE WHEN is_last THEN 'last' ELSE 'first' END, val, key_ts)
                ELSE format('(array_agg(%s ORDER BY %s))[1]', val,
                            CASE WHEN is_last THEN regexp_replace(order_by, '(\w+)', '\1 DESC', 'g') ELSE order_by END) END
$$;

-- A trade bar's sums from the raw trades, as SQL text (filtered = true adds WHERE time >= $1 AND time < $2); it gives
-- the plain tables their columns. Trades are ordered by exchange time, then trade id. TimescaleDB: first()/last()
-- keyed by one numeric packing both. Plain PostgreSQL: the plain aggregates per bucket, then open/close and the
-- first/last trade id from one primary-key lookup each per bucket, instead of four array_agg(... ORDER BY) sorts.
CREATE OR REPLACE FUNCTION trade_bar_raw_sql(width interval, filtered boolean) RETURNS text LANGUAGE plpgsql STABLE AS $$
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

-- A coarser bar from the finer one's sums (hierarchical): never an average of averages.
CREATE OR REPLACE FUNCTION trade_bar_rollup_sql(source text, width interval, filtered boolean) RETURNS text LANGUAGE plpgsql STABLE AS $$
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

-- A bar's sums from the slices, as a cagg definition (TimescaleDB: first/last ordered by a numeric key packing the
-- tick's time in microseconds and its id, as in trade_bar_sql).
CREATE OR REPLACE FUNCTION trade_bar_cagg_sql(width interval) RETURNS text LANGUAGE sql STABLE AS $$
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

-- Trade bar sums of width `width` from the slices of [$1, $2): the same columns, in the same order, as trade_bar_sql.
CREATE OR REPLACE FUNCTION trade_bar_slices_sql(width interval) RETURNS text LANGUAGE sql STABLE AS $$
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

-- The definition a trade sums relation is created from: the slice cagg on TimescaleDB, the raw-tick SELECT (which gives
-- the plain table its columns) elsewhere; configure_short_bars() creates the short bars through it too.
CREATE OR REPLACE FUNCTION trade_bar_sql(width interval, filtered boolean) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN metrics_timescale() AND NOT filtered THEN trade_bar_cagg_sql(width)
                ELSE trade_bar_raw_sql(width, filtered) END
$$;

-- Quote sums from the raw book tickers, as SQL text. TimescaleDB: first()/last() keyed by time and update id. Plain
-- PostgreSQL: the ticks of a bucket are first grouped by their (ask, bid)
-- prices (most book tickers only change a quantity), with the count and the summed quantities; the spread in bps is then
-- computed once per price pair (the OFFSET 0 subquery keeps the planner from copying the expression into sum, min and
-- max) and every sum is rebuilt exactly from the pairs: sum(x) = x * n, sum(p * q) = p * sum(q), sum(mid) =
-- sum(ask + bid) * 0.5. The last values come from one primary-key lookup per bucket instead of five
-- array_agg(... ORDER BY) sorts.
CREATE OR REPLACE FUNCTION quote_stats_raw_sql(width interval, filtered boolean) RETURNS text LANGUAGE plpgsql STABLE AS $$
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
        'FROM (SELECT exchange, market, symbol, bucket, sum(n)::bigint AS quote_count, '
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

-- The 1-minute quote sums from the slices, as a cagg definition (last values keyed as in trade_bar_cagg_sql).
CREATE OR REPLACE FUNCTION quote_stats_cagg_sql() RETURNS text LANGUAGE sql STABLE AS $$
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

-- Quote sums of the 1-minute buckets in [$1, $2) from the slices: the same columns, in the same order, as quote_stats_sql.
CREATE OR REPLACE FUNCTION quote_stats_slices_sql() RETURNS text LANGUAGE sql STABLE AS $$
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

-- The definition quote_stats_1m is created from, as trade_bar_sql.
CREATE OR REPLACE FUNCTION quote_stats_sql(width interval, filtered boolean) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN metrics_timescale() AND NOT filtered THEN quote_stats_cagg_sql()
                ELSE quote_stats_raw_sql(width, filtered) END
$$;

-- The sums of one width, as SQL text (filtered = true adds WHERE time >= $1 AND time < $2). Books are ordered by time,
-- then sequence; the TimescaleDB key packs both into one numeric.
CREATE OR REPLACE FUNCTION top_of_book_stats_sql(width interval, filtered boolean) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    key text := 'extract(epoch FROM time) * 1000000 * 1e20 + sequence';
    ob  text := 'time, sequence';
BEGIN
    RETURN format(
        'SELECT exchange, market, symbol, %s AS bucket, count(*) AS book_count, '
        'sum(spread) AS sum_spread, sum(spread_bps) AS sum_spread_bps, min(spread_bps) AS min_spread_bps, '
        'max(spread_bps) AS max_spread_bps, %s AS last_spread_bps, sum(mid) AS sum_mid, %s AS last_mid, '
        'sum(bid_depth_10bps) AS sum_bid_depth_10bps, sum(ask_depth_10bps) AS sum_ask_depth_10bps, '
        'sum(bid_depth_50bps) AS sum_bid_depth_50bps, sum(ask_depth_50bps) AS sum_ask_depth_50bps, '
        'sum(CASE WHEN depth_complete_10bps THEN 1 ELSE 0 END) AS complete_10bps_count, '
        'sum(CASE WHEN depth_complete_50bps THEN 1 ELSE 0 END) AS complete_50bps_count, '
        'sum(imbalance) AS sum_imbalance, %s AS last_imbalance '
        'FROM top_of_book %s GROUP BY 1, 2, 3, 4',
        metric_bucket_sql(width, 'time'),
        metric_first_sql('spread_bps', key, ob, true),
        metric_first_sql('mid', key, ob, true),
        metric_first_sql('imbalance', key, ob, true),
        CASE WHEN filtered THEN 'WHERE time >= $1 AND time < $2' ELSE '' END);
END;
$$;

-- Creates the sums relation `name` from `select_sql`: a continuous aggregate (materialized only: bars appear when the
-- worker refreshes them) on TimescaleDB, a keyed table on plain PostgreSQL.
CREATE OR REPLACE FUNCTION create_metric_sums(name text, select_sql text) RETURNS void LANGUAGE plpgsql AS $$
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

-- A table of tick-to-tick return sums per bucket: consecutive-trade pairs need a window function, which caggs forbid,
-- so these are plain tables on both databases, filled by the refresh.
CREATE OR REPLACE FUNCTION create_trade_returns(name text) RETURNS void LANGUAGE plpgsql AS $$
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
CREATE OR REPLACE FUNCTION create_bars_view(name text, sums text, returns text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($v$CREATE OR REPLACE VIEW %I AS
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

-- Generates trade_bars_short / trade_returns_short / bars_short for a width (a cagg's bucket width is fixed at
-- creation). Returns true when it (re)built them; the short bars are then empty until refreshed.
-- Makes role r the owner of relation rel: a continuous aggregate, a view or a table.
CREATE OR REPLACE FUNCTION hand_over(rel text, r text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF metrics_timescale() THEN  -- nested: the catalog view exists only there
        IF EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates WHERE view_name = rel) THEN
            EXECUTE format('ALTER MATERIALIZED VIEW %I OWNER TO %I', rel, r);
            RETURN;
        END IF;
    END IF;
    IF (SELECT relkind FROM pg_class WHERE oid = to_regclass(rel)) = 'v' THEN
        EXECUTE format('ALTER VIEW %I OWNER TO %I', rel, r);
    ELSE
        EXECUTE format('ALTER TABLE %I OWNER TO %I', rel, r);
    END IF;
END;
$$;

-- Runs with its owner's rights (the owner of the schema, who runs migrate) so that the metrics role, which calls it,
-- needs no CREATE on the schema: a role that may create objects where the owner's code resolves names could plant
-- one for it. The rebuilt relations go back to the role that owned them, with the same readers.
CREATE OR REPLACE FUNCTION configure_short_bars(width interval) RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    current_width interval := (SELECT short_width FROM metric_settings);
    owned_by constant text := (SELECT rolname FROM pg_roles WHERE oid = (SELECT relowner FROM pg_class WHERE oid = to_regclass('trade_bars_short')));
    readers constant text[] := ARRAY(
        SELECT DISTINCT r.rolname FROM pg_class c, aclexplode(c.relacl) a, pg_roles r
        WHERE c.oid = to_regclass('bars_short') AND a.privilege_type = 'SELECT' AND r.oid = a.grantee AND a.grantee <> c.relowner);
    rel text;
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
    IF owned_by IS NOT NULL AND owned_by <> current_user THEN
        FOREACH rel IN ARRAY ARRAY['trade_bars_short', 'trade_returns_short', 'bars_short'] LOOP
            PERFORM hand_over(rel, owned_by);
        END LOOP;
    END IF;
    FOREACH rel IN ARRAY readers LOOP
        EXECUTE format('GRANT SELECT ON bars_short TO %I', rel);
    END LOOP;
    UPDATE metric_settings SET short_width = width;
    RETURN true;
END;
$$;

-- Its names resolve where migrate put them, never in a schema (or temporary schema) of the caller's; only the roles
-- granted it (sql/roles.sql) may call it.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION configure_short_bars(interval) SET search_path = %s, pg_temp', current_setting('search_path'));
    REVOKE ALL ON FUNCTION configure_short_bars(interval) FROM PUBLIC;
END;
$$;
