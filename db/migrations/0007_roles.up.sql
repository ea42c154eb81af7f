-- Least-privilege roles and the column that records who logged each row.
--
-- Roles are cluster-wide: every database of the server shares them, so they are created only
-- when absent (test databases, or a second driftloop database on the same server, reuse them).
-- They are NOLOGIN: an operator grants them to login users (see the README). What each may
-- do is in db/repeatable/95_security.sql, re-applied after every upgrade.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['driftloop_ingest', 'driftloop_worker', 'driftloop_reader'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created concurrently by a migration of another database
            END;
        END IF;
    END LOOP;
END $$;
COMMENT ON ROLE driftloop_ingest IS 'driftloop: inserts interactions, embeddings and feedback; reads only rows it logged.';
COMMENT ON ROLE driftloop_worker IS 'driftloop: claims and finishes drift events, runs actions, moves baselines, reads rollups and views.';
COMMENT ON ROLE driftloop_reader IS 'driftloop: reads the drift views and drift_events (dashboards, /metrics).';

-- Who logged a row: the JWT subject the edge functions (or PostgREST) set in
-- request.jwt.claims, else the database user. Row-level security compares it with the caller,
-- so one client never reads or labels another client's rows. An inline expression, not a
-- function call: migrations run before the functions of db/repeatable exist.
ALTER TABLE drift.interaction_log ADD COLUMN inserted_by text
    DEFAULT coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', current_user::text);
ALTER TABLE drift.embeddings_log ADD COLUMN inserted_by text
    DEFAULT coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', current_user::text);
COMMENT ON COLUMN drift.interaction_log.inserted_by IS 'Who logged the row: the JWT sub of a signed-in client, else the database user. Row-level security lets clients read and label only their own rows.';
COMMENT ON COLUMN drift.embeddings_log.inserted_by IS 'Who logged the row: the JWT sub of a signed-in client, else the database user.';
