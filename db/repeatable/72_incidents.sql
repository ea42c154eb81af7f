-- Incidents: grouping drift events, and recovery judged against the pre-drift reference.

CREATE OR REPLACE FUNCTION drift.drift_events_join_incident() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    found_id bigint;
    previous_id bigint;
    v_as_of timestamptz := coalesce((NEW.details->>'as_of')::timestamptz, NEW.window_end, NEW.created_at);
    v_starts timestamptz := coalesce(NEW.window_start, v_as_of);
    v_ends timestamptz := coalesce(NEW.window_end, v_as_of);
    metric_ref jsonb := jsonb_build_object(NEW.metric, jsonb_build_object(
        'baseline_value', NEW.details->'baseline_value', 'threshold', NEW.threshold, 'as_of', v_as_of));
BEGIN
    IF NEW.incident_id IS NOT NULL THEN
        RETURN NEW;
    END IF;
    -- An open event of the same metric makes this insert a conflict (evaluate skips it):
    -- touch no incident for a row that will not be written.
    IF EXISTS (SELECT 1 FROM drift.drift_events o
               WHERE o.model = NEW.model AND o.kind = NEW.kind AND o.metric = NEW.metric
                 AND o.status IN ('pending', 'running')) THEN
        RETURN NEW;
    END IF;
    -- Concurrent evaluations of one model and kind group one at a time.
    PERFORM pg_advisory_xact_lock(hashtextextended('drift.incidents:' || NEW.model || ':' || NEW.kind, 0));
    -- The latest incident whose span this window overlaps; an incident with an open event
    -- spans until that event closes.
    SELECT i.id INTO found_id
    FROM drift.incidents i
    WHERE i.model = NEW.model AND i.kind = NEW.kind
      AND v_ends > i.window_start
      AND (v_starts < i.window_end
           OR EXISTS (SELECT 1 FROM drift.drift_events o WHERE o.incident_id = i.id AND o.status IN ('pending', 'running')))
      AND EXISTS (SELECT 1 FROM drift.drift_events o WHERE o.incident_id = i.id)
    ORDER BY i.window_end DESC, i.id DESC
    LIMIT 1
    FOR UPDATE;
    -- Once an action moved the baseline into the incident's span, a new event compares with
    -- that moved baseline: the drift goes on past the action, which was not enough. It opens
    -- a new incident continuing this one (its actions may run), not one more event of it.
    IF found_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM drift.baselines b JOIN drift.incidents i ON i.id = found_id
        WHERE b.model = NEW.model AND b.kind = NEW.kind AND b.ends > i.window_start) THEN
        previous_id := found_id;
        found_id := NULL;
    END IF;
    IF found_id IS NULL THEN
        -- A new incident. When it continues one (above), or its window starts right where the
        -- previous incident's ended, the drift persisted past that incident's actions and
        -- cooldown: it inherits that incident's pre-drift reference, since those actions may
        -- have moved the baseline. Otherwise the baseline as it is now, before any action of
        -- this incident moves it.
        IF previous_id IS NULL THEN
            SELECT i.id INTO previous_id
            FROM drift.incidents i
            WHERE i.model = NEW.model AND i.kind = NEW.kind AND i.window_end = v_starts
            ORDER BY i.id DESC
            LIMIT 1;
        END IF;
        IF previous_id IS NOT NULL THEN
            INSERT INTO drift.incidents (model, kind, first_as_of, last_as_of, window_start, window_end, reference,
                reference_centroid)
            SELECT NEW.model, NEW.kind, v_as_of, v_as_of, v_starts, v_ends,
                jsonb_set(p.reference, '{metrics}', metric_ref || coalesce(p.reference->'metrics', '{}'))
                    || jsonb_build_object('continues', previous_id),
                p.reference_centroid
            FROM drift.incidents p WHERE p.id = previous_id
            RETURNING incidents.id INTO found_id;
        ELSE
            INSERT INTO drift.incidents (model, kind, first_as_of, last_as_of, window_start, window_end, reference,
                reference_centroid)
            SELECT NEW.model, NEW.kind, v_as_of, v_as_of, v_starts, v_ends,
                jsonb_build_object('baseline', to_jsonb(b) - 'vec_sum' - 'sq_sum', 'metrics', metric_ref),
                b.vec_sum
            FROM (SELECT 1) AS one
            LEFT JOIN drift.baselines b ON b.model = NEW.model AND b.kind = NEW.kind
            RETURNING incidents.id INTO found_id;
        END IF;
    ELSE
        UPDATE drift.incidents i
        SET last_as_of = greatest(i.last_as_of, v_as_of),
            window_start = least(i.window_start, v_starts),
            window_end = greatest(i.window_end, v_ends),
            -- A metric's first event keeps its reference: a later one may already compare
            -- with a baseline this incident's actions moved.
            reference = jsonb_set(i.reference, '{metrics}', metric_ref || coalesce(i.reference->'metrics', '{}'))
        WHERE i.id = found_id;
    END IF;
    NEW.incident_id := found_id;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION drift.drift_events_join_incident() IS 'Puts a new drift event into the incident of its model and kind whose span its window overlaps (or that still has an open event), unless an action already moved the baseline into that span; else opens a new incident: its pre-drift reference is the current baseline, or the reference of the incident it continues (the drift persisted after that incident''s actions).';
