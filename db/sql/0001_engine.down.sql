-- Removes everything 0001_engine created: every view, table and function of schema drift except
-- alembic's version table (alembic still writes to it; `driftloop db downgrade base` drops it and
-- the schema afterwards). The vector extension stays: other schemas may use it.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass::text AS obj FROM pg_class c
             WHERE c.relnamespace = 'drift'::regnamespace AND c.relkind = 'v' LOOP
        EXECUTE format('DROP VIEW IF EXISTS %s CASCADE', r.obj);
    END LOOP;
    FOR r IN SELECT c.oid::regclass::text AS obj FROM pg_class c
             WHERE c.relnamespace = 'drift'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version' LOOP
        EXECUTE format('DROP TABLE IF EXISTS %s CASCADE', r.obj);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure::text AS obj FROM pg_proc p WHERE p.pronamespace = 'drift'::regnamespace LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.obj);
    END LOOP;
END $$;
