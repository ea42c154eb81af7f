-- Undoes 0010_ingest_safety (the code layer is removed before any downgrade). Keys become
-- global again: a key several models used stays on its first row only.
DROP TABLE drift.ingest_batches;
ALTER TABLE drift.embeddings_log DROP COLUMN idempotency_key;
UPDATE drift.interaction_log l SET idempotency_key = NULL
WHERE l.idempotency_key IS NOT NULL
  AND EXISTS (SELECT 1 FROM drift.interaction_log o WHERE o.idempotency_key = l.idempotency_key AND o.id < l.id);
ALTER TABLE drift.interaction_log ADD CONSTRAINT interaction_log_idempotency_key_key UNIQUE (idempotency_key);
DROP TABLE drift.idempotency_keys;
