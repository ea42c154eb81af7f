-- Named queries of the worker. Each starts with a `-- name: NAME` line; parameters are
-- psycopg named placeholders. Loaded by driftloop/worker/queries.py.

-- name: claim_events
-- Take up to %(limit)s events in one statement: pending ones whose backoff has passed and
-- running ones whose holder let the lease expire (it crashed or hung). The attempt is
-- counted here, so a worker that dies mid-action still uses one up.
WITH claimable AS (
    SELECT id
    FROM drift.drift_events
    WHERE ((status = 'pending' AND run_after <= now())
        OR (status = 'running' AND lease_expires_at < now()))
      -- NULL: every model; else only these (a simulation acting on its own models only)
      AND (%(models)s::text[] IS NULL OR model = ANY (%(models)s::text[]))
    ORDER BY run_after, id
    LIMIT %(limit)s
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE drift.drift_events AS e
SET status = 'running',
    attempts = e.attempts + 1,
    claimed_by = %(worker)s,
    claimed_at = now(),
    lease_expires_at = now() + make_interval(secs => %(lease_s)s)
FROM claimable
WHERE e.id = claimable.id
RETURNING e.id, e.created_at, e.model, e.kind, e.metric, e.score, e.threshold, e.p_value,
    e.window_start, e.window_end, e.details, e.attempts, e.max_attempts,
    extract(epoch FROM clock_timestamp() - e.created_at)::float8 AS age_s;

-- name: extend_leases
UPDATE drift.drift_events
SET lease_expires_at = now() + make_interval(secs => %(lease_s)s)
WHERE id = ANY(%(ids)s) AND claimed_by = %(worker)s AND status = 'running'
RETURNING id;

-- name: hold_event
-- Inside an action's transaction: lock the event while this worker still holds it, so the
-- action's database writes commit only under a valid claim.
SELECT id
FROM drift.drift_events
WHERE id = %(event_id)s AND claimed_by = %(worker)s AND status = 'running'
FOR NO KEY UPDATE;

-- name: abandon_stale_runs
-- A run left `running` by another worker means that worker lost the event (it died).
UPDATE drift.action_runs
SET outcome = 'abandoned', finished_at = clock_timestamp(),
    error = 'worker ' || worker || ' lost its claim; taken over by ' || %(worker)s
WHERE event_id = %(event_id)s AND outcome = 'running' AND worker <> %(worker)s;

-- name: succeeded_run
SELECT id, output
FROM drift.action_runs
WHERE event_id = %(event_id)s AND action = %(action)s AND outcome = 'succeeded';

-- name: start_run
INSERT INTO drift.action_runs (event_id, action, action_type, attempt, worker)
SELECT id, %(action)s, %(action_type)s, attempts, %(worker)s
FROM drift.drift_events
WHERE id = %(event_id)s AND claimed_by = %(worker)s AND status = 'running'
RETURNING id;

-- name: finish_run
-- The result counts only while the claim is still ours; otherwise the run is marked lease_lost.
UPDATE drift.action_runs
SET outcome = CASE
        WHEN EXISTS (
            SELECT 1 FROM drift.drift_events
            WHERE id = %(event_id)s AND claimed_by = %(worker)s AND status = 'running'
        ) THEN %(outcome)s
        ELSE 'lease_lost'
    END,
    finished_at = clock_timestamp(),
    output = %(output)s,
    error = %(error)s
WHERE id = %(run_id)s AND outcome = 'running'
RETURNING outcome;

-- name: resolve_event
UPDATE drift.drift_events
SET status = 'resolved', resolution = %(resolution)s, claimed_by = NULL, lease_expires_at = NULL
WHERE id = %(event_id)s AND claimed_by = %(worker)s AND status = 'running'
RETURNING id;

-- name: fail_attempt
-- Back to pending after a backoff, or failed (the dead letter) when attempts are used up
-- or the error is permanent.
UPDATE drift.drift_events
SET status = CASE WHEN %(permanent)s OR attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
    run_after = now() + make_interval(secs => %(delay_s)s),
    last_error = %(error)s,
    resolution = %(resolution)s,
    claimed_by = NULL,
    lease_expires_at = NULL
WHERE id = %(event_id)s AND claimed_by = %(worker)s AND status = 'running'
RETURNING status;

-- name: release_events
-- A stopping worker gives its unfinished events back; the interrupted attempt is not counted.
UPDATE drift.drift_events
SET status = 'pending', attempts = greatest(attempts - 1, 0), run_after = now(),
    claimed_by = NULL, lease_expires_at = NULL
WHERE id = ANY(%(ids)s) AND claimed_by = %(worker)s AND status = 'running'
RETURNING id;

-- name: release_runs
UPDATE drift.action_runs
SET outcome = 'released', finished_at = clock_timestamp(),
    error = 'the worker shut down before the action finished'
WHERE event_id = ANY(%(ids)s) AND worker = %(worker)s AND outcome = 'running';

-- name: next_due
-- Seconds until the next pending event is due or another worker's lease expires (NULL: none).
SELECT extract(epoch FROM least(
    (SELECT min(run_after) FROM drift.drift_events WHERE status = 'pending'),
    (SELECT min(lease_expires_at) FROM drift.drift_events
     WHERE status = 'running' AND claimed_by IS DISTINCT FROM %(worker)s)
) - now())::float8;

-- name: list_events
-- as_of: the data time the drift was seen at (the evaluation's as_of); created_at: wall clock.
SELECT id, created_at, (details->>'as_of')::timestamptz AS as_of, window_start, window_end, model, kind,
    metric, score, threshold, p_value, status, attempts, max_attempts, claimed_by, lease_expires_at,
    run_after, last_error, resolution
FROM drift.drift_events
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(model)s::text IS NULL OR model = %(model)s)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: retry_event
-- Re-queue a failed (or backing-off) event now with a fresh set of attempts.
UPDATE drift.drift_events
SET status = 'pending', attempts = 0, run_after = now(), claimed_by = NULL, lease_expires_at = NULL
WHERE id = %(event_id)s AND status IN ('failed', 'pending')
RETURNING id;

-- name: event_state
SELECT status, claimed_by, lease_expires_at FROM drift.drift_events WHERE id = %(event_id)s;

-- name: scrape
-- Everything /metrics reads from the database, in one query: the drift views and the
-- number of events per status.
SELECT 'drift' AS family, model, kind, metric, score, threshold, p_value,
    CASE WHEN drifted THEN 1.0 ELSE 0.0 END AS drifted, NULL::text AS status, NULL::float8 AS n
FROM drift.drift_status
UNION ALL
SELECT 'events', NULL, NULL, NULL, NULL, NULL, NULL, NULL, status, count(*)::float8
FROM drift.drift_events
GROUP BY status;

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

-- name: event_held
SELECT 1 FROM drift.drift_events WHERE id = %(event_id)s AND claimed_by = %(worker)s AND status = 'running';

-- name: listen
-- Template: {channel} is an identifier.
LISTEN {channel};

-- name: ping
SELECT pg_notify(%(channel)s, %(token)s);
