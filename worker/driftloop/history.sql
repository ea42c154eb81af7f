-- Named queries of the report (driftloop/history.py): everything comes from the rollups
-- (drift.drift_report at steps), the events, the action runs and the incidents; no raw logs.

-- name: models
SELECT model FROM drift.models
WHERE %(models)s::text[] IS NULL OR model = ANY (%(models)s::text[])
ORDER BY model;

-- name: default_span
-- The whole current and original baselines, up to the latest evaluation (or now).
SELECT least(
        (SELECT min(starts) FROM drift.baselines WHERE model = ANY (%(models)s::text[])),
        (SELECT min((reference->'baseline'->>'starts')::timestamptz) FROM drift.incidents
         WHERE model = ANY (%(models)s::text[]))),
    greatest(
        (SELECT max(last_evaluated_as_of) FROM drift.models WHERE model = ANY (%(models)s::text[])),
        (SELECT max((details->>'as_of')::timestamptz) FROM drift.drift_events WHERE model = ANY (%(models)s::text[]))),
    now(),
    drift.setting('cooldown')::interval,
    drift.setting('current_window')::interval;

-- name: timeline
SELECT r.model, t.as_of, r.kind, r.metric, r.value, r.baseline_value, r.score, r.threshold, r.p_value,
    r.drifted, r.n_current, r.n_baseline
FROM generate_series(%(starts)s::timestamptz, %(ends)s::timestamptz, %(step)s::interval) AS t (as_of),
    LATERAL drift.drift_report(t.as_of, %(models)s::text[]) AS r
ORDER BY r.model, t.as_of, r.kind, r.metric;

-- name: events
SELECT e.id, e.model, e.kind, e.metric, coalesce((e.details->>'as_of')::timestamptz, e.window_end) AS as_of,
    e.score, e.threshold, e.status, e.incident_id, e.closed_as_of, e.resolution, e.last_error
FROM drift.drift_events e
WHERE e.model = ANY (%(models)s::text[])
  AND coalesce((e.details->>'as_of')::timestamptz, e.window_end) BETWEEN %(starts)s AND %(ends)s
ORDER BY e.id;

-- name: baselines
SELECT model, kind, starts, ends, source, set_at FROM drift.baselines
WHERE model = ANY (%(models)s::text[]) ORDER BY model, kind;

-- name: incidents
SELECT s.id, s.model, s.kind, s.first_as_of, s.event_ids, s.metrics, coalesce(s.actions_succeeded, '{}'),
    s.reference,
    coalesce((SELECT jsonb_agg(to_jsonb(x)) FROM drift.incident_recovery(s.id, %(ends)s) AS x), '[]')
FROM drift.incident_status s
WHERE s.model = ANY (%(models)s::text[]) AND s.first_as_of BETWEEN %(starts)s AND %(ends)s
ORDER BY s.id;

-- name: record_recovery
-- Keeps the verdicts on the action runs; a read-only server (a hot standby) cannot, and the
-- report computes them itself (incidents above), so there it writes nothing and returns NULL.
SELECT CASE WHEN NOT current_setting('transaction_read_only')::boolean
    THEN drift.record_recovery(%(ends)s, %(models)s::text[]) END;
