-- Baselines: frozen aggregates of each model's reference window, the embedding calibration
-- computed from them, and the nearest-neighbour novelty rate.
--
-- * Novelty rate: the share of current embeddings whose nearest neighbour in a bounded,
--   fixed-size sample of the baseline (pgvector HNSW) is farther than the sample's own
--   leave-one-out nearest-neighbour distance quantile. Under no drift a new embedding and
--   a sample point are exchangeable, so the expected rate is the sample's own rate; each
--   embedding is scored once (drift.novelty_rollup caches per-bucket counts), and at most
--   novelty_per_bucket embeddings of a bucket are (a hashed-id subsample), so the cost per
--   evaluation is bounded however busy the model is.

-- ---------------------------------------------------------------------------------------------
-- Baselines
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.set_baseline(model text, starts timestamptz, ends timestamptz,
    kinds text[] DEFAULT ARRAY['embedding', 'behavior', 'accuracy'], source text DEFAULT 'manual')
RETURNS SETOF drift.baselines
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    k text;
    e record;
    i drift.interaction_rollup;
    p_model alias FOR model;
BEGIN
    IF starts IS NULL OR ends IS NULL OR ends <= starts THEN
        RAISE EXCEPTION 'baseline window must have starts < ends (got % .. %)', starts, ends
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (isfinite(starts) AND isfinite(ends)) THEN
        RAISE EXCEPTION 'baseline window must have finite bounds (got % .. %)', starts, ends
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM drift.models m WHERE m.model = p_model) THEN
        RAISE EXCEPTION 'unknown model %: nothing has been logged for it', quote_literal(p_model)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH k IN ARRAY kinds LOOP
        IF k NOT IN ('embedding', 'behavior', 'accuracy') THEN
            RAISE EXCEPTION 'unknown drift kind %: use embedding, behavior or accuracy', quote_literal(k)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF k = 'embedding' THEN
            e := drift.embedding_window(p_model, starts, ends);
            RETURN QUERY
            INSERT INTO drift.baselines AS b (model, kind, starts, ends, source, n, vec_sum, sq_sum)
            VALUES (p_model, k, starts, ends, source, e.n, e.vec_sum, e.sq_sum)
            ON CONFLICT ON CONSTRAINT baselines_pkey DO UPDATE SET
                starts = excluded.starts, ends = excluded.ends, source = excluded.source, set_at = now(),
                n = excluded.n, vec_sum = excluded.vec_sum, sq_sum = excluded.sq_sum
            RETURNING b.*;
        ELSE
            i := drift.interaction_window(p_model, starts, ends);
            RETURN QUERY
            INSERT INTO drift.baselines AS b (model, kind, starts, ends, source, n, refusal_known, refusals,
                toxicity_scored, toxic, quality_n, quality_ok)
            VALUES (p_model, k, starts, ends, source, i.interactions, i.refusal_known, i.refusals,
                i.toxicity_scored, i.toxic, i.quality_n, i.quality_ok)
            ON CONFLICT ON CONSTRAINT baselines_pkey DO UPDATE SET
                starts = excluded.starts, ends = excluded.ends, source = excluded.source, set_at = now(),
                n = excluded.n, refusal_known = excluded.refusal_known, refusals = excluded.refusals,
                toxicity_scored = excluded.toxicity_scored, toxic = excluded.toxic,
                quality_n = excluded.quality_n, quality_ok = excluded.quality_ok
            RETURNING b.*;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION drift.set_baseline(text, timestamptz, timestamptz, text[], text) IS 'Sets the reference window of a model (for the given drift kinds, default all) and freezes its aggregates from the rollups; windows round to whole buckets.';

