-- Order books of every venue (Binance, Coinbase, Gemini) as ingestion publishes them: the top N levels per side on each
-- change, and their top-of-book analytics (metrics/top-of-book.ts), plus per-minute top-of-book metrics so dashboards
-- can put venues side by side. Same layout as the quote metrics (0011): top_of_book_stats_1m holds sums (cagg on
-- TimescaleDB, table on plain PostgreSQL), top_of_book_metrics_1m is the reader's view, refresh_top_of_book(f, t)
-- refreshes whole minutes inside [f, t).
--
-- `symbol` is the canonical BASE-QUOTE form shared by venues (BTC-USDT, BTC-USD); `venue_symbol` the venue's own.
-- `time` is the exchange time of the book's last update where the venue sends one, else the receive time. Keys hold
-- the book's identity (sequence) plus the time column, so a re-delivered book is a duplicate (ON CONFLICT DO NOTHING).

CREATE TABLE books (
    exchange        text        NOT NULL,
    market          text        NOT NULL,
    symbol          text        NOT NULL,
    venue_symbol    text        NOT NULL,
    time            timestamptz NOT NULL,
    sequence        bigint      NOT NULL CHECK (sequence >= 0),
    depth           integer     NOT NULL CHECK (depth > 0),  -- levels asked per side; a thin book shows fewer
    bid_prices      numeric[]   NOT NULL,                    -- best first
    bid_qtys        numeric[]   NOT NULL,
    ask_prices      numeric[]   NOT NULL,
    ask_qtys        numeric[]   NOT NULL,
    exchange_time   timestamptz,
    receive_time    timestamptz NOT NULL,
    CHECK (cardinality(bid_prices) = cardinality(bid_qtys) AND cardinality(ask_prices) = cardinality(ask_qtys)),
    CHECK (cardinality(bid_prices) <= depth AND cardinality(ask_prices) <= depth),
    PRIMARY KEY (exchange, market, symbol, time, sequence)
);

CREATE TABLE top_of_book (
    exchange              text             NOT NULL,
    market                text             NOT NULL,
    symbol                text             NOT NULL,
    venue_symbol          text             NOT NULL,
    time                  timestamptz      NOT NULL,
    sequence              bigint           NOT NULL CHECK (sequence >= 0),
    bid_price             numeric          NOT NULL CHECK (bid_price > 0),
    bid_qty               numeric          NOT NULL CHECK (bid_qty >= 0),
    ask_price             numeric          NOT NULL CHECK (ask_price > 0),
    ask_qty               numeric          NOT NULL CHECK (ask_qty >= 0),
    mid                   numeric          NOT NULL,  -- (bid + ask) / 2, exact
    spread                numeric          NOT NULL,  -- ask - bid, exact
    spread_pct            double precision NOT NULL,
    spread_bps            double precision NOT NULL,
    bid_depth_10bps       double precision NOT NULL,  -- quote notional of the bid levels within 10 bps of the mid
    ask_depth_10bps       double precision NOT NULL,
    bid_depth_50bps       double precision NOT NULL,
    ask_depth_50bps       double precision NOT NULL,
    depth_complete_10bps  boolean          NOT NULL,  -- the shown levels reach past the band on both sides
    depth_complete_50bps  boolean          NOT NULL,
    imbalance             double precision NOT NULL,  -- best-level bid notional / (bid + ask), as quote_metrics_1m
    depth_imbalance_50bps double precision,           -- the same within 50 bps
    receive_time          timestamptz      NOT NULL,
    PRIMARY KEY (exchange, market, symbol, time, sequence)
);

-- Hypertables with compression segmented by venue and market, like the tick tables (sql/storage.sql keeps the
-- compression and retention policies in line with the configuration).
DO $$
BEGIN
    IF metrics_timescale() THEN
        PERFORM sync_tick_storage('books',       'exchange, market, symbol', 'time DESC, sequence DESC');
        PERFORM sync_tick_storage('top_of_book', 'exchange, market, symbol', 'time DESC, sequence DESC');
    END IF;
END;
$$;

-- The sums of one width, as SQL text (filtered = true adds WHERE time >= $1 AND time < $2). Books are ordered by time,
-- then sequence; the TimescaleDB key packs both into one numeric.
CREATE FUNCTION top_of_book_stats_sql(width interval, filtered boolean) RETURNS text LANGUAGE plpgsql STABLE AS $$
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

SELECT create_metric_sums('top_of_book_stats_1m', top_of_book_stats_sql(interval '1 minute', false));

-- The reader's per-minute top of book, one row per venue, market, symbol and minute: means are sums over the count.
CREATE VIEW top_of_book_metrics_1m AS
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

-- Whole 1-minute buckets inside [f, t), as refresh_quote_metrics. A procedure: the cagg refresh may not run in a
-- function or transaction block.
CREATE PROCEDURE refresh_top_of_book(f timestamptz, t timestamptz) LANGUAGE plpgsql AS $$
DECLARE
    origin constant timestamptz := '2000-01-03 00:00:00+00';
    m_from timestamptz := date_bin('1 minute', f - interval '1 microsecond', origin) + interval '1 minute';
    m_to   timestamptz := date_bin('1 minute', t, origin);
BEGIN
    CALL refresh_metric_sums('top_of_book_stats_1m', top_of_book_stats_sql(interval '1 minute', true), m_from, m_to);
END;
$$;
