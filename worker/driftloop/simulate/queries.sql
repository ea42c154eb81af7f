-- Named queries of the simulation. Each starts with a `-- name: NAME` line; parameters are
-- psycopg named placeholders. Loaded by driftloop/simulate/queries.py.

-- name: models_in_use
-- Which of these names already exist, and whether a simulation created them.
SELECT m.model, s.run_id
FROM drift.models AS m
LEFT JOIN drift.simulation_models AS s USING (model)
WHERE m.model = ANY(%(models)s)
UNION
SELECT s.model, s.run_id FROM drift.simulation_models AS s WHERE s.model = ANY(%(models)s);

-- name: simulated_models
SELECT model FROM drift.simulation_models WHERE model LIKE %(prefix)s || '%%' ORDER BY model;

-- name: delete_simulated_models
SELECT drift.delete_simulated_models(%(models)s);

-- name: insert_run
INSERT INTO drift.simulation_runs (command, seed, quick, starts, baseline_ends, ends, step, params)
VALUES (%(command)s, %(seed)s, %(quick)s, %(starts)s, %(baseline_ends)s, %(ends)s, %(step)s, %(params)s)
RETURNING id;

-- name: finish_run
UPDATE drift.simulation_runs
SET status = %(status)s, error = %(error)s, finished_at = now(),
    params = params || jsonb_build_object('interactions', %(interactions)s::bigint)
WHERE id = %(run_id)s;

-- name: insert_model
INSERT INTO drift.simulation_models (model, run_id, scenario) VALUES (%(model)s, %(run_id)s, %(scenario)s);

-- name: register_model
-- Simulated time is in the past: the log triggers must not evaluate these models at now().
INSERT INTO drift.models (model, auto_evaluate) VALUES (%(model)s, false)
ON CONFLICT (model) DO UPDATE SET auto_evaluate = false;

-- name: insert_drift
INSERT INTO drift.simulation_drifts (run_id, model, scenario, kind, metric, effect, starts_at, description,
    magnitude, seed)
VALUES (%(run_id)s, %(model)s, %(scenario)s, %(kind)s, %(metric)s, %(effect)s, %(starts_at)s, %(description)s,
    %(magnitude)s, %(seed)s);

-- name: deploy_router
-- The first router of a simulated model, as an app would deploy it before any retrain.
INSERT INTO drift.model_versions (model, version, status, metrics, parameters)
VALUES (%(model)s, %(version)s, 'active', %(metrics)s, %(parameters)s)
RETURNING id;

-- name: deployed_state
-- What each simulated model runs now: its active router version and system prompt, and
-- the metrics the prompts in force were written for (from the events that created them).
SELECT m.model,
    v.id AS router_id,
    v.version AS router_version,
    p.version AS prompt_version,
    p.prompt,
    coalesce(ARRAY(
        SELECT DISTINCT e.metric
        FROM drift.prompt_versions AS q
        JOIN drift.drift_events AS e ON e.id = q.event_id
        WHERE q.model = m.model AND q.version <= p.version
    ), '{}') AS prompt_fixes
FROM unnest(%(models)s::text[]) AS m(model)
LEFT JOIN LATERAL (
    SELECT id, version FROM drift.model_versions
    WHERE model = m.model AND status = 'active' ORDER BY id DESC LIMIT 1
) AS v ON true
LEFT JOIN drift.prompt_versions AS p ON p.model = m.model AND p.active;

-- name: router_parameters
SELECT parameters FROM drift.model_versions WHERE id = %(id)s;

-- name: apply_labels
-- Late labels: the true intent arrives after the interaction was logged, as a reviewer's
-- verdict would (the engine's rollups follow the UPDATE into the interaction's bucket).
UPDATE drift.interaction_log AS i
SET correct = l.correct, metadata = coalesce(i.metadata, '{}'::jsonb) || jsonb_build_object('label', l.intent)
FROM unnest(%(ids)s::bigint[], %(correct)s::boolean[], %(intents)s::text[]) AS l(id, correct, intent)
WHERE i.id = l.id;

-- name: set_baseline
SELECT count(*) FROM drift.set_baseline(%(model)s, %(starts)s, %(ends)s);

-- name: compact
SELECT drift.compact_rollups();

-- name: evaluate
-- Only the simulated models, at simulated time: other models are never evaluated here.
SELECT id, model, kind, metric, score, threshold, window_end
FROM drift.evaluate_models(%(as_of)s, %(models)s);

-- name: record_timeline
INSERT INTO drift.simulation_timeline (run_id, model, as_of, kind, metric, value, baseline_value, score,
    threshold, p_value, drifted, n_current, n_baseline)
SELECT %(run_id)s, r.model, %(as_of)s, r.kind, r.metric, r.value, r.baseline_value, r.score, r.threshold,
    r.p_value, r.drifted, r.n_current, r.n_baseline
FROM drift.drift_report(%(as_of)s, %(models)s) AS r;

-- name: open_events
-- Events of these models the worker has yet to act on.
SELECT count(*) FROM drift.drift_events WHERE status = 'pending' AND model = ANY(%(models)s);

-- name: insert_action
INSERT INTO drift.simulation_actions (run_id, model, event_id, sim_at, kind, metric, actions, outcome, detail)
VALUES (%(run_id)s, %(model)s, %(event_id)s, %(sim_at)s, %(kind)s, %(metric)s, %(actions)s, %(outcome)s,
    %(detail)s);

-- name: run_row
SELECT id, command, seed, starts, baseline_ends, ends, step, params
FROM drift.simulation_runs WHERE id = %(run_id)s;

-- name: run_models
SELECT model, scenario FROM drift.simulation_models WHERE run_id = %(run_id)s ORDER BY model;

-- name: run_drifts
SELECT model, scenario, kind, metric, effect, starts_at, description
FROM drift.simulation_drifts WHERE run_id = %(run_id)s ORDER BY model, id;

-- name: run_events
SELECT e.id, e.model, e.kind, e.metric, e.window_end, e.score, e.threshold, e.status, e.incident_id
FROM drift.drift_events AS e
JOIN drift.simulation_models AS s ON s.model = e.model
WHERE s.run_id = %(run_id)s
ORDER BY e.id;

-- name: run_actions
SELECT model, event_id, sim_at, kind, metric, actions, outcome, detail
FROM drift.simulation_actions WHERE run_id = %(run_id)s ORDER BY sim_at, event_id;

-- name: run_timeline
SELECT model, as_of, kind, metric, value, baseline_value, score, threshold, p_value, drifted, n_current,
    n_baseline
FROM drift.simulation_timeline WHERE run_id = %(run_id)s ORDER BY model, as_of, kind, metric;
