-- The code layer (policies, functions) is dropped before a downgrade; grants stay on the
-- tables, so revoke them here. The roles themselves are shared by every database of the
-- server: they are dropped only when nothing else depends on them.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['driftloop_ingest', 'driftloop_worker', 'driftloop_reader', 'anon', 'authenticated', 'service_role'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA drift FROM %I', r);
            EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA drift FROM %I', r);
            EXECUTE format('REVOKE ALL ON SCHEMA drift FROM %I', r);
        END IF;
    END LOOP;
    FOREACH r IN ARRAY ARRAY['driftloop_ingest', 'driftloop_worker', 'driftloop_reader'] LOOP
        BEGIN
            EXECUTE format('DROP ROLE IF EXISTS %I', r);
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE NOTICE 'role % is kept: other databases or members still use it', r;
        END;
    END LOOP;
END $$;
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'drift'::regnamespace AND c.relkind IN ('r', 'p') LOOP
        EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', t);
    END LOOP;
END $$;
ALTER TABLE drift.embeddings_log DROP COLUMN inserted_by;
ALTER TABLE drift.interaction_log DROP COLUMN inserted_by;
