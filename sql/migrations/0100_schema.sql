-- The schema's tables and indexes. Functions, procedures, triggers, views and the relations derived from these
-- tables (bar and quote sums, return sums) are defined in the repeatable files that migrate applies after the
-- migrations on every run (sql/README.md). A database made by the earlier numbered series (0001-0027) already has
-- exactly these tables: migrate adopts it (sql/migrate.ts).

-- Raw ticks exactly as the exchange sent them: one row per trade, aggregated trade and best bid/ask update.
-- Prices and quantities are unconstrained NUMERIC, so the exchange's decimal strings are stored without rounding.
-- Each key holds the tick's identity plus its time column (hypertables require the time column in every unique
-- index), so a re-delivered tick is a duplicate. Keys lead with (exchange, market, symbol, time) so that the same
-- index serves the readers' "one symbol over a time range" scans.

CREATE TABLE trades (
    exchange        text        NOT NULL,
    market          text        NOT NULL,
    symbol          text        NOT NULL,
    time            timestamptz NOT NULL,  -- trade time T
    trade_id        bigint      NOT NULL,
    price           numeric     NOT NULL CHECK (price > 0),
    quantity        numeric     NOT NULL CHECK (quantity >= 0),
    buyer_is_maker  boolean     NOT NULL,
    side            text        NOT NULL CHECK (side IN ('buy', 'sell')),  -- taker side
    event_time      timestamptz NOT NULL,  -- event time E
    receive_time    timestamptz NOT NULL,  -- local receive time
    PRIMARY KEY (exchange, market, symbol, time, trade_id)
);

CREATE TABLE agg_trades (
    exchange        text        NOT NULL,
    market          text        NOT NULL,
    symbol          text        NOT NULL,
    time            timestamptz NOT NULL,
    agg_id          bigint      NOT NULL,
    first_trade_id  bigint      NOT NULL,
    last_trade_id   bigint      NOT NULL CHECK (last_trade_id >= first_trade_id),
    price           numeric     NOT NULL CHECK (price > 0),
    quantity        numeric     NOT NULL CHECK (quantity >= 0),
    buyer_is_maker  boolean     NOT NULL,
    side            text        NOT NULL CHECK (side IN ('buy', 'sell')),
    event_time      timestamptz NOT NULL,
    receive_time    timestamptz NOT NULL,
    PRIMARY KEY (exchange, market, symbol, time, agg_id)
);

CREATE TABLE book_tickers (
    exchange        text        NOT NULL,
    market          text        NOT NULL,
    symbol          text        NOT NULL,
    time            timestamptz NOT NULL,  -- exchange time T where the venue sends one (USD-M), else receive time (spot)
    update_id       bigint      NOT NULL,
    bid_price       numeric     NOT NULL CHECK (bid_price > 0),
    bid_qty         numeric     NOT NULL CHECK (bid_qty >= 0),
    ask_price       numeric     NOT NULL CHECK (ask_price > 0),
    ask_qty         numeric     NOT NULL CHECK (ask_qty >= 0),
    exchange_time   timestamptz,
    event_time      timestamptz,
    receive_time    timestamptz NOT NULL,
    PRIMARY KEY (exchange, market, symbol, time, update_id)
);

-- Holes in the streams, as detected by ingestion: trade-id ranges (later backfilled) and book-ticker silences.
CREATE TABLE gap_events (
    exchange        text        NOT NULL,
    market          text        NOT NULL,
    symbol          text        NOT NULL,
    stream          text        NOT NULL,
    from_time       timestamptz NOT NULL,
    to_time         timestamptz NOT NULL,
    from_id         bigint,
    to_id           bigint,
    reason          text        NOT NULL,
    detected_at     timestamptz NOT NULL,
    PRIMARY KEY (exchange, market, symbol, stream, from_time, detected_at)
);

