DROP TABLE IF EXISTS drift.evaluation_history;
