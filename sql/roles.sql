-- The role Grafana logs in as (GRAFANA_DB_USER, password GRAFANA_DB_PASSWORD), re-applied by every `migrate` when the
-- password is set: it may read the reader views and the event tables of this database and nothing else, every
-- transaction it starts is read-only, and a statement stops after 30 s. A viewer who gets SQL through it can neither
-- write, nor read the raw tables, nor run programs. The name and password arrive as settings, never as SQL text.
DO $$
DECLARE
    r  constant text := current_setting('tickwatch.reader_role');
    pw constant text := current_setting('tickwatch.reader_password');
    readable constant text[] := ARRAY['bars_short', 'bars_1m', 'bars_5m', 'bars_1h', 'bars_by_width', 'quote_metrics_1m',
                                      'bar_indicators_1m', 'anomaly_events', 'gap_events'];
    rel text;
BEGIN
    IF r = current_user OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r AND (rolsuper OR rolcreaterole OR rolcreatedb)) THEN
        RAISE EXCEPTION 'GRAFANA_DB_USER % is a privileged role: the dashboards need a role of their own', r;
    END IF;
    BEGIN
        EXECUTE format('CREATE ROLE %I LOGIN NOINHERIT', r);
    EXCEPTION WHEN duplicate_object THEN
        NULL; -- made by an earlier migrate (of this or another database of the server)
    END;
    EXECUTE format('ALTER ROLE %I LOGIN NOINHERIT PASSWORD %L', r, pw);
    EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', r);
    EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', r, '30s');
    -- A read-only transaction may still create temporary tables: only the workers' role keeps that right.
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), current_user);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), r);
    FOREACH rel IN ARRAY readable LOOP
        EXECUTE format('GRANT SELECT ON %I TO %I', rel, r);
    END LOOP;
END;
$$;
