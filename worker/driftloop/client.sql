-- Named queries of the SDK (driftloop/client.py). Each starts with a `-- name: NAME` line;
-- parameters are psycopg placeholders.

-- name: allocate_interaction_ids
-- Ids and the transaction's now() for a batch: COPY then writes rows with known ids, so the
-- SDK can return them (COPY itself returns nothing) and link embeddings to them.
SELECT now(), array(
    SELECT nextval(pg_get_serial_sequence('drift.interaction_log', 'id')) FROM generate_series(1, %(count)s)
);

-- name: copy_interactions
COPY drift.interaction_log (id, created_at, model, model_version, prompt, response, is_refusal, toxicity,
    feedback, correct, latency_ms, metadata, idempotency_key)
FROM STDIN WITH (FORMAT BINARY);

-- name: claim_batch
-- The batch key of one SDK call, in the batch's transaction: no row back means an earlier
-- attempt of the same call committed (a retry after a lost COMMIT writes nothing again).
INSERT INTO drift.ingest_batches (batch_key, log, rows) VALUES (%(batch_key)s, %(log)s, %(rows)s)
ON CONFLICT (batch_key) DO NOTHING
RETURNING batch_key;

-- name: batch_written
UPDATE drift.ingest_batches SET rows = %(rows)s WHERE batch_key = %(batch_key)s;

-- name: batch_rows
SELECT rows FROM drift.ingest_batches WHERE batch_key = %(batch_key)s;

-- name: interaction_ids_by_key
-- The log row of each (model, key): the row just written, or the first one for a replay.
SELECT k.model, k.key, k.row_id
FROM drift.idempotency_keys k
JOIN unnest(%(models)s::text[], %(keys)s::text[]) AS u (model, key) ON k.model = u.model AND k.key = u.key
WHERE k.log = 'interaction';

-- name: model_dims
SELECT embedding_dims FROM drift.models WHERE model = %(model)s;

-- name: copy_embeddings
COPY drift.embeddings_log (model, interaction_id, embedding, idempotency_key) FROM STDIN WITH (FORMAT BINARY);

-- name: copy_embeddings_at
COPY drift.embeddings_log (model, interaction_id, embedding, idempotency_key, created_at)
FROM STDIN WITH (FORMAT BINARY);

-- name: set_baseline
SELECT model, kind, starts, ends, n, quality_n
FROM drift.set_baseline(%(model)s, %(starts)s, %(ends)s, %(kinds)s);

-- name: evaluate
SELECT * FROM drift.evaluate(coalesce(%(as_of)s::timestamptz, now()));

-- name: status
SELECT * FROM drift.drift_status ORDER BY model, kind, metric;

-- name: evaluate_models
-- Only the given models (run compact_rollups first, as drift.evaluate() does).
SELECT * FROM drift.evaluate_models(coalesce(%(as_of)s::timestamptz, now()), %(models)s::text[]);

-- name: compact_rollups
SELECT drift.compact_rollups();

-- name: report_at
SELECT * FROM drift.drift_report(coalesce(%(as_of)s::timestamptz, now()), %(models)s::text[])
ORDER BY model, kind, metric;

-- name: interaction_steps
-- The partition steps an interaction id can be in (newest first): a label by id then touches
-- one partition, not the primary key of every one (db/repeatable/36_id_ranges.sql).
SELECT starts, ends FROM drift.interaction_steps(%(id)s);

-- name: label_interaction
-- A late label or feedback; the created_at range of one step lets the planner prune to one
-- partition. A field not given keeps its value.
UPDATE drift.interaction_log
SET feedback = CASE WHEN %(set_feedback)s THEN %(feedback)s::smallint ELSE feedback END,
    correct = CASE WHEN %(set_correct)s THEN %(correct)s::boolean ELSE correct END
WHERE id = %(id)s AND created_at >= %(starts)s AND created_at < %(ends)s
RETURNING id, feedback, correct;
