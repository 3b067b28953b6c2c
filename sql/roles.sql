-- Repeatable: the roles the product uses at run time, each with only the rights its job needs, re-applied by every
-- `migrate` for each role whose password is set (names and passwords arrive as settings, never as SQL text):
--   reader  (GRAFANA_DB_USER): the dashboards; reads the reader views and the event tables, read-only transactions,
--           30 s statements, no temporary tables. A viewer who gets SQL through it can neither write, nor read the raw
--           tables, nor run programs.
--   writer  (WRITER_DB_USER): the tick writers; inserts the raw rows (reading them only to stage a COPY like them),
--           their per-second slices and its Kafka offsets.
--   metrics (METRICS_DB_USER): the metrics worker; owns the aggregates it refreshes (TimescaleDB refreshes a continuous
--           aggregate only for its owner), reads the ticks and slices, writes indicators, events, its mail state and its outboxes.
-- None of them may create roles or databases, or be a superuser; DATABASE_URL's user (who runs migrate) stays the owner
-- of everything else.

DROP FUNCTION IF EXISTS ensure_job_role(text, text, text);  -- job_role's predecessor, in databases of the release migrate.ts adopts

-- The login role of one job (reader, writer, metrics), from the settings tickwatch.<job>_role and <job>_password:
-- created once, its password and rights brought in line on every run. NULL when its password is not set.
CREATE OR REPLACE FUNCTION job_role(job text, variable text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r  constant text := current_setting(format('tickwatch.%s_role', job), true);
    pw constant text := current_setting(format('tickwatch.%s_password', job), true);
BEGIN
    IF coalesce(pw, '') = '' THEN
        RETURN NULL;
    END IF;
    -- A member of another role could take that role's rights (SET ROLE): a job's role is a member of none.
    IF r = current_user OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r AND (rolsuper OR rolcreaterole OR rolcreatedb
                                   OR EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = pg_roles.oid))) THEN
        RAISE EXCEPTION '% % is a privileged role: the % needs a role of its own', variable, r, job;
    END IF;
    BEGIN
        EXECUTE format('CREATE ROLE %I LOGIN NOINHERIT', r);
    EXCEPTION WHEN duplicate_object THEN
        NULL; -- made by an earlier migrate (of this or another database of the server)
    END;
    EXECUTE format('ALTER ROLE %I LOGIN NOINHERIT PASSWORD %L', r, pw);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), r);
    -- Temporary tables only for the roles that need them (the writer's staging table); a read-only transaction may
    -- still create one.
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), current_user);
    RETURN r;
END;
$$;

-- Grants `privileges` on each relation of `rels` that exists (the short bars exist once configured).
CREATE OR REPLACE FUNCTION grant_on(privileges text, rels text[], r text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    rel text;
BEGIN
    FOREACH rel IN ARRAY rels LOOP
        IF to_regclass(rel) IS NOT NULL THEN
            EXECUTE format('GRANT %s ON %I TO %I', privileges, rel, r);
        END IF;
    END LOOP;
END;
$$;

DO $$
DECLARE
    r constant text := job_role('reader', 'GRAFANA_DB_USER');
BEGIN
    IF r IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', r);
    EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', r, '30s');
    PERFORM grant_on('SELECT', ARRAY['bars_short', 'bars_1m', 'bars_5m', 'bars_1h', 'bars_by_width', 'quote_metrics_1m',
                                     'bar_indicators_1m', 'anomaly_events', 'gap_events'], r);
END;
$$;

DO $$
DECLARE
    r constant text := job_role('writer', 'WRITER_DB_USER');
BEGIN
    IF r IS NULL THEN
        RETURN;
    END IF;
    -- On TimescaleDB the ticks are COPYed into a temporary twin and INSERTed from it.
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), r);
    -- SELECT too: the staging table is made LIKE its target, which needs it (TimescaleDB's path, the merge of a re-sent
    -- batch); the writer reads nothing else.
    PERFORM grant_on('SELECT, INSERT', ARRAY['trades', 'agg_trades', 'book_tickers', 'gap_events', 'books', 'top_of_book'], r);
    -- A batch's summary of a second is merged into the stored row (INSERT ... ON CONFLICT DO UPDATE).
    PERFORM grant_on('SELECT, INSERT, UPDATE', ARRAY['trade_slices', 'quote_slices', 'writer_offsets'], r);
    -- The statement triggers of the tick tables list the touched minutes; they run with the inserting role's rights.
    PERFORM grant_on('SELECT, INSERT, UPDATE', ARRAY['metric_invalidations'], r);
    EXECUTE format('GRANT USAGE ON SEQUENCE metric_invalidation_seq TO %I', r);
END;
$$;

DO $$
DECLARE
    r constant text := job_role('metrics', 'METRICS_DB_USER');
    owned constant text[] := ARRAY['trade_bars_short', 'trade_bars_1m', 'trade_bars_5m', 'trade_bars_1h', 'quote_stats_1m',
                                   'top_of_book_stats_1m', 'trade_returns_short', 'trade_returns_1m', 'trade_returns_5m',
                                   'trade_returns_1h', 'quote_time_weights_1m', 'bars_short', 'bars_1m', 'bars_5m', 'bars_1h'];
    rel text;
BEGIN
    IF r IS NULL THEN
        RETURN;
    END IF;
    -- The owner keeps every right over what it hands over: future migrations may still alter or rebuild it.
    EXECUTE format('GRANT %I TO %I', r, current_user);
    FOREACH rel IN ARRAY owned LOOP
        IF to_regclass(rel) IS NOT NULL THEN
            PERFORM hand_over(rel, r);
        END IF;
    END LOOP;
    -- A changed short bar width rebuilds the short relations through configure_short_bars, which runs with the
    -- owner's rights: the role creates nothing itself (CREATE from an earlier release taken back).
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM %I', current_schema(), r);
    EXECUTE format('GRANT EXECUTE ON FUNCTION configure_short_bars(interval) TO %I', r);
    PERFORM grant_on('SELECT', ARRAY['trades', 'book_tickers', 'top_of_book', 'gap_events', 'writer_offsets', 'quote_metrics_1m',
                                     'top_of_book_metrics_1m', 'bars_by_width'], r);
    -- The refresh rebuilds slices that interleaved or went in without a summary, and empties its work list.
    PERFORM grant_on('SELECT, INSERT, UPDATE, DELETE', ARRAY['trade_slices', 'quote_slices', 'metric_invalidations',
                     'metric_settings', 'bar_indicators_1m', 'anomaly_events', 'alert_policy_state'], r);
    EXECUTE format('GRANT USAGE ON SEQUENCE metric_invalidation_seq TO %I', r);
    -- The standby's hand-over (metrics/README.md, "Standby"): what was decided and not yet published or mailed, and
    -- where the short buckets stand. The lease itself is an advisory lock, which needs no grant.
    PERFORM grant_on('SELECT, INSERT, UPDATE, DELETE', ARRAY['metrics_outbox', 'alert_mail_outbox', 'metrics_progress'], r);
    EXECUTE format('GRANT USAGE ON SEQUENCE metrics_outbox_id_seq, alert_mail_outbox_id_seq TO %I', r);
END;
$$;
