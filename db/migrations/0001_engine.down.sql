-- Removes every table 0001_engine created, except alembic's version table (alembic still writes
-- to it; `driftloop db downgrade base` drops it and the schema afterwards). The vector
-- extension stays: other schemas may use it.
DROP TABLE drift.model_versions;
DROP TABLE drift.drift_events;
DROP TABLE drift.baselines;
DROP TABLE drift.interaction_rollup_delta;
DROP TABLE drift.interaction_rollup;
DROP TABLE drift.embedding_rollup_delta;
DROP TABLE drift.embedding_rollup;
DROP TABLE drift.refusal_patterns;
DROP TABLE drift.embeddings_log;
DROP TABLE drift.interaction_log;
DROP TABLE drift.models;
DROP TABLE drift.settings;
