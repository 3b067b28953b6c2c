-- How the writer gets ticks into a table whose rows feed continuous aggregates.
--
-- TimescaleDB (2.28.3, measured: sql/timescale-copy.int.test.ts) COPYs row by row into a hypertable that has a
-- statement trigger with a transition table (the metric invalidation triggers of 0010, 0011 and 0021), and that row by
-- row path records no continuous-aggregate invalidation: ticks COPYed into a minute that was already materialized were
-- never aggregated again, whatever refresh came later. An INSERT records them. So on TimescaleDB the writer COPYs
-- into a temporary twin of the table and INSERTs from it, in the same transaction (consumer/copy.ts); the cost is the
-- same (both insert row by row). On plain PostgreSQL it COPYs straight into the table.
CREATE FUNCTION ticks_copied_via_stage() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT metrics_timescale()
$$;
