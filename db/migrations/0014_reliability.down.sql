-- Undoes 0014_reliability (the code layer is removed before any downgrade).
DROP TABLE drift.event_status_counts;
DROP TABLE drift.action_run_counts;
DROP TABLE drift.interaction_id_ranges;
ALTER TABLE drift.drift_events DROP COLUMN lease_renewed_at;
