-- Quote metrics from book tickers, per 1-minute bucket: spread (price and basis points of the mid: mean, min, max,
-- last, time-weighted mean), mid, top-of-book bid/ask notional and their imbalance (the liquidity measure of the
-- order-book pipelines this replaces). Same layout as the bars (0010): quote_stats_1m holds sums (cagg on
-- TimescaleDB, table on plain PostgreSQL), quote_time_weights_1m the time-weighted part (needs each quote's successor,
-- a window function, so a plain table on both), quote_metrics_1m the reader's view. Also defines refresh_metrics(),
-- the one procedure the metrics worker calls.
--
-- Definitions (exact numeric; a tick is ordered by time, then update id):
--   spread = ask - bid; mid = (ask + bid) / 2; spread_bps = spread / mid * 10000 rounded to 12 decimals per tick;
--   notional = price * quantity at the top of the book; imbalance = bid notional / (bid + ask notional);
--   means are exact sums divided by the count, rounded to 18 decimals (bps means to 12);
--   time-weighted spread = sum(spread_i * seconds in force within the bucket) / seconds covered, where a quote is in
--   force from its time to the next quote's (at most one day back carried into the bucket, up to the bucket end).

CREATE FUNCTION quote_stats_sql(width interval, filtered boolean) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    key text := 'extract(epoch FROM time) * 1000000 * 1e20 + update_id';
    bps text := 'decimal_div((ask_price - bid_price) * 20000, ask_price + bid_price, 12)';
    ob  text := 'time, update_id';
BEGIN
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
        CASE WHEN filtered THEN 'WHERE time >= $1 AND time < $2' ELSE '' END);
END;
$$;

SELECT create_metric_sums('quote_stats_1m', quote_stats_sql(interval '1 minute', false));

CREATE TABLE quote_time_weights_1m (
    exchange       text        NOT NULL,
    market         text        NOT NULL,
    symbol         text        NOT NULL,
    bucket         timestamptz NOT NULL,
    covered_us     numeric     NOT NULL,  -- microseconds of the bucket with a quote in force
    sum_spread_us  numeric     NOT NULL,  -- sum of spread * microseconds in force
    PRIMARY KEY (exchange, market, symbol, bucket)
);

CREATE VIEW quote_metrics_1m AS
SELECT s.exchange, s.market, s.symbol, s.bucket, s.quote_count,
       decimal_div(s.sum_spread, s.quote_count, 18) AS mean_spread,
       s.min_spread, s.max_spread, s.last_spread,
       decimal_div(w.sum_spread_us, w.covered_us, 18) AS time_weighted_spread,
       decimal_div(s.sum_spread_bps, s.quote_count, 12) AS mean_spread_bps,
       s.min_spread_bps, s.max_spread_bps, s.last_spread_bps,
       decimal_div(s.sum_mid, s.quote_count, 18) AS mean_mid, s.last_mid,
       decimal_div(s.sum_bid_notional, s.quote_count, 18) AS mean_bid_notional,
       decimal_div(s.sum_ask_notional, s.quote_count, 18) AS mean_ask_notional,
       decimal_div(s.sum_bid_notional, s.sum_bid_notional + s.sum_ask_notional, 18) AS imbalance,
       s.last_bid_notional, s.last_ask_notional,
       decimal_div(s.last_bid_notional, s.last_bid_notional + s.last_ask_notional, 18) AS last_imbalance
  FROM quote_stats_1m s
  LEFT JOIN quote_time_weights_1m w USING (exchange, market, symbol, bucket);

CREATE TRIGGER book_tickers_invalidate_metrics AFTER INSERT ON book_tickers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION invalidate_metric_buckets('bookTicker');

-- Time-weighted spread of the 1-minute buckets in [f, t) (aligned): each quote is in force from its time until the next
-- quote (or t); the quote in force at f is carried in from before it.
CREATE FUNCTION refresh_quote_time_weights(f timestamptz, t timestamptz) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM quote_time_weights_1m WHERE bucket >= f AND bucket < t;
    IF f >= t THEN
        RETURN;
    END IF;
    INSERT INTO quote_time_weights_1m
    WITH cur AS (
        SELECT exchange, market, symbol, time, update_id, ask_price - bid_price AS spread
          FROM book_tickers WHERE time >= f AND time < t
    ), prev AS (
        SELECT p.* FROM (SELECT DISTINCT exchange, market, symbol FROM cur) s
        CROSS JOIN LATERAL (
            SELECT x.exchange, x.market, x.symbol, x.time, x.update_id, x.ask_price - x.bid_price AS spread
              FROM book_tickers x
             WHERE x.exchange = s.exchange AND x.market = s.market AND x.symbol = s.symbol
               AND x.time < f AND x.time >= f - interval '1 day'
             ORDER BY x.time DESC, x.update_id DESC LIMIT 1) p
    ), seg AS (
        SELECT exchange, market, symbol, spread, greatest(time, f) AS seg_from,
               coalesce(lead(time) OVER (PARTITION BY exchange, market, symbol ORDER BY time, update_id), t) AS seg_to
          FROM (SELECT * FROM cur UNION ALL SELECT * FROM prev) u
    ), piece AS (
        SELECT s.exchange, s.market, s.symbol, s.spread, b.bucket,
               extract(epoch FROM least(s.seg_to, b.bucket + interval '1 minute') - greatest(s.seg_from, b.bucket)) * 1000000 AS us
          FROM seg s
          CROSS JOIN LATERAL generate_series(date_bin('1 minute', s.seg_from, '2000-01-03 00:00:00+00'),
                                             s.seg_to - interval '1 microsecond', interval '1 minute') AS b(bucket)
         WHERE s.seg_to > s.seg_from
    )
    SELECT exchange, market, symbol, bucket, sum(us), sum(spread * us)
      FROM piece GROUP BY 1, 2, 3, 4;
END;
$$;

CREATE PROCEDURE refresh_quote_metrics(f timestamptz, t timestamptz) LANGUAGE plpgsql AS $$
DECLARE
    origin constant timestamptz := '2000-01-03 00:00:00+00';
    m_from timestamptz := date_bin('1 minute', f - interval '1 microsecond', origin) + interval '1 minute';
    m_to   timestamptz := date_bin('1 minute', t, origin);
BEGIN
    CALL refresh_metric_sums('quote_stats_1m', quote_stats_sql(interval '1 minute', true), m_from, m_to);
    PERFORM refresh_quote_time_weights(m_from, greatest(m_from, m_to));
END;
$$;

-- The one entry point of the metrics worker: every bar and quote metric whose bucket lies wholly inside [f, t).
-- A procedure (CALL, outside any transaction block) because TimescaleDB's cagg refresh may not run in a function.
CREATE PROCEDURE refresh_metrics(f timestamptz, t timestamptz) LANGUAGE plpgsql AS $$
BEGIN
    CALL refresh_trade_bars(f, t);
    CALL refresh_quote_metrics(f, t);
END;
$$;
