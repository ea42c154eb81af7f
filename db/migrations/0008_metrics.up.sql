-- Evaluation history: every drift.evaluate() leaves one row per model, kind and metric and
-- rollup bucket of its as_of, so dashboards plot each score against its decision line over
-- time without re-running the statistics, and /metrics knows when each model was last evaluated.
CREATE TABLE drift.evaluation_history (
    model text NOT NULL,
    kind text NOT NULL,
    metric text NOT NULL,
    bucket timestamptz NOT NULL,
    as_of timestamptz NOT NULL,
    evaluated_at timestamptz NOT NULL DEFAULT now(),
    score double precision,
    threshold double precision,
    p_value double precision,
    value double precision,
    baseline_value double precision,
    drifted boolean,
    n_current bigint,
    n_baseline bigint,
    PRIMARY KEY (model, kind, metric, bucket)
);
-- /metrics reads the latest evaluated_at per model.
CREATE INDEX evaluation_history_model_evaluated_at ON drift.evaluation_history (model, evaluated_at);
COMMENT ON TABLE drift.evaluation_history IS 'One row per model, kind, metric and rollup bucket of the evaluation time: the drift report as drift.evaluate() saw it (the last evaluation in the bucket wins). Read by drift.score_timeseries and /metrics.';
COMMENT ON COLUMN drift.evaluation_history.model IS 'Model name.';
COMMENT ON COLUMN drift.evaluation_history.kind IS 'embedding, behavior or accuracy.';
COMMENT ON COLUMN drift.evaluation_history.metric IS 'Metric name, as in drift.drift_status.';
COMMENT ON COLUMN drift.evaluation_history.bucket IS 'Rollup bucket (bucket_width) holding as_of.';
COMMENT ON COLUMN drift.evaluation_history.as_of IS 'The evaluation time on the data clock (drift.evaluate(as_of)).';
COMMENT ON COLUMN drift.evaluation_history.evaluated_at IS 'Wall-clock time of the evaluation (transaction time).';
COMMENT ON COLUMN drift.evaluation_history.score IS 'The score, as in drift.drift_status.';
COMMENT ON COLUMN drift.evaluation_history.threshold IS 'The decision line the score was compared with.';
COMMENT ON COLUMN drift.evaluation_history.p_value IS 'p-value of the test.';
COMMENT ON COLUMN drift.evaluation_history.value IS 'Current value of the metric.';
COMMENT ON COLUMN drift.evaluation_history.baseline_value IS 'Baseline value of the metric.';
COMMENT ON COLUMN drift.evaluation_history.drifted IS 'Whether the row counted as drifted.';
COMMENT ON COLUMN drift.evaluation_history.n_current IS 'Samples in the current window.';
COMMENT ON COLUMN drift.evaluation_history.n_baseline IS 'Samples in the baseline.';
