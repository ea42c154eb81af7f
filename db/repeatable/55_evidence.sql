-- The sequential embedding test (metric mean_shift_evidence): evidence that the mean moved,
-- accumulated bucket by bucket, so a drift that persists is caught even when no single
-- window shows it at the strict per-evaluation level.
--
-- Each new bucket's embeddings are projected on a direction fixed before they are seen: the
-- mean shift of the evidence_direction_window before the bucket, whitened by the baseline
-- sample's covariance S with a ridge, u = (S + ridge I)^-1 (window mean - baseline mean)
-- (embeddings wider than 256 in the span of 256 sample points).
-- (Whitening counts a shift along a quiet direction for more than one along a noisy one;
-- measured on real text embeddings it is what lets 10% of traffic on a new topic show.)
-- Without drift the projections are centred, with variance u'Su each: z ~ N(0, n). A
-- CUSUM of the log-likelihood ratio for a shift of evidence_shift standard deviations per
-- embedding, S = max(0, S + k z - n k^2 / 2), grows while traffic keeps moving the same way
-- and falls back to 0 when it does not. Without drift it crosses h about once per
-- e^h / (k^2 / 2) embeddings (Siegmund), which sets h from false_alarm_interval.

CREATE OR REPLACE FUNCTION drift.spd_inverse(p_rows vector[], p_ridge double precision) RETURNS vector[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    r integer := array_length(p_rows, 1);
    m vector[];
    f real[];
    piv vector;
BEGIN
    -- Gauss-Jordan on [M + ridge I | I]. M is a covariance (symmetric, positive semi-definite)
    -- and ridge > 0, so every pivot is positive: no row exchanges are needed.
    FOR i IN 1..r LOOP
        f := p_rows[i]::real[] || array_fill(0::real, ARRAY[r]);
        f[i] := f[i] + p_ridge;
        f[r + i] := 1;
        m[i] := f::vector;
    END LOOP;
    FOR k IN 1..r LOOP
        piv := drift.scale_vector(m[k], 1.0 / (m[k]::real[])[k]);
        m[k] := piv;
        FOR i IN 1..r LOOP
            IF i <> k THEN
                m[i] := m[i] - drift.scale_vector(piv, (m[i]::real[])[k]);
            END IF;
        END LOOP;
    END LOOP;
    RETURN ARRAY(SELECT (m[i]::real[])[r + 1 : 2 * r]::vector FROM generate_series(1, r) i ORDER BY i);
END $$;
COMMENT ON FUNCTION drift.spd_inverse(vector[], double precision) IS 'Rows of (M + ridge I)^-1 for a symmetric positive semi-definite M given by its rows (Gauss-Jordan).';

CREATE OR REPLACE FUNCTION drift.evidence_features(p_model text, p_v vector) RETURNS vector
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    -- Linear, so the features of a bucket's vector sum are the sum of its rows' features.
    SELECT CASE WHEN count(w.landmark) = 0 THEN p_v
        ELSE array_agg(-(w.landmark <#> p_v) ORDER BY w.i)::vector END
    FROM drift.embedding_whitening w WHERE w.model = p_model AND w.landmark IS NOT NULL
$$;
COMMENT ON FUNCTION drift.evidence_features(text, vector) IS 'The sequential test''s features of an embedding (or of a sum of embeddings): itself, or its inner products with the model''s landmarks.';

CREATE OR REPLACE FUNCTION drift.evidence_inverse_times(p_model text, p_v vector) RETURNS vector
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    SELECT array_agg(-(w.inverse_row <#> p_v) ORDER BY w.i)::vector
    FROM drift.embedding_whitening w WHERE w.model = p_model
$$;
COMMENT ON FUNCTION drift.evidence_inverse_times(text, vector) IS 'The model''s ridge inverse (S_a + ridge I)^-1 times a feature vector.';

CREATE OR REPLACE FUNCTION drift.evidence_covariance_times(p_model text, p_v vector) RETURNS vector
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    SELECT array_agg(-(w.cov_row <#> p_v) ORDER BY w.i)::vector
    FROM drift.embedding_whitening w WHERE w.model = p_model
$$;
COMMENT ON FUNCTION drift.evidence_covariance_times(text, vector) IS 'The model''s covariance S_b times a feature vector.';

CREATE OR REPLACE FUNCTION drift.evidence_covariance(p_model text, p_half integer) RETURNS vector[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    -- Rows of the covariance of the features of one half of the sample (alternate rows in id
    -- order), from its rows centred on the half's mean, transposed to one vector per feature
    -- so that each entry is one inner product.
    WITH half AS (
        SELECT x.id, x.embedding FROM (
            SELECT s.id, s.embedding, row_number() OVER (ORDER BY s.id) AS k
            FROM drift.baseline_samples s WHERE s.model = p_model) x
        WHERE x.k % 2 = p_half
    ), mu AS (
        SELECT avg(h.embedding) AS m, count(*) AS n FROM half h
    ), y AS (
        SELECT h.id, drift.evidence_features(p_model, h.embedding - mu.m)::real[] AS f FROM half h, mu
    ), cols AS (
        SELECT t.j, array_agg(t.v ORDER BY y.id)::vector AS c
        FROM y CROSS JOIN LATERAL unnest(y.f) WITH ORDINALITY AS t(v, j) GROUP BY t.j
    ), rows_ AS (
        SELECT a.j, array_agg(-(a.c <#> b.c) / (SELECT n FROM mu) ORDER BY b.j)::vector AS row
        FROM cols a CROSS JOIN cols b GROUP BY a.j
    )
    SELECT array_agg(rows_.row ORDER BY rows_.j) FROM rows_
$$;
COMMENT ON FUNCTION drift.evidence_covariance(text, integer) IS 'Rows of the sample covariance of the sequential test''s features over one half of the model''s baseline sample (1: odd rows in id order, 0: even rows).';

CREATE OR REPLACE FUNCTION drift.embedding_whiten(p_model text) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    -- Wider embeddings are whitened in the span of this many sample points: the inverse
    -- costs rank^3 once per baseline, each bucket rank^2.
    max_rank constant integer := 256;
    m integer;
    dims integer;
    n_base bigint;
    lm vector[] := '{}';
    v vector;
    cand record;
    cov_a vector[];
    cov_b vector[];
    inv vector[];
    r integer;
    ridge double precision;
BEGIN
    DELETE FROM drift.embedding_whitening w WHERE w.model = p_model;
    -- Nothing of an earlier whitening survives a return below without one.
    UPDATE drift.embedding_calibration c SET evidence_rank = NULL, evidence_bias = NULL,
        whitened_trace1 = NULL, whitened_trace2 = NULL, whitened_trace3 = NULL
    WHERE c.model = p_model;
    SELECT count(*), max(vector_dims(s.embedding)) INTO m, dims FROM drift.baseline_samples s WHERE s.model = p_model;
    SELECT b.n INTO n_base FROM drift.baselines b WHERE b.model = p_model AND b.kind = 'embedding';
    IF m < 60 OR n_base IS NULL THEN
        RETURN NULL;
    END IF;
    IF dims > max_rank THEN
        -- An orthonormal basis (modified Gram-Schmidt) of the span of the first points of
        -- the first half, centred; a point already in the span of the earlier ones (a text
        -- logged twice) is passed over.
        FOR cand IN
            SELECT x.embedding - avg(x.embedding) OVER () AS c FROM (
                SELECT s.id, s.embedding, row_number() OVER (ORDER BY s.id) AS k
                FROM drift.baseline_samples s WHERE s.model = p_model) x
            WHERE x.k % 2 = 1 ORDER BY x.id
        LOOP
            v := cand.c;
            FOR i IN 1..coalesce(array_length(lm, 1), 0) LOOP
                v := v - drift.scale_vector(lm[i], -(lm[i] <#> v));
            END LOOP;
            IF vector_norm(v) > 1e-3 * vector_norm(cand.c) THEN
                lm := lm || drift.scale_vector(v, 1.0 / vector_norm(v));
            END IF;
            EXIT WHEN array_length(lm, 1) = max_rank;
        END LOOP;
        INSERT INTO drift.embedding_whitening (model, i, landmark)
        SELECT p_model, i, lm[i] FROM generate_series(1, array_length(lm, 1)) i;
    END IF;
    -- Two independent halves: the inverse from one, the variance along the direction it
    -- picks from the other (from the same half, the quietest-looking directions are partly
    -- sampling noise, and the variance would be underestimated: false alarms).
    cov_a := drift.evidence_covariance(p_model, 1);
    cov_b := drift.evidence_covariance(p_model, 0);
    r := array_length(cov_a, 1);
    SELECT sum((cov_a[i]::real[])[i]) / r INTO ridge FROM generate_series(1, r) i;
    IF NOT ridge > 0 THEN
        DELETE FROM drift.embedding_whitening w WHERE w.model = p_model;
        RETURN NULL;
    END IF;
    inv := drift.spd_inverse(cov_a, ridge);
    INSERT INTO drift.embedding_whitening AS w (model, i, cov_row, inverse_row)
    SELECT p_model, i, cov_b[i], inv[i] FROM generate_series(1, r) i
    ON CONFLICT (model, i) DO UPDATE SET cov_row = EXCLUDED.cov_row, inverse_row = EXCLUDED.inverse_row;
    -- The estimated baseline mean leaves E[(y - mean) . u] = tr(inv S) / n_base per embedding.
    UPDATE drift.embedding_calibration c SET evidence_rank = r,
        evidence_bias = (SELECT sum(-(inv[i] <#> cov_b[i])) FROM generate_series(1, r) i) / n_base
    WHERE c.model = p_model;
    PERFORM drift.whitened_traces(p_model);
    RETURN r;
END $$;
COMMENT ON FUNCTION drift.embedding_whiten(text) IS 'Computes the sequential test''s whitening of a model from its baseline sample (called by drift.embedding_calibrate); returns the rank, NULL when the sample is too small.';

CREATE OR REPLACE FUNCTION drift.embedding_evidence_fold(p_model text, p_until timestamptz) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    width interval := drift.setting('bucket_width')::interval;
    look_back interval := drift.setting('evidence_direction_window')::interval;
    horizon interval := drift.setting('evidence_horizon')::interval;
    k double precision := drift.setting('evidence_shift')::float8;
    min_n bigint := drift.setting('min_samples')::bigint;
    -- The direction window's vector sum is kept by adding and subtracting float4 vectors;
    -- after this many updates it is summed again from its buckets (in float8, as sum() does),
    -- so rounding never builds up over a long catch-up.
    resum_every constant integer := 120;
    b drift.baselines;
    bias double precision;
    mu_f vector;
    last drift.embedding_evidence;
    s double precision := 0;
    since timestamptz;
    run_n bigint := 0;
    first_fold timestamptz;
    r record;
    -- The direction window: its running totals, and its buckets in time order from win_head
    -- on with their counts and vector sums (those of the first window listed only once they
    -- begin to leave).
    win_from timestamptz;
    win_bucket timestamptz[] := '{}';
    win_n bigint[] := '{}';
    win_vec vector[] := '{}';
    win_listed boolean := false;
    win_head integer := 1;
    win_count bigint;
    win_sum vector;
    updates integer := 0;
    u vector;
    var double precision;
    z double precision;
    folded integer := 0;
BEGIN
    SELECT * INTO b FROM drift.baselines x WHERE x.model = p_model AND x.kind = 'embedding';
    SELECT c.evidence_bias INTO bias FROM drift.embedding_calibration c WHERE c.model = p_model;
    IF b.model IS NULL OR bias IS NULL THEN
        RETURN 0;
    END IF;
    mu_f := drift.evidence_features(p_model, drift.scale_vector(b.vec_sum, 1.0 / b.n));
    SELECT * INTO last FROM drift.embedding_evidence e WHERE e.model = p_model ORDER BY e.bucket DESC LIMIT 1;
    IF last.model IS NOT NULL THEN
        s := last.statistic;
        since := last.since;
        run_n := last.run_n;
    END IF;
    first_fold := greatest(b.ends, p_until - horizon, last.bucket + width);
    IF first_fold >= p_until THEN
        RETURN 0;  -- no complete bucket since the last fold: its window need not be read
    END IF;
    -- The direction window of the first bucket to fold, as one aggregate: a per-minute
    -- evaluation folds one bucket, and needs no more. The window is kept as embedding sums and
    -- featurized once per folded bucket (features are linear): featurizing each bucket that
    -- enters would cost a features product per bucket of the window instead.
    win_from := greatest(b.ends, first_fold - look_back);
    SELECT w.n, w.vec_sum INTO win_count, win_sum FROM drift.embedding_window(p_model, win_from, first_fold) w;
    FOR r IN
        SELECT x.bucket, x.n, x.vec_sum FROM drift.embedding_buckets(p_model, first_fold, p_until) x
        ORDER BY x.bucket
    LOOP
        -- The window before r is [greatest(r.bucket - look_back, b.ends), r.bucket); nothing
        -- before b.ends was read. Buckets can be sparse: any number leave at once.
        IF NOT win_listed AND r.bucket - look_back > win_from THEN
            -- A catch-up: the first window's buckets begin to leave; list them ahead of those since.
            SELECT coalesce(array_agg(x.bucket ORDER BY x.bucket), '{}') || win_bucket,
                   coalesce(array_agg(x.n ORDER BY x.bucket), '{}') || win_n,
                   coalesce(array_agg(x.vec_sum ORDER BY x.bucket), '{}') || win_vec
            INTO win_bucket, win_n, win_vec
            FROM drift.embedding_buckets(p_model, win_from, first_fold) x;
            -- The totals again from the lists: a row logged late since the first read is in both.
            SELECT coalesce(sum(t.c), 0), sum(t.v) INTO win_count, win_sum FROM unnest(win_n, win_vec) t(c, v);
            updates := 0;
            win_listed := true;
        END IF;
        WHILE win_head <= cardinality(win_bucket) AND win_bucket[win_head] < r.bucket - look_back LOOP
            win_count := win_count - win_n[win_head];
            win_sum := win_sum - win_vec[win_head];
            win_head := win_head + 1;
            updates := updates + 1;
        END LOOP;
        -- (Until the first window is listed, the totals hold more than the lists.)
        IF win_listed AND win_head > cardinality(win_bucket) THEN
            win_sum := NULL;  -- an empty window restarts from exact zero
            updates := 0;
        ELSIF win_listed AND updates >= resum_every THEN
            win_sum := (SELECT sum(v) FROM unnest(win_vec[win_head:]) v);
            updates := 0;
        END IF;
        z := NULL;
        IF win_count >= min_n AND win_count > 0 THEN
            u := drift.evidence_inverse_times(p_model,
                drift.scale_vector(drift.evidence_features(p_model, win_sum), 1.0 / win_count) - mu_f);
            var := -(u <#> drift.evidence_covariance_times(p_model, u));
            IF var > 0 THEN
                z := (-(drift.evidence_features(p_model, r.vec_sum) <#> u) - r.n * (-(mu_f <#> u) + bias)) / sqrt(var);
                IF s = 0 THEN
                    since := r.bucket;
                    run_n := 0;
                END IF;
                s := greatest(0, s + k * z - r.n * k * k / 2);
                run_n := run_n + r.n;
                IF s = 0 THEN
                    since := NULL;
                    run_n := 0;
                END IF;
            END IF;
        END IF;
        INSERT INTO drift.embedding_evidence (model, bucket, n, z, statistic, since, run_n)
        VALUES (p_model, r.bucket, r.n, z, s, since, run_n);
        folded := folded + 1;
        win_bucket := array_append(win_bucket, r.bucket);
        win_n := array_append(win_n, r.n);
        win_vec := array_append(win_vec, r.vec_sum);
        win_count := win_count + r.n;
        win_sum := CASE WHEN win_sum IS NULL THEN r.vec_sum ELSE win_sum + r.vec_sum END;
        updates := updates + 1;
    END LOOP;
    RETURN folded;
END $$;
COMMENT ON FUNCTION drift.embedding_evidence_fold(text, timestamptz) IS 'Folds the model''s buckets before p_until that are not folded yet (at most evidence_horizon back) into its sequential embedding test; returns the buckets folded. Called by drift.evaluate_models; each bucket is folded once.';

CREATE OR REPLACE FUNCTION drift.evidence_threshold(p_model text) RETURNS double precision
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    -- Drift-free, the CUSUM crosses h about once per e^h / (k^2 / 2) embeddings. A quarter of
    -- the model's false-alarm budget goes to this test, so that it and the one-hour mean test
    -- at look_alpha stay within the budget together (measured by replay: with half, the pair
    -- raised 0.88 false events per 30 days; with a quarter, 0.56): h = ln(4 N k^2 / 2) =
    -- ln(2 N k^2), N the embeddings the baseline's rate gives in one false_alarm_interval.
    SELECT CASE WHEN rate IS NULL OR rate <= 0 THEN NULL
        WHEN fa > 0 THEN greatest(ln(2 * rate * fa * k * k), 1.0)
        ELSE ln(1 / drift.setting('alpha')::float8)  -- false_alarm_interval 0: alpha per run
    END
    FROM (SELECT b.n / nullif(extract(epoch FROM b.ends - b.starts), 0) AS rate,
                 extract(epoch FROM coalesce(drift.setting('false_alarm_interval'), '0')::interval) AS fa,
                 drift.setting('evidence_shift')::float8 AS k
          FROM drift.baselines b WHERE b.model = p_model AND b.kind = 'embedding') x
$$;
COMMENT ON FUNCTION drift.evidence_threshold(text) IS 'Decision line of the sequential embedding test of a model, in nats: drift-free traffic at the baseline''s rate crosses it about once per four false_alarm_intervals.';

CREATE OR REPLACE FUNCTION drift.whitened_traces(p_model text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    inv vector[];
    cov_b vector[];
    r integer;
    m bigint;
    t1 double precision;
    t2 double precision;
    t3 double precision;
BEGIN
    SELECT array_agg(w.inverse_row ORDER BY w.i), array_agg(w.cov_row ORDER BY w.i) INTO inv, cov_b
    FROM drift.embedding_whitening w WHERE w.model = p_model AND w.inverse_row IS NOT NULL;
    r := cardinality(inv);
    -- S_b is the covariance of the even rows (in id order) of the baseline sample.
    SELECT count(*) / 2 INTO m FROM drift.baseline_samples s WHERE s.model = p_model;
    IF r IS NOT NULL AND m >= 2 THEN
        -- tr M^j for M = inv S_b: one product of two r x r matrices for M, one for M^2 (rows
        -- of M against rows of its transpose).
        WITH a AS (SELECT t.i, t.v FROM unnest(inv) WITH ORDINALITY t(v, i)),
        b AS (SELECT t.j, t.v FROM unnest(cov_b) WITH ORDINALITY t(v, j)),
        prod AS (SELECT a.i, b.j, -(a.v <#> b.v) AS x FROM a CROSS JOIN b),  -- M_ij (S_b is symmetric)
        mr AS (SELECT prod.i, array_agg(prod.x ORDER BY prod.j)::vector AS v FROM prod GROUP BY prod.i),
        mt AS (SELECT prod.j AS i, array_agg(prod.x ORDER BY prod.i)::vector AS v FROM prod GROUP BY prod.j),
        m2 AS (SELECT mr.i, array_agg(-(mr.v <#> mt.v) ORDER BY mt.i)::vector AS v FROM mr CROSS JOIN mt GROUP BY mr.i)
        SELECT (SELECT sum(prod.x) FROM prod WHERE prod.i = prod.j),
               (SELECT sum(-(mr.v <#> mt.v)) FROM mr JOIN mt ON mt.i = mr.i),
               (SELECT sum(-(m2.v <#> mt.v)) FROM m2 JOIN mt ON mt.i = m2.i)
        INTO t1, t2, t3;
    END IF;
    IF t1 > 0 THEN
        -- S_b is a sample covariance of m rows, so the plug-in traces overstate tr (inv Sigma)^j
        -- (Wishart moments: E t2 = (1 + 1/m) tr B^2 + (tr B)^2 / m, and E t3 about
        -- tr B^3 + 3 tr B tr B^2 / m + (tr B)^3 / m^2); uncorrected, the test is several times
        -- stricter than its level, and far stricter on a small baseline. Clamped into the range
        -- every covariance of rank r has.
        t2 := greatest((t2 - t1 * t1 / m) / (1 + 1.0 / m), t1 * t1 / r);
        t3 := greatest(t3 - 3 * t1 * t2 / m - t1 ^ 3 / (m::float8 * m), t2 * t2 / t1);
    ELSE
        t1 := NULL;
        t2 := NULL;
        t3 := NULL;
    END IF;
    UPDATE drift.embedding_calibration c SET whitened_trace1 = t1, whitened_trace2 = t2, whitened_trace3 = t3,
        whitened_dispersion = CASE WHEN t1 IS NOT NULL THEN drift.whitened_dispersion(p_model, t1) END
    WHERE c.model = p_model;
END $$;
CREATE OR REPLACE FUNCTION drift.whitened_dispersion(p_model text, p_trace1 double precision) RETURNS double precision
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    win interval := drift.setting('whitened_window')::interval;
    b drift.baselines;
    blocks integer;
    phi double precision;
BEGIN
    -- Without drift a block of n baseline rows has E[T] = tr M (1/n - 1/N) against the whole
    -- baseline's mean (it is part of it); blocks as long as the test's window vary more when
    -- traffic wanders over hours, and that ratio widens the test's null (at least 1).
    SELECT * INTO b FROM drift.baselines x WHERE x.model = p_model AND x.kind = 'embedding';
    IF b.model IS NULL THEN
        RETURN 1;
    END IF;
    EXECUTE format($q$
        SELECT count(*)::integer, avg(-(d.d <#> drift.evidence_inverse_times(%1$L, d.d)) / (%4$s * (1.0 / d.n - 1.0 / %3$s)))
        FROM (
            SELECT blk.n, drift.evidence_features(%1$L, drift.scale_vector(blk.vec_sum, 1.0 / blk.n)
                - drift.scale_vector(%2$L::vector, 1.0 / %3$s)) AS d
            FROM (SELECT floor(extract(epoch FROM x.bucket - %5$L::timestamptz) / %6$s)::bigint AS k,
                         sum(x.n)::bigint AS n, sum(x.vec_sum) AS vec_sum
                  FROM (%7$s) x GROUP BY 1) blk
            WHERE blk.n < %3$s
        ) d $q$,
        p_model, b.vec_sum, b.n, p_trace1, b.starts, extract(epoch FROM win), drift.baseline_bucket_sql(p_model))
    INTO blocks, phi;
    RETURN CASE WHEN blocks >= 6 AND phi > 1 THEN phi ELSE 1 END;
END $$;
COMMENT ON FUNCTION drift.whitened_dispersion(text, double precision) IS 'Overdispersion of the whitened window test: the mean ratio of the whitened statistic of whitened_window-long baseline blocks to its value for independent embeddings (at least 1; 1 with fewer than 6 blocks).';

COMMENT ON FUNCTION drift.whitened_traces(text) IS 'Stores the null cumulants of a model''s whitened window test, tr M^j for M = (S_a + ridge I)^-1 S_b with the sample covariance''s bias taken off, from its whitening (called by drift.embedding_whiten).';

-- The whitened window test (metric whitened_mean_shift): the mean test in the same whitened
-- features, T = d' (S_a + ridge I)^-1 d for d the mean features of whitened_window minus the
-- baseline's. The window is longer than the current one, so a drift that persists for hours is
-- judged on all of its data at once; without drift T is a weighted chi-square whose cumulants
-- are tr M^j h^j, M = (S_a + ridge I)^-1 S_b, h = dispersion (1/n + 1/n_baseline) (dispersion
-- from baseline blocks as long as the window: drift.whitened_dispersion), fitted
-- with three moments as the centroid test is (measured on real text embeddings, a new topic at
-- 10% of traffic moves the mean mostly along quiet directions, which whitening counts for more).
CREATE OR REPLACE FUNCTION drift.embedding_whitened_test(p_model text, n_cur bigint, sum_cur vector,
    n_base bigint, sum_base vector, c drift.embedding_calibration, level double precision,
    OUT statistic double precision, OUT expected double precision, OUT dof double precision,
    OUT p_value double precision, OUT decision double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    SELECT t.stat, k.k1, k.nu, drift.three_moment_sf(t.stat, k.k1, k.k2, k.nu),
        -- The statistic at which the test rejects at level: p_value < level exactly when T > it.
        drift.three_moment_isf(level, k.k1, k.k2, k.nu)
    FROM (SELECT -(d.d <#> drift.evidence_inverse_times(p_model, d.d)) AS stat
          FROM (SELECT drift.evidence_features(p_model, drift.scale_vector(sum_cur, 1.0 / nullif(n_cur, 0))
                       - drift.scale_vector(sum_base, 1.0 / nullif(n_base, 0))) AS d) d) t,
         (SELECT (c).whitened_trace1 * h AS k1, 2 * (c).whitened_trace2 * h * h AS k2,
                 (c).whitened_trace2 ^ 3 / nullif((c).whitened_trace3, 0) ^ 2 AS nu
          FROM (SELECT coalesce((c).whitened_dispersion, 1) * (1.0 / nullif(n_cur, 0) + 1.0 / nullif(n_base, 0)) AS h) hh) k
    WHERE n_cur > 0 AND n_base > 0 AND (c).whitened_trace2 > 0 AND (c).whitened_trace3 > 0
$$;
COMMENT ON FUNCTION drift.embedding_whitened_test(text, bigint, vector, bigint, vector, drift.embedding_calibration, double precision) IS 'Whitened mean-shift test of a window (count and vector sum, from rollups) against the baseline, in the model''s sequential-test features: statistic, its null mean, the fit''s degrees of freedom, p-value, and the statistic at which it rejects at level.';

-- Models whitened before the whitened window test existed get its traces from their stored
-- whitening (an upgrade); a no-op once every calibrated model has them.
SELECT drift.whitened_traces(c.model) FROM drift.embedding_calibration c
WHERE c.evidence_rank IS NOT NULL AND c.whitened_trace2 IS NULL;
