-- Drift reports at any time (drift.drift_report(as_of)) and now (the drift views). Every row is
-- a drift.report_row; its columns are documented once, on the type, and copied to the views.

-- ---------------------------------------------------------------------------------------------
-- Drift reports (any time) and views (now)
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.report_config(p_as_of timestamptz,
    OUT window_start timestamptz, OUT window_end timestamptz, OUT min_samples bigint, OUT alpha double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT e - drift.setting('current_window')::interval, e,
           drift.setting('min_samples')::bigint, drift.setting('alpha')::float8
    FROM (SELECT drift.bucket_of(p_as_of, drift.setting('bucket_width')::interval) AS e) x
$$;
COMMENT ON FUNCTION drift.report_config(timestamptz) IS 'The current window (whole buckets before as_of), min_samples and alpha used by the drift reports.';

CREATE OR REPLACE FUNCTION drift.embedding_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS SETOF drift.report_row
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    WITH cfg AS (
        SELECT c.*, drift.setting('embedding_drift_threshold')::float8 AS thr,
            drift.setting('embedding_distance_floor')::float8 AS floor, drift.look_alpha() AS look,
            drift.setting('whitened_window')::interval AS white_window,
            drift.look_alpha(drift.setting('whitened_window')::interval) AS white_look
        FROM drift.report_config(p_as_of) c
    ), cur AS (
        SELECT m.model, w.n, w.vec_sum, b.n AS nb, b.vec_sum AS vb, b.ends AS base_ends, cal AS cal
        FROM drift.models m
        CROSS JOIN cfg
        CROSS JOIN LATERAL drift.embedding_window(m.model, cfg.window_start, cfg.window_end) w
        LEFT JOIN drift.baselines b ON b.model = m.model AND b.kind = 'embedding'
        LEFT JOIN drift.embedding_calibration cal ON cal.model = m.model
        WHERE m.embedding_dims IS NOT NULL AND (p_models IS NULL OR m.model = ANY (p_models))
    ), mean_rows AS (
        SELECT cur.model, cur.n, cur.nb, cur.cal,
            CASE WHEN cur.n > 0 AND cur.nb > 0 THEN (cur.vec_sum <=> cur.vb) END AS dist, t.*,
            -- The decision line on the score's own scale: the centroid distance at which the
            -- mean test rejects at the per-evaluation level now (never below the floor).
            CASE WHEN cur.n >= cfg.min_samples AND cur.nb >= cfg.min_samples THEN
                greatest(drift.embedding_mean_threshold(cur.n, cur.vec_sum, cur.nb, cur.vb, cur.cal, cfg.look), cfg.floor)
            END AS decision
        FROM cur CROSS JOIN cfg
        LEFT JOIN LATERAL drift.embedding_mean_test(cur.n, cur.vec_sum, cur.nb, cur.vb, cur.cal) t ON true
    ), novelty_rows AS (
        -- Without a calibration (no baseline yet) the row is still there, with its count.
        SELECT cur.model, cur.nb, cur.cal, cur.n, nw.scored, nw.novel,
            CASE WHEN nw.scored > 0 THEN nw.novel::float8 / nw.scored END AS rate,
            round((cur.cal).novelty_expected * (cur.cal).sample_n)::bigint AS novel_base,
            nw.scored >= cfg.min_samples AS enough
        FROM cur CROSS JOIN cfg
        LEFT JOIN LATERAL drift.novelty_window(cur.model, cfg.window_start, cfg.window_end) nw
            ON (cur.cal).novelty_radius IS NOT NULL
    )
    SELECT s.model, 'embedding', 'centroid_distance', s.dist, s.decision, s.p_value, s.n, coalesce(s.nb, 0),
        coalesce(s.dist > s.decision, false),
        cfg.window_start, cfg.window_end, s.dist, 0::float8,
        jsonb_build_object('test', 'mean shift, three-moment chi-square calibrated on baseline buckets',
            'statistic', s.statistic, 'expected_statistic', s.expected, 'dof', s.dof,
            'effect_size', s.effect_size, 'effect_size_kind', 'mean shift / baseline RMS spread',
            'dispersion', (s.cal).dispersion, 'calibration_units', (s.cal).units,
            'alpha', cfg.alpha, 'look_alpha', cfg.look, 'distance_floor', cfg.floor,
            'seed_threshold', cfg.thr, 'seed_rule_drifted', coalesce(s.dist > cfg.thr, false),
            'threshold_kind', 'centroid distance at which the mean test rejects at look_alpha',
            'min_samples', cfg.min_samples)
    FROM mean_rows s CROSS JOIN cfg
    UNION ALL
    SELECT v.model, 'embedding', 'novelty_rate', v.rate, v.decision,
        drift.rate_increase_p(v.novel, v.scored, v.novel_base, (v.cal).sample_n), v.n, coalesce(v.nb, 0),
        coalesce(v.rate > v.decision, false),
        cfg.window_start, cfg.window_end, v.rate, (v.cal).novelty_expected,
        jsonb_build_object('test', 'nearest-neighbour novelty vs baseline sample, arcsine two-sample (one-sided)',
            'effect_size', v.rate - (v.cal).novelty_expected, 'effect_size_kind', 'excess novelty rate',
            'scored_current', v.scored, 'novel_current', v.novel, 'sample_n', (v.cal).sample_n,
            'radius', (v.cal).novelty_radius, 'alpha', cfg.alpha, 'look_alpha', cfg.look,
            'expected_rate', (v.cal).novelty_expected,
            'threshold_kind', 'novelty rate at which the test rejects at look_alpha',
            'min_samples', cfg.min_samples)
    FROM (SELECT nr.*, CASE WHEN nr.enough THEN greatest(
              drift.rate_increase_threshold(nr.scored, nr.novel_base, (nr.cal).sample_n, cfg.look),
              (nr.cal).novelty_expected) END AS decision
          FROM novelty_rows nr CROSS JOIN cfg) v CROSS JOIN cfg
    UNION ALL
    -- The sequential test: its statistic after the last bucket folded before the window's end,
    -- on the current window like every row (an event's window is what a reindex moves the
    -- baseline to, and what incidents group by); the run of evidence is in details.
    SELECT cur.model, 'embedding', 'mean_shift_evidence', ev.statistic,
        CASE WHEN ev.model IS NOT NULL AND cur.n >= cfg.min_samples THEN h.h END,
        -- About (run_n k^2/2) e^-S: how often drift-free traffic builds this much evidence in a run this long.
        CASE WHEN ev.model IS NOT NULL THEN least(1, (ev.run_n * h.k * h.k / 2 + 1) * exp(-least(ev.statistic, 700))) END,
        cur.n, coalesce(cur.nb, 0),
        coalesce(cur.n >= cfg.min_samples AND ev.statistic > h.h, false),
        cfg.window_start, cfg.window_end, ev.statistic, 0::float8,
        jsonb_build_object('test', 'CUSUM of each new bucket projected on the whitened direction the mean moved before it',
            'statistic_kind', 'evidence in nats (log-likelihood ratio)', 'reference_shift', h.k,
            'direction_window', drift.setting('evidence_direction_window'), 'last_bucket', ev.bucket,
            'last_z', ev.z, 'since', ev.since, 'run_embeddings', ev.run_n,
            'threshold_kind', 'evidence at which drift-free traffic at the baseline rate raises about one false event per four false_alarm_intervals',
            'alpha', cfg.alpha, 'min_samples', cfg.min_samples)
    FROM cur CROSS JOIN cfg
    CROSS JOIN LATERAL (SELECT drift.evidence_threshold(cur.model) AS h, drift.setting('evidence_shift')::float8 AS k) h
    LEFT JOIN LATERAL (SELECT e.* FROM drift.embedding_evidence e
                       WHERE e.model = cur.model AND e.bucket < cfg.window_end
                       ORDER BY e.bucket DESC LIMIT 1) ev ON true
    UNION ALL
    -- The whitened window test, over whitened_window ending where the current window ends (never
    -- before the baseline's end: that data is partly the baseline itself), at the per-evaluation
    -- level of a window that long. Its row keeps the current window, like the sequential test's.
    SELECT cur.model, 'embedding', 'whitened_mean_shift', wt.statistic,
        CASE WHEN lined THEN wt.decision END, wt.p_value, cur.n, coalesce(cur.nb, 0),
        coalesce(lined AND wt.statistic > wt.decision, false),
        cfg.window_start, cfg.window_end, wt.statistic, 0::float8,
        jsonb_build_object('test', 'mean shift in the sequential test''s whitened features over whitened_window, three-moment chi-square',
            'statistic_kind', 'squared whitened mean shift', 'expected_statistic', wt.expected, 'dof', wt.dof,
            'effect_size', CASE WHEN wt.statistic IS NOT NULL THEN sqrt(greatest(wt.statistic - wt.expected, 0)) END,
            'effect_size_kind', 'sqrt(statistic - its mean without drift): the ridge-whitened mean shift',
            'test_window_start', wf.from_, 'test_window_end', cfg.window_end, 'test_window_n', ww.n,
            'dispersion', (cur.cal).whitened_dispersion, 'alpha', cfg.alpha, 'look_alpha', cfg.white_look,
            'threshold_kind', 'statistic at which the test rejects at look_alpha of whitened_window',
            'min_samples', cfg.min_samples)
    FROM cur CROSS JOIN cfg
    CROSS JOIN LATERAL (SELECT greatest(cfg.window_end - cfg.white_window, cur.base_ends) AS from_) wf
    -- Without the traces (no whitening) the window is not even read.
    LEFT JOIN LATERAL drift.embedding_window(cur.model, wf.from_, cfg.window_end) ww ON (cur.cal).whitened_trace2 IS NOT NULL
    LEFT JOIN LATERAL drift.embedding_whitened_test(cur.model, ww.n, ww.vec_sum, cur.nb, cur.vb, cur.cal, cfg.white_look) wt
        ON ww.n > 0
    CROSS JOIN LATERAL (SELECT cur.n >= cfg.min_samples AND ww.n >= cfg.min_samples AND cur.nb >= cfg.min_samples
                               AND wt.decision IS NOT NULL AS lined) l
$$;
COMMENT ON FUNCTION drift.embedding_report(timestamptz, text[]) IS 'Embedding drift of each model at as_of: centroid_distance (score = centroid cosine distance; p-value of the calibrated mean-shift test from rollups), novelty_rate (share of embeddings far from every baseline-sample point; binomial-type test against the baseline''s own rate), mean_shift_evidence (score = CUSUM evidence in nats accumulated over the buckets folded so far) and whitened_mean_shift (score = squared whitened mean shift over whitened_window).';

CREATE OR REPLACE FUNCTION drift.behavior_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS SETOF drift.report_row
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
                 ELSE drift.proportion_above_p(x.x_cur, x.n_cur, x.thr) END AS p,
            -- The decision line: past the seed's absolute threshold and past the rate at which
            -- the rise becomes significant at the per-evaluation level.
            CASE WHEN x.n_cur >= cfg.min_samples THEN greatest(x.thr,
                CASE WHEN x.n_base >= cfg.min_samples THEN drift.rate_increase_threshold(x.n_cur, x.x_base, x.n_base, cfg.look)
                     ELSE drift.proportion_above_threshold(x.n_cur, x.thr, cfg.look) END) END AS decision
        FROM cur CROSS JOIN cfg
        CROSS JOIN LATERAL (VALUES
            ('refusal_rate', (cur.c).refusals, (cur.c).refusal_known, coalesce((cur.b).refusals, 0),
                coalesce((cur.b).refusal_known, 0), drift.setting('refusal_rate_threshold')::float8),
            ('toxicity_rate', (cur.c).toxic, (cur.c).toxicity_scored, coalesce((cur.b).toxic, 0),
                coalesce((cur.b).toxicity_scored, 0), drift.setting('toxicity_rate_threshold')::float8)
        ) AS x(metric, x_cur, n_cur, x_base, n_base, thr)
    )
    SELECT mt.model, 'behavior', mt.metric,
        CASE WHEN mt.n_cur > 0 THEN mt.x_cur::float8 / mt.n_cur END, mt.decision, mt.p, mt.n_cur, mt.n_base,
        -- Both at once: above the seed's absolute threshold, and a rise significant at the
        -- per-evaluation level (decision is the larger of the two rates).
        coalesce(mt.x_cur::float8 / nullif(mt.n_cur, 0) > mt.decision, false),
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
            'seed_threshold', mt.thr, 'seed_rule_drifted', coalesce(mt.x_cur::float8 / nullif(mt.n_cur, 0) > mt.thr, false),
            'threshold_kind', 'rate past both the seed threshold and significance at look_alpha',
            'count_current', mt.x_cur, 'count_baseline', mt.x_base)
    FROM metrics mt CROSS JOIN cfg
    LEFT JOIN LATERAL drift.wilson_interval(mt.x_cur, mt.n_cur, 1 - cfg.alpha) wi ON true
