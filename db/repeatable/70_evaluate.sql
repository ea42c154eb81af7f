-- Evaluate: turn drifted report rows into drift_events, from drift.evaluate() or from the log
-- triggers (at most once per evaluate_interval per model).

CREATE OR REPLACE FUNCTION drift.evaluate_due(p_models text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    due text[];
    every interval := coalesce(drift.setting('evaluate_interval'), '1 minute')::interval;
BEGIN
    IF every <= interval '0' THEN
        RETURN;
    END IF;
    -- SKIP LOCKED: a concurrent writer already evaluating this model is enough; never wait.
    WITH claimed AS (
        SELECT m.model FROM drift.models m
        WHERE m.model = ANY (p_models) AND m.auto_evaluate AND m.next_evaluation_at <= clock_timestamp()
        FOR UPDATE SKIP LOCKED
    ), stamped AS (
        UPDATE drift.models m SET next_evaluation_at = clock_timestamp() + every
        FROM claimed WHERE m.model = claimed.model
        RETURNING m.model
    )
    SELECT array_agg(stamped.model) INTO due FROM stamped;
    IF due IS NOT NULL THEN
        -- A failing evaluation must never make the application's insert fail.
        BEGIN
            PERFORM drift.evaluate_models(now(), due);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'driftloop: evaluation of % failed: %', due, SQLERRM;
        END;
    END IF;
END $$;
COMMENT ON FUNCTION drift.evaluate_due(text[]) IS 'Called by the log triggers: evaluates the given models at now() if their evaluate_interval has passed, at most once per interval, without ever waiting on another writer.';

CREATE OR REPLACE FUNCTION drift.evaluate_models(p_as_of timestamptz, p_models text[]) RETURNS SETOF drift.drift_events
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    cooldown interval := drift.setting('cooldown')::interval;
    report drift.report_row[];
BEGIN
    PERFORM drift.ensure_auto_baselines(p_as_of, p_models);
    -- Advance the evaluation clock; a row another transaction holds is skipped, never waited for.
    UPDATE drift.models m SET last_evaluated_as_of = greatest(m.last_evaluated_as_of, p_as_of)
    WHERE m.model IN (
        SELECT l.model FROM drift.models l
        WHERE (p_models IS NULL OR l.model = ANY (p_models))
          AND (l.last_evaluated_as_of IS NULL OR l.last_evaluated_as_of < p_as_of)
        FOR UPDATE SKIP LOCKED);
    PERFORM drift.prepare_report(p_as_of, p_models);
    -- The report is computed once: the history and the events are written from the same rows.
    report := ARRAY(SELECT r FROM drift.drift_report(p_as_of, p_models) r);
    PERFORM drift.record_evaluation(p_as_of, report);  -- evaluation history (75_timeseries.sql)
    RETURN QUERY
    WITH raised AS (
        INSERT INTO drift.drift_events AS e (model, kind, metric, score, threshold, p_value, window_start,
            window_end, details)
        SELECT r.model, r.kind, r.metric, r.score, r.threshold, r.p_value, r.window_start, r.window_end,
            r.details || jsonb_build_object('value', r.value, 'baseline_value', r.baseline_value,
                'n_current', r.n_current, 'n_baseline', r.n_baseline, 'as_of', p_as_of)
        FROM unnest(report) r
        WHERE r.drifted
          AND NOT EXISTS (
              SELECT 1 FROM drift.drift_events c
              WHERE c.model = r.model AND c.kind = r.kind AND c.metric = r.metric
                AND c.closed_as_of IS NOT NULL AND c.closed_as_of > p_as_of - cooldown)
        ORDER BY r.model, r.kind, r.metric
        ON CONFLICT (model, kind, metric) WHERE status IN ('pending', 'running') DO NOTHING
        RETURNING e.*
    )
    SELECT * FROM raised;
END $$;
COMMENT ON FUNCTION drift.evaluate_models(timestamptz, text[]) IS 'Evaluates the given models (NULL: all) at as_of and inserts events for new drifts: none while an event for the same model and metric is open, none within the cooldown after one closed.';

CREATE OR REPLACE FUNCTION drift.evaluate(as_of timestamptz DEFAULT now()) RETURNS SETOF drift.drift_events
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- The scheduled entry point keeps the log partitions ahead of the clock (a catalog read
    -- when none is missing), so ingestion never waits on DDL.
    PERFORM drift.ensure_partitions();
    PERFORM drift.compact_rollups();
    RETURN QUERY SELECT * FROM drift.evaluate_models(as_of, NULL);
END $$;
COMMENT ON FUNCTION drift.evaluate(timestamptz) IS 'Creates missing log partitions ahead, compacts the rollups, compares every model''s current window [as_of - current_window, as_of) with its baseline, inserts and returns the new drift events (each notified on channel drift_events).';

CREATE OR REPLACE FUNCTION drift.prepare_report(p_as_of timestamptz, p_models text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    cfg record := drift.report_config(p_as_of);
    m record;
BEGIN
    -- Score and cache the window's novelty before the report reads it, so each embedding is
    -- searched once (a bucket that gained rows since is scored again), not at every read; and
    -- fold the complete buckets into the sequential test, each once.
    FOR m IN
        SELECT c.model FROM drift.embedding_calibration c
        WHERE p_models IS NULL OR c.model = ANY (p_models)
    LOOP
        PERFORM drift.novelty_score(m.model, cfg.window_start, cfg.window_end);
        PERFORM drift.embedding_evidence_fold(m.model, cfg.window_end);
    END LOOP;
END $$;
COMMENT ON FUNCTION drift.prepare_report(timestamptz, text[]) IS 'Called by drift.evaluate_models before it reads the report: caches the novelty counts of each calibrated model''s current window and folds its complete buckets into the sequential embedding test.';
