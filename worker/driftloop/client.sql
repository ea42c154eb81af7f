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

-- name: insert_interaction_idempotent
-- One row of a batch that carries idempotency keys: a replayed key returns the first row's id.
WITH ins AS (
    INSERT INTO drift.interaction_log (id, created_at, model, model_version, prompt, response, is_refusal,
        toxicity, feedback, correct, latency_ms, metadata, idempotency_key)
    VALUES (%(id)s, %(created_at)s, %(model)s, %(model_version)s, %(prompt)s, %(response)s, %(is_refusal)s,
        %(toxicity)s, %(feedback)s, %(correct)s, %(latency_ms)s, %(metadata)s, %(idempotency_key)s)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
)
SELECT id FROM ins
UNION ALL
SELECT id FROM drift.interaction_log
WHERE idempotency_key = %(idempotency_key)s AND NOT EXISTS (SELECT 1 FROM ins);

-- name: interaction_id_by_key
SELECT id FROM drift.interaction_log WHERE idempotency_key = %(idempotency_key)s;

-- name: model_dims
SELECT embedding_dims FROM drift.models WHERE model = %(model)s;

-- name: copy_embeddings
COPY drift.embeddings_log (model, interaction_id, embedding) FROM STDIN WITH (FORMAT BINARY);

-- name: copy_embeddings_at
COPY drift.embeddings_log (model, interaction_id, embedding, created_at) FROM STDIN WITH (FORMAT BINARY);

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
