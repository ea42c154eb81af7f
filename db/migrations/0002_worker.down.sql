-- Undoes 0002_worker's tables and columns.
ALTER TABLE drift.model_versions DROP COLUMN parameters;
DROP TABLE drift.prompt_versions;
DROP TABLE drift.action_runs;
DROP INDEX drift.drift_events_lease_idx;
DROP INDEX drift.drift_events_due_idx;
ALTER TABLE drift.drift_events
    DROP COLUMN resolution,
    DROP COLUMN last_error,
    DROP COLUMN lease_expires_at,
    DROP COLUMN claimed_at,
    DROP COLUMN claimed_by,
    DROP COLUMN run_after,
    DROP COLUMN max_attempts,
    DROP COLUMN attempts;