CREATE OR REPLACE TRIGGER drift_events_join_incident BEFORE INSERT ON drift.drift_events
    FOR EACH ROW EXECUTE FUNCTION drift.drift_events_join_incident();

CREATE OR REPLACE FUNCTION drift.drift_events_drop_empty_incidents() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    DELETE FROM drift.incidents i
    WHERE i.id IN (SELECT o.incident_id FROM old_events o WHERE o.incident_id IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM drift.drift_events e WHERE e.incident_id = i.id);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.drift_events_drop_empty_incidents() IS 'Deletes the incidents left without events when events are deleted (a simulation reset, a purge).';
CREATE OR REPLACE TRIGGER drift_events_drop_empty_incidents AFTER DELETE ON drift.drift_events
    REFERENCING OLD TABLE AS old_events FOR EACH STATEMENT EXECUTE FUNCTION drift.drift_events_drop_empty_incidents();

CREATE OR REPLACE VIEW drift.incident_status AS
SELECT i.id, i.model, i.kind, i.first_as_of, i.last_as_of, i.window_start, i.window_end, i.created_at,
    CASE WHEN bool_or(e.status IN ('pending', 'running')) THEN 'open'
         WHEN bool_or(e.status = 'failed') AND NOT bool_or(e.status = 'resolved') THEN 'failed'
         ELSE 'resolved' END AS status,
    count(e.id) AS events,
    array_agg(DISTINCT e.metric ORDER BY e.metric) AS metrics,
    array_agg(e.id ORDER BY e.id) AS event_ids,
    (SELECT array_agg(DISTINCT r.action ORDER BY r.action) FROM drift.action_runs r
     JOIN drift.drift_events re ON re.id = r.event_id
     WHERE re.incident_id = i.id AND r.outcome = 'succeeded') AS actions_succeeded,
    i.reference
FROM drift.incidents i
LEFT JOIN drift.drift_events e ON e.incident_id = i.id
GROUP BY i.id;
COMMENT ON VIEW drift.incident_status IS 'One row per incident: its status (open while an event is pending or running), events, metrics, the actions that succeeded for it and its pre-drift reference.';
COMMENT ON COLUMN drift.incident_status.id IS 'Incident id.';
COMMENT ON COLUMN drift.incident_status.model IS 'Model name.';
COMMENT ON COLUMN drift.incident_status.kind IS 'embedding, behavior or accuracy.';
COMMENT ON COLUMN drift.incident_status.first_as_of IS 'Data time of the first event.';
COMMENT ON COLUMN drift.incident_status.last_as_of IS 'Data time of the latest event.';
COMMENT ON COLUMN drift.incident_status.window_start IS 'Start of the earliest event window.';
COMMENT ON COLUMN drift.incident_status.window_end IS 'End of the latest event window.';
COMMENT ON COLUMN drift.incident_status.created_at IS 'When the first event was raised (wall clock).';
COMMENT ON COLUMN drift.incident_status.status IS 'open (an event is pending or running), resolved, or failed (no event resolved).';
COMMENT ON COLUMN drift.incident_status.events IS 'Number of events in the incident.';
COMMENT ON COLUMN drift.incident_status.metrics IS 'The metrics that drifted.';
COMMENT ON COLUMN drift.incident_status.event_ids IS 'The incident''s events, oldest first.';
COMMENT ON COLUMN drift.incident_status.actions_succeeded IS 'The actions that succeeded for the incident (each runs once).';
COMMENT ON COLUMN drift.incident_status.reference IS 'The pre-drift reference recovery is judged against (drift.incidents.reference).';

