-- Ingest safety: idempotency keys scoped per model, kept in a table of their own (the logs
-- may be partitioned by time, and a unique constraint on a partitioned table must contain
-- the partition key); batch keys that make the SDK's retries exact; invalid refusal patterns
-- from before patterns were validated are disabled (one of them failed every insert).

CREATE TABLE drift.idempotency_keys (
    model text NOT NULL,
    log text NOT NULL CHECK (log IN ('interaction', 'embedding')),
    key text NOT NULL CHECK (key <> '' AND length(key) <= 200),
    row_id bigint NOT NULL,
    payload_hash bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, log, key)
);
CREATE INDEX idempotency_keys_created_at ON drift.idempotency_keys (created_at);
COMMENT ON TABLE drift.idempotency_keys IS 'One row per idempotency key a log row was written with, per model and log: a replay with the same payload writes nothing, another payload is refused. Filled by the log triggers (any insert path).';
COMMENT ON COLUMN drift.idempotency_keys.model IS 'The model the key belongs to: keys are scoped per model.';
COMMENT ON COLUMN drift.idempotency_keys.log IS 'interaction (drift.interaction_log) or embedding (drift.embeddings_log).';
COMMENT ON COLUMN drift.idempotency_keys.key IS 'The client''s idempotency key.';
COMMENT ON COLUMN drift.idempotency_keys.row_id IS 'The id of the log row first written with this key.';
COMMENT ON COLUMN drift.idempotency_keys.payload_hash IS 'SHA-256 of the row''s payload (every column the client sends except id and created_at); NULL for keys from before this table.';
COMMENT ON COLUMN drift.idempotency_keys.created_at IS 'When the key was first used; keys older than the log''s retention can be dropped with drift.prune_ingest_keys().';

-- Keys were unique over all models before: each becomes the key of its row's model.
INSERT INTO drift.idempotency_keys (model, log, key, row_id, created_at)
SELECT model, 'interaction', idempotency_key, id, created_at
FROM drift.interaction_log WHERE idempotency_key IS NOT NULL AND idempotency_key <> '';
ALTER TABLE drift.interaction_log DROP CONSTRAINT interaction_log_idempotency_key_key;
COMMENT ON COLUMN drift.interaction_log.idempotency_key IS 'Optional client key, unique per model (drift.idempotency_keys): a replay with the same payload writes nothing, another payload is an error.';

ALTER TABLE drift.embeddings_log ADD COLUMN idempotency_key text CHECK (length(idempotency_key) <= 200);
COMMENT ON COLUMN drift.embeddings_log.idempotency_key IS 'Optional client key, unique per model (drift.idempotency_keys): a replay with the same payload writes nothing, another payload is an error.';

CREATE TABLE drift.ingest_batches (
    batch_key uuid PRIMARY KEY,
    log text NOT NULL CHECK (log IN ('interaction', 'embedding')),
    rows integer,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_batches_created_at ON drift.ingest_batches (created_at);
COMMENT ON TABLE drift.ingest_batches IS 'One row per SDK batch, written in the batch''s own transaction: a retry after a lost COMMIT finds its key and writes nothing again (exactly-once without a key per row).';
COMMENT ON COLUMN drift.ingest_batches.batch_key IS 'Random key the SDK makes for one call (all its attempts).';
COMMENT ON COLUMN drift.ingest_batches.log IS 'interaction or embedding.';
COMMENT ON COLUMN drift.ingest_batches.rows IS 'Rows the batch wrote (embeddings: replayed keys not counted).';
COMMENT ON COLUMN drift.ingest_batches.created_at IS 'When the batch was written; rows older than a retry could wait are dropped by drift.prune_ingest_keys().';

DO $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT id, pattern FROM drift.refusal_patterns WHERE enabled LOOP
        BEGIN
            PERFORM '' ~* p.pattern;
        EXCEPTION WHEN invalid_regular_expression THEN
            UPDATE drift.refusal_patterns
            SET enabled = false, description = concat_ws(' ', description, '[disabled: not a valid regular expression]')
            WHERE id = p.id;
        END;
    END LOOP;
END $$;
