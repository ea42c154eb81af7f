-- Where a row of interaction_log is, by id: a late label (feedback, correct) names a row by
-- id alone, and interaction_log is partitioned by created_at, so `WHERE id = $1` probes the
-- primary key of every partition (90 days: 90 probes and 90 partitions planned and locked).
-- drift.interaction_id_ranges (migration 0014) keeps the span of ids written into each
-- partition step; drift.interaction_steps(id) reads the step(s) an id can be in, and the
-- label's UPDATE adds `created_at >= starts AND created_at < ends`, which the planner prunes
-- to one partition. Ids come from one sequence and grow with insertion time; a step keeps
-- one span per run of ids written into it (a back-fill into an old step adds a span), so
-- spans overlap only where writers interleave steps (at a step's edge): an id then has two
-- candidate steps, tried newest first.

CREATE OR REPLACE FUNCTION drift.record_id_ranges() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- One row per statement and step, appended (never updated): concurrent writers do not
    -- wait on each other; drift.fold_id_ranges() merges them later.
    INSERT INTO drift.interaction_id_ranges (starts, ends, min_id, max_id)
    SELECT s.starts, s.starts + s.iv, min(n.id), max(n.id)
    FROM new_rows n
    CROSS JOIN LATERAL (
        SELECT drift.partition_start(n.created_at, c.iv) AS starts, c.iv
        FROM (SELECT drift.setting('partition_interval')::interval AS iv) c
    ) s
    GROUP BY s.starts, s.iv;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.record_id_ranges() IS 'After an insert into interaction_log: appends the span of ids written into each partition step to drift.interaction_id_ranges.';
CREATE OR REPLACE TRIGGER interaction_log_id_ranges AFTER INSERT ON drift.interaction_log
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.record_id_ranges();

-- SECURITY DEFINER: the ingest role labels its own rows but may not read the ranges table;
-- this returns time spans only, never a row.
CREATE OR REPLACE FUNCTION drift.interaction_steps(p_id bigint)
RETURNS TABLE (starts timestamptz, ends timestamptz)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
    SELECT DISTINCT r.starts, r.ends
    FROM drift.interaction_id_ranges r
    WHERE int8range(r.min_id, r.max_id, '[]') @> p_id
    ORDER BY r.starts DESC
$$;
COMMENT ON FUNCTION drift.interaction_steps(bigint) IS 'The partition steps [starts, ends) an interaction id can be in, newest first (none: no such id was ever written). A label updates with created_at >= starts AND created_at < ends, which touches one partition.';

CREATE OR REPLACE FUNCTION drift.fold_id_ranges(p_before timestamptz DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    k bigint;
BEGIN
    -- Retention first: the steps of dropped partitions hold no rows any more.
    IF p_before IS NOT NULL THEN
        DELETE FROM drift.interaction_id_ranges r WHERE r.ends <= p_before;
    END IF;
    -- Spans next to each other in id order that belong to the same step become one; a span
    -- of another step in between keeps them apart. (A back-fill written model by model puts
    -- each model's block of ids into every step: merged into one span per step, every step
    -- would overlap every other, and a label would try them all.)
    WITH ordered AS (
        SELECT r.starts, r.ends, r.min_id, r.max_id,
            (r.starts, r.ends) IS DISTINCT FROM (lag(r.starts) OVER w, lag(r.ends) OVER w) AS new_island
        FROM drift.interaction_id_ranges r
        WINDOW w AS (ORDER BY r.min_id, r.max_id)
    ), islands AS (
        SELECT o.*, sum(o.new_island::int) OVER (ORDER BY o.min_id, o.max_id) AS island FROM ordered o
    ), merged AS (
        SELECT i.starts, i.ends, min(i.min_id) AS min_id, max(i.max_id) AS max_id, count(*) AS spans
        FROM islands i GROUP BY i.island, i.starts, i.ends
    ), folded AS (
        SELECT * FROM merged WHERE spans > 1
    ), moved AS (  -- every span deleted lies inside the span written for its step
        DELETE FROM drift.interaction_id_ranges r USING folded f
        WHERE r.starts = f.starts AND r.ends = f.ends AND r.min_id >= f.min_id AND r.max_id <= f.max_id
    )
    INSERT INTO drift.interaction_id_ranges (starts, ends, min_id, max_id)
    SELECT f.starts, f.ends, f.min_id, f.max_id FROM folded f;
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN k;
END $$;
COMMENT ON FUNCTION drift.fold_id_ranges(timestamptz) IS 'Merges the id spans of a partition step that follow each other in id order (drift.compact_rollups calls it, one session at a time); with p_before also forgets the steps that ended by then (drift.prune_logs). Returns the spans written.';