CREATE OR REPLACE FUNCTION drift.incident_recovery(p_incident bigint, p_as_of timestamptz DEFAULT now())
RETURNS TABLE (metric text, value double precision, reference_value double precision,
    reference_limit double precision, within_reference boolean, baseline_value double precision,
    within_current boolean, window_start timestamptz, window_end timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    -- Per metric of the incident: its value now, the band of the ORIGINAL baseline and whether
    -- the value is back inside it, next to the engine's verdict against the current (possibly
    -- moved) baseline.
    WITH inc AS (SELECT * FROM drift.incidents WHERE id = p_incident),
    ref AS (
        SELECT m.key AS metric, (m.value->>'baseline_value')::float8 AS base,
            (m.value->>'threshold')::float8 AS threshold
        FROM inc, jsonb_each(inc.reference->'metrics') AS m
    ),
    now_rows AS (
        SELECT r.* FROM inc, drift.drift_report(p_as_of, ARRAY[inc.model]) r WHERE r.kind = inc.kind
    ),
    centroid AS (
        SELECT CASE WHEN w.n > 0 AND inc.reference_centroid IS NOT NULL
                    THEN (w.vec_sum <=> inc.reference_centroid)::float8 END AS distance
        FROM inc, now_rows r, drift.embedding_window(inc.model, r.window_start, r.window_end) w
        WHERE r.metric = 'centroid_distance'
    )
    SELECT ref.metric,
        CASE WHEN ref.metric = 'centroid_distance' THEN (SELECT distance FROM centroid) ELSE r.value END,
        CASE WHEN ref.metric = 'centroid_distance' THEN 0 ELSE ref.base END,
        CASE ref.metric
            WHEN 'accuracy' THEN ref.base - ref.threshold
            WHEN 'centroid_distance' THEN ref.threshold
            WHEN 'novelty_rate' THEN NULL
            WHEN 'mean_shift_evidence' THEN NULL
            WHEN 'whitened_mean_shift' THEN NULL
            ELSE greatest(ref.threshold, ref.base) END,
        CASE ref.metric
            WHEN 'accuracy' THEN r.value >= ref.base - ref.threshold
            WHEN 'centroid_distance' THEN (SELECT distance FROM centroid) <= ref.threshold
            WHEN 'novelty_rate' THEN NULL  -- needs the original baseline's sample, which a reindex replaces
            -- Statistics of the current baseline's whitening (which a reindex also replaces),
            -- not values comparable with the original's line.
            WHEN 'mean_shift_evidence' THEN NULL
            WHEN 'whitened_mean_shift' THEN NULL
            ELSE r.value <= greatest(ref.threshold, ref.base) END,
        r.baseline_value,
        NOT r.drifted,
        r.window_start, r.window_end
    FROM ref LEFT JOIN now_rows r ON r.metric = ref.metric
    ORDER BY ref.metric
$$;
COMMENT ON FUNCTION drift.incident_recovery(bigint, timestamptz) IS 'Recovery of an incident at as_of, per metric: the value against the band of the pre-drift baseline (accuracy >= reference - accuracy_drop_threshold; a rate <= max(threshold, reference rate); the centroid''s cosine distance from the ORIGINAL baseline centroid <= the first event''s threshold; novelty not judged), beside the engine''s verdict against the current, possibly moved, baseline.';

CREATE OR REPLACE FUNCTION drift.record_recovery(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    inc record;
    verdict jsonb;
    written integer := 0;
    n integer;
BEGIN
    -- Incidents with a succeeded action, of the given models, first seen before as_of.
    FOR inc IN
        SELECT DISTINCT i.id FROM drift.incidents i
        JOIN drift.drift_events e ON e.incident_id = i.id
        JOIN drift.action_runs r ON r.event_id = e.id AND r.outcome = 'succeeded'
        WHERE (p_models IS NULL OR i.model = ANY (p_models)) AND i.first_as_of <= p_as_of
    LOOP
        SELECT jsonb_build_object(
                'as_of', p_as_of,
                'metrics', coalesce(jsonb_agg(to_jsonb(x) - 'window_start' - 'window_end'), '[]'),
                'recovered_vs_reference', bool_and(x.within_reference) FILTER (WHERE x.within_reference IS NOT NULL),
                'recovered_vs_current', bool_and(x.within_current))
            INTO verdict
        FROM drift.incident_recovery(inc.id, p_as_of) x;
        UPDATE drift.action_runs r SET recovery = verdict
        FROM drift.drift_events e
        WHERE e.id = r.event_id AND e.incident_id = inc.id AND r.outcome = 'succeeded'
          AND (r.recovery IS NULL OR (r.recovery->>'as_of')::timestamptz <= p_as_of);
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;
    END LOOP;
    RETURN written;
END $$;
COMMENT ON FUNCTION drift.record_recovery(timestamptz, text[]) IS 'Writes the recovery verdict at as_of (drift.incident_recovery) into action_runs.recovery of every succeeded run of the given models'' incidents; returns the runs written. driftloop check, driftloop report and the demo call it.';
