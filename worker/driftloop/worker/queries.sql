-- Named queries of the worker. Each starts with a `-- name: NAME` line; parameters are
-- psycopg named placeholders. Loaded by driftloop/worker/queries.py.

-- name: claim_events
-- Queue transitions live in db/repeatable/80_queue.sql; these call them.
SELECT * FROM drift.claim_events(%(worker)s, %(limit)s, %(lease_s)s, %(models)s::text[]);

-- name: extend_leases
SELECT id FROM drift.extend_leases(%(worker)s, %(ids)s::bigint[], %(lease_s)s) AS id;

-- name: hold_event
-- Inside an action's transaction: lock the event while this worker still holds it, so the
-- action's database writes commit only under a valid claim.
SELECT id FROM drift.hold_event(%(event_id)s, %(worker)s) AS id WHERE id IS NOT NULL;

-- name: take_over_runs
SELECT run_id, action, outcome, worker, dead_letter
FROM drift.take_over_runs(%(event_id)s, %(worker)s, %(at_most_once)s::text[]);

-- name: record_exit
SELECT drift.record_exit(%(event_id)s, %(worker)s, %(run_id)s, %(exit_code)s, %(output)s, %(error)s) AS recorded;

-- name: succeeded_run
-- This event's own succeeded run of the action, else one of another event of its incident:
-- a route's actions run once per incident (db/repeatable/72_incidents.sql).
SELECT r.id, r.output, r.event_id, e.incident_id, o.metric = e.metric AS same_metric
FROM drift.drift_events e
JOIN drift.drift_events o ON o.id = e.id OR o.incident_id = e.incident_id
JOIN drift.action_runs r ON r.event_id = o.id AND r.action = %(action)s AND r.outcome = 'succeeded'
WHERE e.id = %(event_id)s
ORDER BY (r.event_id = e.id) DESC, (o.metric = e.metric) DESC, r.id
LIMIT 1;

-- name: start_run
SELECT id FROM drift.start_run(%(event_id)s, %(worker)s, %(action)s, %(action_type)s, %(lease_s)s) AS id
WHERE id IS NOT NULL;

-- name: finish_run
SELECT outcome FROM drift.finish_run(%(event_id)s, %(worker)s, %(run_id)s, %(outcome)s, %(output)s, %(error)s) AS outcome
WHERE outcome IS NOT NULL;

-- name: resolve_event
SELECT drift.resolve_event(%(event_id)s, %(worker)s, %(resolution)s) AS resolved;

-- name: fail_attempt
SELECT status FROM drift.fail_attempt(%(event_id)s, %(worker)s, %(error)s, %(delay_s)s, %(permanent)s, %(resolution)s)
    AS status
WHERE status IS NOT NULL;

-- name: release_events
SELECT id FROM drift.release_events(%(worker)s, %(ids)s::bigint[]) AS id;

-- name: next_due
-- Seconds until the next pending event is due or another worker's lease expires (NULL: none).
SELECT extract(epoch FROM least(
    (SELECT min(run_after) FROM drift.drift_events WHERE status = 'pending'),
    (SELECT min(drift.lease_expiry(lease_expires_at, lease_renewed_at)) FROM drift.drift_events
     WHERE status = 'running' AND claimed_by IS DISTINCT FROM %(worker)s)
) - now())::float8;

-- name: list_events
-- as_of: the data time the drift was seen at (the evaluation's as_of); created_at: wall clock.
SELECT id, incident_id, created_at, (details->>'as_of')::timestamptz AS as_of, window_start, window_end, model, kind,
    metric, score, threshold, p_value, status, attempts, max_attempts, claimed_by, lease_expires_at,
    run_after, last_error, resolution
FROM drift.drift_events
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(model)s::text IS NULL OR model = %(model)s)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: retry_event
SELECT drift.retry_event(%(event_id)s) AS queued;

-- name: event_state
SELECT status, claimed_by, lease_expires_at FROM drift.drift_events WHERE id = %(event_id)s;

-- name: scrape
-- Everything /metrics reads from the database, in one statement (one snapshot) of rows
-- (family, a, b, c, le, value): the drift views; events per status; the oldest pending
-- event's age; each model's last evaluation; action runs by outcome; and the cumulative
-- buckets of the two histograms (le = +Inf carries the count, c the sum). Events and runs
-- are read from counters kept as they are written, never counted one by one here.
-- Reads views and drift_events only (what driftloop_reader may read).
WITH status AS MATERIALIZED (
    SELECT model, kind, metric, score, threshold, p_value, CASE WHEN drifted THEN 1.0 ELSE 0.0 END AS drifted
    FROM drift.drift_status
)
SELECT 'score' AS family, model AS a, kind AS b, metric AS c, NULL::float8 AS le, score AS value
FROM status WHERE score IS NOT NULL
UNION ALL SELECT 'threshold', model, kind, metric, NULL, threshold FROM status WHERE threshold IS NOT NULL
UNION ALL SELECT 'p_value', model, kind, metric, NULL, p_value FROM status WHERE p_value IS NOT NULL
UNION ALL SELECT 'drifted', model, kind, metric, NULL, drifted FROM status
UNION ALL
SELECT 'events', status, NULL, NULL, NULL, events::float8 FROM drift.event_status_totals
UNION ALL
SELECT 'oldest_pending', NULL, NULL, NULL, NULL,
    coalesce(greatest(extract(epoch FROM now() - min(created_at)), 0), 0)::float8
