-- Reliability under restarts and growth.
--
-- 1. drift_events.lease_renewed_at: when the holder last took or renewed its lease. A lease
--    renewed before the server (re)started gets one full lease length after the start before
--    another worker may take it over (drift.lease_expiry): the lease clock kept running while
--    no holder could reach the server to renew it.
-- 2. drift.interaction_id_ranges: the id span [min_id, max_id] of the rows written into each
--    partition step of interaction_log (one row per insert statement and step, folded by
--    drift.fold_id_ranges). A late label by id finds the step of its row here and updates
--    with a created_at range the planner prunes on: one partition, not every partition's key.
-- 3. drift.action_run_counts: the finished runs per action and outcome, and the bins of the
--    duration and reaction histograms, kept by triggers on action_runs, so /metrics reads a
--    few rows however many runs there are.

ALTER TABLE drift.drift_events ADD COLUMN lease_renewed_at timestamptz;
COMMENT ON COLUMN drift.drift_events.lease_renewed_at IS
    'When the holder last took or extended its lease (lease_expires_at minus the lease length). A lease renewed before the server started is not taken over until the server has been up for one lease length.';
UPDATE drift.drift_events SET lease_renewed_at = claimed_at WHERE status = 'running';

CREATE TABLE drift.interaction_id_ranges (
    starts timestamptz NOT NULL,
    ends timestamptz NOT NULL,
    min_id bigint NOT NULL,
    max_id bigint NOT NULL,
    CHECK (starts < ends AND min_id <= max_id)
);
COMMENT ON TABLE drift.interaction_id_ranges IS 'Where the rows of drift.interaction_log are by id: the ids written into the partition step [starts, ends), one row per insert statement until drift.fold_id_ranges() merges them. Read by drift.interaction_steps(id).';
COMMENT ON COLUMN drift.interaction_id_ranges.starts IS 'Start of the partition step (drift.partition_start of created_at).';
COMMENT ON COLUMN drift.interaction_id_ranges.ends IS 'End of the step (exclusive).';
COMMENT ON COLUMN drift.interaction_id_ranges.min_id IS 'Smallest id written into the step.';
COMMENT ON COLUMN drift.interaction_id_ranges.max_id IS 'Largest id written into the step.';
CREATE INDEX interaction_id_ranges_ids ON drift.interaction_id_ranges USING gist (int8range(min_id, max_id, '[]'));
CREATE INDEX interaction_id_ranges_step ON drift.interaction_id_ranges (starts, ends);
INSERT INTO drift.interaction_id_ranges (starts, ends, min_id, max_id)
SELECT s, s + iv, min(id), max(id)
FROM (SELECT coalesce((SELECT value FROM drift.settings WHERE key = 'partition_interval'), '1 day')::interval AS iv) c,
     LATERAL (SELECT l.id, date_bin(c.iv, l.created_at, timestamptz '2000-01-03 00:00:00+00') AS s
              FROM drift.interaction_log l) x
GROUP BY s, iv;

CREATE TABLE drift.action_run_counts (
    family text NOT NULL CHECK (family IN ('outcome', 'duration', 'reaction')),
    action text NOT NULL,
    outcome text NOT NULL,
    bin integer NOT NULL,
    runs bigint NOT NULL,
    seconds_sum double precision NOT NULL,
    PRIMARY KEY (family, action, outcome, bin)
);
COMMENT ON TABLE drift.action_run_counts IS 'Counters of drift.action_runs kept by its triggers (drift.count_action_runs, drift.count_action_runs_insert; deleted runs stay counted): finished runs per action and outcome (family outcome), runs per action and duration bin (duration), first runs per reaction-time bin (reaction). The views behind /metrics read these few rows instead of every run.';
COMMENT ON COLUMN drift.action_run_counts.family IS 'outcome, duration or reaction.';
COMMENT ON COLUMN drift.action_run_counts.action IS 'Action name (empty for reaction).';
COMMENT ON COLUMN drift.action_run_counts.outcome IS 'Run outcome (family outcome; empty otherwise).';
COMMENT ON COLUMN drift.action_run_counts.bin IS 'Histogram bin: the number of bounds below the value (drift.histogram_bin); 0 for family outcome.';
COMMENT ON COLUMN drift.action_run_counts.runs IS 'Runs (for reaction: events) counted.';
COMMENT ON COLUMN drift.action_run_counts.seconds_sum IS 'Their total seconds (duration or reaction time; 0 for family outcome).';
-- The counts of the runs already recorded (the bounds as the views of this release use them;
-- from here on the triggers of db/repeatable/75_timeseries.sql keep them).
INSERT INTO drift.action_run_counts (family, action, outcome, bin, runs, seconds_sum)
SELECT 'outcome', r.action, r.outcome, 0, count(*), 0
FROM drift.action_runs r WHERE r.outcome <> 'running'
GROUP BY r.action, r.outcome
UNION ALL
SELECT 'duration', r.action, '', width_bucket(r.d, b.bounds) - (r.d = ANY (b.bounds))::int, count(*), sum(r.d)
FROM (SELECT action, date_part('epoch', finished_at - started_at) AS d FROM drift.action_runs
      WHERE outcome IN ('succeeded', 'failed', 'lease_lost') AND finished_at IS NOT NULL) r,
     (SELECT '{0.01,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,300,900}'::float8[] AS bounds) b
GROUP BY 2, 4
UNION ALL
SELECT 'reaction', '', '', width_bucket(x.d, b.bounds) - (x.d = ANY (b.bounds))::int, count(*), sum(x.d)
FROM (SELECT greatest(date_part('epoch', f.started_at - e.created_at), 0) AS d
      FROM (SELECT event_id, min(started_at) AS started_at FROM drift.action_runs GROUP BY event_id) f
      JOIN drift.drift_events e ON e.id = f.event_id) x,
     (SELECT '{0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,300,900,3600}'::float8[] AS bounds) b
GROUP BY 4;

-- 4. drift.event_status_counts: events per status as appended deltas (+1/-1 per transition,
--    written by triggers on drift_events, folded by drift.compact_rollups), so /metrics sums a
--    few rows instead of counting every event ever raised.
CREATE TABLE drift.event_status_counts (
    status text NOT NULL,
    events bigint NOT NULL
);
COMMENT ON TABLE drift.event_status_counts IS 'Events per status as deltas: the sum of events per status is the number of drift_events in it. Appended by triggers on drift_events (no row is updated, so claims never wait on a counter), folded to one row per status by drift.fold_event_status_counts(). Read by drift.event_status_totals.';
COMMENT ON COLUMN drift.event_status_counts.status IS 'pending, running, resolved or failed.';
COMMENT ON COLUMN drift.event_status_counts.events IS 'Events that entered (positive) or left (negative) the status.';
INSERT INTO drift.event_status_counts (status, events) SELECT status, count(*) FROM drift.drift_events GROUP BY status;
