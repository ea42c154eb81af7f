-- Partitions of the log tables (created by migration 0011_partitions): the partitions that
-- exist, creating the ones ahead, retention, and hourly compaction of old rollup buckets.
--
-- Each log is partitioned by RANGE (created_at) in steps of partition_interval, aligned to
-- midnight UTC (weekly ones start on Mondays), plus a DEFAULT partition for rows no step
-- covers yet. The rollups, baselines and events do not depend on the raw rows once they are
-- counted, so a whole partition can be dropped and detection goes on unchanged.

CREATE OR REPLACE FUNCTION drift.log_partitions()
RETURNS TABLE (log text, partition text, starts timestamptz, ends timestamptz, is_default boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT parent.relname::text, child.relname::text, b[1]::timestamptz, b[2]::timestamptz,
        pg_get_expr(child.relpartbound, child.oid) = 'DEFAULT'
    FROM pg_inherits i
    JOIN pg_class parent ON parent.oid = i.inhparent
    JOIN pg_class child ON child.oid = i.inhrelid
    LEFT JOIN LATERAL regexp_match(pg_get_expr(child.relpartbound, child.oid),
                                   'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS b ON true
    WHERE parent.relnamespace = 'drift'::regnamespace
      AND parent.relname IN ('interaction_log', 'embeddings_log')
    ORDER BY 1, 3 NULLS FIRST
$$;
COMMENT ON FUNCTION drift.log_partitions() IS 'The partitions of drift.interaction_log and drift.embeddings_log with their time range [starts, ends) (NULL for the default partition), read from the catalog.';

CREATE OR REPLACE FUNCTION drift.partition_start(p_at timestamptz, p_interval interval)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$ SELECT date_bin(p_interval, p_at, timestamptz '2000-01-03 00:00:00+00') $$;
COMMENT ON FUNCTION drift.partition_start(timestamptz, interval) IS 'Start of the partition step holding a timestamp (midnight UTC; weekly steps start on Mondays).';

CREATE OR REPLACE FUNCTION drift.create_log_partition(p_log text, p_starts timestamptz, p_ends timestamptz)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    name text := p_log || '_p' || to_char(p_starts AT TIME ZONE 'UTC', 'YYYYMMDD');
BEGIN
    IF p_log NOT IN ('interaction_log', 'embeddings_log') THEN
        RAISE EXCEPTION 'not a driftloop log table: %', p_log USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_regclass(format('drift.%I', name)) IS NOT NULL THEN  -- another width starting the same day
        name := name || to_char(p_starts AT TIME ZONE 'UTC', '"h"HH24') || '_' || to_char(p_ends AT TIME ZONE 'UTC', 'YYYYMMDD');
    END IF;
    -- Created apart, filled with the default partition's rows of its range, then attached:
    -- a partition cannot be created while the default partition holds rows of its range. The
    -- moved rows were counted by the rollups when first inserted; no trigger fires here
    -- (statement triggers belong to the parent, and the new table has no triggers yet).
    EXECUTE format('CREATE TABLE drift.%I (LIKE drift.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
                   ' INCLUDING STORAGE INCLUDING COMPRESSION)', name, p_log);
    EXECUTE format('WITH moved AS (DELETE FROM drift.%I WHERE created_at >= $1 AND created_at < $2 RETURNING *)'
                   ' INSERT INTO drift.%I SELECT * FROM moved', p_log || '_default', name)
        USING p_starts, p_ends;
    EXECUTE format('ALTER TABLE drift.%I ATTACH PARTITION drift.%I FOR VALUES FROM (%L) TO (%L)',
                   p_log, name, p_starts, p_ends);
    -- Like every table of schema drift; no role gets rights on a partition itself: the
    -- parent's rights, policies and statement triggers apply to every access through it.
    EXECUTE format('ALTER TABLE drift.%I ENABLE ROW LEVEL SECURITY', name);
    RETURN name;
END $$;
COMMENT ON FUNCTION drift.create_log_partition(text, timestamptz, timestamptz) IS 'Creates the partition [starts, ends) of a log table, moving in the rows the default partition holds for that range (internal; see drift.ensure_partitions).';

-- SECURITY DEFINER: drift.evaluate() calls it, and whoever evaluates (the worker role,
-- pg_cron) may not create tables in schema drift. It creates only log partitions of fixed
-- names and ranges, at most a year of steps ahead.
CREATE OR REPLACE FUNCTION drift.ensure_partitions(p_until timestamptz DEFAULT NULL, p_from_default boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
DECLARE
    iv interval := drift.setting('partition_interval')::interval;
    until timestamptz := least(coalesce(p_until, now() + drift.setting('partitions_ahead')::integer * iv),
                               now() + 366 * iv);
    t text;
    s timestamptz;
    e timestamptz;
    covered timestamptz;
    created integer := 0;
BEGIN
    -- Fast path (every evaluate() call): the partition of the last step exists in both logs,
    -- looked up by name (reading every partition's bounds costs ~0.15 ms per partition). A
    -- partition named otherwise (after a partition_interval change) takes the full check.
    IF NOT p_from_default AND (
        SELECT bool_and(c.relispartition) AND count(*) = 2
        FROM pg_class c
        WHERE c.relnamespace = 'drift'::regnamespace
          AND c.relname IN ('interaction_log_p' || to_char(drift.partition_start(until, iv) AT TIME ZONE 'UTC', 'YYYYMMDD'),
                            'embeddings_log_p' || to_char(drift.partition_start(until, iv) AT TIME ZONE 'UTC', 'YYYYMMDD'))
    ) THEN
        RETURN 0;
    END IF;
    IF NOT p_from_default AND (
        SELECT count(*) = 2 AND bool_and(x.last_end >= until)
        FROM (SELECT max(p.ends) AS last_end FROM drift.log_partitions() p WHERE NOT p.is_default GROUP BY p.log) x
    ) THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('drift.ensure_partitions'));
    FOREACH t IN ARRAY ARRAY['interaction_log', 'embeddings_log'] LOOP
        -- From now on to `until`; with p_from_default also every step the default partition
        -- has rows of (maintenance: back-filled history leaves the default partition).
        FOR s IN
            SELECT generate_series(drift.partition_start(now(), iv), until, iv)
            UNION
            SELECT d.step FROM drift.default_steps(t, iv) d WHERE p_from_default
            ORDER BY 1
        LOOP
            e := s + iv;
            -- Steps may overlap partitions of another width (partition_interval changed):
            -- create only the uncovered part. Skip every partition covering the start in turn:
            -- the one after a covering partition may start exactly where it ends (daily
            -- partitions inside a new weekly step).
            LOOP
                SELECT max(p.ends) INTO covered FROM drift.log_partitions() p
                WHERE p.log = t AND NOT p.is_default AND p.starts <= s AND p.ends > s;
                EXIT WHEN covered IS NULL OR s >= e;
                s := covered;
            END LOOP;
            SELECT least(e, min(p.starts)) INTO e FROM drift.log_partitions() p
            WHERE p.log = t AND NOT p.is_default AND p.starts > s AND p.starts < e;
            IF s < e THEN
                PERFORM drift.create_log_partition(t, s, e);
                created := created + 1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN created;
END $$;
COMMENT ON FUNCTION drift.ensure_partitions(timestamptz, boolean) IS 'Creates the log partitions from now to p_until (default: partitions_ahead steps ahead) that do not exist yet; with p_from_default also those for the rows in the default partitions, moving those rows in. Returns the partitions created. Called by drift.evaluate() (cheap when nothing is missing), driftloop db upgrade and db prune.';

CREATE OR REPLACE FUNCTION drift.default_steps(p_log text, p_interval interval)
RETURNS TABLE (step timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT DISTINCT drift.partition_start(created_at, $1) FROM drift.%I',
                                p_log || '_default') USING p_interval;
END $$;
COMMENT ON FUNCTION drift.default_steps(text, interval) IS 'The partition steps the default partition of a log holds rows of (internal).';

CREATE OR REPLACE FUNCTION drift.prune_logs(p_older_than interval)
RETURNS TABLE (log text, partition text, starts timestamptz, ends timestamptz, bytes bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    cutoff timestamptz;
    p record;
BEGIN
    IF p_older_than IS NULL OR p_older_than < interval '1 hour' THEN
        RAISE EXCEPTION 'prune_logs: the age must be at least 1 hour (got %)', p_older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    cutoff := now() - p_older_than;
    PERFORM pg_advisory_xact_lock(hashtext('drift.ensure_partitions'));
    -- Deltas of the rows about to go are folded first: the rollups keep every count.
    PERFORM drift.compact_rollups();
    FOR p IN SELECT * FROM drift.log_partitions() l WHERE NOT l.is_default AND l.ends <= cutoff LOOP
        log := p.log;
        partition := p.partition;
        starts := p.starts;
        ends := p.ends;
        bytes := pg_total_relation_size(format('drift.%I', p.partition)::regclass);
        EXECUTE format('DROP TABLE drift.%I', p.partition);
        RETURN NEXT;
    END LOOP;
    -- Old rows that sit in a default partition go too (counted as one entry per log).
    FOREACH log IN ARRAY ARRAY['interaction_log', 'embeddings_log'] LOOP
        EXECUTE format('DELETE FROM drift.%I WHERE created_at < $1', log || '_default') USING cutoff;
        GET DIAGNOSTICS bytes = ROW_COUNT;
        IF bytes > 0 THEN
            partition := log || '_default';
            starts := NULL;
            ends := cutoff;
            bytes := NULL;
            RETURN NEXT;
        END IF;
    END LOOP;
    PERFORM drift.fold_id_ranges(cutoff);  -- the id spans of the steps just dropped
    IF to_regprocedure('drift.prune_ingest_keys(timestamptz)') IS NOT NULL THEN
        PERFORM drift.prune_ingest_keys(cutoff);  -- keys pointing into the dropped partitions
    END IF;
END $$;
COMMENT ON FUNCTION drift.prune_logs(interval) IS 'Retention: drops every log partition whose range ended more than p_older_than ago (whole partitions: no row-by-row delete, no bloat), deletes older rows left in the default partitions, forgets their idempotency keys. Rollups, baselines, events and model versions stay. Returns the partitions dropped with their size.';

CREATE OR REPLACE FUNCTION drift.compact_rollups_hourly(p_older_than interval DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    age interval := coalesce(p_older_than, drift.setting('rollup_hourly_after')::interval);
    cutoff timestamptz;
    k bigint;
    folded bigint := 0;
BEGIN
    IF age IS NULL OR age <= interval '0' OR drift.setting('bucket_width')::interval >= interval '1 hour' THEN
        RETURN 0;
    END IF;
    cutoff := date_trunc('hour', now() - age);
    PERFORM drift.compact_rollups();
    -- Only hours holding more than one bucket, or a bucket not on the hour, are rewritten.
    WITH hours AS (
        SELECT r.model, date_trunc('hour', r.bucket, 'UTC') AS hour
        FROM drift.embedding_rollup r WHERE r.bucket < cutoff
        GROUP BY 1, 2 HAVING count(*) > 1 OR min(r.bucket) <> date_trunc('hour', min(r.bucket), 'UTC')
    ), moved AS (
        DELETE FROM drift.embedding_rollup r USING hours h
        WHERE r.model = h.model AND r.bucket >= h.hour AND r.bucket < h.hour + interval '1 hour'
        RETURNING r.*
    )
    INSERT INTO drift.embedding_rollup (model, bucket, n, vec_sum, sq_sum)
    SELECT m.model, date_trunc('hour', m.bucket, 'UTC'), sum(m.n), sum(m.vec_sum), sum(m.sq_sum)
    FROM moved m GROUP BY 1, 2;
    GET DIAGNOSTICS k = ROW_COUNT;
    folded := folded + k;

    WITH hours AS (
        SELECT r.model, date_trunc('hour', r.bucket, 'UTC') AS hour
        FROM drift.interaction_rollup r WHERE r.bucket < cutoff
        GROUP BY 1, 2 HAVING count(*) > 1 OR min(r.bucket) <> date_trunc('hour', min(r.bucket), 'UTC')
    ), moved AS (
        DELETE FROM drift.interaction_rollup r USING hours h
        WHERE r.model = h.model AND r.bucket >= h.hour AND r.bucket < h.hour + interval '1 hour'
        RETURNING r.*
    )
    INSERT INTO drift.interaction_rollup
    SELECT m.model, date_trunc('hour', m.bucket, 'UTC'), sum(m.interactions), sum(m.refusal_known), sum(m.refusals),
        sum(m.toxicity_scored), sum(m.toxic), sum(m.toxicity_sum), sum(m.feedback_given), sum(m.feedback_positive),
        sum(m.labelled), sum(m.correct), sum(m.quality_n), sum(m.quality_ok), sum(m.latency_sum), sum(m.latency_n)
    FROM moved m GROUP BY 1, 2;
    GET DIAGNOSTICS k = ROW_COUNT;
    folded := folded + k;

    -- Novelty counts follow the embedding buckets they were scored for.
    WITH hours AS (
        SELECT r.model, date_trunc('hour', r.bucket, 'UTC') AS hour
        FROM drift.novelty_rollup r WHERE r.bucket < cutoff
        GROUP BY 1, 2 HAVING count(*) > 1 OR min(r.bucket) <> date_trunc('hour', min(r.bucket), 'UTC')
    ), moved AS (
        DELETE FROM drift.novelty_rollup r USING hours h
        WHERE r.model = h.model AND r.bucket >= h.hour AND r.bucket < h.hour + interval '1 hour'
        RETURNING r.*
    )
    INSERT INTO drift.novelty_rollup (model, bucket, n, scored, novel)
    SELECT m.model, date_trunc('hour', m.bucket, 'UTC'), sum(m.n), sum(m.scored), sum(m.novel)
    FROM moved m GROUP BY 1, 2;

    -- The sequential test's statistic, a state and not a sum, keeps its last value of each hour
    -- (the model's latest row, which the next fold continues from, is always one of them).
    DELETE FROM drift.embedding_evidence e
    WHERE e.bucket < cutoff AND EXISTS (
        SELECT 1 FROM drift.embedding_evidence l
        WHERE l.model = e.model AND l.bucket > e.bucket AND l.bucket < date_trunc('hour', e.bucket, 'UTC') + interval '1 hour');
    RETURN folded;
END $$;
COMMENT ON FUNCTION drift.compact_rollups_hourly(interval) IS 'Folds the rollup buckets (embedding, interaction, novelty) older than p_older_than (default: the rollup_hourly_after setting) into one row per model and hour, and keeps the sequential test''s last statistic of each such hour; returns the hourly rollup rows written. Sums are exact; windows over that data are counted by whole hours.';

REVOKE EXECUTE ON FUNCTION drift.ensure_partitions(timestamptz, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION drift.create_log_partition(text, timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION drift.prune_logs(interval) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION drift.compact_rollups_hourly(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION drift.ensure_partitions(timestamptz, boolean) TO driftloop_worker;
