ALTER TABLE drift.action_runs DROP COLUMN IF EXISTS recovery;
ALTER TABLE drift.drift_events DROP COLUMN IF EXISTS incident_id;
DROP TABLE IF EXISTS drift.incidents;
