DROP FUNCTION IF EXISTS drift.delete_simulated_models(text[]);
DROP TABLE IF EXISTS drift.simulation_actions;
DROP TABLE IF EXISTS drift.simulation_timeline;
DROP TABLE IF EXISTS drift.simulation_drifts;
DROP TABLE IF EXISTS drift.simulation_models;
DROP TABLE IF EXISTS drift.simulation_runs;
