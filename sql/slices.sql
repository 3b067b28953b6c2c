-- Repeatable: the per-second tick slices. The writer summarizes each batch it COPYs per stream and second, in the
-- same transaction as the ticks (consumer/), and merges each summary into the second's row with the merge functions
-- here; the invalidation trigger lists the touched minutes; the refresh rebuilds from the raw ticks the minutes whose
-- summaries cannot be trusted (ticks inserted without them, interleaved batches). What and why: metrics/README.md,
-- "Tick slices".

-- Whether the writer stores its per-second summaries with its ticks: on both databases, which refresh from them.
CREATE OR REPLACE FUNCTION tick_slices_wanted() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT true
$$;

-- How the writer gets ticks into a table whose rows feed continuous aggregates.
--
-- TimescaleDB (2.28.3, measured: sql/timescale-copy.int.test.ts) COPYs row by row into a hypertable that has a
-- statement trigger with a transition table (the metric invalidation triggers, sql/aggregates.sql), and that row by
-- row path records no continuous-aggregate invalidation: ticks COPYed into a minute that was already materialized were
-- never aggregated again, whatever refresh came later. An INSERT records them. So on TimescaleDB the writer COPYs
-- into a temporary twin of the table and INSERTs from it, in the same transaction (consumer/copy.ts); the cost is the
-- same (both insert row by row). On plain PostgreSQL it COPYs straight into the table.
CREATE OR REPLACE FUNCTION ticks_copied_via_stage() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT metrics_timescale()
$$;

-- The statement trigger of the tick and book tables (sql/aggregates.sql): lists every touched 1-minute bucket, and the
-- next one, whose first return and time in force start in it, for the worker to refresh. `raw` when the rows went in
-- without the writer's summaries (tickwatch.ticks_summarized is not on in the transaction): their slices are rebuilt.
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

-- The tick-to-tick log return in double precision, given x = (price - prev) / prev in double precision (NULL: unchanged price):
-- the series of ln(1 + x) for |x| < 1e-3, ln of the double ratio above. Callers compute x once per row in a
-- materialized step: inlined, an expression argument would be evaluated again at every use of x.
CREATE OR REPLACE FUNCTION tick_log_return(x float8, price numeric, prev numeric) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN x IS NULL THEN 0::float8
                WHEN abs(x) < 1e-3 THEN x * (1 - x * (0.5 - x * (1.0 / 3 - x * (0.25 - x * (0.2 - x / 6)))))
                ELSE ln(price::float8 / prev::float8) END
$$;

-- The move from prev to price in basis points of prev, exact to 12 decimals.
CREATE OR REPLACE FUNCTION tick_move_bps(price numeric, prev numeric) RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN price = prev THEN 0.000000000000 ELSE decimal_div(abs(price - prev) * 10000, prev, 12) END
$$;

-- Rebuilds the slices of [f, t) from the raw trades, for the streams given as (exchange, market, symbol) arrays (or
-- every stream when they are NULL). The lock waits for the writers' open transactions and holds new ones back until the refresh commits, so the slices deleted
-- and the ticks read are the same batches (rare: only unsummarized or interleaved minutes are rebuilt).
CREATE OR REPLACE FUNCTION rebuild_trade_slices(f timestamptz, t timestamptz, exs text[], mks text[], sys text[]) RETURNS void LANGUAGE sql
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

-- The same for book tickers: sums, min/max, last values and each quote's time in force inside its second.
CREATE OR REPLACE FUNCTION rebuild_quote_slices(f timestamptz, t timestamptz, exs text[], mks text[], sys text[]) RETURNS void LANGUAGE sql
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

-- The row of a second after a batch's summary `n` of it arrives, given the stored row `e` (the writer's ON CONFLICT).
CREATE OR REPLACE FUNCTION merge_trade_slices(e trade_slices, n trade_slices) RETURNS trade_slices LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    m trade_slices := e;
    a trade_slices;  -- the earlier summary, when they do not interleave
    b trade_slices;  -- the later one
    x float8;
    lr float8;
