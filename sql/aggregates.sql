-- Repeatable (applied after sql/storage.sql on every migrate): the relations derived from the tick tables, created when
-- missing, and the reader's views, triggers and aggregate policies brought in line with their definitions here.
--
-- Layout (same relation names and columns on both databases; readers use the views):
--   trade_bars_short, trade_bars_1m      sums over trade_slices   TimescaleDB: continuous aggregates (materialized only)
--   trade_bars_5m, trade_bars_1h         sums over the level below TimescaleDB: hierarchical caggs (cagg on cagg)
--   quote_stats_1m, top_of_book_stats_1m sums over quote_slices / top_of_book     plain PostgreSQL: tables the refresh fills
--   trade_returns_{short,1m,5m,1h}       tick-to-tick log-return sums (plain tables on both, filled by the refresh)
--   bars_*, quote_metrics_1m, top_of_book_metrics_1m, bars_by_width   the reader's views
-- A sums relation's definition cannot change in place (a cagg's query cannot be altered): a change to one is a
-- migration that drops it, and this file creates it anew.

DO $$
BEGIN
    IF to_regclass('trade_bars_1m') IS NULL THEN
        PERFORM create_metric_sums('trade_bars_1m', trade_bar_sql(interval '1 minute', false));
    END IF;
    IF to_regclass('trade_bars_5m') IS NULL THEN
        PERFORM create_metric_sums('trade_bars_5m', trade_bar_rollup_sql('trade_bars_1m', interval '5 minutes', false));
    END IF;
    IF to_regclass('trade_bars_1h') IS NULL THEN
        PERFORM create_metric_sums('trade_bars_1h', trade_bar_rollup_sql('trade_bars_5m', interval '1 hour', false));
    END IF;
    IF to_regclass('quote_stats_1m') IS NULL THEN
        PERFORM create_metric_sums('quote_stats_1m', quote_stats_sql(interval '1 minute', false));
    END IF;
    IF to_regclass('top_of_book_stats_1m') IS NULL THEN
        PERFORM create_metric_sums('top_of_book_stats_1m', top_of_book_stats_sql(interval '1 minute', false));
    END IF;
    IF to_regclass('trade_returns_1m') IS NULL THEN
        PERFORM create_trade_returns('trade_returns_1m');
    END IF;
    IF to_regclass('trade_returns_5m') IS NULL THEN
        PERFORM create_trade_returns('trade_returns_5m');
    END IF;
    IF to_regclass('trade_returns_1h') IS NULL THEN
        PERFORM create_trade_returns('trade_returns_1h');
    END IF;
    -- The short bars: 10 s until the metrics worker configures its width (BAR_SHORT_SECONDS).
    IF (SELECT short_width FROM metric_settings) IS NULL THEN
        PERFORM configure_short_bars(interval '10 seconds');
    END IF;
END;
$$;

SELECT create_bars_view('bars_1m', 'trade_bars_1m', 'trade_returns_1m');
SELECT create_bars_view('bars_5m', 'trade_bars_5m', 'trade_returns_5m');
SELECT create_bars_view('bars_1h', 'trade_bars_1h', 'trade_returns_1h');

-- The reader's quote metrics per 1-minute bucket: means are exact sums over the count (spread and mid to 18 decimals,
-- bps to 12), the time-weighted spread over the microseconds covered, imbalance = bid / (bid + ask) notional.
CREATE OR REPLACE VIEW quote_metrics_1m AS
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

-- The reader's per-minute top of book, one row per venue, market, symbol and minute: means are sums over the count.
CREATE OR REPLACE VIEW top_of_book_metrics_1m AS
SELECT exchange, market, symbol, bucket, book_count,
       decimal_div(sum_spread, book_count, 18) AS mean_spread,
       sum_spread_bps / book_count AS mean_spread_bps, min_spread_bps, max_spread_bps, last_spread_bps,
       decimal_div(sum_mid, book_count, 18) AS mean_mid, last_mid,
       sum_bid_depth_10bps / book_count AS mean_bid_depth_10bps,
       sum_ask_depth_10bps / book_count AS mean_ask_depth_10bps,
       sum_bid_depth_50bps / book_count AS mean_bid_depth_50bps,
       sum_ask_depth_50bps / book_count AS mean_ask_depth_50bps,
       complete_10bps_count::double precision / book_count AS complete_10bps_share,
       complete_50bps_count::double precision / book_count AS complete_50bps_share,
       sum_imbalance / book_count AS mean_imbalance, last_imbalance
  FROM top_of_book_stats_1m;

-- Every bar width in one reader view, the width a column: a dashboard picks the width as a quoted value
-- (`WHERE width = '$bar'`) instead of building a relation name from a variable (`FROM bars_${bar}`), which a viewer
-- could turn into SQL. The planner keeps only the branch whose constant matches, so a panel reads one relation.
CREATE OR REPLACE VIEW bars_by_width AS
SELECT '1m'::text AS width, * FROM bars_1m
UNION ALL
SELECT '5m'::text, * FROM bars_5m
UNION ALL
SELECT '1h'::text, * FROM bars_1h;

-- Every inserted tick, book ticker and top of book lists its minutes for the worker (invalidate_metric_buckets).
CREATE OR REPLACE TRIGGER trades_invalidate_metrics AFTER INSERT ON trades
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION invalidate_metric_buckets('trade');
CREATE OR REPLACE TRIGGER book_tickers_invalidate_metrics AFTER INSERT ON book_tickers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION invalidate_metric_buckets('bookTicker');
CREATE OR REPLACE TRIGGER top_of_book_invalidate_metrics AFTER INSERT ON top_of_book
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION invalidate_metric_buckets('book');

-- The short bars (10 s by default) are a live view the worker refreshes; their width can change at run time, so they
-- have no policy. The 5-minute and 1-hour bars are rolled up from the 1-minute ones.
SELECT sync_metric_storage('trade_bars_1m',        interval '1 minute',  interval '6 hours');
SELECT sync_metric_storage('quote_stats_1m',       interval '1 minute',  interval '6 hours');
SELECT sync_metric_storage('top_of_book_stats_1m', interval '1 minute',  interval '6 hours');
SELECT sync_metric_storage('trade_bars_5m',        interval '5 minutes', interval '6 hours');
SELECT sync_metric_storage('trade_bars_1h',        interval '1 hour',    interval '2 days');
