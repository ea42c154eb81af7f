-- The drift_events queue: every state transition the worker makes is one function here, and
-- each write after the claim goes through drift.hold_event, the one ownership check
-- (claimed_by = this worker AND status = 'running'). States: pending -> running (claim) ->
-- resolved | pending (retry after backoff) | failed (dead letter); a running event whose
-- lease expired may be claimed again by any worker.

CREATE OR REPLACE FUNCTION drift.hold_event(p_event_id bigint, p_worker text) RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    SELECT e.id FROM drift.drift_events e
    WHERE e.id = p_event_id AND e.claimed_by = p_worker AND e.status = 'running'
    FOR NO KEY UPDATE
$$;
COMMENT ON FUNCTION drift.hold_event(bigint, text) IS 'The event id while p_worker still holds the event (row locked until the transaction ends), else NULL: the ownership check of every write after a claim.';

-- No SET search_path: a per-row call the planner inlines (pg_postmaster_start_time lives in
-- pg_catalog, which is always searched first).
CREATE OR REPLACE FUNCTION drift.lease_expiry(p_expires timestamptz, p_renewed timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    -- While the server is down no holder can renew its lease, yet the clock runs on: after a
    -- restart every lease taken before it gets one full lease length from the start, so a
    -- live holder (its action may have finished during the outage) renews and records its
    -- result before anyone takes the event over and runs the action a second time.
    SELECT CASE WHEN p_renewed < pg_catalog.pg_postmaster_start_time()
                THEN greatest(p_expires, pg_catalog.pg_postmaster_start_time() + (p_expires - p_renewed))
                ELSE p_expires END
$$;
COMMENT ON FUNCTION drift.lease_expiry(timestamptz, timestamptz) IS 'When a lease really ends: lease_expires_at, or for a lease last renewed before the server started, no earlier than one lease length after the start.';

CREATE OR REPLACE FUNCTION drift.claim_events(p_worker text, p_limit integer, p_lease_s double precision,
    p_models text[] DEFAULT NULL)
RETURNS TABLE (id bigint, created_at timestamptz, model text, kind text, metric text, score double precision,
    threshold double precision, p_value double precision, window_start timestamptz, window_end timestamptz,
    details jsonb, attempts integer, max_attempts integer, age_s double precision)
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    -- One statement: pending events whose backoff has passed and running ones whose holder let
    -- the lease expire (it crashed or hung). The attempt is counted here, so a worker that dies
    -- mid-action still uses one up.
    WITH claimable AS (
        SELECT c.id FROM drift.drift_events c
        WHERE ((c.status = 'pending' AND c.run_after <= now())
            OR (c.status = 'running' AND drift.lease_expiry(c.lease_expires_at, c.lease_renewed_at) < now()))
          AND (p_models IS NULL OR c.model = ANY (p_models))
          -- One event of an incident at a time, oldest first: its actions run once for the
          -- incident, and the later events then find them done (72_incidents.sql).
          AND NOT EXISTS (
              SELECT 1 FROM drift.drift_events o
              WHERE o.incident_id = c.incident_id AND o.id < c.id AND o.status IN ('pending', 'running'))
        ORDER BY c.run_after, c.id
        LIMIT p_limit
        FOR NO KEY UPDATE SKIP LOCKED
    )
    UPDATE drift.drift_events AS e
    SET status = 'running', attempts = e.attempts + 1, claimed_by = p_worker, claimed_at = now(),
        lease_expires_at = now() + make_interval(secs => p_lease_s), lease_renewed_at = now()
    FROM claimable
    WHERE e.id = claimable.id
    RETURNING e.id, e.created_at, e.model, e.kind, e.metric, e.score, e.threshold, e.p_value,
        e.window_start, e.window_end, e.details, e.attempts, e.max_attempts,
        extract(epoch FROM clock_timestamp() - e.created_at)::float8
$$;
COMMENT ON FUNCTION drift.claim_events(text, integer, double precision, text[]) IS 'Claims up to p_limit due events (pending past their backoff, or running past their lease) for p_worker with a lease of p_lease_s seconds, skipping rows other workers hold (SKIP LOCKED); NULL p_models: every model.';

CREATE OR REPLACE FUNCTION drift.extend_leases(p_worker text, p_ids bigint[], p_lease_s double precision)
RETURNS SETOF bigint
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    UPDATE drift.drift_events e SET lease_expires_at = now() + make_interval(secs => p_lease_s), lease_renewed_at = now()
    WHERE e.id IN (SELECT drift.hold_event(x, p_worker) FROM unnest(p_ids) x)
    RETURNING e.id
$$;
COMMENT ON FUNCTION drift.extend_leases(text, bigint[], double precision) IS 'Extends the leases of the events p_worker still holds; returns their ids (a missing id was lost to another worker).';

CREATE OR REPLACE FUNCTION drift.start_run(p_event_id bigint, p_worker text, p_action text, p_action_type text,
    p_lease_s double precision)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    -- The fence of an action: its run row is written, and the lease renewed to a full length,
    -- in one statement under the event's row lock, before the action starts. An action
    -- therefore never starts on a lease that has run out (or been taken) since the claim.
    WITH held AS (
        UPDATE drift.drift_events e
        SET lease_expires_at = now() + make_interval(secs => p_lease_s), lease_renewed_at = now()
        WHERE e.id = (SELECT drift.hold_event(p_event_id, p_worker))
        RETURNING e.id, e.attempts
    ), started AS (
        -- A retry after a lost reply (the server restarted after the commit) finds its run
        -- instead of leaving it running forever beside a second one.
        SELECT r.id FROM drift.action_runs r JOIN held ON r.event_id = held.id AND r.attempt = held.attempts
        WHERE r.action = p_action AND r.worker = p_worker AND r.outcome = 'running'
    ), inserted AS (
        INSERT INTO drift.action_runs (event_id, action, action_type, attempt, worker)
        SELECT held.id, p_action, p_action_type, held.attempts, p_worker FROM held
        WHERE NOT EXISTS (SELECT 1 FROM started)
        RETURNING id
    )
    SELECT id FROM started
    UNION ALL
    SELECT id FROM inserted
$$;
COMMENT ON FUNCTION drift.start_run(bigint, text, text, text, double precision) IS 'Records the start of an action run for an event p_worker holds and renews its lease for p_lease_s seconds; returns the run id (NULL: the event is no longer held). Idempotent within an attempt: called again, it returns the run already started.';

CREATE OR REPLACE FUNCTION drift.finish_run(p_event_id bigint, p_worker text, p_run_id bigint, p_outcome text,
    p_output jsonb, p_error text)
RETURNS text
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    -- The result counts only while the claim is still ours; otherwise the run is lease_lost.
    WITH finished AS (
        UPDATE drift.action_runs
        SET outcome = CASE WHEN (SELECT drift.hold_event(p_event_id, p_worker)) IS NOT NULL THEN p_outcome ELSE 'lease_lost' END,
            finished_at = clock_timestamp(), output = p_output, error = p_error
        WHERE id = p_run_id AND outcome = 'running'
        RETURNING outcome
    )
    SELECT outcome FROM finished
    UNION ALL
    -- A retry after a lost reply (the server restarted after the commit): the run is already
    -- finished by this worker, and saying so is not a lost lease. (Same snapshot: this part
    -- sees the row as it was before the UPDATE above, so it answers only when that did nothing.)
    SELECT r.outcome FROM drift.action_runs r
    WHERE r.id = p_run_id AND r.worker = p_worker AND r.outcome IN (p_outcome, 'lease_lost')
$$;
COMMENT ON FUNCTION drift.finish_run(bigint, text, bigint, text, jsonb, text) IS 'Records the outcome of a running action run; returns the outcome stored (lease_lost when p_worker no longer holds the event, NULL when the run was not running). Idempotent: repeated by the same worker, it returns the outcome already stored.';

CREATE OR REPLACE FUNCTION drift.record_exit(p_event_id bigint, p_worker text, p_run_id bigint, p_exit_code integer,
    p_output jsonb, p_error text)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    -- Written the moment a command exits, before anything else. It takes no lock on the event
    -- (finish_run does, and waits for it), so it commits at once; a worker killed after it
    -- leaves the outcome to whoever takes the event over (take_over_runs), which finishes the
    -- run with it instead of running the command a second time.
    UPDATE drift.action_runs
    SET exit_code = p_exit_code, exited_at = clock_timestamp(), output = p_output, error = p_error
    WHERE id = p_run_id AND event_id = p_event_id AND worker = p_worker AND outcome = 'running'
    RETURNING true
$$;
COMMENT ON FUNCTION drift.record_exit(bigint, text, bigint, integer, jsonb, text) IS 'Records the exit status (and output or error) of the command of a running run of p_worker, before the run is finished; true when recorded.';

CREATE OR REPLACE FUNCTION drift.take_over_runs(p_event_id bigint, p_worker text, p_at_most_once text[] DEFAULT '{}')
RETURNS TABLE (run_id bigint, action text, outcome text, worker text, dead_letter boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    r record;
    why text;
BEGIN
    -- Only the holder settles what earlier holders left; the event stays locked until commit.
    IF drift.hold_event(p_event_id, p_worker) IS NULL THEN
        RETURN;
    END IF;
    -- A run another worker left running means that worker lost the event (it died). With its
    -- command's exit recorded, the run ends with that outcome (a later attempt skips an action
    -- that succeeded); without, nobody knows how far it got: abandoned.
    FOR r IN
        UPDATE drift.action_runs a
        SET outcome = CASE WHEN a.exited_at IS NULL THEN 'abandoned' WHEN a.exit_code = 0 THEN 'succeeded' ELSE 'failed' END,
            finished_at = coalesce(a.exited_at, clock_timestamp()),
            error = CASE WHEN a.exited_at IS NULL
                         THEN 'worker ' || a.worker || ' lost its claim; taken over by ' || p_worker
                         ELSE a.error END
        WHERE a.event_id = p_event_id AND a.outcome = 'running' AND a.worker <> p_worker
        RETURNING a.id, a.action, a.action_type, a.outcome, a.worker
    LOOP
        run_id := r.id; action := r.action; outcome := r.outcome; worker := r.worker;
        -- An at_most_once action that may have run must not run again: the event goes to the
        -- dead letter, in this same transaction, for a human to check and retry.
        dead_letter := r.outcome = 'abandoned' AND r.action = ANY (p_at_most_once) AND why IS NULL;
        IF dead_letter THEN
            why := format('action %s is at_most_once and may have run already: worker %s started it (run %s) and died '
                          'before its outcome was recorded, so it is not run again. Check what it did, then '
                          '`driftloop events retry %s` runs it again.', r.action, r.worker, r.id, p_event_id);
            UPDATE drift.drift_events
            SET status = 'failed', last_error = why, claimed_by = NULL, lease_expires_at = NULL,
                resolution = jsonb_build_object('worker', p_worker, 'actions', jsonb_build_array(jsonb_build_object(
                    'action', r.action, 'type', r.action_type, 'outcome', 'abandoned', 'run_id', r.id, 'summary', why)))
            WHERE id = p_event_id;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION drift.take_over_runs(bigint, text, text[]) IS 'On an event p_worker took over: finishes the runs other workers left running with their recorded command exit, marks the others abandoned, and dead-letters the event (failed) when one of those is an action named in p_at_most_once; returns the runs settled (dead_letter marks the run that failed the event).';

CREATE OR REPLACE FUNCTION drift.resolve_event(p_event_id bigint, p_worker text, p_resolution jsonb) RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    WITH done AS (
        UPDATE drift.drift_events
        SET status = 'resolved', resolution = p_resolution, claimed_by = NULL, lease_expires_at = NULL
        WHERE id = (SELECT drift.hold_event(p_event_id, p_worker))
        RETURNING 1
    )
    -- A retry after a lost reply finds the event resolved by this worker: done, not lost.
    SELECT EXISTS (SELECT 1 FROM done)
        OR EXISTS (SELECT 1 FROM drift.drift_events e
                   WHERE e.id = p_event_id AND e.status = 'resolved' AND e.resolution ->> 'worker' = p_worker)
$$;
COMMENT ON FUNCTION drift.resolve_event(bigint, text, jsonb) IS 'running -> resolved, with what the worker did; false when p_worker no longer holds the event. Idempotent: true again when p_worker already resolved it.';

CREATE OR REPLACE FUNCTION drift.fail_attempt(p_event_id bigint, p_worker text, p_error text, p_delay_s double precision,
    p_permanent boolean, p_resolution jsonb)
RETURNS text
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    -- Back to pending after a backoff, or failed (the dead letter) when attempts are used up
    -- or the error is permanent.
    UPDATE drift.drift_events
    SET status = CASE WHEN p_permanent OR attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
        run_after = now() + make_interval(secs => p_delay_s), last_error = p_error, resolution = p_resolution,
        claimed_by = NULL, lease_expires_at = NULL
    WHERE id = (SELECT drift.hold_event(p_event_id, p_worker))
    RETURNING status
$$;
COMMENT ON FUNCTION drift.fail_attempt(bigint, text, text, double precision, boolean, jsonb) IS 'running -> pending after p_delay_s (a retry with backoff) or -> failed when attempts are used up or the error is permanent; returns the new status (NULL when p_worker no longer holds the event).';

CREATE OR REPLACE FUNCTION drift.release_events(p_worker text, p_ids bigint[]) RETURNS SETOF bigint
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    -- A stopping worker gives its unfinished events back; the interrupted attempt is not counted.
    UPDATE drift.action_runs
    SET outcome = 'released', finished_at = clock_timestamp(), error = 'the worker shut down before the action finished'
    WHERE event_id = ANY (p_ids) AND worker = p_worker AND outcome = 'running';
    UPDATE drift.drift_events
    SET status = 'pending', attempts = greatest(attempts - 1, 0), run_after = now(),
        claimed_by = NULL, lease_expires_at = NULL
    WHERE id IN (SELECT drift.hold_event(x, p_worker) FROM unnest(p_ids) x)
    RETURNING id
$$;
COMMENT ON FUNCTION drift.release_events(text, bigint[]) IS 'running -> pending for the events p_worker holds (it is shutting down), their running action runs marked released; returns the ids released.';

CREATE OR REPLACE FUNCTION drift.retry_event(p_event_id bigint) RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    -- failed (or backing off) -> pending now, with a fresh set of attempts.
    WITH queued AS (
        UPDATE drift.drift_events
        SET status = 'pending', attempts = 0, run_after = now(), claimed_by = NULL, lease_expires_at = NULL
        WHERE id = p_event_id AND status IN ('failed', 'pending')
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM queued)
$$;
COMMENT ON FUNCTION drift.retry_event(bigint) IS 'Re-queues a failed (or backing-off pending) event to run now with fresh attempts; false when it is running or resolved.';

CREATE OR REPLACE FUNCTION drift.drift_events_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('drift_events', n.id::text) FROM new_events n ORDER BY n.id;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.drift_events_notify() IS 'Notifies channel drift_events with the id of every new event (delivered at commit).';
CREATE OR REPLACE TRIGGER drift_events_notify AFTER INSERT ON drift.drift_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION drift.drift_events_notify();

CREATE OR REPLACE FUNCTION drift.drift_events_stamp_close() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF NEW.status IN ('resolved', 'failed') AND OLD.status NOT IN ('resolved', 'failed') THEN
        NEW.closed_at := now();
        NEW.closed_as_of := coalesce(
            (SELECT greatest(m.last_evaluated_as_of, NEW.window_end) FROM drift.models m WHERE m.model = NEW.model),
            NEW.window_end, now());
    ELSIF NEW.status IN ('pending', 'running') THEN
        NEW.closed_at := NULL;
        NEW.closed_as_of := NULL;
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION drift.drift_events_stamp_close() IS 'Stamps closed_at and closed_as_of when an event is resolved or failed; clears them when it is re-queued.';
CREATE OR REPLACE TRIGGER drift_events_stamp_close BEFORE UPDATE OF status ON drift.drift_events
    FOR EACH ROW EXECUTE FUNCTION drift.drift_events_stamp_close();

CREATE OR REPLACE FUNCTION drift.active_prompt(p_model text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT prompt FROM drift.prompt_versions WHERE model = p_model AND active
$$;
COMMENT ON FUNCTION drift.active_prompt(text) IS
    'The active system prompt of a model (NULL when it has none): the one query apps run before calling their LLM.';

CREATE OR REPLACE FUNCTION drift.activate_prompt(
    p_model text, p_prompt text, p_event_id bigint DEFAULT NULL,
    p_created_by text DEFAULT NULL, p_reason text DEFAULT NULL
) RETURNS drift.prompt_versions
LANGUAGE plpgsql AS $$
DECLARE
    result drift.prompt_versions;
BEGIN
    -- Serialise version numbering per model.
    PERFORM pg_advisory_xact_lock(hashtext('drift.prompt_versions'), hashtext(p_model));
    IF p_event_id IS NOT NULL THEN
        SELECT * INTO result FROM drift.prompt_versions WHERE model = p_model AND event_id = p_event_id;
        IF FOUND THEN
            RETURN result;  -- this event already produced its version: running twice does no harm
        END IF;
    END IF;
    UPDATE drift.prompt_versions SET active = false WHERE model = p_model AND active;
    INSERT INTO drift.prompt_versions (model, version, prompt, active, created_by, reason, event_id)
    SELECT p_model, coalesce(max(version), 0) + 1, p_prompt, true, p_created_by, p_reason, p_event_id
    FROM drift.prompt_versions WHERE model = p_model
    RETURNING * INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION drift.activate_prompt(text, text, bigint, text, text) IS
    'Adds a new prompt version for the model and makes it the active one (previous versions are kept). With an event id it is idempotent: the version that event created is returned.';

CREATE OR REPLACE FUNCTION drift.rollback_prompt(p_model text) RETURNS drift.prompt_versions
LANGUAGE plpgsql AS $$
DECLARE
    current_version integer;
    result drift.prompt_versions;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('drift.prompt_versions'), hashtext(p_model));
    SELECT version INTO current_version FROM drift.prompt_versions WHERE model = p_model AND active;
    IF current_version IS NULL THEN
        RAISE EXCEPTION 'model % has no active prompt to roll back', p_model USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO result FROM drift.prompt_versions
    WHERE model = p_model AND version < current_version ORDER BY version DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model % has no prompt version before version %', p_model, current_version
            USING ERRCODE = 'no_data_found';
    END IF;
    UPDATE drift.prompt_versions SET active = false WHERE model = p_model AND active;
    UPDATE drift.prompt_versions SET active = true WHERE id = result.id RETURNING * INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION drift.rollback_prompt(text) IS
    'Makes the version before the active one active again and returns it; repeated calls walk further back. Raises when there is nothing to roll back to.';

-- Events per status for /metrics, counted as statuses change (drift.event_status_counts,
-- migration 0014): appended deltas, never an updated counter row, so a claim or an
-- evaluation raising events never waits on another transaction's count.
CREATE OR REPLACE FUNCTION drift.count_event_statuses() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO drift.event_status_counts (status, events)
        SELECT n.status, count(*) FROM new_rows n GROUP BY n.status;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO drift.event_status_counts (status, events)
        SELECT o.status, -count(*) FROM old_rows o GROUP BY o.status;
    ELSE
        -- Most updates (lease renewals) change no status: nothing is written.
        INSERT INTO drift.event_status_counts (status, events)
        SELECT c.status, sum(c.sign) FROM (
            SELECT o.status, -1 AS sign FROM old_rows o
            UNION ALL SELECT n.status, 1 FROM new_rows n
        ) c
        GROUP BY c.status HAVING sum(c.sign) <> 0;
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.count_event_statuses() IS 'After a write to drift_events: appends the change of events per status to drift.event_status_counts.';
CREATE OR REPLACE TRIGGER drift_events_count_insert AFTER INSERT ON drift.drift_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.count_event_statuses();
CREATE OR REPLACE TRIGGER drift_events_count_update AFTER UPDATE ON drift.drift_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.count_event_statuses();
CREATE OR REPLACE TRIGGER drift_events_count_delete AFTER DELETE ON drift.drift_events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.count_event_statuses();

CREATE OR REPLACE FUNCTION drift.fold_event_status_counts() RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    k bigint;
BEGIN
    -- Deltas appended meanwhile are not seen by the DELETE and stay for the next fold.
    WITH moved AS (DELETE FROM drift.event_status_counts RETURNING *)
    INSERT INTO drift.event_status_counts (status, events)
    SELECT m.status, sum(m.events) FROM moved m GROUP BY m.status HAVING sum(m.events) <> 0;
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN k;
END $$;
COMMENT ON FUNCTION drift.fold_event_status_counts() IS 'Folds the status deltas into one row per status (drift.compact_rollups calls it, one session at a time); returns the rows written.';

CREATE OR REPLACE VIEW drift.event_status_totals AS
SELECT s.status, coalesce(sum(c.events), 0)::bigint AS events
FROM unnest('{pending,running,resolved,failed}'::text[]) AS s(status)
LEFT JOIN drift.event_status_counts AS c ON c.status = s.status
GROUP BY s.status;
COMMENT ON VIEW drift.event_status_totals IS 'Drift events per status now (driftloop_events), from the deltas of drift.event_status_counts: as many rows to read as status changes since the last fold, not one per event.';
COMMENT ON COLUMN drift.event_status_totals.status IS 'pending, running, resolved or failed.';
COMMENT ON COLUMN drift.event_status_totals.events IS 'Events in that status.';