BEGIN
    IF (n.first_time, n.first_id) > (e.last_time, e.last_id) THEN
        a := e; b := n;
    ELSIF (e.first_time, e.first_id) > (n.last_time, n.last_id) THEN
        a := n; b := e;
    END IF;
    IF (n.first_time, n.first_id) < (e.first_time, e.first_id) THEN
        m.first_time := n.first_time; m.first_id := n.first_id; m.first_price := n.first_price;
    END IF;
    IF (n.last_time, n.last_id) > (e.last_time, e.last_id) THEN
        m.last_time := n.last_time; m.last_id := n.last_id; m.last_price := n.last_price;
    END IF;
    m.trade_count := e.trade_count + n.trade_count;
    m.high := greatest(e.high, n.high);
    m.low := least(e.low, n.low);
    m.volume := e.volume + n.volume;
    m.quote_volume := e.quote_volume + n.quote_volume;
    m.taker_buy_volume := e.taker_buy_volume + n.taker_buy_volume;
    m.taker_buy_quote_volume := e.taker_buy_quote_volume + n.taker_buy_quote_volume;
    m.sum_price := e.sum_price + n.sum_price;
    m.sum_price_sq := e.sum_price_sq + n.sum_price_sq;
    IF b.slice IS NULL THEN
        m.interleaved := true;
        RETURN m;
    END IF;
    -- the return from the earlier summary's last trade into the later one's first, as rebuild_trade_slices computes it
    x := CASE WHEN b.first_price <> a.last_price THEN (b.first_price - a.last_price)::float8 / a.last_price::float8 END;
    lr := tick_log_return(x, b.first_price, a.last_price);
    m.sum_log_return := e.sum_log_return + n.sum_log_return + lr;
    m.sum_log_return_sq := e.sum_log_return_sq + n.sum_log_return_sq + lr * lr;
    m.max_move := greatest(e.max_move, n.max_move, abs(b.first_price - a.last_price));
    m.max_move_bps := greatest(e.max_move_bps, n.max_move_bps, tick_move_bps(b.first_price, a.last_price));
    m.interleaved := e.interleaved OR n.interleaved;
    RETURN m;
END;
$$;

-- The same for quotes; the time in force between the earlier summary's last quote and the later one's first is added.
CREATE OR REPLACE FUNCTION merge_quote_slices(e quote_slices, n quote_slices) RETURNS quote_slices LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    m quote_slices := e;
    a quote_slices;  -- the earlier summary, when they do not interleave
    b quote_slices;  -- the later one
    us bigint;
BEGIN
    IF (n.first_time, n.first_id) > (e.last_time, e.last_id) THEN
        a := e; b := n;
    ELSIF (e.first_time, e.first_id) > (n.last_time, n.last_id) THEN
        a := n; b := e;
    END IF;
    IF (n.first_time, n.first_id) < (e.first_time, e.first_id) THEN
        m.first_time := n.first_time; m.first_id := n.first_id;
    END IF;
    IF (n.last_time, n.last_id) > (e.last_time, e.last_id) THEN
        m.last_time := n.last_time; m.last_id := n.last_id; m.last_spread := n.last_spread;
        m.last_spread_bps := n.last_spread_bps; m.last_mid := n.last_mid;
        m.last_bid_notional := n.last_bid_notional; m.last_ask_notional := n.last_ask_notional;
    END IF;
    m.quote_count := e.quote_count + n.quote_count;
    m.sum_spread := e.sum_spread + n.sum_spread;
    m.min_spread := least(e.min_spread, n.min_spread);
    m.max_spread := greatest(e.max_spread, n.max_spread);
    m.sum_spread_bps := e.sum_spread_bps + n.sum_spread_bps;
    m.min_spread_bps := least(e.min_spread_bps, n.min_spread_bps);
    m.max_spread_bps := greatest(e.max_spread_bps, n.max_spread_bps);
    m.sum_mid := e.sum_mid + n.sum_mid;
    m.sum_bid_notional := e.sum_bid_notional + n.sum_bid_notional;
    m.sum_ask_notional := e.sum_ask_notional + n.sum_ask_notional;
    IF b.slice IS NULL THEN
        m.interleaved := true;
        RETURN m;
    END IF;
    -- the earlier summary's last quote, in force until the later one's first (as rebuild_quote_slices computes it)
    us := round(date_part('epoch', b.first_time - a.last_time) * 1000000)::bigint;
    m.tw_us := e.tw_us + n.tw_us + us;
    m.tw_spread_us := e.tw_spread_us + n.tw_spread_us + a.last_spread * us;
    m.interleaved := e.interleaved OR n.interleaved;
    RETURN m;
END;
$$;

-- Before merging the slices of [f, t): rebuild from the raw ticks every stream-minute in it that is not covered by
-- summaries alone (a raw invalidation, a minute before slices_since) or holds a second flagged `interleaved` (found by
-- an index scan). The rebuild is cut to [f, t), so a short window of an open minute rebuilds only its own seconds.
CREATE OR REPLACE FUNCTION prepare_slices(stream text, f timestamptz, t timestamptz) RETURNS void LANGUAGE plpgsql
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
        SELECT s.exchange, s.market, s.symbol, date_bin('1 minute', s.slice, origin)
          FROM trade_slices s
         WHERE prepare_slices.stream = 'trade' AND s.interleaved AND s.slice >= f AND s.slice < t
        UNION
        SELECT s.exchange, s.market, s.symbol, date_bin('1 minute', s.slice, origin)
          FROM quote_slices s
         WHERE prepare_slices.stream = 'bookTicker' AND s.interleaved AND s.slice >= f AND s.slice < t
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