FROM drift.drift_events WHERE status = 'pending'
UNION ALL
SELECT 'last_evaluation', model, NULL, NULL, NULL, extract(epoch FROM last_evaluated_at)::float8
FROM drift.evaluation_freshness
WHERE last_evaluated_at IS NOT NULL
UNION ALL
SELECT 'actions', action, outcome, NULL, NULL, runs::float8 FROM drift.action_outcomes
UNION ALL
SELECT 'duration', action, NULL, CASE WHEN le = 'Infinity' THEN seconds_sum::text END, le, runs::float8
FROM drift.action_duration_histogram
UNION ALL
SELECT 'reaction', NULL, NULL, CASE WHEN le = 'Infinity' THEN seconds_sum::text END, le, events::float8
FROM drift.event_reaction_histogram;

-- name: set_baseline
SELECT count(*) FROM drift.set_baseline(%(model)s, %(starts)s, %(ends)s, %(kinds)s, %(source)s);

-- name: activate_prompt
SELECT version, prompt FROM drift.activate_prompt(%(model)s, %(prompt)s, %(event_id)s, %(created_by)s, %(reason)s);

-- name: rollback_prompt
SELECT version, prompt FROM drift.rollback_prompt(%(model)s);

-- name: active_prompt
SELECT version, prompt FROM drift.prompt_versions WHERE model = %(model)s AND active;

-- name: prompt_history
SELECT version, active, created_at, created_by, reason, event_id, prompt
FROM drift.prompt_versions
WHERE model = %(model)s
ORDER BY version DESC;

-- name: insert_first_prompt
-- The configured base prompt as version 1, so a rollback can return to it.
INSERT INTO drift.prompt_versions (model, version, prompt, active, created_by, reason)
VALUES (%(model)s, 1, %(prompt)s, true, %(created_by)s, 'base prompt from the worker configuration')
ON CONFLICT (model, version) DO NOTHING;

-- name: training_rows
-- Labelled interactions of the model in the window, with their logged embeddings.
SELECT e.embedding, i.metadata ->> %(label_field)s AS label
FROM drift.interaction_log AS i
JOIN drift.embeddings_log AS e ON e.interaction_id = i.id
WHERE i.model = %(model)s
  AND i.created_at >= %(starts)s AND i.created_at < %(ends)s
  AND i.metadata ->> %(label_field)s IS NOT NULL
ORDER BY i.id;

-- name: window_accuracy
SELECT avg(CASE WHEN correct THEN 1.0 ELSE 0.0 END)::float8 AS accuracy, count(*) AS n
FROM drift.interaction_log
WHERE model = %(model)s AND created_at >= %(starts)s AND created_at < %(ends)s AND correct IS NOT NULL;

-- name: active_version
SELECT id, version, parameters, metrics
FROM drift.model_versions
WHERE model = %(model)s AND status = 'active'
ORDER BY id DESC
LIMIT 1;

-- name: version_for_event
SELECT id, version, status, metrics
FROM drift.model_versions
WHERE model = %(model)s AND event_id = %(event_id)s
ORDER BY id DESC
LIMIT 1;

-- name: insert_candidate
-- Named v<N+1> after the highest vN so far (versions named otherwise by users are left alone).
INSERT INTO drift.model_versions (model, version, status, metrics, parent_version, event_id, parameters)
SELECT %(model)s, 'v' || (coalesce(max(substring(version FROM '^v([0-9]+)$')::int), 0) + 1), 'candidate',
    %(metrics)s, %(parent_version)s, %(event_id)s, %(parameters)s
FROM drift.model_versions
WHERE model = %(model)s
RETURNING id, version;

-- name: retire_active
-- Two statements (this one, then activate_version): the one-active index is checked row by row.
UPDATE drift.model_versions SET status = 'retired'
WHERE model = %(model)s AND status = 'active' AND id <> %(id)s;

-- name: activate_version
UPDATE drift.model_versions SET status = 'active'
WHERE id = %(id)s;

-- name: stale_documents
-- Template: {table}, {id}, {text}, {model_column} are identifiers from the configuration.
SELECT {id} AS id, {text} AS text
FROM {table}
WHERE {model_column} IS DISTINCT FROM %(embedding_model)s
ORDER BY {id}
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: update_document_embedding
UPDATE {table} SET {embedding} = %(embedding)s, {model_column} = %(embedding_model)s
WHERE {id} = %(id)s;

-- name: reindex_index
REINDEX INDEX CONCURRENTLY {index};

-- name: reindex_index_blocking
REINDEX INDEX {index};

-- name: index_exists
SELECT to_regclass(%(index)s) IS NOT NULL;

-- name: listen
-- Template: {channel} is an identifier.
LISTEN {channel};

-- name: ping
SELECT pg_notify(%(channel)s, %(token)s);

-- name: baseline_window
-- What the rollups hold for an event's window, checked before an action moves a baseline
-- there: its sample count, the min_samples setting, the model's current baseline and the
-- database clock. Events are rows anyone with INSERT could forge; the rollups are not.
SELECT CASE WHEN %(kind)s = 'embedding'
            THEN (SELECT w.n FROM drift.embedding_window(%(model)s, %(starts)s, %(ends)s) w)
            ELSE (SELECT w.quality_n FROM drift.interaction_window(%(model)s, %(starts)s, %(ends)s) w)
       END AS n,
       coalesce(drift.setting('min_samples')::bigint, 1) AS min_samples,
       (SELECT b.ends FROM drift.baselines b WHERE b.model = %(model)s AND b.kind = %(kind)s) AS baseline_ends,
       now() + coalesce(drift.setting('bucket_width')::interval, interval '1 minute') AS latest_end;