$$;
COMMENT ON FUNCTION drift.behavior_report(timestamptz, text[]) IS 'Behavior drift of each model at as_of: refusal and toxicity rates (score) above the absolute thresholds and significantly above the baseline (arcsine test at the per-evaluation level), with Wilson intervals.';

CREATE OR REPLACE FUNCTION drift.accuracy_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS SETOF drift.report_row
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
            drift.rate_increase_p(n_cur - ok_cur, n_cur, n_base - ok_base, n_base) AS p,
            -- The decision line on the drop scale: the seed's drop threshold, or the drop at
            -- which the error-rate rise becomes significant at the per-evaluation level.
            CASE WHEN n_cur >= cfg.min_samples AND n_base >= cfg.min_samples THEN greatest(cfg.thr,
                drift.rate_increase_threshold(n_cur, n_base - ok_base, n_base, cfg.look)
                - (n_base - ok_base)::float8 / n_base) END AS decision
        FROM cur CROSS JOIN cfg
    )
    SELECT s.model, 'accuracy', 'accuracy', s.acc_base - s.acc, s.decision, s.p, s.n_cur, s.n_base,
        coalesce(s.acc_base - s.acc > s.decision, false),
        cfg.window_start, cfg.window_end, s.acc, s.acc_base,
        jsonb_build_object('test', 'arcsine two-sample (one-sided) on the error rate vs baseline',
            'effect_size', drift.cohens_h(1 - s.acc, 1 - s.acc_base), 'effect_size_kind', 'Cohen''s h of the error rate',
            'ci_low', wi.low, 'ci_high', wi.high, 'ci_level', 1 - cfg.alpha,
            'alpha', cfg.alpha, 'look_alpha', cfg.look,
            'seed_threshold', cfg.thr, 'seed_rule_drifted', coalesce(s.acc_base - s.acc > cfg.thr, false),
            'threshold_kind', 'accuracy drop past both the seed threshold and significance at look_alpha',
            'min_samples', cfg.min_samples, 'labelled_current', s.labelled,
            'window_time', 'interaction time (late labels count in their interaction''s window)')
    FROM scored s CROSS JOIN cfg
    LEFT JOIN LATERAL drift.wilson_interval(s.ok_cur, s.n_cur, 1 - cfg.alpha) wi ON true