-- Kafka positions of the tick writers, stored in the same transaction as the rows they cover: after a crash, restart
-- or rebalance a writer resumes exactly at next_offset, so every record's effect lands in the tables once.
-- next_offset is the offset of the next record to write (Kafka's "committed offset" convention). A writer only moves
-- it forward from the value it last read (UPDATE ... WHERE next_offset = expected), so a member that lost its
-- partition in a rebalance cannot write the same records a second time.
CREATE TABLE writer_offsets (
    group_id     text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL CHECK (partition >= 0),
    next_offset  bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- Order books of every venue as ingestion publishes them (the top N levels per side on each change), and their
-- top-of-book analytics (metrics/top-of-book.ts). `symbol` is the canonical BASE-QUOTE form shared by venues (BTC-USDT,
-- BTC-USD); `venue_symbol` the venue's own. `time` is the exchange time of the book's last update where the venue sends
-- one, else the receive time. Keys hold the book's identity (sequence) plus the time column, so a re-delivered book is
-- a duplicate (ON CONFLICT DO NOTHING).
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

-- Per-second summaries of the raw trades and book tickers, written by the writer in the same transaction as its ticks
-- (one row per stream and second, merged batch by batch: merge_trade_slices / merge_quote_slices), so that a refresh
-- merges a few rows per second instead of reading every tick again (metrics/README.md, "Tick slices").
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
    interleaved             boolean     NOT NULL DEFAULT false,  -- see merge_trade_slices (sql/slices.sql)
    PRIMARY KEY (slice, exchange, market, symbol)
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
    interleaved             boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (slice, exchange, market, symbol)
);
CREATE INDEX trade_slices_interleaved ON trade_slices (slice) WHERE interleaved;
CREATE INDEX quote_slices_interleaved ON quote_slices (slice) WHERE interleaved;

-- Which short width the short bar relations are built for (configure_short_bars() rebuilds them when it changes), and
-- from when the slices are complete (minutes before it are rebuilt from the raw ticks).
CREATE TABLE metric_settings (
    id            boolean  PRIMARY KEY DEFAULT true CHECK (id),
    short_width   interval,
    slices_since  timestamptz
);
INSERT INTO metric_settings (short_width, slices_since) VALUES (NULL, '-infinity');

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
    raw       boolean     NOT NULL DEFAULT true,  -- ticks of this minute went in without slices: rebuild them first
    PRIMARY KEY (exchange, market, symbol, stream, bucket)
);

-- The time-weighted spread of each 1-minute bucket (it needs each quote's successor, a window function, so a plain
-- table on both databases).
CREATE TABLE quote_time_weights_1m (
    exchange       text        NOT NULL,
    market         text        NOT NULL,
    symbol         text        NOT NULL,
    bucket         timestamptz NOT NULL,
    covered_us     numeric     NOT NULL,  -- microseconds of the bucket with a quote in force
    sum_spread_us  numeric     NOT NULL,  -- sum of spread * microseconds in force
    PRIMARY KEY (exchange, market, symbol, bucket)
);

-- RSI(14) with Wilder smoothing and MACD(12, 26, 9) on the closes of closed 1-minute bars (computed by the worker
-- over a warm-up window of earlier bars; NULL until enough bars exist).
CREATE TABLE bar_indicators_1m (
    exchange        text             NOT NULL,
    market          text             NOT NULL,
    symbol          text             NOT NULL,
    bucket          timestamptz      NOT NULL,
    close           numeric          NOT NULL,
    rsi_14          double precision,
    macd            double precision,
    macd_signal     double precision,
    macd_histogram  double precision,
    computed_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (exchange, market, symbol, bucket)
);

-- One row per firing: idempotent by rule, symbol and bucket, so a re-evaluated bucket never fires twice.
-- resolved_at is set on the firing that was open when the condition cleared.
CREATE TABLE anomaly_events (
    rule        text             NOT NULL,  -- volatilitySpike | volumeSpike | spreadWarning | priceJump | gap | staleStream
    exchange    text             NOT NULL,
    market      text             NOT NULL,
    symbol      text             NOT NULL,
    bucket      timestamptz      NOT NULL,
    observed    double precision NOT NULL,
    threshold   double precision NOT NULL,
    detail      jsonb            NOT NULL DEFAULT '{}',
    fired_at    timestamptz      NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    PRIMARY KEY (rule, exchange, market, symbol, bucket)
);
CREATE INDEX anomaly_events_by_time ON anomaly_events (bucket DESC);

-- The alert mail policy's state per rule and stream (metrics/alert-state.ts), stored by the metrics worker after the
-- mails it accounts for went out, so a restarted worker keeps its cooldowns and held firings, and still sends the
-- resolved mail of a condition that was open when its predecessor stopped.
CREATE TABLE alert_policy_state (
    key             text        PRIMARY KEY,  -- rule|exchange|market|symbol
    active          boolean     NOT NULL,
    cooldown_until  timestamptz,              -- NULL: no mail sent yet
    held            jsonb       NOT NULL DEFAULT '[]',  -- firings waiting for the next digest
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Plain PostgreSQL: every refresh selects ticks by time alone, and the primary keys lead with the symbol.
-- (TimescaleDB's hypertables are chunked by time.)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        CREATE INDEX trades_by_time ON trades (time);
        CREATE INDEX book_tickers_by_time ON book_tickers (time);
    END IF;
END;
$$;
