-- Detection you can trust: calibrated tests, a nearest-neighbour novelty rate, and a
-- per-evaluation significance level that keeps evaluating every minute from multiplying
-- false alarms.
--
-- * Embedding mean drift: T = squared distance between the current and baseline mean
--   embeddings. Its null distribution is a weighted chi-square whose weights are the
--   eigenvalues of the embeddings' covariance; we match its first three cumulants
--   (tr S, tr S^2, tr S^3, estimated from pairs and triples of baseline *buckets* of the
--   rollups, so correlated dimensions and minute-to-minute variation are included) and
--   widen it by the spread of window-length blocks of the baseline (overdispersion).
-- * Novelty rate: the share of current embeddings whose nearest neighbour in a bounded,
--   fixed-size sample of the baseline (pgvector HNSW) is farther than the sample's own
--   leave-one-out nearest-neighbour distance quantile. Under no drift a new embedding and
--   a sample point are exchangeable, so the expected rate is the sample's own rate; each
--   embedding is scored once (drift.novelty_rollup caches per-bucket counts), and at most
--   novelty_per_bucket embeddings of a bucket are (a hashed-id subsample), so the cost per
--   evaluation is bounded however busy the model is.
-- * Rates (refusal, toxicity, errors): one-sided two-sample test on Anscombe's arcsine
--   transform (better tails than the plain z-test at small rates), Wilson intervals,
--   combined with the seed's absolute thresholds.
-- * Repeated evaluation: drifted (and so an event) needs p_value below a per-evaluation
--   level chosen so that a drift-free model evaluated every bucket raises on average at most
--   one false event per false_alarm_interval (default 30 days), over all its metrics.
--   The level comes from the up-crossing rate of a sliding-window statistic.

INSERT INTO drift.settings (key, value, description) VALUES
    ('false_alarm_interval', '30 days', 'Expected data time between false events of one drift-free model evaluated every bucket; sets the per-evaluation significance level (0 = use alpha at every evaluation).'),
    ('novelty_sample_size', '2000', 'Embeddings sampled from the baseline window for the nearest-neighbour novelty rate; bounds its cost whatever the history size.'),
    ('novelty_per_bucket', '200', 'At most this many embeddings of each bucket (a hashed-id subsample) are searched for the novelty rate: its cost stays flat however busy the model.'),
    ('novelty_quantile', '0.99', 'An embedding is novel when its nearest baseline-sample neighbour is farther than this quantile of the sample''s own nearest-neighbour distances.'),
    ('embedding_distance_floor', '0', 'Optional effect floor: centroid cosine distance below which a significant mean shift is not reported as drift (0 = off).')
ON CONFLICT (key) DO NOTHING;

CREATE FUNCTION drift.detection_settings_validate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    num double precision;
BEGIN
    BEGIN
        CASE NEW.key
            WHEN 'false_alarm_interval' THEN
                IF NEW.value::interval < interval '0' THEN RAISE EXCEPTION 'must not be negative'; END IF;
            WHEN 'novelty_per_bucket' THEN
                IF NEW.value::integer NOT BETWEEN 10 AND 1000000 THEN RAISE EXCEPTION 'must be between 10 and 1000000'; END IF;
            WHEN 'novelty_sample_size' THEN
                IF NEW.value::integer NOT BETWEEN 100 AND 100000 THEN RAISE EXCEPTION 'must be between 100 and 100000'; END IF;
            WHEN 'novelty_quantile' THEN
                num := NEW.value::double precision;
                IF NOT (num >= 0.5 AND num <= 0.999) THEN RAISE EXCEPTION 'must be between 0.5 and 0.999'; END IF;
            WHEN 'embedding_distance_floor' THEN
                num := NEW.value::double precision;
                IF NOT (num >= 0 AND num <= 2) THEN RAISE EXCEPTION 'must be between 0 and 2'; END IF;
            ELSE
                NULL;
        END CASE;
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'invalid value % for drift setting %: %', quote_literal(NEW.value), NEW.key, SQLERRM
            USING ERRCODE = 'invalid_parameter_value';
    END;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION drift.detection_settings_validate() IS 'Rejects bad values of the detection settings (false_alarm_interval, novelty_*, embedding_distance_floor).';
CREATE TRIGGER settings_validate_detection BEFORE INSERT OR UPDATE ON drift.settings
    FOR EACH ROW EXECUTE FUNCTION drift.detection_settings_validate();

