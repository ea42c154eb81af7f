-- Undoes 0015_command_exits (the code layer is removed before any downgrade).
ALTER TABLE drift.action_runs DROP COLUMN exit_code, DROP COLUMN exited_at;
