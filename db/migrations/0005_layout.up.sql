-- The code layer moves out of the migrations: every function, trigger and view of schema drift
-- is now defined once, in db/repeatable/, and re-applied after every upgrade. Databases
-- migrated before this revision still hold the old definitions, some with return types the
-- new ones change (the report functions now return drift.report_row): drop them all here;
-- the repeatable files recreate them in the same transaction. Tables and data are untouched.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass::text AS obj FROM pg_class c
             WHERE c.relnamespace = 'drift'::regnamespace AND c.relkind IN ('v', 'm') LOOP
        EXECUTE format('DROP VIEW IF EXISTS %s CASCADE', r.obj);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure::text AS obj FROM pg_proc p WHERE p.pronamespace = 'drift'::regnamespace LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.obj);
    END LOOP;
END $$;

-- One row type for every drift report row (the report functions and the drift views).
CREATE TYPE drift.report_row AS (
    model text,
    kind text,
    metric text,
    score double precision,
    threshold double precision,
    p_value double precision,
    n_current bigint,
    n_baseline bigint,
    drifted boolean,
    window_start timestamptz,
    window_end timestamptz,
    value double precision,
    baseline_value double precision,
    details jsonb
);

-- Which code layer the database runs: a digest of db/repeatable/, written when it is applied,
-- so driftloop can tell a database whose functions are older than the installed package.
CREATE TABLE drift.code_layer (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    digest text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE drift.code_layer IS 'The functions, triggers and views in force: a digest of the repeatable SQL files applied by the last upgrade (one row).';
COMMENT ON COLUMN drift.code_layer.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN drift.code_layer.digest IS 'SHA-256 of the repeatable SQL files, in the order they were applied.';
COMMENT ON COLUMN drift.code_layer.applied_at IS 'When they were applied.';
