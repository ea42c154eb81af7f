-- Time series for dashboards (Grafana's PostgreSQL data source) and the evaluation history.
-- Every view has a `time` column, as Grafana's $__timeFilter / $__timeGroupAlias macros
-- expect, and reads rollups, baselines, the evaluation history, events and action runs:
-- no view scans the raw logs. Times are on the data clock (the time the traffic happened),
-- which is the wall clock in live use and the simulated clock in simulations.

CREATE OR REPLACE FUNCTION drift.record_evaluation(p_as_of timestamptz, p_report drift.report_row[]) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    INSERT INTO drift.evaluation_history AS h (model, kind, metric, bucket, as_of, evaluated_at, score, threshold,
        p_value, value, baseline_value, drifted, n_current, n_baseline)
    SELECT r.model, r.kind, r.metric, drift.bucket_of(p_as_of, drift.setting('bucket_width')::interval), p_as_of,
        now(), r.score, r.threshold, r.p_value, r.value, r.baseline_value, r.drifted, r.n_current, r.n_baseline
    FROM unnest(p_report) AS r
    ON CONFLICT (model, kind, metric, bucket) DO UPDATE
    SET as_of = excluded.as_of, evaluated_at = excluded.evaluated_at, score = excluded.score,
        threshold = excluded.threshold, p_value = excluded.p_value, value = excluded.value,
        baseline_value = excluded.baseline_value, drifted = excluded.drifted,
        n_current = excluded.n_current, n_baseline = excluded.n_baseline
$$;
COMMENT ON FUNCTION drift.record_evaluation(timestamptz, drift.report_row[]) IS 'Writes the rows of a drift report computed at as_of into drift.evaluation_history, one row per metric and bucket (a later evaluation in the same bucket replaces it). drift.evaluate_models calls it with the report it raises events from, so the report is computed once per evaluation.';

CREATE OR REPLACE FUNCTION drift.baseline_band(p_rate double precision, p_n bigint, p_level double precision DEFAULT 0.95,
    OUT low double precision, OUT high double precision)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT greatest(p_rate - z * se, 0), least(p_rate + z * se, 1)
    FROM (SELECT sqrt(p_rate * (1 - p_rate) / nullif(p_n, 0)) AS se, drift.normal_isf((1 - p_level) / 2) AS z) s
$$;
COMMENT ON FUNCTION drift.baseline_band(double precision, bigint, double precision) IS 'The range a rate measured on n rows falls in with the given probability (normal approximation) when nothing has changed since the baseline rate p_rate: the baseline band of the trend panels.';

CREATE OR REPLACE VIEW drift.score_timeseries AS
SELECT h.bucket AS "time", h.model, h.kind, h.metric, h.score, h.threshold, h.p_value, h.value,
    h.baseline_value, h.drifted, h.n_current, h.n_baseline, h.as_of, h.evaluated_at
FROM drift.evaluation_history AS h;
COMMENT ON VIEW drift.score_timeseries IS 'Each model''s drift scores and decision lines over time, one row per metric and bucket, from the evaluation history (drifted = score > threshold).';
COMMENT ON COLUMN drift.score_timeseries."time" IS 'Start of the bucket of the evaluation (data clock).';
COMMENT ON COLUMN drift.score_timeseries.model IS 'Model name.';
COMMENT ON COLUMN drift.score_timeseries.kind IS 'embedding, behavior or accuracy.';
COMMENT ON COLUMN drift.score_timeseries.metric IS 'Metric name, as in drift.drift_status.';
COMMENT ON COLUMN drift.score_timeseries.score IS 'The drift score at that evaluation.';
COMMENT ON COLUMN drift.score_timeseries.threshold IS 'The decision line at that evaluation: drifted when the score is above it.';
COMMENT ON COLUMN drift.score_timeseries.p_value IS 'p-value of the test.';
COMMENT ON COLUMN drift.score_timeseries.value IS 'Current value of the metric (rate, accuracy or distance).';
COMMENT ON COLUMN drift.score_timeseries.baseline_value IS 'Baseline value of the metric.';
COMMENT ON COLUMN drift.score_timeseries.drifted IS 'Whether the metric counted as drifted.';
COMMENT ON COLUMN drift.score_timeseries.n_current IS 'Samples in the current window.';
COMMENT ON COLUMN drift.score_timeseries.n_baseline IS 'Samples in the baseline.';
COMMENT ON COLUMN drift.score_timeseries.as_of IS 'The exact evaluation time (data clock).';
COMMENT ON COLUMN drift.score_timeseries.evaluated_at IS 'Wall-clock time of the evaluation.';

CREATE OR REPLACE VIEW drift.interaction_timeseries AS
WITH buckets AS (
    SELECT r.model, r.bucket, sum(r.interactions) AS interactions, sum(r.refusal_known) AS refusal_known,
        sum(r.refusals) AS refusals, sum(r.toxicity_scored) AS toxicity_scored, sum(r.toxic) AS toxic,
        sum(r.quality_n) AS quality_n, sum(r.quality_ok) AS quality_ok,
        sum(r.latency_sum) AS latency_sum, sum(r.latency_n) AS latency_n
    FROM (
        SELECT model, bucket, interactions, refusal_known, refusals, toxicity_scored, toxic, quality_n, quality_ok,
            latency_sum, latency_n
        FROM drift.interaction_rollup
        UNION ALL
        SELECT model, bucket, interactions, refusal_known, refusals, toxicity_scored, toxic, quality_n, quality_ok,
            latency_sum, latency_n
        FROM drift.interaction_rollup_delta
    ) AS r
    GROUP BY r.model, r.bucket
)
SELECT b.bucket AS "time", b.model, b.interactions::bigint AS interactions,
    b.refusal_known::bigint AS refusal_known, b.refusals::bigint AS refusals,
    b.refusals / nullif(b.refusal_known, 0)::float8 AS refusal_rate,
    b.toxicity_scored::bigint AS toxicity_scored, b.toxic::bigint AS toxic,
    b.toxic / nullif(b.toxicity_scored, 0)::float8 AS toxicity_rate,
    b.quality_n::bigint AS quality_n, b.quality_ok::bigint AS quality_ok,
    b.quality_ok / nullif(b.quality_n, 0)::float8 AS accuracy,
    b.latency_sum / nullif(b.latency_n, 0) AS latency_ms,
    bb.refusals / nullif(bb.refusal_known, 0)::float8 AS baseline_refusal_rate,
    bb.toxic / nullif(bb.toxicity_scored, 0)::float8 AS baseline_toxicity_rate,
    ba.quality_ok / nullif(ba.quality_n, 0)::float8 AS baseline_accuracy,
    (b.bucket >= bb.starts AND b.bucket < bb.ends) AS in_behavior_baseline,
    (b.bucket >= ba.starts AND b.bucket < ba.ends) AS in_accuracy_baseline
FROM buckets AS b
LEFT JOIN drift.baselines AS bb ON bb.model = b.model AND bb.kind = 'behavior'
LEFT JOIN drift.baselines AS ba ON ba.model = b.model AND ba.kind = 'accuracy';
COMMENT ON VIEW drift.interaction_timeseries IS 'Per model and rollup bucket: interaction counts, refusal, toxicity and accuracy rates, and the baseline rates they are compared with (from the interaction rollups, compacted or not yet).';
COMMENT ON COLUMN drift.interaction_timeseries."time" IS 'Start of the rollup bucket (data clock).';
COMMENT ON COLUMN drift.interaction_timeseries.model IS 'Model name.';
COMMENT ON COLUMN drift.interaction_timeseries.interactions IS 'Interactions logged in the bucket.';
COMMENT ON COLUMN drift.interaction_timeseries.refusal_known IS 'Interactions with a known is_refusal (the refusal rate''s denominator).';
COMMENT ON COLUMN drift.interaction_timeseries.refusals IS 'Refusals.';
COMMENT ON COLUMN drift.interaction_timeseries.refusal_rate IS 'refusals / refusal_known. To aggregate buckets, divide the sums, not average the rates.';
COMMENT ON COLUMN drift.interaction_timeseries.toxicity_scored IS 'Interactions with a toxicity score.';
COMMENT ON COLUMN drift.interaction_timeseries.toxic IS 'Toxic interactions (toxicity >= toxic_at).';
COMMENT ON COLUMN drift.interaction_timeseries.toxicity_rate IS 'toxic / toxicity_scored.';
COMMENT ON COLUMN drift.interaction_timeseries.quality_n IS 'Interactions with a label, else feedback (the accuracy''s denominator).';
COMMENT ON COLUMN drift.interaction_timeseries.quality_ok IS 'Of those, correct or positively rated.';
COMMENT ON COLUMN drift.interaction_timeseries.accuracy IS 'quality_ok / quality_n.';
COMMENT ON COLUMN drift.interaction_timeseries.latency_ms IS 'Mean latency in milliseconds.';
COMMENT ON COLUMN drift.interaction_timeseries.baseline_refusal_rate IS 'Refusal rate of the model''s behavior baseline.';
COMMENT ON COLUMN drift.interaction_timeseries.baseline_toxicity_rate IS 'Toxicity rate of the model''s behavior baseline.';
COMMENT ON COLUMN drift.interaction_timeseries.baseline_accuracy IS 'Accuracy of the model''s accuracy baseline.';
COMMENT ON COLUMN drift.interaction_timeseries.in_behavior_baseline IS 'Whether the bucket lies inside the behavior baseline window.';
COMMENT ON COLUMN drift.interaction_timeseries.in_accuracy_baseline IS 'Whether the bucket lies inside the accuracy baseline window.';

CREATE OR REPLACE VIEW drift.embedding_timeseries AS
WITH buckets AS (
    SELECT r.model, r.bucket, sum(r.n) AS n, sum(r.vec_sum) AS vec_sum
    FROM (
        SELECT model, bucket, n, vec_sum FROM drift.embedding_rollup
        UNION ALL
        SELECT model, bucket, n, vec_sum FROM drift.embedding_rollup_delta
    ) AS r
    GROUP BY r.model, r.bucket
)
SELECT b.bucket AS "time", b.model, b.n::bigint AS embeddings,
    -- cosine distance is scale-free, so the sums stand in for the means
    (b.vec_sum <=> bl.vec_sum)::float8 AS centroid_distance,
    (b.bucket >= bl.starts AND b.bucket < bl.ends) AS in_baseline
FROM buckets AS b
LEFT JOIN drift.baselines AS bl ON bl.model = b.model AND bl.kind = 'embedding';
COMMENT ON VIEW drift.embedding_timeseries IS 'Per model and rollup bucket: embeddings logged and the cosine distance of that bucket''s centroid from the baseline centroid (from the embedding rollups).';
COMMENT ON COLUMN drift.embedding_timeseries."time" IS 'Start of the rollup bucket (data clock).';
COMMENT ON COLUMN drift.embedding_timeseries.model IS 'Model name.';
COMMENT ON COLUMN drift.embedding_timeseries.embeddings IS 'Embeddings logged in the bucket.';
COMMENT ON COLUMN drift.embedding_timeseries.centroid_distance IS 'Cosine distance between the bucket''s centroid and the baseline centroid (NULL without a baseline). One bucket is noisier than the window the detector reads.';
COMMENT ON COLUMN drift.embedding_timeseries.in_baseline IS 'Whether the bucket lies inside the embedding baseline window.';

CREATE OR REPLACE VIEW drift.event_timeline AS
SELECT coalesce((e.details ->> 'as_of')::timestamptz, e.window_end, e.created_at) AS "time",
    e.closed_as_of AS timeend, e.id AS event_id, e.model, e.kind, e.metric, e.status, e.score, e.threshold,
    e.p_value, e.attempts, e.max_attempts, e.created_at, e.closed_at, e.last_error,
    format('%s %s/%s drifted: score %s > threshold %s (%s)', e.model, e.kind, e.metric,
        round(e.score::numeric, 4), round(e.threshold::numeric, 4), e.status) AS text,
    ARRAY['drift', e.kind, e.metric, e.status] AS tags,
    extract(epoch FROM fr.started_at - e.created_at)::float8 AS reaction_seconds
FROM drift.drift_events AS e
-- a lateral join, so the first run is looked up once per event however often it is used
LEFT JOIN LATERAL (
    SELECT min(r.started_at) AS started_at FROM drift.action_runs AS r WHERE r.event_id = e.id
) AS fr ON true;
COMMENT ON VIEW drift.event_timeline IS 'Drift events on the data clock, shaped as Grafana annotations (time, timeend, text, tags).';
COMMENT ON COLUMN drift.event_timeline."time" IS 'When the drift was detected, on the data clock: the evaluation time (details.as_of), else the window end.';
COMMENT ON COLUMN drift.event_timeline.timeend IS 'When the event closed, on the data clock (closed_as_of); NULL while open.';
COMMENT ON COLUMN drift.event_timeline.event_id IS 'The drift event.';
COMMENT ON COLUMN drift.event_timeline.model IS 'Model name.';
COMMENT ON COLUMN drift.event_timeline.kind IS 'embedding, behavior or accuracy.';
COMMENT ON COLUMN drift.event_timeline.metric IS 'Metric name.';
COMMENT ON COLUMN drift.event_timeline.status IS 'pending, running, resolved or failed.';
COMMENT ON COLUMN drift.event_timeline.score IS 'Score at detection.';
COMMENT ON COLUMN drift.event_timeline.threshold IS 'Decision line at detection.';
COMMENT ON COLUMN drift.event_timeline.p_value IS 'p-value at detection.';
COMMENT ON COLUMN drift.event_timeline.attempts IS 'Worker attempts so far.';
COMMENT ON COLUMN drift.event_timeline.max_attempts IS 'Attempts before the event fails.';
COMMENT ON COLUMN drift.event_timeline.created_at IS 'When the event was raised (wall clock).';
COMMENT ON COLUMN drift.event_timeline.closed_at IS 'When it was resolved or failed (wall clock).';
COMMENT ON COLUMN drift.event_timeline.last_error IS 'Error of the last failed attempt.';
COMMENT ON COLUMN drift.event_timeline.text IS 'One line for an annotation.';
COMMENT ON COLUMN drift.event_timeline.tags IS 'Annotation tags: drift, kind, metric, status.';
COMMENT ON COLUMN drift.event_timeline.reaction_seconds IS 'From the event''s creation to the start of its first action run (NULL: no run yet).';

CREATE OR REPLACE VIEW drift.action_timeline AS
SELECT coalesce((e.details ->> 'as_of')::timestamptz, e.window_end, e.created_at) + (r.started_at - e.created_at)
        AS "time",
    coalesce((e.details ->> 'as_of')::timestamptz, e.window_end, e.created_at)
        + (coalesce(r.finished_at, now()) - e.created_at) AS timeend,
    r.id AS run_id, r.event_id, e.model, e.kind, e.metric, r.action, r.action_type, r.outcome, r.attempt, r.worker,
    r.started_at, r.finished_at, extract(epoch FROM r.finished_at - r.started_at)::float8 AS duration_seconds,
    extract(epoch FROM r.started_at - e.created_at)::float8 AS since_event_seconds,
    format('%s %s for %s/%s: %s', r.action, r.action_type, e.kind, e.metric, r.outcome) AS text,
    ARRAY['action', r.action, r.outcome] AS tags
FROM drift.action_runs AS r
JOIN drift.drift_events AS e ON e.id = r.event_id;
COMMENT ON VIEW drift.action_timeline IS 'Action runs on the data clock (the event''s detection time plus the time the worker took), shaped as Grafana annotations; one row per run.';
COMMENT ON COLUMN drift.action_timeline."time" IS 'Start of the run on the data clock: event detection time + (started_at - event created_at). Equals started_at in live use.';
COMMENT ON COLUMN drift.action_timeline.timeend IS 'End of the run on the same clock (now while running).';
COMMENT ON COLUMN drift.action_timeline.run_id IS 'The action run.';
COMMENT ON COLUMN drift.action_timeline.event_id IS 'The drift event it ran for.';
COMMENT ON COLUMN drift.action_timeline.model IS 'Model name.';
COMMENT ON COLUMN drift.action_timeline.kind IS 'Drift kind of the event.';
COMMENT ON COLUMN drift.action_timeline.metric IS 'Metric of the event.';
COMMENT ON COLUMN drift.action_timeline.action IS 'Action name in driftloop.toml.';
COMMENT ON COLUMN drift.action_timeline.action_type IS 'Built-in action type.';
COMMENT ON COLUMN drift.action_timeline.outcome IS 'running, succeeded, failed, lease_lost, abandoned or released.';
COMMENT ON COLUMN drift.action_timeline.attempt IS 'The event''s attempt number.';
COMMENT ON COLUMN drift.action_timeline.worker IS 'The worker that ran it.';
COMMENT ON COLUMN drift.action_timeline.started_at IS 'Wall-clock start.';
COMMENT ON COLUMN drift.action_timeline.finished_at IS 'Wall-clock end; NULL while running.';
COMMENT ON COLUMN drift.action_timeline.duration_seconds IS 'How long the run took.';
COMMENT ON COLUMN drift.action_timeline.since_event_seconds IS 'From the event''s creation to this run''s start (for the event''s first run: its reaction time, see drift.event_timeline).';
COMMENT ON COLUMN drift.action_timeline.text IS 'One line for an annotation.';
COMMENT ON COLUMN drift.action_timeline.tags IS 'Annotation tags: action, action name, outcome.';

CREATE OR REPLACE VIEW drift.evaluation_freshness AS
SELECT m.model, ev.evaluated_at AS last_evaluated_at, m.last_evaluated_as_of
FROM drift.models AS m
LEFT JOIN LATERAL (
    SELECT max(h.evaluated_at) AS evaluated_at FROM drift.evaluation_history AS h WHERE h.model = m.model
) AS ev ON true;
COMMENT ON VIEW drift.evaluation_freshness IS 'When each model was last evaluated: the wall clock (for "no evaluation for 10 minutes") and the data clock. Read by /metrics.';
COMMENT ON COLUMN drift.evaluation_freshness.model IS 'Model name.';
COMMENT ON COLUMN drift.evaluation_freshness.last_evaluated_at IS 'Wall-clock time of the last evaluation recorded in drift.evaluation_history (NULL: none yet).';
COMMENT ON COLUMN drift.evaluation_freshness.last_evaluated_as_of IS 'Data-clock time of the last evaluation.';

CREATE OR REPLACE VIEW drift.model_overview AS
SELECT f.model, f.last_evaluated_at, f.last_evaluated_as_of,
    coalesce(st.metrics, 0) AS metrics, coalesce(st.drifted, 0) AS drifted_metrics,
    coalesce(ec.open_events, 0) AS open_events, coalesce(ec.failed_events, 0) AS failed_events,
    coalesce(ec.events, 0) AS events, ar.last_action_at, ar.last_action, ar.last_outcome
FROM drift.evaluation_freshness AS f
LEFT JOIN (
    SELECT s.model, count(*) AS metrics, count(*) FILTER (WHERE s.drifted) AS drifted
    FROM drift.drift_status AS s GROUP BY s.model
) AS st ON st.model = f.model
LEFT JOIN (
    SELECT e.model, count(*) AS events, count(*) FILTER (WHERE e.status IN ('pending', 'running')) AS open_events,
        count(*) FILTER (WHERE e.status = 'failed') AS failed_events
    FROM drift.drift_events AS e GROUP BY e.model
) AS ec ON ec.model = f.model
LEFT JOIN LATERAL (
    SELECT r.started_at AS last_action_at, r.action AS last_action, r.outcome AS last_outcome
    FROM drift.action_runs AS r JOIN drift.drift_events AS e ON e.id = r.event_id
    WHERE e.model = f.model ORDER BY r.started_at DESC LIMIT 1
) AS ar ON true;
COMMENT ON VIEW drift.model_overview IS 'One row per model: drifted metrics now, open and failed events, the last evaluation and the last action.';
COMMENT ON COLUMN drift.model_overview.model IS 'Model name.';
COMMENT ON COLUMN drift.model_overview.last_evaluated_at IS 'Wall-clock time of the last evaluation recorded in drift.evaluation_history.';
COMMENT ON COLUMN drift.model_overview.last_evaluated_as_of IS 'Data-clock time of the last evaluation.';
COMMENT ON COLUMN drift.model_overview.metrics IS 'Metrics in drift.drift_status for the model.';
COMMENT ON COLUMN drift.model_overview.drifted_metrics IS 'Of those, drifted now.';
COMMENT ON COLUMN drift.model_overview.open_events IS 'Pending or running events.';
COMMENT ON COLUMN drift.model_overview.failed_events IS 'Failed events (dead letters).';
COMMENT ON COLUMN drift.model_overview.events IS 'Events ever raised.';
COMMENT ON COLUMN drift.model_overview.last_action_at IS 'Wall-clock start of the last action run.';
COMMENT ON COLUMN drift.model_overview.last_action IS 'Its action name.';
COMMENT ON COLUMN drift.model_overview.last_outcome IS 'Its outcome.';

-- ---------------------------------------------------------------------------------------------
-- Action metrics for /metrics: counters and histograms of drift.action_runs, so every exporter
-- serves the same values and a restart resets nothing. The triggers below keep them in
-- drift.action_run_counts (migration 0014) as each run is written, started or finished: a
-- scrape reads a few dozen rows whether there were ten runs or ten million. Each observation
-- is binned once (drift.histogram_bin: the bounds below it, so a value equal to a bound counts
-- in that bound's bucket, as Prometheus' `le` means); the views sum the bins per bound.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.action_duration_bounds() RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '{0.01,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,300,900}'::float8[] $$;
COMMENT ON FUNCTION drift.action_duration_bounds() IS 'Bucket bounds (seconds) of driftloop_action_duration_seconds.';

CREATE OR REPLACE FUNCTION drift.event_reaction_bounds() RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '{0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,300,900,3600}'::float8[] $$;
COMMENT ON FUNCTION drift.event_reaction_bounds() IS 'Bucket bounds (seconds) of driftloop_event_reaction_seconds.';

CREATE OR REPLACE FUNCTION drift.histogram_bin(p_value float8, p_bounds float8[]) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.width_bucket(p_value, p_bounds) - (p_value = ANY (p_bounds))::int $$;
COMMENT ON FUNCTION drift.histogram_bin(float8, float8[]) IS 'How many bounds lie below the value (a value equal to a bound falls in that bound''s bucket).';

CREATE OR REPLACE FUNCTION drift.count_action_runs() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- Runs leaving a counted state are taken off, runs entering one added. Deleted runs (a
    -- simulation reset) stay counted: these are counters of all time, which never go down.
    WITH changes AS (
        SELECT -1 AS sign, o.* FROM old_rows o
        UNION ALL
        SELECT 1, n.* FROM new_rows n
    ), observed AS (
        SELECT 'outcome' AS family, c.action, c.outcome, 0 AS bin, c.sign, 0::float8 AS seconds
        FROM changes c WHERE c.outcome <> 'running'
        UNION ALL
        SELECT 'duration', c.action, '', drift.histogram_bin(d.seconds, drift.action_duration_bounds()), c.sign, d.seconds
        FROM changes c
        CROSS JOIN LATERAL (SELECT date_part('epoch', c.finished_at - c.started_at) AS seconds) d
        WHERE c.outcome IN ('succeeded', 'failed', 'lease_lost') AND c.finished_at IS NOT NULL
    ), summed AS (
        SELECT o.family, o.action, o.outcome, o.bin, sum(o.sign) AS runs, sum(o.sign * o.seconds) AS seconds_sum
        FROM observed o GROUP BY 1, 2, 3, 4
        HAVING sum(o.sign) <> 0 OR sum(o.sign * o.seconds) <> 0
    )
    INSERT INTO drift.action_run_counts AS t (family, action, outcome, bin, runs, seconds_sum)
    SELECT * FROM summed ORDER BY 1, 2, 3, 4
    ON CONFLICT (family, action, outcome, bin)
    DO UPDATE SET runs = t.runs + excluded.runs, seconds_sum = t.seconds_sum + excluded.seconds_sum;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.count_action_runs() IS 'After a write to action_runs: keeps the outcome counts and duration bins of drift.action_run_counts.';

CREATE OR REPLACE FUNCTION drift.count_action_runs_insert() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- An event's first run ends its reaction time (event created to first action started).
    INSERT INTO drift.action_run_counts AS t (family, action, outcome, bin, runs, seconds_sum)
    SELECT 'reaction', '', '', drift.histogram_bin(x.seconds, drift.event_reaction_bounds()), count(*), sum(x.seconds)
    FROM (
        SELECT greatest(date_part('epoch', f.started_at - e.created_at), 0) AS seconds
        FROM (SELECT n.event_id, min(n.started_at) AS started_at, min(n.id) AS first_id
              FROM new_rows n GROUP BY n.event_id) f
        JOIN drift.drift_events e ON e.id = f.event_id
        -- No run of the event before these (ids grow; one worker at a time writes an event's runs).
        WHERE NOT EXISTS (SELECT 1 FROM drift.action_runs r WHERE r.event_id = f.event_id AND r.id < f.first_id)
    ) x
    GROUP BY 4
    ORDER BY 4
    ON CONFLICT (family, action, outcome, bin)
    DO UPDATE SET runs = t.runs + excluded.runs, seconds_sum = t.seconds_sum + excluded.seconds_sum;
    -- Runs written already finished count like runs that finish.
    INSERT INTO drift.action_run_counts AS t (family, action, outcome, bin, runs, seconds_sum)
    SELECT o.family, o.action, o.outcome, o.bin, count(*), sum(o.seconds)
    FROM (
        SELECT 'outcome' AS family, n.action, n.outcome, 0 AS bin, 0::float8 AS seconds
        FROM new_rows n WHERE n.outcome <> 'running'
        UNION ALL
        SELECT 'duration', n.action, '', drift.histogram_bin(d.seconds, drift.action_duration_bounds()), d.seconds
        FROM new_rows n
        CROSS JOIN LATERAL (SELECT date_part('epoch', n.finished_at - n.started_at) AS seconds) d
        WHERE n.outcome IN ('succeeded', 'failed', 'lease_lost') AND n.finished_at IS NOT NULL
    ) o
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (family, action, outcome, bin)
    DO UPDATE SET runs = t.runs + excluded.runs, seconds_sum = t.seconds_sum + excluded.seconds_sum;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.count_action_runs_insert() IS 'After an insert into action_runs: counts the reaction time of each event''s first run, and runs written already finished.';

CREATE OR REPLACE TRIGGER action_runs_count_insert AFTER INSERT ON drift.action_runs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.count_action_runs_insert();
CREATE OR REPLACE TRIGGER action_runs_count_update AFTER UPDATE ON drift.action_runs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.count_action_runs();

CREATE OR REPLACE VIEW drift.action_outcomes AS
SELECT c.action, c.outcome, c.runs
FROM drift.action_run_counts AS c
WHERE c.family = 'outcome' AND c.runs > 0;
COMMENT ON VIEW drift.action_outcomes IS 'Finished action runs per action and outcome, all time (driftloop_actions_total).';
COMMENT ON COLUMN drift.action_outcomes.action IS 'Action name in driftloop.toml.';
COMMENT ON COLUMN drift.action_outcomes.outcome IS 'succeeded, failed, lease_lost, abandoned or released.';
COMMENT ON COLUMN drift.action_outcomes.runs IS 'Runs with that outcome.';

CREATE OR REPLACE VIEW drift.action_duration_histogram AS
WITH bins AS (
    SELECT c.action, c.bin AS lt, c.runs AS n, c.seconds_sum AS s
    FROM drift.action_run_counts AS c
    WHERE c.family = 'duration' AND c.runs > 0
)
SELECT bins.action, le.le, coalesce(sum(bins.n) FILTER (WHERE bins.lt < le.i), 0)::bigint AS runs,
    coalesce(sum(bins.s) FILTER (WHERE bins.lt < le.i), 0)::float8 AS seconds_sum
FROM bins
CROSS JOIN LATERAL unnest(drift.action_duration_bounds() || 'Infinity'::float8) WITH ORDINALITY AS le(le, i)
GROUP BY bins.action, le.le;
COMMENT ON VIEW drift.action_duration_histogram IS 'Cumulative histogram of action run durations per action (driftloop_action_duration_seconds): runs that ran to an end (succeeded, failed, lease_lost); abandoned and released runs were cut short.';
COMMENT ON COLUMN drift.action_duration_histogram.action IS 'Action name.';
COMMENT ON COLUMN drift.action_duration_histogram.le IS 'Upper bound of the bucket in seconds (Infinity: every run).';
COMMENT ON COLUMN drift.action_duration_histogram.runs IS 'Runs that took at most le seconds.';
COMMENT ON COLUMN drift.action_duration_histogram.seconds_sum IS 'Their total duration in seconds (at le = Infinity: the histogram''s sum).';

CREATE OR REPLACE VIEW drift.event_reaction_histogram AS
WITH bins AS (
    SELECT c.bin AS lt, c.runs AS n, c.seconds_sum AS s
    FROM drift.action_run_counts AS c
    WHERE c.family = 'reaction' AND c.runs > 0
)
SELECT le.le, coalesce(sum(bins.n) FILTER (WHERE bins.lt < le.i), 0)::bigint AS events,
    coalesce(sum(bins.s) FILTER (WHERE bins.lt < le.i), 0)::float8 AS seconds_sum
FROM bins
CROSS JOIN LATERAL unnest(drift.event_reaction_bounds() || 'Infinity'::float8) WITH ORDINALITY AS le(le, i)
GROUP BY le.le;
COMMENT ON VIEW drift.event_reaction_histogram IS 'Cumulative histogram of reaction times (driftloop_event_reaction_seconds): from an event''s creation to the start of its first action run, over the events that had one.';
COMMENT ON COLUMN drift.event_reaction_histogram.le IS 'Upper bound of the bucket in seconds (Infinity: every event).';
COMMENT ON COLUMN drift.event_reaction_histogram.events IS 'Events whose first action started at most le seconds after the event.';
COMMENT ON COLUMN drift.event_reaction_histogram.seconds_sum IS 'Their total reaction time in seconds (at le = Infinity: the histogram''s sum).';