CREATE OR REPLACE FUNCTION drift.ensure_auto_baselines(p_as_of timestamptz, p_models text[] DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    span interval := coalesce(drift.setting('auto_baseline'), '0')::interval;
    cur_start timestamptz := drift.bucket_of(p_as_of, drift.setting('bucket_width')::interval)
        - drift.setting('current_window')::interval;
    min_n bigint := drift.setting('min_samples')::bigint;
    cand record;
    first_bucket timestamptz;
    made integer := 0;
BEGIN
    IF span <= interval '0' THEN
        RETURN 0;
    END IF;
    FOR cand IN
        SELECT m.model, k.kind FROM drift.models m
        CROSS JOIN unnest(ARRAY['embedding', 'behavior', 'accuracy']) AS k(kind)
        LEFT JOIN drift.baselines b ON b.model = m.model AND b.kind = k.kind
        WHERE (p_models IS NULL OR m.model = ANY (p_models))
          AND (CASE WHEN k.kind = 'embedding' THEN m.embedding_dims IS NOT NULL ELSE m.interactions_seen END)
          -- no baseline yet, or an automatic one still too small (e.g. labels arrive late)
          AND (b.model IS NULL OR (b.source = 'auto' AND
               (CASE WHEN k.kind = 'accuracy' THEN b.quality_n ELSE b.n END) < min_n))
    LOOP
        IF cand.kind = 'embedding' THEN
            SELECT min(x.bucket) INTO first_bucket FROM (
                (SELECT r.bucket FROM drift.embedding_rollup r WHERE r.model = cand.model ORDER BY r.bucket LIMIT 1)
                UNION ALL
                (SELECT d.bucket FROM drift.embedding_rollup_delta d WHERE d.model = cand.model ORDER BY d.bucket LIMIT 1)
            ) x;
        ELSE
            SELECT min(x.bucket) INTO first_bucket FROM (
                (SELECT r.bucket FROM drift.interaction_rollup r WHERE r.model = cand.model ORDER BY r.bucket LIMIT 1)
                UNION ALL
                (SELECT d.bucket FROM drift.interaction_rollup_delta d WHERE d.model = cand.model ORDER BY d.bucket LIMIT 1)
            ) x;
        END IF;
        -- Only once the whole baseline span lies before the current window.
        IF first_bucket IS NOT NULL AND first_bucket + span <= cur_start THEN
            PERFORM drift.set_baseline(cand.model, first_bucket, first_bucket + span, ARRAY[cand.kind], 'auto');
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$;
COMMENT ON FUNCTION drift.ensure_auto_baselines(timestamptz, text[]) IS 'Gives models without a baseline their first auto_baseline of data as baseline, once that span lies before the current window.';

CREATE OR REPLACE FUNCTION drift.baseline_bucket_sql(p_model text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    -- Per-bucket embedding sums of a model's baseline window (rollups plus pending deltas).
    SELECT format($q$
        SELECT s.bucket, sum(s.n)::bigint AS n, sum(s.vec_sum) AS vec_sum FROM (
            SELECT r.bucket, r.n, r.vec_sum FROM drift.embedding_rollup r, drift.baselines b
            WHERE r.model = %1$L AND b.model = %1$L AND b.kind = 'embedding' AND r.bucket >= b.starts AND r.bucket < b.ends
            UNION ALL
            SELECT d.bucket, d.n, d.vec_sum FROM drift.embedding_rollup_delta d, drift.baselines b
            WHERE d.model = %1$L AND b.model = %1$L AND b.kind = 'embedding' AND d.bucket >= b.starts AND d.bucket < b.ends
        ) s GROUP BY s.bucket HAVING sum(s.n) > 0 $q$, p_model)
$$;
COMMENT ON FUNCTION drift.baseline_bucket_sql(text) IS 'SQL text of the per-bucket sums of a model''s baseline window (internal).';

CREATE OR REPLACE FUNCTION drift.sample_nn_distances(p_model text, p_dims integer) RETURNS void
LANGUAGE plpgsql
-- The planner prices an exact scan and sort of a few thousand rows below the HNSW index, but
-- large vectors are TOASTed and that scan is then ~40x slower per query; without a sort
-- node the only plan left for ORDER BY distance is the index.
SET enable_sort = off
SET search_path = pg_catalog, public, extensions
AS $$
BEGIN
    EXECUTE format($q$
        UPDATE drift.baseline_samples s SET nn_distance = nn.d
        FROM (SELECT a.id, (SELECT o.embedding::vector(%2$s) <=> a.embedding::vector(%2$s)
                            FROM drift.baseline_samples o
                            WHERE o.model = %1$L AND o.id <> a.id
                            ORDER BY o.embedding::vector(%2$s) <=> a.embedding::vector(%2$s) LIMIT 1) AS d
              FROM drift.baseline_samples a WHERE a.model = %1$L) nn
        WHERE s.model = %1$L AND s.id = nn.id $q$, p_model, p_dims);
END $$;
COMMENT ON FUNCTION drift.sample_nn_distances(text, integer) IS 'Stores each baseline-sample point''s cosine distance to its nearest other sample point (leave-one-out), by HNSW search.';

CREATE OR REPLACE FUNCTION drift.embedding_calibrate(p_model text) RETURNS drift.embedding_calibration
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    b drift.baselines;
    dims integer;
    width interval := drift.setting('bucket_width')::interval;
    win interval := drift.setting('current_window')::interval;
    sample_size integer := drift.setting('novelty_sample_size')::integer;
    q double precision := drift.setting('novelty_quantile')::float8;
    lo timestamptz;
    hi timestamptz;
    buckets integer;
    src text;
    units_sql text;
    k integer;
    t1 double precision;
    t2 double precision;
    t3 double precision;
    nblocks integer := 0;
    phi double precision := 1;
    m_sample integer;
    radius double precision;
    expected double precision;
    idx text := 'baseline_samples_hnsw_' || left(md5(p_model), 16);
    result drift.embedding_calibration;
BEGIN
    DELETE FROM drift.embedding_calibration c WHERE c.model = p_model;
    DELETE FROM drift.baseline_samples s WHERE s.model = p_model;
    DELETE FROM drift.novelty_rollup r WHERE r.model = p_model;
    DELETE FROM drift.embedding_evidence e WHERE e.model = p_model;
    DELETE FROM drift.embedding_whitening w WHERE w.model = p_model;
    SELECT * INTO b FROM drift.baselines x WHERE x.model = p_model AND x.kind = 'embedding';
    SELECT m.embedding_dims INTO dims FROM drift.models m WHERE m.model = p_model;
    IF b.model IS NULL THEN
        EXECUTE format('DROP INDEX IF EXISTS drift.%I', idx);
    END IF;
    IF b.model IS NULL OR b.n < 2 OR dims IS NULL THEN
        RETURN NULL;
    END IF;

    -- The sample: raw rows of the baseline's buckets, chosen by hashed id (deterministic,
    -- unrelated to content). Only rows of buckets the baseline counts: [starts, ends) rounded up.
    lo := CASE WHEN drift.bucket_of(b.starts, width) = b.starts THEN b.starts ELSE drift.bucket_of(b.starts, width) + width END;
    hi := CASE WHEN drift.bucket_of(b.ends, width) = b.ends THEN b.ends ELSE drift.bucket_of(b.ends, width) + width END;
    INSERT INTO drift.baseline_samples (model, id, embedding)
    SELECT p_model, e.id, e.embedding FROM drift.embeddings_log e
    WHERE e.model = p_model AND e.created_at >= lo AND e.created_at < hi
    ORDER BY hashint8(e.id), e.id
    LIMIT sample_size;
    GET DIAGNOSTICS m_sample = ROW_COUNT;

    -- pgvector indexes need a fixed dimension: one partial expression index per model.
    IF dims <= 2000 AND to_regclass(format('drift.%I', idx)) IS NULL THEN
        EXECUTE format('CREATE INDEX %I ON drift.baseline_samples USING hnsw ((embedding::vector(%s)) vector_cosine_ops) WHERE model = %L',
            idx, dims, p_model);
    END IF;
    PERFORM drift.sample_nn_distances(p_model, dims);
    SELECT percentile_disc(q) WITHIN GROUP (ORDER BY s.nn_distance) INTO radius
    FROM drift.baseline_samples s WHERE s.model = p_model AND s.nn_distance IS NOT NULL;
    SELECT avg((s.nn_distance > radius)::integer) INTO expected
    FROM drift.baseline_samples s WHERE s.model = p_model AND s.nn_distance IS NOT NULL;

    -- Units for the covariance traces: baseline buckets (rollups) when there are enough,
    -- at most 2000 of them chosen by hashed time; else the sample rows (n = 1 each).
    EXECUTE format('SELECT count(*) FROM (%s) x', drift.baseline_bucket_sql(p_model)) INTO buckets;
    IF buckets >= 30 THEN
        src := 'buckets';
        units_sql := format('SELECT extract(epoch FROM bucket) AS ord, n, vec_sum FROM (%s) x
            ORDER BY hashint8(extract(epoch FROM bucket)::bigint) LIMIT 2000', drift.baseline_bucket_sql(p_model));
    ELSE
        src := 'sample';
        units_sql := format('SELECT id AS ord, 1::bigint AS n, embedding AS vec_sum FROM drift.baseline_samples WHERE model = %L',
            p_model);
    END IF;
    -- w_j = sqrt(n_j) (mean_j - baseline mean): zero mean, covariance S when units are
    -- independent. E|w|^2 = tr S; E (w_i.w_j)^2 = tr S^2 and
    -- E (w_i.w_j)(w_j.w_k)(w_k.w_i) = tr S^3 for distinct units, whatever their distribution.
    -- Units are numbered in time order and paired at far-apart offsets, so buckets next to
    -- each other (which may share a burst of traffic) are never paired.
    EXECUTE format($q$
        WITH u AS (
            SELECT (row_number() OVER (ORDER BY x.ord) - 1)::integer AS i, count(*) OVER ()::integer AS k,
                drift.scale_vector(x.vec_sum, 1 / sqrt(x.n::float8))
                  - drift.scale_vector(%1$L::vector, sqrt(x.n::float8) / %2$s) AS w
            FROM (%3$s) x
        ), offs AS (
            SELECT DISTINCT 1 + (r * (max(u.k) / 2 - 1)) / 8 AS o FROM u, generate_series(1, 8) r GROUP BY r
        ), pairs AS (
            SELECT (a.w <#> b.w) ^ 2 AS p2
            FROM u a CROSS JOIN offs JOIN u b ON b.i = (a.i + offs.o) %% a.k
        ), triples AS (
            SELECT -(a.w <#> b.w) * (b.w <#> c.w) * (c.w <#> a.w) AS p3
            FROM u a CROSS JOIN offs
            JOIN u b ON b.i = (a.i + offs.o) %% a.k
            JOIN u c ON c.i = (a.i + 2 * offs.o) %% a.k
            WHERE (2 * offs.o) %% a.k <> 0 AND offs.o %% a.k <> 0 AND (2 * offs.o) %% a.k <> offs.o %% a.k
        )
        SELECT (SELECT max(k) FROM u), (SELECT avg(-(w <#> w)) FROM u), (SELECT avg(p2) FROM pairs),
            (SELECT avg(p3) FROM triples) $q$,
        b.vec_sum, b.n, units_sql) INTO k, t1, t2, t3;
    IF k IS NULL OR k < 3 OR t1 IS NULL OR t1 <= 0 OR t2 IS NULL OR t2 <= 0 THEN
        RETURN NULL;
    END IF;
    -- Any covariance has tr2^2/tr1 <= tr3 <= tr2^1.5; clamp the noisy estimate into that range.
    t3 := least(greatest(coalesce(t3, t2 * t2 / t1), t2 * t2 / t1), t2 ^ 1.5);

    -- Overdispersion at the scale of the current window: block means vary more than
    -- independent embeddings predict when traffic drifts within the baseline (hours, days).
    EXECUTE format($q$
        WITH blk AS (
            SELECT floor(extract(epoch FROM x.bucket - %4$L::timestamptz) / %5$s)::bigint AS blk,
                sum(x.n)::bigint AS n, sum(x.vec_sum) AS vec_sum
            FROM (%3$s) x GROUP BY 1
        ), w AS (
            SELECT blk.n, drift.scale_vector(blk.vec_sum, 1 / sqrt(blk.n::float8))
                - drift.scale_vector(%1$L::vector, sqrt(blk.n::float8) / %2$s) AS w
            FROM blk WHERE blk.n::float8 < %2$s
        )
        SELECT count(*)::integer, avg(-(w.w <#> w.w) / (1 - w.n::float8 / %2$s)) / %6$s FROM w $q$,
        b.vec_sum, b.n, drift.baseline_bucket_sql(p_model), lo, extract(epoch FROM win), t1) INTO nblocks, phi;
    IF nblocks < 8 OR phi IS NULL THEN
        nblocks := 0;
        phi := 1;
    END IF;

    INSERT INTO drift.embedding_calibration (model, dims, units, unit_source, trace1, trace2, trace3, blocks,
        dispersion, sample_n, novelty_radius, novelty_expected)
    VALUES (p_model, dims, k, src, t1, t2, t3, nblocks, greatest(phi, 1), m_sample, radius, expected);
    PERFORM drift.embedding_whiten(p_model);
    SELECT * INTO result FROM drift.embedding_calibration c WHERE c.model = p_model;
    RETURN result;
END $$;
COMMENT ON FUNCTION drift.embedding_calibrate(text) IS 'Recomputes a model''s embedding calibration from its baseline: the bounded baseline sample with its HNSW index and leave-one-out distances, the covariance traces, the block overdispersion and the sequential test''s whitening; clears the novelty cache and the sequential evidence.';

CREATE OR REPLACE FUNCTION drift.baselines_calibrate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM drift.embedding_calibrate(CASE WHEN TG_OP = 'DELETE' THEN OLD.model ELSE NEW.model END);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.baselines_calibrate() IS 'Recalibrates the embedding tests whenever a model''s embedding baseline is set or moved; removes the calibration, sample and index when it is deleted.';
CREATE OR REPLACE TRIGGER baselines_calibrate AFTER INSERT OR UPDATE ON drift.baselines
    FOR EACH ROW WHEN (NEW.kind = 'embedding') EXECUTE FUNCTION drift.baselines_calibrate();
CREATE OR REPLACE TRIGGER baselines_uncalibrate AFTER DELETE ON drift.baselines
    FOR EACH ROW WHEN (OLD.kind = 'embedding') EXECUTE FUNCTION drift.baselines_calibrate();

-- ---------------------------------------------------------------------------------------------
-- Novelty rate
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.novelty_buckets(p_model text, p_buckets timestamptz[])
RETURNS TABLE (bucket timestamptz, n bigint, scored bigint, novel bigint)
LANGUAGE plpgsql STABLE
SET enable_sort = off  -- use the HNSW index: see drift.sample_nn_distances
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    c drift.embedding_calibration;
    width interval := drift.setting('bucket_width')::interval;
    cap bigint := coalesce(drift.setting('novelty_per_bucket'), '200')::bigint;
    lo timestamptz;
    hi timestamptz;
BEGIN
    SELECT * INTO c FROM drift.embedding_calibration x WHERE x.model = p_model;
    IF c.model IS NULL OR c.novelty_radius IS NULL OR cardinality(p_buckets) = 0 THEN
        RETURN;
    END IF;
    SELECT min(x), max(x) + width INTO lo, hi FROM unnest(p_buckets) x;
    -- The model's literal in the query lets the planner use its partial HNSW index; the
    -- embeddings come from the (model, created_at) index, bounded by the buckets asked for.
    -- Ids are picked first (small rows to sort), then only the picked embeddings are read.
    -- Both reads of the log carry the time range as parameters, which EXECUTE plans as
    -- constants: the planner prunes to the partitions of those buckets, so scoring costs the
    -- same with 1 or 90 days of partitions (joined on id alone, every partition was read).
    RETURN QUERY EXECUTE format($q$
        WITH ids AS (
            SELECT e.id, e.created_at, drift.bucket_of(e.created_at, $2) AS bucket FROM drift.embeddings_log e
            WHERE e.model = %1$L AND e.created_at >= $5 AND e.created_at < $6
              AND drift.bucket_of(e.created_at, $2) = ANY ($1)
        ), pick AS (
            SELECT ids.id, ids.created_at, ids.bucket, count(*) OVER (PARTITION BY ids.bucket) AS n,
                row_number() OVER (PARTITION BY ids.bucket ORDER BY hashint8(ids.id), ids.id) AS rank
            FROM ids
        )
        SELECT p.bucket, max(p.n), count(*), count(*) FILTER (WHERE nn.d > $3)
        FROM pick p
        -- (id, created_at) is each partition's primary key: one probe per picked row (with
        -- the model too the planner scans the bucket's (model, created_at) range per row).
        JOIN drift.embeddings_log e ON e.id = p.id AND e.created_at = p.created_at
            AND e.created_at >= $5 AND e.created_at < $6
        CROSS JOIN LATERAL (
            SELECT s.embedding::vector(%2$s) <=> e.embedding::vector(%2$s) AS d
            FROM drift.baseline_samples s WHERE s.model = %1$L
            ORDER BY s.embedding::vector(%2$s) <=> e.embedding::vector(%2$s) LIMIT 1) nn
        WHERE p.rank <= $4
        GROUP BY p.bucket $q$, p_model, c.dims)
    USING p_buckets, width, c.novelty_radius, cap, lo, hi;
END $$;
COMMENT ON FUNCTION drift.novelty_buckets(text, timestamptz[]) IS 'Per bucket: embeddings, embeddings searched (at most novelty_per_bucket, by hashed id) and novel ones (nearest baseline-sample neighbour beyond the radius, by HNSW search).';

CREATE OR REPLACE FUNCTION drift.novelty_todo(p_model text, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (bucket timestamptz, n bigint, cached_scored bigint, cached_novel bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog
SET plan_cache_mode = force_generic_plan  -- a range scan of the rollups: see drift.embedding_window
AS $$
    -- Buckets of the window with their embedding count; the cached counts are NULL when the
    -- bucket was never scored or has gained embeddings since.
    SELECT r.bucket, r.n, c.scored, c.novel
    FROM (
        SELECT s.bucket, sum(s.n)::bigint AS n FROM (
            SELECT x.bucket, x.n FROM drift.embedding_rollup x
            WHERE x.model = p_model AND x.bucket >= p_from AND x.bucket < p_to
            UNION ALL
            SELECT d.bucket, d.n FROM drift.embedding_rollup_delta d
            WHERE d.model = p_model AND d.bucket >= p_from AND d.bucket < p_to
        ) s GROUP BY s.bucket
    ) r
    LEFT JOIN drift.novelty_rollup c ON c.model = p_model AND c.bucket = r.bucket AND c.n = r.n
$$;
COMMENT ON FUNCTION drift.novelty_todo(text, timestamptz, timestamptz) IS 'Buckets of a window with their embedding counts and cached novelty counts (NULL: to be scored).';

CREATE OR REPLACE FUNCTION drift.novelty_window(p_model text, p_from timestamptz, p_to timestamptz,
    OUT scored bigint, OUT novel bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
DECLARE
    todo timestamptz[];
    live_scored bigint;
    live_novel bigint;
BEGIN
    SELECT coalesce(sum(t.cached_scored), 0)::bigint, coalesce(sum(t.cached_novel), 0)::bigint,
           array_agg(t.bucket) FILTER (WHERE t.cached_novel IS NULL)
    INTO scored, novel, todo
    FROM drift.novelty_todo(p_model, p_from, p_to) t;
    IF todo IS NOT NULL THEN
        SELECT coalesce(sum(l.scored), 0), coalesce(sum(l.novel), 0) INTO live_scored, live_novel
        FROM drift.novelty_buckets(p_model, todo) l;
        scored := scored + live_scored;
        novel := novel + live_novel;
    END IF;
END $$;
COMMENT ON FUNCTION drift.novelty_window(text, timestamptz, timestamptz) IS 'Embeddings searched and novel embeddings of a model in [from, to): cached buckets from drift.novelty_rollup, the rest searched now.';

CREATE OR REPLACE FUNCTION drift.novelty_score(p_model text, p_from timestamptz, p_to timestamptz) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    todo timestamptz[];
    k integer;
BEGIN
    SELECT array_agg(t.bucket) INTO todo FROM drift.novelty_todo(p_model, p_from, p_to) t WHERE t.cached_novel IS NULL;
    IF todo IS NULL THEN
        RETURN 0;
    END IF;
    INSERT INTO drift.novelty_rollup AS c (model, bucket, n, scored, novel)
    SELECT p_model, l.bucket, l.n, l.scored, l.novel FROM drift.novelty_buckets(p_model, todo) l
    ON CONFLICT (model, bucket) DO UPDATE SET n = excluded.n, scored = excluded.scored, novel = excluded.novel;
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN k;
END $$;
COMMENT ON FUNCTION drift.novelty_score(text, timestamptz, timestamptz) IS 'Scores the not yet (or no longer) cached buckets of a window into drift.novelty_rollup; returns the buckets written.';
