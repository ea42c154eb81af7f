-- Rollups: time buckets, compaction of the delta rows, and window aggregates over both.

-- No SET search_path here: it would stop the planner from inlining this per-row call
-- (date_bin lives in pg_catalog, which is always searched first).
CREATE OR REPLACE FUNCTION drift.bucket_of(p_at timestamptz, p_width interval) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.date_bin(p_width, p_at, timestamptz '2000-01-01 00:00:00+00') $$;
COMMENT ON FUNCTION drift.bucket_of(timestamptz, interval) IS 'Start of the rollup bucket holding a timestamp.';

-- ---------------------------------------------------------------------------------------------
-- Compaction and window aggregates
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.fold_deltas(p_rollup regclass, p_delta regclass) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    sums text;
    adds text;
    k bigint;
BEGIN
    -- Every column but the key is an additive aggregate (counts, sums, vector sums): the
    -- rollup table's own column list is the one definition of what is folded.
    SELECT string_agg(format('sum(%I)', a.attname), ', ' ORDER BY a.attnum),
           string_agg(format('%1$I = r.%1$I + excluded.%1$I', a.attname), ', ' ORDER BY a.attnum)
    INTO sums, adds
    FROM pg_attribute a
    WHERE a.attrelid = p_rollup AND a.attnum > 0 AND NOT a.attisdropped AND a.attname NOT IN ('model', 'bucket');
    EXECUTE format($q$
        WITH moved AS (DELETE FROM %2$s RETURNING *)
        INSERT INTO %1$s AS r SELECT model, bucket, %3$s FROM moved GROUP BY model, bucket ORDER BY model, bucket
        ON CONFLICT (model, bucket) DO UPDATE SET %4$s $q$, p_rollup, p_delta, sums, adds);
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN k;
END $$;
COMMENT ON FUNCTION drift.fold_deltas(regclass, regclass) IS 'Moves the rows of a rollup delta table into its rollup table, one row per model and bucket, adding every aggregate column; returns the rollup rows written.';

CREATE OR REPLACE FUNCTION drift.compact_rollups() RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- One compactor at a time; others simply read the deltas that are still there.
    IF NOT pg_try_advisory_xact_lock(hashtext('drift.compact_rollups')) THEN
        RETURN 0;
    END IF;
    PERFORM drift.fold_id_ranges();  -- the id spans of the log's partition steps (36_id_ranges.sql)
    PERFORM drift.fold_event_status_counts();  -- events per status for /metrics (80_queue.sql)
    RETURN drift.fold_deltas('drift.embedding_rollup', 'drift.embedding_rollup_delta')
         + drift.fold_deltas('drift.interaction_rollup', 'drift.interaction_rollup_delta');
END $$;
COMMENT ON FUNCTION drift.compact_rollups() IS 'Folds the rollup deltas into one row per model and bucket; returns the rollup rows written. Skips (returns 0) while another session compacts.';