$$;
COMMENT ON FUNCTION drift.accuracy_report(timestamptz, text[]) IS 'Accuracy drift of each model at as_of: accuracy from labels (feedback where unlabelled) by interaction time, score = drop below the baseline accuracy; drifted when the drop exceeds the threshold and the error-rate rise is significant at the per-evaluation level.';

CREATE OR REPLACE FUNCTION drift.drift_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS SETOF drift.report_row
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT * FROM drift.embedding_report(p_as_of, p_models)
    UNION ALL SELECT * FROM drift.behavior_report(p_as_of, p_models)
    UNION ALL SELECT * FROM drift.accuracy_report(p_as_of, p_models)
$$;
COMMENT ON FUNCTION drift.drift_report(timestamptz, text[]) IS 'All drift metrics of all (or the given) models at any time as_of; the drift views are this at now().';

CREATE OR REPLACE VIEW drift.embedding_drift AS SELECT * FROM drift.embedding_report(now(), NULL);
CREATE OR REPLACE VIEW drift.behavior_drift AS SELECT * FROM drift.behavior_report(now(), NULL);
CREATE OR REPLACE VIEW drift.accuracy_drift AS SELECT * FROM drift.accuracy_report(now(), NULL);
CREATE OR REPLACE VIEW drift.drift_status AS
    SELECT * FROM drift.embedding_drift
    UNION ALL SELECT * FROM drift.behavior_drift
    UNION ALL SELECT * FROM drift.accuracy_drift;
