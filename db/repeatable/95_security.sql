-- Security: grants and row-level security for the driftloop roles and, when present,
-- Supabase's anon / authenticated / service_role. Re-applied after every upgrade, so tables
-- and functions that later migrations add are covered too.
--
--   driftloop_ingest  INSERT logs; UPDATE feedback/correct and SELECT only rows it logged.
--   driftloop_worker  reads everything; writes events, runs, baselines, rollups, versions.
--   driftloop_reader  SELECT on the views and drift_events only.
--   anon              INSERT logs only (one key shared by every browser: it reads nothing).
--   authenticated     INSERT logs; SELECT and label its own rows (inserted_by = JWT sub).
--   service_role      everything (the app's backend; on Supabase it bypasses RLS anyway).
--
-- The log triggers and the report functions behind the views run as their owner (SECURITY
-- DEFINER, search_path pinned): a role that may only insert logs still feeds the rollups and
-- raises drift events, and a reader sees the views without reading the tables behind them.

CREATE OR REPLACE FUNCTION drift.client_id() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', current_user::text)
$$;
COMMENT ON FUNCTION drift.client_id() IS 'Who is calling: the JWT sub in request.jwt.claims (set by PostgREST or the edge functions), else the database user. Compared with inserted_by by the row-level security policies.';

DO $$
DECLARE
    t regclass;
    tname name;
    f regprocedure;
    cfg text[];
    ingest text[];
    ingest_readers text[];
    worker_only_reads constant text[] := ARRAY['settings', 'refusal_patterns', 'interaction_log', 'embeddings_log',
        'code_layer', 'alembic_version'];
    has_anon boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon');
    has_authenticated boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated');
    has_service boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role');
BEGIN
    ingest := ARRAY['driftloop_ingest'] || CASE WHEN has_anon THEN ARRAY['anon'] ELSE '{}' END
        || CASE WHEN has_authenticated THEN ARRAY['authenticated'] ELSE '{}' END;
    ingest_readers := ARRAY['driftloop_ingest'] || CASE WHEN has_authenticated THEN ARRAY['authenticated'] ELSE '{}' END;

    -- Row-level security on every table of schema drift, and a clean slate of table rights
    -- for the roles this file manages (a right a release withdrew does not linger).
    FOR t, tname IN SELECT c.oid, c.relname FROM pg_class c
        WHERE c.relnamespace = 'drift'::regnamespace AND c.relkind IN ('r', 'p') LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('REVOKE ALL ON %s FROM driftloop_ingest, driftloop_worker, driftloop_reader', t);
        -- A log partition is reached through its parent only: written directly, a row would
        -- skip the parent's statement triggers (the rollups). No rights, no policies.
        CONTINUE WHEN (SELECT c.relispartition FROM pg_class c WHERE c.oid = t);
        EXECUTE format('DROP POLICY IF EXISTS worker_all ON %s', t);
        EXECUTE format('CREATE POLICY worker_all ON %s TO driftloop_worker USING (true) WITH CHECK (true)', t);
        EXECUTE format('GRANT SELECT ON %s TO driftloop_worker', t);
        IF NOT (tname LIKE 'simulation\_%' OR tname = ANY (worker_only_reads)) THEN
            EXECUTE format('GRANT INSERT, UPDATE, DELETE ON %s TO driftloop_worker', t);
        END IF;
        IF has_service THEN
            EXECUTE format('GRANT ALL ON %s TO service_role', t);
            EXECUTE format('DROP POLICY IF EXISTS service_all ON %s', t);
            EXECUTE format('CREATE POLICY service_all ON %s TO service_role USING (true) WITH CHECK (true)', t);
        END IF;
        IF has_anon THEN EXECUTE format('REVOKE ALL ON %s FROM anon', t); END IF;
        IF has_authenticated THEN EXECUTE format('REVOKE ALL ON %s FROM authenticated', t); END IF;
    END LOOP;

    EXECUTE format('GRANT USAGE ON SCHEMA drift TO driftloop_ingest, driftloop_worker, driftloop_reader%s%s%s',
        CASE WHEN has_anon THEN ', anon' ELSE '' END, CASE WHEN has_authenticated THEN ', authenticated' ELSE '' END,
        CASE WHEN has_service THEN ', service_role' ELSE '' END);
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA drift TO driftloop_worker;
    IF has_service THEN GRANT ALL ON ALL SEQUENCES IN SCHEMA drift TO service_role; END IF;

    -- Logs: clients insert, and read or label only their own rows. The ids are allocated with
    -- nextval (the SDK and the functions return them), hence USAGE on the identity sequences.
    FOR t IN SELECT unnest(ARRAY['drift.interaction_log', 'drift.embeddings_log']::regclass[]) LOOP
        EXECUTE format('GRANT INSERT ON %s TO %s', t, array_to_string(ingest, ', '));
        EXECUTE format('GRANT SELECT ON %s TO %s', t, array_to_string(ingest_readers, ', '));
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %s', pg_get_serial_sequence(t::text, 'id'), array_to_string(ingest, ', '));
        EXECUTE format('DROP POLICY IF EXISTS clients_insert ON %s', t);
        EXECUTE format('CREATE POLICY clients_insert ON %s FOR INSERT TO %s WITH CHECK (inserted_by = (SELECT drift.client_id()))',
            t, array_to_string(ingest, ', '));
        EXECUTE format('DROP POLICY IF EXISTS clients_select_own ON %s', t);
        EXECUTE format('CREATE POLICY clients_select_own ON %s FOR SELECT TO %s USING (inserted_by = (SELECT drift.client_id()))',
            t, array_to_string(ingest_readers, ', '));
    END LOOP;
    EXECUTE format('GRANT UPDATE (feedback, correct) ON drift.interaction_log TO %s', array_to_string(ingest_readers, ', '));
    DROP POLICY IF EXISTS clients_label_own ON drift.interaction_log;
    EXECUTE format('CREATE POLICY clients_label_own ON drift.interaction_log FOR UPDATE TO %s'
        ' USING (inserted_by = (SELECT drift.client_id())) WITH CHECK (inserted_by = (SELECT drift.client_id()))',
        array_to_string(ingest_readers, ', '));
    -- The functions check an embedding's dimension before writing: the model registry's
    -- dimensions are readable to the ingest role (nothing else of drift.models).
    GRANT SELECT (model, embedding_dims) ON drift.models TO driftloop_ingest;
    DROP POLICY IF EXISTS ingest_dims ON drift.models;
    CREATE POLICY ingest_dims ON drift.models FOR SELECT TO driftloop_ingest USING (true);

    -- Every driftloop command checks the schema version before it runs: readable to all roles.
    -- (alembic_version does not exist yet when `driftloop db sql`'s script reaches this file.)
    FOR t IN SELECT c.oid FROM pg_class c
        WHERE c.relnamespace = 'drift'::regnamespace AND c.relname IN ('code_layer', 'alembic_version') LOOP
        EXECUTE format('GRANT SELECT ON %s TO driftloop_ingest, driftloop_reader', t);
        EXECUTE format('DROP POLICY IF EXISTS schema_version_read ON %s', t);
        EXECUTE format('CREATE POLICY schema_version_read ON %s FOR SELECT TO driftloop_ingest, driftloop_reader USING (true)', t);
    END LOOP;

    -- Readers: the views (which read the tables as their owner) and the events.
    GRANT SELECT ON drift.drift_events TO driftloop_reader;
    DROP POLICY IF EXISTS reader_events ON drift.drift_events;
    CREATE POLICY reader_events ON drift.drift_events FOR SELECT TO driftloop_reader USING (true);
    FOR t IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'drift'::regnamespace AND c.relkind IN ('v', 'm') LOOP
        EXECUTE format('REVOKE ALL ON %s FROM driftloop_ingest, driftloop_worker, driftloop_reader', t);
        EXECUTE format('GRANT SELECT ON %s TO driftloop_reader, driftloop_worker%s', t,
            CASE WHEN has_service THEN ', service_role' ELSE '' END);
        IF has_anon THEN EXECUTE format('REVOKE ALL ON %s FROM anon', t); END IF;
        IF has_authenticated THEN EXECUTE format('REVOKE ALL ON %s FROM authenticated', t); END IF;
    END LOOP;

    -- Functions that run as their owner: the log tables' triggers (ingest feeds the rollups
    -- and raises events it may not write itself) and every function a view calls (a view
    -- checks table rights as its owner, but runs its functions as the caller).
    FOR f IN
        SELECT DISTINCT t.tgfoid::regprocedure FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'drift'::regnamespace AND NOT t.tgisinternal
        UNION
        SELECT DISTINCT d.refobjid::regprocedure
        FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
        JOIN pg_class c ON c.oid = r.ev_class JOIN pg_proc p ON p.oid = d.refobjid
        WHERE c.relnamespace = 'drift'::regnamespace AND d.refclassid = 'pg_proc'::regclass
          AND p.pronamespace = 'drift'::regnamespace
    LOOP
        SELECT proconfig INTO cfg FROM pg_proc WHERE oid = f;
        IF NOT EXISTS (SELECT 1 FROM unnest(cfg) c WHERE c LIKE 'search\_path=%') THEN
            -- A definer function must never resolve names through the caller's search_path.
            EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, public, extensions, pg_temp', f);
        END IF;
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f);
        IF (SELECT prorettype <> 'trigger'::regtype FROM pg_proc WHERE oid = f) THEN
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO driftloop_reader, driftloop_worker%s', f,
                CASE WHEN has_service THEN ', service_role' ELSE '' END);
        END IF;
    END LOOP;
END $$;