-- The one read of "rollups plus pending deltas" that both embedding readers below share. It
-- has no SET clause so that the planner inlines it into each caller's query: embedding_window
-- then runs the plan it ran before (two index range scans, one aggregate). Measured: written
-- as a sum over embedding_buckets (a second function call and a per-bucket aggregate first)
-- embedding_window took 1.4x as long over an hour and 2.2x over a six-day baseline.
-- (Only columns and pg_catalog operators: the caller's search_path cannot change its meaning.)
CREATE OR REPLACE FUNCTION drift.embedding_rollup_rows(p_model text, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (bucket timestamptz, n bigint, vec_sum vector, sq_sum vector)
LANGUAGE sql STABLE
AS $$
    SELECT r.bucket, r.n, r.vec_sum, r.sq_sum FROM drift.embedding_rollup r
    WHERE r.model = p_model AND r.bucket >= p_from AND r.bucket < p_to
    UNION ALL
    SELECT d.bucket, d.n, d.vec_sum, d.sq_sum FROM drift.embedding_rollup_delta d
    WHERE d.model = p_model AND d.bucket >= p_from AND d.bucket < p_to
$$;
COMMENT ON FUNCTION drift.embedding_rollup_rows(text, timestamptz, timestamptz) IS 'The embedding rollup rows and pending delta rows of a model in [from, to): a bucket not compacted yet has several. Read through drift.embedding_window or drift.embedding_buckets.';

-- The window readers run their cached generic plan (an index range scan on (model, bucket),
-- right for any window). Left to choose, the plan cache re-plans every call once the rollups
-- hold months of buckets: the generic plan's estimate for an unknown range grows with the
-- table, so it loses to a custom plan, which costs a planning per call (measured: every
-- evaluation 1.3-1.8x slower with 90 days of rollups than with 1 day, at the same work).
CREATE OR REPLACE FUNCTION drift.embedding_window(p_model text, p_from timestamptz, p_to timestamptz,
    OUT n bigint, OUT vec_sum vector, OUT sq_sum vector)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
SET plan_cache_mode = force_generic_plan
AS $$
    SELECT coalesce(sum(s.n), 0)::bigint, sum(s.vec_sum), sum(s.sq_sum)
    FROM drift.embedding_rollup_rows(p_model, p_from, p_to) s
$$;
COMMENT ON FUNCTION drift.embedding_window(text, timestamptz, timestamptz) IS 'Embedding count, sum and sum of squares of a model over the buckets in [from, to), from rollups and pending deltas.';

CREATE OR REPLACE FUNCTION drift.embedding_buckets(p_model text, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (bucket timestamptz, n bigint, vec_sum vector, sq_sum vector)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
SET plan_cache_mode = force_generic_plan
AS $$
    SELECT s.bucket, sum(s.n)::bigint, sum(s.vec_sum), sum(s.sq_sum)
    FROM drift.embedding_rollup_rows(p_model, p_from, p_to) s
    GROUP BY s.bucket
$$;
COMMENT ON FUNCTION drift.embedding_buckets(text, timestamptz, timestamptz) IS 'Embedding count, sum and sum of squares of a model per non-empty bucket in [from, to) (in no particular order), from rollups and pending deltas.';

CREATE OR REPLACE FUNCTION drift.interaction_window(p_model text, p_from timestamptz, p_to timestamptz)
RETURNS drift.interaction_rollup
LANGUAGE sql STABLE
SET search_path = pg_catalog
SET plan_cache_mode = force_generic_plan  -- see drift.embedding_window
AS $$
    SELECT p_model, p_from,
        coalesce(sum(s.interactions), 0)::bigint, coalesce(sum(s.refusal_known), 0)::bigint,
        coalesce(sum(s.refusals), 0)::bigint, coalesce(sum(s.toxicity_scored), 0)::bigint,
        coalesce(sum(s.toxic), 0)::bigint, coalesce(sum(s.toxicity_sum), 0),
        coalesce(sum(s.feedback_given), 0)::bigint, coalesce(sum(s.feedback_positive), 0)::bigint,
        coalesce(sum(s.labelled), 0)::bigint, coalesce(sum(s.correct), 0)::bigint,
        coalesce(sum(s.quality_n), 0)::bigint, coalesce(sum(s.quality_ok), 0)::bigint,
        coalesce(sum(s.latency_sum), 0), coalesce(sum(s.latency_n), 0)::bigint
    FROM (
        SELECT * FROM drift.interaction_rollup r
        WHERE r.model = p_model AND r.bucket >= p_from AND r.bucket < p_to
        UNION ALL
        SELECT * FROM drift.interaction_rollup_delta d
        WHERE d.model = p_model AND d.bucket >= p_from AND d.bucket < p_to
    ) s
$$;
COMMENT ON FUNCTION drift.interaction_window(text, timestamptz, timestamptz) IS 'Interaction counts of a model over the buckets in [from, to), from rollups and pending deltas (bucket = from).';