-- ---------------------------------------------------------------------------------------------
-- Distributions
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION drift.chi2_sf_real(x double precision, nu double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- Wilson-Hilferty with real degrees of freedom (the matched-moment nu is not an integer).
    SELECT CASE WHEN nu <= 0 THEN NULL WHEN x <= 0 THEN 1.0
        ELSE drift.normal_sf((cbrt(x / nu) - (1 - 2.0 / (9 * nu))) / sqrt(2.0 / (9 * nu))) END
$$;
COMMENT ON FUNCTION drift.chi2_sf_real(double precision, double precision) IS 'Upper tail of the chi-square distribution with real degrees of freedom nu (Wilson-Hilferty).';

CREATE FUNCTION drift.normal_isf(p double precision) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
DECLARE
    q double precision;
    r double precision;
    lo double precision := least(p, 1 - p);
    x double precision;
BEGIN
    -- z with P(Z > z) = p: Acklam's rational approximation (relative error < 1.2e-9).
    IF p <= 0 THEN RETURN 'Infinity'; END IF;
    IF p >= 1 THEN RETURN '-Infinity'; END IF;
    IF lo < 0.02425 THEN
        q := sqrt(-2 * ln(lo));
        x := (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e+00) * q
               - 2.549732539343734e+00) * q + 4.374664141464968e+00) * q + 2.938163982698783e+00)
             / ((((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e+00) * q
               + 3.754408661907416e+00) * q + 1);
    ELSE
        q := lo - 0.5;
        r := q * q;
        x := (((((-3.969683028665376e+01 * r + 2.209460984245205e+02) * r - 2.759285104469687e+02) * r
               + 1.383577518672690e+02) * r - 3.066479806614716e+01) * r + 2.506628277459239e+00) * q
             / (((((-5.447609879822406e+01 * r + 1.615858368580409e+02) * r - 1.556989798598866e+02) * r
               + 6.680131188771972e+01) * r - 1.328068155288572e+01) * r + 1);
    END IF;
    -- x is the lower quantile of lo (x <= 0); the upper quantile of p is its mirror image.
    RETURN CASE WHEN p <= 0.5 THEN -x ELSE x END;
END $$;
COMMENT ON FUNCTION drift.normal_isf(double precision) IS 'Inverse upper tail of the standard normal: the z with P(Z > z) = p.';

CREATE FUNCTION drift.look_alpha(p_window interval DEFAULT NULL) RETURNS double precision
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
DECLARE
    alpha double precision := drift.setting('alpha')::float8;
    width interval := drift.setting('bucket_width')::interval;
    horizon interval := coalesce(drift.setting('false_alarm_interval'), '0')::interval;
    win double precision;
    looks double precision;
    lo double precision := 0.5;
    hi double precision := 38;
    u double precision;
    -- Event streams per model (centroid_distance, novelty_rate, refusal_rate, toxicity_rate,
    -- accuracy): the budget of one false event per interval is shared between them.
    streams constant integer := 5;
BEGIN
    IF horizon <= interval '0' THEN
        RETURN alpha;
    END IF;
    win := greatest(1, extract(epoch FROM coalesce(p_window, drift.setting('current_window')::interval))
                       / extract(epoch FROM width));
    looks := streams * extract(epoch FROM horizon) / extract(epoch FROM width);
    -- A sliding window of `win` buckets, evaluated every bucket, crosses level u about
    -- u*phi(u)/win times per bucket (scan statistics); doubled because quadratic statistics
    -- decorrelate twice as fast, and never more than the exceedance rate P(Z > u) itself.
    -- Bisection for: looks * rate(u) = 1 (rate falls as u grows).
    FOR i IN 1..80 LOOP
        u := (lo + hi) / 2;
        IF looks * least(drift.normal_sf(u), 2 * u * exp(-u * u / 2) / sqrt(2 * pi()) / win) > 1 THEN
            lo := u;
        ELSE
            hi := u;
        END IF;
    END LOOP;
    RETURN least(alpha, drift.normal_sf(hi));
END $$;
COMMENT ON FUNCTION drift.look_alpha(interval) IS 'Per-evaluation significance level: drift-free traffic evaluated every bucket with this window raises at most one false event per false_alarm_interval per model (never above alpha).';

CREATE FUNCTION drift.rate_increase_p(x_cur bigint, n_cur bigint, x_base bigint, n_base bigint)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- One-sided two-sample test on Anscombe's arcsine transform asin(sqrt((x+3/8)/(n+3/4))),
    -- whose variance 1/(4n+2) hardly depends on the rate: its tails stay honest at the small
    -- rates (refusals, toxicity) where the pooled z-test over-rejects.
    SELECT CASE
        WHEN n_cur IS NULL OR n_base IS NULL OR n_cur < 1 OR n_base < 1 THEN NULL
        ELSE drift.normal_sf(
            (asin(sqrt((x_cur + 0.375) / (n_cur + 0.75))) - asin(sqrt((x_base + 0.375) / (n_base + 0.75))))
            / sqrt(1.0 / (4 * n_cur + 2) + 1.0 / (4 * n_base + 2)))
    END
$$;
COMMENT ON FUNCTION drift.rate_increase_p(bigint, bigint, bigint, bigint) IS 'p-value of a one-sided arcsine two-sample test that the current rate x_cur/n_cur exceeds the baseline rate.';

CREATE FUNCTION drift.wilson_interval(x bigint, n bigint, level double precision,
    OUT low double precision, OUT high double precision)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT (p + z * z / (2 * m) - z * sqrt(p * (1 - p) / m + z * z / (4 * m * m))) / (1 + z * z / m),
           (p + z * z / (2 * m) + z * sqrt(p * (1 - p) / m + z * z / (4 * m * m))) / (1 + z * z / m)
    FROM (SELECT x / nullif(n, 0)::float8 AS p, nullif(n, 0)::float8 AS m,
                 drift.normal_isf((1 - level) / 2) AS z) s
$$;
COMMENT ON FUNCTION drift.wilson_interval(bigint, bigint, double precision) IS 'Two-sided Wilson score interval of a proportion x/n at the given confidence level.';

CREATE FUNCTION drift.cohens_h(p1 double precision, p0 double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$ SELECT 2 * asin(sqrt(least(greatest(p1, 0), 1))) - 2 * asin(sqrt(least(greatest(p0, 0), 1))) $$;
COMMENT ON FUNCTION drift.cohens_h(double precision, double precision) IS 'Cohen''s h effect size between two proportions (difference of arcsine-transformed rates).';

-- ---------------------------------------------------------------------------------------------
-- Baseline calibration of the embedding tests
-- ---------------------------------------------------------------------------------------------
CREATE TABLE drift.embedding_calibration (
    model text PRIMARY KEY,
    dims integer NOT NULL,
    units integer NOT NULL,
    unit_source text NOT NULL CHECK (unit_source IN ('buckets', 'sample')),
    trace1 double precision NOT NULL,
    trace2 double precision NOT NULL,
    trace3 double precision NOT NULL,
    blocks integer NOT NULL,
    dispersion double precision NOT NULL,
    sample_n integer NOT NULL,
    novelty_radius double precision,
    novelty_expected double precision,
    computed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE drift.embedding_calibration IS 'Null distribution of the embedding tests, estimated from each model''s baseline when it is set.';
COMMENT ON COLUMN drift.embedding_calibration.model IS 'Model name.';
COMMENT ON COLUMN drift.embedding_calibration.dims IS 'Embedding dimension.';
COMMENT ON COLUMN drift.embedding_calibration.units IS 'Baseline units the covariance traces come from (non-empty buckets, or sample rows when the baseline has fewer than 30 buckets).';
COMMENT ON COLUMN drift.embedding_calibration.unit_source IS 'buckets (rollups) or sample (drift.baseline_samples rows).';
COMMENT ON COLUMN drift.embedding_calibration.trace1 IS 'tr(S): total variance of one embedding, from the spread of the baseline units'' means.';
COMMENT ON COLUMN drift.embedding_calibration.trace2 IS 'tr(S^2), from squared inner products of pairs of distinct units'' deviations.';
COMMENT ON COLUMN drift.embedding_calibration.trace3 IS 'tr(S^3), from triples of distinct units (clamped to the range any covariance allows).';
COMMENT ON COLUMN drift.embedding_calibration.blocks IS 'Window-length blocks of the baseline used for the overdispersion (0: too few, dispersion 1).';
COMMENT ON COLUMN drift.embedding_calibration.dispersion IS 'Spread of window-length block means relative to what independent embeddings predict (at least 1); scales the null.';
COMMENT ON COLUMN drift.embedding_calibration.sample_n IS 'Rows in drift.baseline_samples for this model.';
COMMENT ON COLUMN drift.embedding_calibration.novelty_radius IS 'Cosine distance: the novelty_quantile of the sample''s leave-one-out nearest-neighbour distances.';
COMMENT ON COLUMN drift.embedding_calibration.novelty_expected IS 'Share of sample points farther than the radius from their nearest other sample point: the novelty rate expected without drift.';
COMMENT ON COLUMN drift.embedding_calibration.computed_at IS 'When the calibration was computed.';

CREATE TABLE drift.baseline_samples (
    model text NOT NULL,
    id bigint NOT NULL,
    embedding vector NOT NULL,
    nn_distance double precision,
    PRIMARY KEY (model, id)
);
COMMENT ON TABLE drift.baseline_samples IS 'A fixed-size, deterministic pseudo-random sample (by hashed id) of each model''s baseline embeddings, with a per-model HNSW index: the reference of the novelty rate.';
COMMENT ON COLUMN drift.baseline_samples.model IS 'Model name.';
COMMENT ON COLUMN drift.baseline_samples.id IS 'The drift.embeddings_log id sampled.';
COMMENT ON COLUMN drift.baseline_samples.embedding IS 'The embedding.';
COMMENT ON COLUMN drift.baseline_samples.nn_distance IS 'Cosine distance to its nearest other sample point (leave-one-out).';

CREATE TABLE drift.novelty_rollup (
    model text NOT NULL,
    bucket timestamptz NOT NULL,
    n bigint NOT NULL,
    scored bigint NOT NULL,
    novel bigint NOT NULL,
    PRIMARY KEY (model, bucket)
);
COMMENT ON TABLE drift.novelty_rollup IS 'Novelty counts per model and bucket, so each embedding is compared with the baseline sample once; a bucket whose embedding count changed is scored again. Cleared when the baseline moves.';
COMMENT ON COLUMN drift.novelty_rollup.model IS 'Model name.';
COMMENT ON COLUMN drift.novelty_rollup.bucket IS 'Start of the time bucket.';
COMMENT ON COLUMN drift.novelty_rollup.n IS 'Embeddings in the bucket when it was scored (a bucket that has more now is scored again).';
COMMENT ON COLUMN drift.novelty_rollup.scored IS 'Embeddings searched: all of them, or a novelty_per_bucket subsample by hashed id.';
COMMENT ON COLUMN drift.novelty_rollup.novel IS 'Of those, embeddings farther than the novelty radius from every baseline-sample point.';

CREATE FUNCTION drift.scale_vector(v vector, f double precision) RETURNS vector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, public, extensions
AS $$ SELECT v * array_fill(f::real, ARRAY[vector_dims(v)])::vector $$;
COMMENT ON FUNCTION drift.scale_vector(vector, double precision) IS 'v times a scalar (pgvector multiplies element-wise only).';

CREATE FUNCTION drift.baseline_bucket_sql(p_model text) RETURNS text
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

CREATE FUNCTION drift.sample_nn_distances(p_model text, p_dims integer) RETURNS void
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

CREATE FUNCTION drift.embedding_calibrate(p_model text) RETURNS drift.embedding_calibration
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
    VALUES (p_model, dims, k, src, t1, t2, t3, nblocks, greatest(phi, 1), m_sample, radius, expected)
    RETURNING * INTO result;
    RETURN result;
END $$;
COMMENT ON FUNCTION drift.embedding_calibrate(text) IS 'Recomputes a model''s embedding calibration from its baseline: the bounded baseline sample with its HNSW index and leave-one-out distances, the covariance traces and the block overdispersion.';

CREATE FUNCTION drift.baselines_calibrate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM drift.embedding_calibrate(CASE WHEN TG_OP = 'DELETE' THEN OLD.model ELSE NEW.model END);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.baselines_calibrate() IS 'Recalibrates the embedding tests whenever a model''s embedding baseline is set or moved; removes the calibration, sample and index when it is deleted.';
CREATE TRIGGER baselines_calibrate AFTER INSERT OR UPDATE ON drift.baselines
    FOR EACH ROW WHEN (NEW.kind = 'embedding') EXECUTE FUNCTION drift.baselines_calibrate();
CREATE TRIGGER baselines_uncalibrate AFTER DELETE ON drift.baselines
    FOR EACH ROW WHEN (OLD.kind = 'embedding') EXECUTE FUNCTION drift.baselines_calibrate();

-- ---------------------------------------------------------------------------------------------
-- Novelty rate
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION drift.novelty_buckets(p_model text, p_buckets timestamptz[])
RETURNS TABLE (bucket timestamptz, n bigint, scored bigint, novel bigint)
LANGUAGE plpgsql STABLE
SET enable_sort = off  -- use the HNSW index: see drift.sample_nn_distances
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    c drift.embedding_calibration;
    width interval := drift.setting('bucket_width')::interval;
    cap bigint := coalesce(drift.setting('novelty_per_bucket'), '200')::bigint;
BEGIN
    SELECT * INTO c FROM drift.embedding_calibration x WHERE x.model = p_model;
    IF c.model IS NULL OR c.novelty_radius IS NULL OR cardinality(p_buckets) = 0 THEN
        RETURN;
    END IF;
    -- The model's literal in the query lets the planner use its partial HNSW index; the
    -- embeddings come from the (model, created_at) index, bounded by the buckets asked for.
    -- Ids are picked first (small rows to sort), then only the picked embeddings are read.
    RETURN QUERY EXECUTE format($q$
        WITH ids AS (
            SELECT e.id, drift.bucket_of(e.created_at, $2) AS bucket FROM drift.embeddings_log e
            WHERE e.model = %1$L AND e.created_at >= (SELECT min(x) FROM unnest($1) x)
              AND e.created_at < (SELECT max(x) FROM unnest($1) x) + $2
              AND drift.bucket_of(e.created_at, $2) = ANY ($1)
        ), pick AS (
            SELECT ids.id, ids.bucket, count(*) OVER (PARTITION BY ids.bucket) AS n,
                row_number() OVER (PARTITION BY ids.bucket ORDER BY hashint8(ids.id), ids.id) AS rank
            FROM ids
        )
        SELECT p.bucket, max(p.n), count(*), count(*) FILTER (WHERE nn.d > $3)
        FROM pick p
        JOIN drift.embeddings_log e ON e.id = p.id
        CROSS JOIN LATERAL (
            SELECT s.embedding::vector(%2$s) <=> e.embedding::vector(%2$s) AS d
            FROM drift.baseline_samples s WHERE s.model = %1$L
            ORDER BY s.embedding::vector(%2$s) <=> e.embedding::vector(%2$s) LIMIT 1) nn
        WHERE p.rank <= $4
        GROUP BY p.bucket $q$, p_model, c.dims)
    USING p_buckets, width, c.novelty_radius, cap;
END $$;
COMMENT ON FUNCTION drift.novelty_buckets(text, timestamptz[]) IS 'Per bucket: embeddings, embeddings searched (at most novelty_per_bucket, by hashed id) and novel ones (nearest baseline-sample neighbour beyond the radius, by HNSW search).';

CREATE FUNCTION drift.novelty_todo(p_model text, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (bucket timestamptz, n bigint, cached_scored bigint, cached_novel bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog
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

CREATE FUNCTION drift.novelty_window(p_model text, p_from timestamptz, p_to timestamptz,
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

CREATE FUNCTION drift.novelty_score(p_model text, p_from timestamptz, p_to timestamptz) RETURNS integer
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

CREATE OR REPLACE FUNCTION drift.prepare_report(p_as_of timestamptz, p_models text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    cfg record := drift.report_config(p_as_of);
    m record;
BEGIN
    -- Score and cache the window's novelty before the report reads it, so each embedding is
    -- searched once (a bucket that gained rows since is scored again), not at every read.
    FOR m IN
        SELECT c.model FROM drift.embedding_calibration c
        WHERE p_models IS NULL OR c.model = ANY (p_models)
    LOOP
        PERFORM drift.novelty_score(m.model, cfg.window_start, cfg.window_end);
    END LOOP;
END $$;
COMMENT ON FUNCTION drift.prepare_report(timestamptz, text[]) IS 'Called by drift.evaluate_models before it reads the report: caches the novelty counts of each calibrated model''s current window.';

-- ---------------------------------------------------------------------------------------------
-- Reports
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION drift.embedding_mean_test(n_cur bigint, sum_cur vector, n_base bigint, sum_base vector,
    c drift.embedding_calibration,
    OUT statistic double precision, OUT expected double precision, OUT dof double precision,
    OUT p_value double precision, OUT effect_size double precision)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, public, extensions
AS $$
    -- T = |mean_cur - mean_base|^2 is a weighted chi-square under no drift, with cumulants
    -- k1 = tr1 h, k2 = 2 tr2 h^2, k3 = 8 tr3 h^3, h = dispersion (1/n_cur + 1/n_base).
    -- Pearson's three-moment fit: (T - k1)/sqrt(k2) ~ (X - nu)/sqrt(2 nu), X ~ chi2(nu),
    -- nu = tr2^3 / tr3^2, which keeps the heavy tail that few dominant directions give.
    SELECT t.stat, k.k1, k.nu,
        drift.chi2_sf_real(k.nu + (t.stat - k.k1) * sqrt(2 * k.nu / k.k2), k.nu),
        sqrt(greatest(t.stat - k.k1, 0) / (c).trace1)
    FROM (SELECT -(d <#> d) AS stat
          FROM (SELECT drift.scale_vector(sum_cur, 1.0 / nullif(n_cur, 0)) - drift.scale_vector(sum_base, 1.0 / nullif(n_base, 0)) AS d) x) t,
         (SELECT (c).trace1 * h AS k1, 2 * (c).trace2 * h * h AS k2, (c).trace2 ^ 3 / (c).trace3 ^ 2 AS nu
          FROM (SELECT (c).dispersion * (1.0 / nullif(n_cur, 0) + 1.0 / nullif(n_base, 0)) AS h) hh) k
    WHERE n_cur > 0 AND n_base > 0 AND (c).model IS NOT NULL
$$;
COMMENT ON FUNCTION drift.embedding_mean_test(bigint, vector, bigint, vector, drift.embedding_calibration) IS 'Calibrated test that the current mean embedding differs from the baseline mean (three-moment chi-square fit of |mean difference|^2, from rollup sums); effect_size = shift in units of the baseline''s RMS spread.';

CREATE OR REPLACE FUNCTION drift.embedding_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS TABLE (model text, kind text, metric text, score double precision, threshold double precision,
    p_value double precision, n_current bigint, n_baseline bigint, drifted boolean,
    window_start timestamptz, window_end timestamptz, value double precision, baseline_value double precision,
    details jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    WITH cfg AS (
        SELECT c.*, drift.setting('embedding_drift_threshold')::float8 AS thr,
            drift.setting('embedding_distance_floor')::float8 AS floor, drift.look_alpha() AS look
        FROM drift.report_config(p_as_of) c
    ), cur AS (
        SELECT m.model, w.n, w.vec_sum, b.n AS nb, b.vec_sum AS vb, cal AS cal
        FROM drift.models m
        CROSS JOIN cfg
        CROSS JOIN LATERAL drift.embedding_window(m.model, cfg.window_start, cfg.window_end) w
        LEFT JOIN drift.baselines b ON b.model = m.model AND b.kind = 'embedding'
        LEFT JOIN drift.embedding_calibration cal ON cal.model = m.model
        WHERE m.embedding_dims IS NOT NULL AND (p_models IS NULL OR m.model = ANY (p_models))
    ), mean_rows AS (
        SELECT cur.model, cur.n, cur.nb, cur.cal,
            CASE WHEN cur.n > 0 AND cur.nb > 0 THEN (cur.vec_sum <=> cur.vb) END AS dist, t.*
        FROM cur
        LEFT JOIN LATERAL drift.embedding_mean_test(cur.n, cur.vec_sum, cur.nb, cur.vb, cur.cal) t ON true
    ), novelty_rows AS (
        -- Without a calibration (no baseline yet) the row is still there, with its count.
        SELECT cur.model, cur.nb, cur.cal, cur.n, nw.scored, nw.novel,
            CASE WHEN nw.scored > 0 THEN nw.novel::float8 / nw.scored END AS rate,
            round((cur.cal).novelty_expected * (cur.cal).sample_n)::bigint AS novel_base
        FROM cur CROSS JOIN cfg
        LEFT JOIN LATERAL drift.novelty_window(cur.model, cfg.window_start, cfg.window_end) nw
            ON (cur.cal).novelty_radius IS NOT NULL
    )
    SELECT s.model, 'embedding', 'centroid_distance', s.dist, cfg.thr, s.p_value, s.n, coalesce(s.nb, 0),
        coalesce(s.n >= cfg.min_samples AND s.nb >= cfg.min_samples AND s.p_value < cfg.look
                 AND s.dist >= cfg.floor, false),
        cfg.window_start, cfg.window_end, s.dist, 0::float8,
        jsonb_build_object('test', 'mean shift, three-moment chi-square calibrated on baseline buckets',
            'statistic', s.statistic, 'expected_statistic', s.expected, 'dof', s.dof,
            'effect_size', s.effect_size, 'effect_size_kind', 'mean shift / baseline RMS spread',
            'dispersion', (s.cal).dispersion, 'calibration_units', (s.cal).units,
            'alpha', cfg.alpha, 'look_alpha', cfg.look, 'distance_floor', cfg.floor,
            'seed_rule_drifted', coalesce(s.dist > cfg.thr, false), 'min_samples', cfg.min_samples)
    FROM mean_rows s CROSS JOIN cfg
    UNION ALL
    SELECT v.model, 'embedding', 'novelty_rate', v.rate, (v.cal).novelty_expected,
        drift.rate_increase_p(v.novel, v.scored, v.novel_base, (v.cal).sample_n), v.n, coalesce(v.nb, 0),
        coalesce(v.scored >= cfg.min_samples AND v.rate > (v.cal).novelty_expected
                 AND drift.rate_increase_p(v.novel, v.scored, v.novel_base, (v.cal).sample_n) < cfg.look, false),
        cfg.window_start, cfg.window_end, v.rate, (v.cal).novelty_expected,
        jsonb_build_object('test', 'nearest-neighbour novelty vs baseline sample, arcsine two-sample (one-sided)',
            'effect_size', v.rate - (v.cal).novelty_expected, 'effect_size_kind', 'excess novelty rate',
            'scored_current', v.scored, 'novel_current', v.novel, 'sample_n', (v.cal).sample_n,
            'radius', (v.cal).novelty_radius, 'alpha', cfg.alpha, 'look_alpha', cfg.look,
            'min_samples', cfg.min_samples)
    FROM novelty_rows v CROSS JOIN cfg
$$;
COMMENT ON FUNCTION drift.embedding_report(timestamptz, text[]) IS 'Embedding drift of each model at as_of: centroid_distance (score = centroid cosine distance; p-value of the calibrated mean-shift test from rollups) and novelty_rate (share of embeddings far from every baseline-sample point; binomial-type test against the baseline''s own rate).';

CREATE OR REPLACE FUNCTION drift.behavior_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS TABLE (model text, kind text, metric text, score double precision, threshold double precision,
    p_value double precision, n_current bigint, n_baseline bigint, drifted boolean,
    window_start timestamptz, window_end timestamptz, value double precision, baseline_value double precision,
    details jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    WITH cfg AS (SELECT c.*, drift.look_alpha() AS look FROM drift.report_config(p_as_of) c),
    cur AS (
        SELECT m.model, w AS c, b
        FROM drift.models m
        CROSS JOIN cfg
        CROSS JOIN LATERAL drift.interaction_window(m.model, cfg.window_start, cfg.window_end) w
        LEFT JOIN drift.baselines b ON b.model = m.model AND b.kind = 'behavior'
        WHERE m.interactions_seen AND (p_models IS NULL OR m.model = ANY (p_models))
    ), metrics AS (
        SELECT cur.model, x.*, x.n_base >= cfg.min_samples AS vs_base,
            -- Against the baseline when it has enough data, else against the absolute threshold.
            CASE WHEN x.n_base >= cfg.min_samples THEN drift.rate_increase_p(x.x_cur, x.n_cur, x.x_base, x.n_base)
                 ELSE drift.proportion_above_p(x.x_cur, x.n_cur, x.thr) END AS p
        FROM cur CROSS JOIN cfg
        CROSS JOIN LATERAL (VALUES
            ('refusal_rate', (cur.c).refusals, (cur.c).refusal_known, coalesce((cur.b).refusals, 0),
                coalesce((cur.b).refusal_known, 0), drift.setting('refusal_rate_threshold')::float8),
            ('toxicity_rate', (cur.c).toxic, (cur.c).toxicity_scored, coalesce((cur.b).toxic, 0),
                coalesce((cur.b).toxicity_scored, 0), drift.setting('toxicity_rate_threshold')::float8)
        ) AS x(metric, x_cur, n_cur, x_base, n_base, thr)
    )
    SELECT mt.model, 'behavior', mt.metric,
        CASE WHEN mt.n_cur > 0 THEN mt.x_cur::float8 / mt.n_cur END, mt.thr, mt.p, mt.n_cur, mt.n_base,
        -- Both: the rate is above the seed's absolute threshold, and its rise is significant
        -- at the per-evaluation level.
        coalesce(mt.n_cur >= cfg.min_samples AND mt.x_cur::float8 / mt.n_cur > mt.thr AND mt.p < cfg.look, false),
        cfg.window_start, cfg.window_end,
        CASE WHEN mt.n_cur > 0 THEN mt.x_cur::float8 / mt.n_cur END,
        CASE WHEN mt.n_base > 0 THEN mt.x_base::float8 / mt.n_base END,
        jsonb_build_object(
            'test', CASE WHEN mt.vs_base THEN 'arcsine two-sample (one-sided) vs baseline'
                         ELSE 'one-sample z (one-sided) vs threshold' END,
            'effect_size', CASE WHEN mt.n_cur > 0 THEN drift.cohens_h(mt.x_cur::float8 / mt.n_cur,
                CASE WHEN mt.vs_base THEN mt.x_base::float8 / mt.n_base ELSE mt.thr END) END,
            'effect_size_kind', 'Cohen''s h',
            'ci_low', wi.low, 'ci_high', wi.high, 'ci_level', 1 - cfg.alpha,
            'alpha', cfg.alpha, 'look_alpha', cfg.look, 'min_samples', cfg.min_samples,
            'count_current', mt.x_cur, 'count_baseline', mt.x_base)
    FROM metrics mt CROSS JOIN cfg
    LEFT JOIN LATERAL drift.wilson_interval(mt.x_cur, mt.n_cur, 1 - cfg.alpha) wi ON true
$$;
COMMENT ON FUNCTION drift.behavior_report(timestamptz, text[]) IS 'Behavior drift of each model at as_of: refusal and toxicity rates (score) above the absolute thresholds and significantly above the baseline (arcsine test at the per-evaluation level), with Wilson intervals.';

CREATE OR REPLACE FUNCTION drift.accuracy_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS TABLE (model text, kind text, metric text, score double precision, threshold double precision,
    p_value double precision, n_current bigint, n_baseline bigint, drifted boolean,
    window_start timestamptz, window_end timestamptz, value double precision, baseline_value double precision,
    details jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    WITH cfg AS (
        SELECT c.*, drift.setting('accuracy_drop_threshold')::float8 AS thr, drift.look_alpha() AS look
        FROM drift.report_config(p_as_of) c
    ), cur AS (
        SELECT m.model, w.quality_n AS n_cur, w.quality_ok AS ok_cur, w.labelled,
            coalesce(b.quality_n, 0) AS n_base, coalesce(b.quality_ok, 0) AS ok_base
        FROM drift.models m
        CROSS JOIN cfg
        CROSS JOIN LATERAL drift.interaction_window(m.model, cfg.window_start, cfg.window_end) w
        LEFT JOIN drift.baselines b ON b.model = m.model AND b.kind = 'accuracy'
        WHERE m.interactions_seen AND (p_models IS NULL OR m.model = ANY (p_models))
    ), scored AS (
        SELECT cur.*,
            CASE WHEN n_cur > 0 THEN ok_cur::float8 / n_cur END AS acc,
            CASE WHEN n_base > 0 THEN ok_base::float8 / n_base END AS acc_base,
            -- Errors are the complement: a drop in accuracy is a rise in the error rate.
            drift.rate_increase_p(n_cur - ok_cur, n_cur, n_base - ok_base, n_base) AS p
        FROM cur
    )
    SELECT s.model, 'accuracy', 'accuracy', s.acc_base - s.acc, cfg.thr, s.p, s.n_cur, s.n_base,
        coalesce(s.n_cur >= cfg.min_samples AND s.n_base >= cfg.min_samples AND s.acc_base - s.acc > cfg.thr
                 AND s.p < cfg.look, false),
        cfg.window_start, cfg.window_end, s.acc, s.acc_base,
        jsonb_build_object('test', 'arcsine two-sample (one-sided) on the error rate vs baseline',
            'effect_size', drift.cohens_h(1 - s.acc, 1 - s.acc_base), 'effect_size_kind', 'Cohen''s h of the error rate',
            'ci_low', wi.low, 'ci_high', wi.high, 'ci_level', 1 - cfg.alpha,
            'alpha', cfg.alpha, 'look_alpha', cfg.look,
            'min_samples', cfg.min_samples, 'labelled_current', s.labelled,
            'window_time', 'interaction time (late labels count in their interaction''s window)')
    FROM scored s CROSS JOIN cfg
    LEFT JOIN LATERAL drift.wilson_interval(s.ok_cur, s.n_cur, 1 - cfg.alpha) wi ON true
$$;
COMMENT ON FUNCTION drift.accuracy_report(timestamptz, text[]) IS 'Accuracy drift of each model at as_of: accuracy from labels (feedback where unlabelled) by interaction time, score = drop below the baseline accuracy; drifted when the drop exceeds the threshold and the error-rate rise is significant at the per-evaluation level.';

DO $$
DECLARE
    v text;
    c text;
BEGIN
    FOREACH v IN ARRAY ARRAY['embedding_drift', 'behavior_drift', 'accuracy_drift', 'drift_status'] LOOP
        FOREACH c IN ARRAY ARRAY[
            'metric|centroid_distance, novelty_rate, refusal_rate, toxicity_rate or accuracy.',
            'p_value|p-value of the calibrated statistical test of this window (see details.test).',
            'drifted|true when enough samples, p_value below the per-evaluation level details.look_alpha (at most one false event per false_alarm_interval) and the score past its threshold (rates, accuracy drop) or floor (centroid distance).',
            'details|Test name, statistic, effect_size, intervals, alpha, look_alpha, min_samples and counts.'
        ] LOOP
            EXECUTE format('COMMENT ON COLUMN drift.%I.%I IS %L', v, split_part(c, '|', 1), split_part(c, '|', 2));
        END LOOP;
    END LOOP;
END $$;

-- Baselines set before this migration get their calibration now.
SELECT drift.embedding_calibrate(b.model) FROM drift.baselines b WHERE b.kind = 'embedding';
