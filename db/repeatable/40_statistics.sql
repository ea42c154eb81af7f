-- Distributions and tests the drift reports use.
--
-- * Embedding mean drift: T = squared distance between the current and baseline mean
--   embeddings. Its null distribution is a weighted chi-square whose weights are the
--   eigenvalues of the embeddings' covariance; we match its first three cumulants
--   (tr S, tr S^2, tr S^3, estimated from pairs and triples of baseline *buckets* of the
--   rollups, so correlated dimensions and minute-to-minute variation are included) and
--   widen it by the spread of window-length blocks of the baseline (overdispersion).
-- * Rates (refusal, toxicity, errors): one-sided two-sample test on Anscombe's arcsine
--   transform (better tails than the plain z-test at small rates), Wilson intervals,
--   combined with the seed's absolute thresholds.
-- * Repeated evaluation: drifted (and so an event) needs p_value below a per-evaluation
--   level chosen so that a drift-free model evaluated every bucket raises on average at most
--   one false event per false_alarm_interval (default 30 days), over all its metrics.
--   The level comes from the up-crossing rate of a sliding-window statistic.

CREATE OR REPLACE FUNCTION drift.normal_sf(z double precision) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
DECLARE
    x double precision := abs(z) / sqrt(2.0);
    t double precision := 1.0 / (1.0 + 0.5 * x);
    erfc double precision;
BEGIN
    -- erfc by the Chebyshev fit of Numerical Recipes (erfcc): relative error < 1.2e-7 everywhere,
    -- so tail p-values stay accurate. (PostgreSQL before 18 has no erfc.)
    IF x > 26 THEN
        erfc := 0;  -- below 1e-295: exp() would underflow
    ELSE
    erfc := t * exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
            + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
            + t * (-0.82215223 + t * 0.17087277)))))))));
    END IF;
    IF z >= 0 THEN
        RETURN 0.5 * erfc;
    END IF;
    RETURN 1.0 - 0.5 * erfc;
END $$;
COMMENT ON FUNCTION drift.normal_sf(double precision) IS 'Upper tail P(Z > z) of the standard normal distribution.';

