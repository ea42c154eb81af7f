-- Undoes 0003_simulation's tables.
DROP TABLE drift.simulation_actions;
DROP TABLE drift.simulation_timeline;
DROP TABLE drift.simulation_drifts;
DROP TABLE drift.simulation_models;
DROP TABLE drift.simulation_runs;
