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
