-- Restores the 0001 statistics exactly: the report functions and view column comments as
-- 0001 defined them; drops everything 0004 added.
DROP TRIGGER IF EXISTS baselines_calibrate ON drift.baselines;
DROP TRIGGER IF EXISTS baselines_uncalibrate ON drift.baselines;
DROP TRIGGER IF EXISTS settings_validate_detection ON drift.settings;
CREATE OR REPLACE FUNCTION drift.embedding_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS TABLE (model text, kind text, metric text, score double precision, threshold double precision,
    p_value double precision, n_current bigint, n_baseline bigint, drifted boolean,
    window_start timestamptz, window_end timestamptz, value double precision, baseline_value double precision,
    details jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    WITH cfg AS (
        SELECT c.*, drift.setting('embedding_drift_threshold')::float8 AS thr FROM drift.report_config(p_as_of) c
    ), cur AS (
        SELECT m.model, w.n, w.vec_sum, b.n AS nb, b.vec_sum AS vb, b.sq_sum AS sb
        FROM drift.models m
        CROSS JOIN cfg
        CROSS JOIN LATERAL drift.embedding_window(m.model, cfg.window_start, cfg.window_end) w
        LEFT JOIN drift.baselines b ON b.model = m.model AND b.kind = 'embedding'
        WHERE m.embedding_dims IS NOT NULL AND (p_models IS NULL OR m.model = ANY (p_models))
    ), scored AS (
        SELECT cur.*,
            CASE WHEN cur.n > 0 AND cur.nb > 0 THEN (cur.vec_sum <=> cur.vb) END AS dist,
            t.statistic, t.dof, t.p_value
        FROM cur
        LEFT JOIN LATERAL drift.mean_shift_test(cur.n, cur.vec_sum, cur.nb, cur.vb, cur.sb) t ON true
    )
    SELECT s.model, 'embedding', 'centroid_distance', s.dist, cfg.thr, s.p_value, s.n, coalesce(s.nb, 0),
        coalesce(s.n >= cfg.min_samples AND s.nb >= cfg.min_samples AND s.dist > cfg.thr AND s.p_value < cfg.alpha, false),
        cfg.window_start, cfg.window_end, s.dist, 0::float8,
        jsonb_build_object('test', 'diagonal chi-square mean shift', 'statistic', s.statistic, 'dof', s.dof,
            'alpha', cfg.alpha, 'min_samples', cfg.min_samples)
    FROM scored s CROSS JOIN cfg
$$;
COMMENT ON FUNCTION drift.embedding_report(timestamptz, text[]) IS 'Embedding drift of each model at as_of: cosine distance between the current and baseline centroids (score) and a chi-square mean-shift p-value, from rollups only.';

CREATE OR REPLACE FUNCTION drift.behavior_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS TABLE (model text, kind text, metric text, score double precision, threshold double precision,
    p_value double precision, n_current bigint, n_baseline bigint, drifted boolean,
    window_start timestamptz, window_end timestamptz, value double precision, baseline_value double precision,
    details jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    WITH cfg AS (SELECT * FROM drift.report_config(p_as_of)),
    cur AS (
        SELECT m.model, w AS c, b
        FROM drift.models m
        CROSS JOIN cfg
        CROSS JOIN LATERAL drift.interaction_window(m.model, cfg.window_start, cfg.window_end) w
        LEFT JOIN drift.baselines b ON b.model = m.model AND b.kind = 'behavior'
        WHERE m.interactions_seen AND (p_models IS NULL OR m.model = ANY (p_models))
    ), metrics AS (
        SELECT cur.model, x.*,
            -- Against the baseline when it has enough data, else against the absolute threshold.
            CASE WHEN x.n_base >= cfg.min_samples THEN drift.proportion_increase_p(x.x_cur, x.n_cur, x.x_base, x.n_base)
                 ELSE drift.proportion_above_p(x.x_cur, x.n_cur, x.thr) END AS p,
            CASE WHEN x.n_base >= cfg.min_samples THEN 'two-proportion z (one-sided) vs baseline'
                 ELSE 'one-sample z (one-sided) vs threshold' END AS test
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
        coalesce(mt.n_cur >= cfg.min_samples AND mt.x_cur::float8 / mt.n_cur > mt.thr AND mt.p < cfg.alpha, false),
        cfg.window_start, cfg.window_end,
        CASE WHEN mt.n_cur > 0 THEN mt.x_cur::float8 / mt.n_cur END,
        CASE WHEN mt.n_base > 0 THEN mt.x_base::float8 / mt.n_base END,
        jsonb_build_object('test', mt.test, 'alpha', cfg.alpha, 'min_samples', cfg.min_samples,
            'count_current', mt.x_cur, 'count_baseline', mt.x_base)
    FROM metrics mt CROSS JOIN cfg
$$;
COMMENT ON FUNCTION drift.behavior_report(timestamptz, text[]) IS 'Behavior drift of each model at as_of: refusal and toxicity rates (score) against the absolute thresholds, with a one-sided proportion test against the baseline.';

CREATE OR REPLACE FUNCTION drift.accuracy_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS TABLE (model text, kind text, metric text, score double precision, threshold double precision,
    p_value double precision, n_current bigint, n_baseline bigint, drifted boolean,
    window_start timestamptz, window_end timestamptz, value double precision, baseline_value double precision,
    details jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    WITH cfg AS (
        SELECT c.*, drift.setting('accuracy_drop_threshold')::float8 AS thr FROM drift.report_config(p_as_of) c
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
            drift.proportion_increase_p(n_cur - ok_cur, n_cur, n_base - ok_base, n_base) AS p
        FROM cur
    )
    SELECT s.model, 'accuracy', 'accuracy', s.acc_base - s.acc, cfg.thr, s.p, s.n_cur, s.n_base,
        coalesce(s.n_cur >= cfg.min_samples AND s.n_base >= cfg.min_samples AND s.acc_base - s.acc > cfg.thr
                 AND s.p < cfg.alpha, false),
        cfg.window_start, cfg.window_end, s.acc, s.acc_base,
        jsonb_build_object('test', 'two-proportion z (one-sided) vs baseline', 'alpha', cfg.alpha,
            'min_samples', cfg.min_samples, 'labelled_current', s.labelled,
            'window_time', 'interaction time (late labels count in their interaction''s window)')
    FROM scored s CROSS JOIN cfg
$$;
COMMENT ON FUNCTION drift.accuracy_report(timestamptz, text[]) IS 'Accuracy drift of each model at as_of: accuracy from labels (feedback where unlabelled), score = drop below the baseline accuracy.';

DO $$
DECLARE
    v text;
    c text;
BEGIN
    FOREACH v IN ARRAY ARRAY['embedding_drift', 'behavior_drift', 'accuracy_drift', 'drift_status'] LOOP
        FOREACH c IN ARRAY ARRAY[
            'metric|centroid_distance, refusal_rate, toxicity_rate or accuracy.',
            'p_value|p-value of the statistical test (see details.test).',
            'drifted|true when enough samples, score above threshold and p_value below alpha.',
            'details|Test name, alpha, min_samples and counts.'
        ] LOOP
            EXECUTE format('COMMENT ON COLUMN drift.%I.%I IS %L', v, split_part(c, '|', 1), split_part(c, '|', 2));
        END LOOP;
    END LOOP;
END $$;

DROP FUNCTION drift.embedding_mean_test(bigint, vector, bigint, vector, drift.embedding_calibration);
CREATE OR REPLACE FUNCTION drift.prepare_report(p_as_of timestamptz, p_models text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NULL;  -- nothing to prepare for the rollup-only statistics of this revision
END $$;
COMMENT ON FUNCTION drift.prepare_report(timestamptz, text[]) IS 'Extension point: drift.evaluate_models calls it before reading the report, so statistics that cache per-window work (novelty counts, revision 0004) do it once per evaluation. A no-op in revision 0001.';
DROP FUNCTION drift.novelty_score(text, timestamptz, timestamptz);
DROP FUNCTION drift.novelty_window(text, timestamptz, timestamptz);
DROP FUNCTION drift.novelty_todo(text, timestamptz, timestamptz);
DROP FUNCTION drift.novelty_buckets(text, timestamptz[]);
DROP FUNCTION drift.baselines_calibrate();
DROP FUNCTION drift.embedding_calibrate(text);
DROP FUNCTION drift.sample_nn_distances(text, integer);
DROP FUNCTION drift.baseline_bucket_sql(text);
DROP FUNCTION drift.scale_vector(vector, double precision);
DROP TABLE drift.novelty_rollup;
DROP TABLE drift.baseline_samples;
DROP TABLE drift.embedding_calibration;
DROP FUNCTION drift.cohens_h(double precision, double precision);
DROP FUNCTION drift.wilson_interval(bigint, bigint, double precision);
DROP FUNCTION drift.rate_increase_p(bigint, bigint, bigint, bigint);
DROP FUNCTION drift.look_alpha(interval);
DROP FUNCTION drift.normal_isf(double precision);
DROP FUNCTION drift.chi2_sf_real(double precision, double precision);
DROP FUNCTION drift.detection_settings_validate();
DELETE FROM drift.settings
WHERE key IN ('false_alarm_interval', 'novelty_sample_size', 'novelty_per_bucket', 'novelty_quantile',
    'embedding_distance_floor');
