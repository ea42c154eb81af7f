-- A command's exit, recorded the moment the child exits (drift.record_exit), before its run is
-- finished: a worker SIGKILLed in between leaves the outcome to the worker that takes the event
-- over (drift.take_over_runs), which finishes the run with it instead of running the command
-- a second time.
ALTER TABLE drift.action_runs ADD COLUMN exit_code integer, ADD COLUMN exited_at timestamptz;
COMMENT ON COLUMN drift.action_runs.exit_code IS 'A command''s exit status, recorded as soon as it exited (NULL: not a command, or not exited yet).';
COMMENT ON COLUMN drift.action_runs.exited_at IS 'When the command''s exit was recorded; a run still running with an exit is finished by the next holder with that outcome, not run again.';
