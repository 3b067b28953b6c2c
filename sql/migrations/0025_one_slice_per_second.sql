-- One slice row per stream and second. Until now every writer batch added its own summary of each second it touched,
-- so a second was stored in as many pieces as batches crossed it (about 2 per trade stream and 3 per book-ticker
-- stream at 100 x live), and every refresh read, sorted and merged all of them. Now the writer's insert merges a
-- batch's summary into the second's row (INSERT ... ON CONFLICT DO UPDATE with merge_trade_slices/merge_quote_slices):
-- when the two summaries do not interleave in (time, id) order, the merge is exact, including the tick-to-tick return
-- (and, for quotes, the time in force) between the earlier one's last tick and the later one's first. When they do
-- interleave (a late tick inside a second already summarized), the sums, counts, min/max and first/last stay exact
-- (so bars and quote sums are right as they are) and the row is flagged `interleaved`: its returns and time weights
-- are not, and prepare_slices rebuilds that minute from the raw ticks before they are computed, as before.
--
-- Existing seconds stored in several pieces are removed here and their minutes listed `raw`, so the worker's next
-- pass rebuilds them from the raw ticks.

ALTER TABLE trade_slices ADD COLUMN interleaved boolean NOT NULL DEFAULT false;
ALTER TABLE quote_slices ADD COLUMN interleaved boolean NOT NULL DEFAULT false;

DO $$
DECLARE
    origin constant timestamptz := '2000-01-03 00:00:00+00';
BEGIN
    CREATE TEMP TABLE pieces ON COMMIT DROP AS
    SELECT slice, exchange, market, symbol, 'trade' AS stream FROM trade_slices GROUP BY 1, 2, 3, 4 HAVING count(*) > 1
    UNION ALL
    SELECT slice, exchange, market, symbol, 'bookTicker' FROM quote_slices GROUP BY 1, 2, 3, 4 HAVING count(*) > 1;
    INSERT INTO metric_invalidations (exchange, market, symbol, stream, bucket, raw)
    SELECT DISTINCT exchange, market, symbol, stream, date_bin('1 minute', slice, origin), true FROM pieces
    ON CONFLICT (exchange, market, symbol, stream, bucket)
    DO UPDATE SET touched = nextval('metric_invalidation_seq'), raw = true;
    DELETE FROM trade_slices s USING pieces p
     WHERE p.stream = 'trade' AND (s.slice, s.exchange, s.market, s.symbol) = (p.slice, p.exchange, p.market, p.symbol);
    DELETE FROM quote_slices s USING pieces p
     WHERE p.stream = 'bookTicker' AND (s.slice, s.exchange, s.market, s.symbol) = (p.slice, p.exchange, p.market, p.symbol);
END;
$$;

ALTER TABLE trade_slices DROP CONSTRAINT trade_slices_pkey, ADD PRIMARY KEY (slice, exchange, market, symbol);
ALTER TABLE quote_slices DROP CONSTRAINT quote_slices_pkey, ADD PRIMARY KEY (slice, exchange, market, symbol);
CREATE INDEX trade_slices_interleaved ON trade_slices (slice) WHERE interleaved;
CREATE INDEX quote_slices_interleaved ON quote_slices (slice) WHERE interleaved;

-- The row of a second after a batch's summary `n` of it arrives, given the stored row `e` (the writer's ON CONFLICT).
CREATE FUNCTION merge_trade_slices(e trade_slices, n trade_slices) RETURNS trade_slices LANGUAGE plpgsql IMMUTABLE AS $$
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

CREATE FUNCTION merge_quote_slices(e quote_slices, n quote_slices) RETURNS quote_slices LANGUAGE plpgsql IMMUTABLE AS $$
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

-- As in 0023, but the seconds whose summaries interleave are now found by their flag (an index scan) instead of a
-- window over every summary of the window.
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
