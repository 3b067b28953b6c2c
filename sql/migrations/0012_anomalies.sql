-- What the metrics worker derives from closed bars: indicators per symbol and 1-minute bucket, and anomaly firings.

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