COMMENT ON VIEW drift.embedding_drift IS 'Embedding drift now: centroid_distance, novelty_rate, mean_shift_evidence and whitened_mean_shift per model.';
COMMENT ON VIEW drift.behavior_drift IS 'Behavior drift now: refusal_rate and toxicity_rate per model.';
COMMENT ON VIEW drift.accuracy_drift IS 'Accuracy drift now: accuracy per model (score = drop below baseline).';
COMMENT ON VIEW drift.drift_status IS 'Every drift metric of every model now: the union of the three drift views.';

COMMENT ON COLUMN drift.report_row.model IS 'Model name.';
COMMENT ON COLUMN drift.report_row.kind IS 'embedding, behavior or accuracy.';
COMMENT ON COLUMN drift.report_row.metric IS 'centroid_distance, novelty_rate, mean_shift_evidence, whitened_mean_shift, refusal_rate, toxicity_rate or accuracy.';
COMMENT ON COLUMN drift.report_row.score IS 'The metric''s score compared with threshold: centroid cosine distance, rate, accuracy drop, evidence in nats, or the squared whitened mean shift.';
COMMENT ON COLUMN drift.report_row.threshold IS 'The decision line on the score''s scale: the score above which this row counts as drifted now (its test rejecting at details.look_alpha, and past the seed threshold details.seed_threshold for rates and accuracy); drifted = (score > threshold). NULL with too few samples.';
COMMENT ON COLUMN drift.report_row.p_value IS 'p-value of the calibrated statistical test of this window (see details.test).';
COMMENT ON COLUMN drift.report_row.n_current IS 'Samples in the current window.';
COMMENT ON COLUMN drift.report_row.n_baseline IS 'Samples in the baseline window.';
COMMENT ON COLUMN drift.report_row.drifted IS 'score > threshold: enough samples, p_value below the per-evaluation level details.look_alpha (at most one false event per false_alarm_interval), and the seed threshold passed (rates, accuracy drop) or the floor (centroid distance).';
COMMENT ON COLUMN drift.report_row.window_start IS 'Start of the current window.';
COMMENT ON COLUMN drift.report_row.window_end IS 'End of the current window (exclusive).';
COMMENT ON COLUMN drift.report_row.value IS 'Current value of the metric (distance, rate or accuracy).';
COMMENT ON COLUMN drift.report_row.baseline_value IS 'Baseline value of the metric.';
COMMENT ON COLUMN drift.report_row.details IS 'Test name, statistic, effect_size, intervals, alpha, look_alpha, min_samples and counts.';

-- The views show the same columns: copy the type's column comments onto each of them.
DO $$
DECLARE
    v text;
    c record;
BEGIN
    FOREACH v IN ARRAY ARRAY['embedding_drift', 'behavior_drift', 'accuracy_drift', 'drift_status'] LOOP
        FOR c IN SELECT a.attname, col_description(a.attrelid, a.attnum) AS doc FROM pg_attribute a
                 WHERE a.attrelid = 'drift.report_row'::regclass AND a.attnum > 0 AND NOT a.attisdropped LOOP
            EXECUTE format('COMMENT ON COLUMN drift.%I.%I IS %L', v, c.attname, c.doc);
        END LOOP;
    END LOOP;
END $$;