CREATE OR REPLACE FUNCTION drift.proportion_above_p(x bigint, n bigint, p0 double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- One-sided one-sample z-test against a fixed rate, used when there is no baseline yet.
    SELECT CASE
        WHEN n IS NULL OR n < 1 OR p0 IS NULL THEN NULL
        WHEN p0 <= 0 THEN CASE WHEN x > 0 THEN 0.0 ELSE 1.0 END
        WHEN p0 >= 1 THEN 1.0
        ELSE drift.normal_sf((x::float8 / n - p0) / sqrt(p0 * (1 - p0) / n))
    END
$$;
COMMENT ON FUNCTION drift.proportion_above_p(bigint, bigint, double precision) IS 'p-value of a one-sided z-test that a rate exceeds p0.';

CREATE OR REPLACE FUNCTION drift.chi2_sf_real(x double precision, nu double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- Wilson-Hilferty with real degrees of freedom (the matched-moment nu is not an integer).
    SELECT CASE WHEN nu <= 0 THEN NULL WHEN x <= 0 THEN 1.0
        ELSE drift.normal_sf((cbrt(x / nu) - (1 - 2.0 / (9 * nu))) / sqrt(2.0 / (9 * nu))) END
$$;
COMMENT ON FUNCTION drift.chi2_sf_real(double precision, double precision) IS 'Upper tail of the chi-square distribution with real degrees of freedom nu (Wilson-Hilferty).';

CREATE OR REPLACE FUNCTION drift.normal_isf(p double precision) RETURNS double precision
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

CREATE OR REPLACE FUNCTION drift.look_alpha(p_window interval DEFAULT NULL) RETURNS double precision
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
    -- accuracy): the budget of one false event per interval is shared between them. The
    -- embedding tests added later (mean_shift_evidence, whitened_mean_shift at the level of its
    -- longer window) are not counted here: their false events were measured together with the
    -- one-hour mean test's by replaying drift-free real-embedding traffic (docs/detection.md).
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

CREATE OR REPLACE FUNCTION drift.rate_increase_p(x_cur bigint, n_cur bigint, x_base bigint, n_base bigint)
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

CREATE OR REPLACE FUNCTION drift.wilson_interval(x bigint, n bigint, level double precision,
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

CREATE OR REPLACE FUNCTION drift.cohens_h(p1 double precision, p0 double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$ SELECT 2 * asin(sqrt(least(greatest(p1, 0), 1))) - 2 * asin(sqrt(least(greatest(p0, 0), 1))) $$;
COMMENT ON FUNCTION drift.cohens_h(double precision, double precision) IS 'Cohen''s h effect size between two proportions (difference of arcsine-transformed rates).';

CREATE OR REPLACE FUNCTION drift.scale_vector(v vector, f double precision) RETURNS vector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, public, extensions
AS $$ SELECT v * array_fill(f::real, ARRAY[vector_dims(v)])::vector $$;
COMMENT ON FUNCTION drift.scale_vector(vector, double precision) IS 'v times a scalar (pgvector multiplies element-wise only).';

-- ---------------------------------------------------------------------------------------------
-- The calibrated embedding mean tests
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.three_moment_sf(stat double precision, k1 double precision, k2 double precision,
    nu double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- Pearson's three-moment fit of a weighted chi-square with cumulants k1, k2 and shape nu:
    -- (T - k1)/sqrt(k2) ~ (X - nu)/sqrt(2 nu), X ~ chi2(nu).
    SELECT drift.chi2_sf_real(nu + (stat - k1) * sqrt(2 * nu / k2), nu)
$$;
COMMENT ON FUNCTION drift.three_moment_sf(double precision, double precision, double precision, double precision) IS 'P(T > stat) for a weighted chi-square T fitted by its mean k1, variance k2 and shape nu (Pearson''s three-moment chi-square).';

CREATE OR REPLACE FUNCTION drift.embedding_mean_test(n_cur bigint, sum_cur vector, n_base bigint, sum_base vector,
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
    SELECT t.stat, k.k1, k.nu, drift.three_moment_sf(t.stat, k.k1, k.k2, k.nu),
        sqrt(greatest(t.stat - k.k1, 0) / (c).trace1)
    FROM (SELECT -(d <#> d) AS stat
          FROM (SELECT drift.scale_vector(sum_cur, 1.0 / nullif(n_cur, 0)) - drift.scale_vector(sum_base, 1.0 / nullif(n_base, 0)) AS d) x) t,
         (SELECT (c).trace1 * h AS k1, 2 * (c).trace2 * h * h AS k2, (c).trace2 ^ 3 / (c).trace3 ^ 2 AS nu
          FROM (SELECT (c).dispersion * (1.0 / nullif(n_cur, 0) + 1.0 / nullif(n_base, 0)) AS h) hh) k
    WHERE n_cur > 0 AND n_base > 0 AND (c).model IS NOT NULL
$$;
COMMENT ON FUNCTION drift.embedding_mean_test(bigint, vector, bigint, vector, drift.embedding_calibration) IS 'Calibrated test that the current mean embedding differs from the baseline mean (three-moment chi-square fit of |mean difference|^2, from rollup sums); effect_size = shift in units of the baseline''s RMS spread.';

-- ---------------------------------------------------------------------------------------------
-- Decision thresholds on the score scale: each report row's threshold is the score at which
-- its test rejects at the given level now, so drifted = (score > threshold) is the decision.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.chi2_isf_real(p double precision, nu double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- The exact inverse of drift.chi2_sf_real (Wilson-Hilferty), so tests and thresholds agree.
    SELECT CASE WHEN nu <= 0 THEN NULL
        ELSE nu * power(greatest(1 - 2.0 / (9 * nu) + drift.normal_isf(p) * sqrt(2.0 / (9 * nu)), 0), 3) END
$$;
COMMENT ON FUNCTION drift.chi2_isf_real(double precision, double precision) IS 'Inverse upper tail of the chi-square distribution with real degrees of freedom nu (Wilson-Hilferty): the x with drift.chi2_sf_real(x, nu) = p.';

CREATE OR REPLACE FUNCTION drift.three_moment_isf(level double precision, k1 double precision, k2 double precision,
    nu double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- The exact inverse of drift.three_moment_sf: its p-value is below level exactly above this.
    SELECT k1 + (drift.chi2_isf_real(level, nu) - nu) * sqrt(k2 / (2 * nu))
$$;
COMMENT ON FUNCTION drift.three_moment_isf(double precision, double precision, double precision, double precision) IS 'The statistic at which drift.three_moment_sf falls to level.';

CREATE OR REPLACE FUNCTION drift.embedding_mean_threshold(n_cur bigint, sum_cur vector, n_base bigint, sum_base vector,
    c drift.embedding_calibration, level double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, public, extensions
AS $$
    -- The test rejects when T = |a - b|^2 passes T* (the level's quantile of its null fit).
    -- With the two mean vectors' norms as they are, |a - b|^2 = |a|^2 + |b|^2 - 2|a||b| cos,
    -- so T > T* exactly when the centroid cosine distance passes 1 - (|a|^2 + |b|^2 - T*) / (2|a||b|).
    SELECT least(greatest(1 - (na * na + nb * nb - tstar) / (2 * na * nb), 0), 2)
    FROM (SELECT vector_norm(sum_cur) / n_cur AS na, vector_norm(sum_base) / n_base AS nb,
                 drift.three_moment_isf(level, k.k1, k.k2, k.nu) AS tstar
          FROM (SELECT (c).trace1 * h AS k1, 2 * (c).trace2 * h * h AS k2, (c).trace2 ^ 3 / (c).trace3 ^ 2 AS nu
                FROM (SELECT (c).dispersion * (1.0 / n_cur + 1.0 / n_base) AS h) hh) k) s
    WHERE n_cur > 0 AND n_base > 0 AND (c).model IS NOT NULL AND na > 0 AND nb > 0
$$;
COMMENT ON FUNCTION drift.embedding_mean_threshold(bigint, vector, bigint, vector, drift.embedding_calibration, double precision) IS 'Centroid cosine distance at which drift.embedding_mean_test rejects at the given level for these windows: its p-value is below level exactly when the distance is above this.';

CREATE OR REPLACE FUNCTION drift.rate_increase_threshold(n_cur bigint, x_base bigint, n_base bigint, level double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- The current rate x/n_cur at which drift.rate_increase_p(x, n_cur, x_base, n_base) = level:
    -- the arcsine statistic solved for x.
    SELECT CASE
        WHEN n_cur IS NULL OR n_base IS NULL OR n_cur < 1 OR n_base < 1 OR level IS NULL THEN NULL
        WHEN theta >= pi() / 2 THEN 'Infinity'::float8
        ELSE (power(sin(theta), 2) * (n_cur + 0.75) - 0.375) / n_cur
    END
    FROM (SELECT asin(sqrt((x_base + 0.375) / (n_base + 0.75)))
                 + drift.normal_isf(level) * sqrt(1.0 / (4 * n_cur + 2) + 1.0 / (4 * n_base + 2)) AS theta) t
$$;
COMMENT ON FUNCTION drift.rate_increase_threshold(bigint, bigint, bigint, double precision) IS 'Current rate above which drift.rate_increase_p falls below level (n_cur current samples against x_base of n_base).';

CREATE OR REPLACE FUNCTION drift.proportion_above_threshold(n bigint, p0 double precision, level double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- The rate at which drift.proportion_above_p(x, n, p0) = level.
    SELECT CASE
        WHEN n IS NULL OR n < 1 OR p0 IS NULL OR level IS NULL THEN NULL
        WHEN p0 <= 0 THEN 0.0
        WHEN p0 >= 1 THEN 'Infinity'::float8
        ELSE p0 + drift.normal_isf(level) * sqrt(p0 * (1 - p0) / n)
    END
$$;
COMMENT ON FUNCTION drift.proportion_above_threshold(bigint, double precision, double precision) IS 'Rate above which drift.proportion_above_p falls below level (n samples against the fixed rate p0).';
