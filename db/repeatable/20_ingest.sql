-- Ingest: the log triggers. They validate, register models, append rollup deltas (or stage many
-- small statements of one transaction until commit), fill is_refusal from the patterns and
-- evaluate models that are due.

CREATE OR REPLACE FUNCTION drift.refusal_matches(p_response text) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT EXISTS (SELECT 1 FROM drift.refusal_patterns p WHERE p.enabled AND p_response ~* p.pattern)
$$;
COMMENT ON FUNCTION drift.refusal_matches(text) IS 'Whether a response matches any enabled refusal pattern.';

CREATE OR REPLACE FUNCTION drift.fill_refusal() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NEW.is_refusal := drift.refusal_matches(NEW.response);
    RETURN NEW;
END $$;
COMMENT ON FUNCTION drift.fill_refusal() IS 'Fills interaction_log.is_refusal from drift.refusal_patterns when the app sent none.';
CREATE OR REPLACE TRIGGER interaction_log_fill_refusal BEFORE INSERT ON drift.interaction_log
    FOR EACH ROW WHEN (NEW.is_refusal IS NULL AND NEW.response IS NOT NULL)
    EXECUTE FUNCTION drift.fill_refusal();

-- ---------------------------------------------------------------------------------------------
-- Log triggers: validate, register models, append rollup deltas, maybe evaluate.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.register_model(p_model text) RETURNS drift.models
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    m drift.models;
BEGIN
    SELECT * INTO m FROM drift.models WHERE model = p_model;
    IF NOT FOUND THEN
        INSERT INTO drift.models (model) VALUES (p_model) ON CONFLICT (model) DO NOTHING;
        SELECT * INTO m FROM drift.models WHERE model = p_model;
    END IF;
    RETURN m;
END $$;
COMMENT ON FUNCTION drift.register_model(text) IS 'The drift.models row of a model, created when new (no lock taken on an existing row).';

CREATE OR REPLACE FUNCTION drift.check_embedding_models(p_models text[], p_lo integer[], p_hi integer[],
    OUT due text[], OUT bad_model text, OUT model_dims integer)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    i integer;
    m drift.models;
BEGIN
    due := '{}';
    FOR i IN 1 .. coalesce(cardinality(p_models), 0) LOOP
        m := drift.register_model(p_models[i]);
        IF m.embedding_dims IS NULL THEN
            -- The first embeddings of a model fix its dimension (once; later statements only read).
            UPDATE drift.models SET embedding_dims = p_lo[i] WHERE model = p_models[i] AND embedding_dims IS NULL;
            SELECT * INTO m FROM drift.models WHERE model = p_models[i];
        END IF;
        IF p_lo[i] <> m.embedding_dims OR p_hi[i] <> m.embedding_dims THEN
            bad_model := p_models[i];
            model_dims := m.embedding_dims;
            RETURN;
        END IF;
        IF m.auto_evaluate AND m.next_evaluation_at <= clock_timestamp() THEN
            due := due || m.model;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION drift.check_embedding_models(text[], integer[], integer[]) IS 'For the embedding insert trigger: registers the models of a statement, fixes or checks their dimension, and lists those due for evaluation (internal).';

CREATE OR REPLACE FUNCTION drift.flush_staged_embeddings() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    lo timestamptz;
    hi timestamptz;
BEGIN
    SELECT min(s.created_at), max(s.created_at) INTO lo, hi FROM pg_temp.drift_staged_embedding_keys s;
    IF lo IS NOT NULL THEN
        -- created_at too: the log is partitioned by it, so each staged row probes one partition
        -- instead of the primary key of every partition. The staged rows' time range is passed
        -- to EXECUTE, which plans it as constants: only the partitions of that range are
        -- planned (a cached plan spans every partition, and planning them grew with retention).
        EXECUTE $q$
            INSERT INTO drift.embedding_rollup_delta (model, bucket, n, vec_sum, sq_sum)
            SELECT e.model, drift.bucket_of(e.created_at, $3), count(*), sum(e.embedding), sum(e.embedding * e.embedding)
            FROM pg_temp.drift_staged_embedding_keys s
            JOIN drift.embeddings_log e ON e.id = s.id AND e.created_at = s.created_at
                AND e.created_at >= $1 AND e.created_at <= $2
            GROUP BY 1, 2 $q$
        USING lo, hi, drift.setting('bucket_width')::interval;
    END IF;
    DELETE FROM pg_temp.drift_staged_embedding_keys;
    -- Under SET CONSTRAINTS IMMEDIATE this runs before commit: later statements stage anew.
    PERFORM set_config('drift.staging_xact', '', true);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.flush_staged_embeddings() IS 'Deferred to commit: folds the embeddings staged by small statements of the transaction into one rollup delta per model and bucket.';

CREATE OR REPLACE FUNCTION drift.embeddings_log_after_insert() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    xact text := pg_current_xact_id()::text;
    width interval;
    few record;
    agg record;
    checked record;
    bad record;
BEGIN
    -- Many small statements in one transaction (an app inserting row by row): appending a
    -- delta per statement would write two vectors per row. Instead, once this transaction has
    -- checked the model and its dimension, small statements of that model only stage their
    -- ids in a temp table (no WAL), folded into one delta per bucket at commit.
    IF current_setting('drift.embeddings_xact', true) = xact THEN
        SELECT count(*) AS n, min(f.model) AS model, max(f.model) AS model_hi,
               min(vector_dims(f.embedding)) AS lo, max(vector_dims(f.embedding)) AS hi
        INTO few FROM (SELECT n.model, n.embedding FROM new_rows n LIMIT 17) f;
        IF few.n <= 16 AND few.model = few.model_hi AND few.lo = few.hi
           AND current_setting('drift.embeddings_checked', true) = few.model || '|' || few.lo THEN
            IF current_setting('drift.staging_xact', true) IS DISTINCT FROM xact THEN
                IF to_regclass('pg_temp.drift_staged_embedding_keys') IS NULL THEN
                    CREATE TEMP TABLE drift_staged_embedding_keys (id bigint NOT NULL, created_at timestamptz NOT NULL)
                        ON COMMIT DELETE ROWS;
                END IF;
                IF to_regclass('pg_temp.drift_staged_flush') IS NULL THEN
                    CREATE TEMP TABLE drift_staged_flush (flush boolean) ON COMMIT DELETE ROWS;
                    CREATE CONSTRAINT TRIGGER drift_staged_flush AFTER INSERT ON pg_temp.drift_staged_flush
                        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION drift.flush_staged_embeddings();
                END IF;
                INSERT INTO pg_temp.drift_staged_flush VALUES (true);
                PERFORM set_config('drift.staging_xact', xact, true);
            END IF;
            INSERT INTO pg_temp.drift_staged_embedding_keys SELECT n.id, n.created_at FROM new_rows n;
            RETURN NULL;
        END IF;
    END IF;

    width := drift.setting('bucket_width')::interval;
    -- One pass over the statement's rows: aggregates and dimension bounds together.
    SELECT array_agg(a.model) AS models, array_agg(a.bucket) AS buckets, array_agg(a.n) AS ns,
           array_agg(a.vs) AS vs, array_agg(a.ss) AS ss, array_agg(a.lo) AS lo, array_agg(a.hi) AS hi
    INTO agg
    FROM (SELECT n.model, drift.bucket_of(n.created_at, width) AS bucket, count(*) AS n,
                 sum(n.embedding) AS vs, sum(n.embedding * n.embedding) AS ss,
                 min(vector_dims(n.embedding)) AS lo, max(vector_dims(n.embedding)) AS hi
          -- grouping by dimension too: mixed dimensions reach the clear error below instead of
          -- failing inside sum() with pgvector's "different vector dimensions"
          FROM new_rows n GROUP BY 1, 2, vector_dims(n.embedding)) a;
    checked := drift.check_embedding_models(agg.models, agg.lo, agg.hi);
    IF checked.bad_model IS NOT NULL THEN
        SELECT n.id, vector_dims(n.embedding) AS dims INTO bad FROM new_rows n
        WHERE n.model = checked.bad_model AND vector_dims(n.embedding) <> checked.model_dims ORDER BY n.id LIMIT 1;
        RAISE EXCEPTION 'embeddings_log row id=%: field embedding has % dimensions but model % uses %',
            bad.id, bad.dims, quote_literal(checked.bad_model), checked.model_dims
            USING ERRCODE = 'data_exception',
                  HINT = 'All embeddings of a model share one dimension; log another embedding model under another model name.';
    END IF;
    INSERT INTO drift.embedding_rollup_delta (model, bucket, n, vec_sum, sq_sum)
    SELECT * FROM unnest(agg.models, agg.buckets, agg.ns, agg.vs, agg.ss);
    PERFORM set_config('drift.embeddings_xact', xact, true);
    PERFORM set_config('drift.embeddings_checked', agg.models[1] || '|' || agg.lo[1], true);
    IF cardinality(checked.due) > 0 THEN
        PERFORM drift.evaluate_due(checked.due);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.embeddings_log_after_insert() IS 'Statement trigger on embeddings_log: checks dimensions, registers models, appends rollup deltas (or stages small statements until commit), evaluates due models.';
CREATE OR REPLACE TRIGGER embeddings_log_rollup AFTER INSERT ON drift.embeddings_log
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.embeddings_log_after_insert();

CREATE OR REPLACE FUNCTION drift.embeddings_log_immutable() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    RAISE EXCEPTION 'embeddings_log row id=%: model, created_at and embedding cannot be changed (the rollups already count them); delete and insert instead', OLD.id
        USING ERRCODE = 'object_not_in_prerequisite_state';
END $$;
COMMENT ON FUNCTION drift.embeddings_log_immutable() IS 'Rejects updates of the columns the embedding rollups are built from.';
CREATE OR REPLACE TRIGGER embeddings_log_immutable BEFORE UPDATE OF model, created_at, embedding ON drift.embeddings_log
    FOR EACH ROW EXECUTE FUNCTION drift.embeddings_log_immutable();

-- The interaction delta query, shared by the insert and the update trigger: `changes` is a row
-- source with a `sign` column (+1 new row, -1 old row), so a late label moves counts exactly.
CREATE OR REPLACE FUNCTION drift.interaction_delta_sql(p_changes text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
-- The one definition of every interaction counter: one expression per column of
-- drift.interaction_rollup, in its column order (compaction and the rollup readers follow the
-- table's columns). A group whose counters all cancel (a label update that changed nothing
-- counted) writes no delta.
SELECT format($q$
    INSERT INTO drift.interaction_rollup_delta
    SELECT d.* FROM (
    SELECT c.model, drift.bucket_of(c.created_at, $1) AS bucket,
        sum(c.sign),
        coalesce(sum(c.sign) FILTER (WHERE c.is_refusal IS NOT NULL), 0),
        coalesce(sum(c.sign) FILTER (WHERE c.is_refusal), 0),
        coalesce(sum(c.sign) FILTER (WHERE c.toxicity IS NOT NULL), 0),
        coalesce(sum(c.sign) FILTER (WHERE c.toxicity >= $2), 0),
        coalesce(sum(c.sign * c.toxicity), 0),
        coalesce(sum(c.sign) FILTER (WHERE c.feedback IN (-1, 1)), 0),
        coalesce(sum(c.sign) FILTER (WHERE c.feedback = 1), 0),
        coalesce(sum(c.sign) FILTER (WHERE c.correct IS NOT NULL), 0),
        coalesce(sum(c.sign) FILTER (WHERE c.correct), 0),
        coalesce(sum(c.sign) FILTER (WHERE c.correct IS NOT NULL OR c.feedback IN (-1, 1)), 0),
        coalesce(sum(c.sign) FILTER (WHERE c.correct OR (c.correct IS NULL AND c.feedback = 1)), 0),
        coalesce(sum(c.sign * c.latency_ms), 0),
        coalesce(sum(c.sign) FILTER (WHERE c.latency_ms IS NOT NULL), 0)
    FROM (%s) c
    GROUP BY 1, 2
    ) d
    -- json, not jsonb: the counter columns are unnamed and json keeps every one of them
    WHERE EXISTS (SELECT 1 FROM json_each_text(to_json(d)) x WHERE x.key NOT IN ('model', 'bucket') AND x.value::float8 <> 0)
$q$, p_changes)
$$;
COMMENT ON FUNCTION drift.interaction_delta_sql(text) IS 'SQL text of the interaction rollup delta insert over a signed change set (internal).';

CREATE OR REPLACE FUNCTION drift.interaction_log_after_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    width interval := drift.setting('bucket_width')::interval;
    toxic_at real := drift.setting('toxic_at')::real;
    stmt record;
    m drift.models;
    due text[] := '{}';
BEGIN
    FOR stmt IN SELECT DISTINCT n.model FROM new_rows n LOOP
        m := drift.register_model(stmt.model);
        IF NOT m.interactions_seen THEN
            UPDATE drift.models SET interactions_seen = true WHERE model = stmt.model AND NOT interactions_seen;
        END IF;
        -- Only new interactions make a model due; late labels wait for the next evaluation.
        IF TG_OP = 'INSERT' AND m.auto_evaluate AND m.next_evaluation_at <= clock_timestamp() THEN
            due := due || stmt.model;
        END IF;
    END LOOP;
    IF TG_OP = 'INSERT' THEN
        EXECUTE drift.interaction_delta_sql('SELECT 1 AS sign, n.* FROM new_rows n') USING width, toxic_at;
    ELSE
        EXECUTE drift.interaction_delta_sql(
            'SELECT 1 AS sign, n.* FROM new_rows n UNION ALL SELECT -1 AS sign, o.* FROM old_rows o')
            USING width, toxic_at;
    END IF;
    IF cardinality(due) > 0 THEN
        PERFORM drift.evaluate_due(due);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.interaction_log_after_change() IS 'Statement trigger on interaction_log: registers models, appends signed rollup deltas for inserts and for late feedback/labels, evaluates due models.';
CREATE OR REPLACE TRIGGER interaction_log_rollup_insert AFTER INSERT ON drift.interaction_log
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.interaction_log_after_change();
CREATE OR REPLACE TRIGGER interaction_log_rollup_update AFTER UPDATE ON drift.interaction_log
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.interaction_log_after_change();

CREATE OR REPLACE FUNCTION drift.interaction_log_stamp_label() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NEW.labelled_at := now();
    RETURN NEW;
END $$;
COMMENT ON FUNCTION drift.interaction_log_stamp_label() IS 'Stamps labelled_at when feedback or a label arrives after the interaction was logged.';
CREATE OR REPLACE TRIGGER interaction_log_stamp_label BEFORE UPDATE ON drift.interaction_log
    FOR EACH ROW WHEN (OLD.feedback IS DISTINCT FROM NEW.feedback OR OLD.correct IS DISTINCT FROM NEW.correct)
    EXECUTE FUNCTION drift.interaction_log_stamp_label();

-- ---------------------------------------------------------------------------------------------
-- Idempotency keys (drift.idempotency_keys): scoped per model; a replay with the same payload
-- writes nothing, the same key with another payload is refused. Row triggers named *_dedup
-- fire before interaction_log_fill_refusal, so the payload is what the client sent.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.claim_idempotency_key(p_model text, p_log text, p_key text, p_row_id bigint,
    p_hash bytea) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    prior drift.idempotency_keys;
BEGIN
    IF p_key = '' THEN
        RAISE EXCEPTION '%_log: idempotency_key must not be empty (NULL for no key)', p_log
            USING ERRCODE = 'check_violation', COLUMN = 'idempotency_key';
    END IF;
    -- Twice at most: the prior row can vanish between the two statements (pruned concurrently).
    FOR attempt IN 1 .. 2 LOOP
        -- A concurrent transaction with the same key makes this wait for its outcome.
        INSERT INTO drift.idempotency_keys (model, log, key, row_id, payload_hash)
        VALUES (p_model, p_log, p_key, p_row_id, p_hash)
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            RETURN NULL;
        END IF;
        SELECT * INTO prior FROM drift.idempotency_keys k WHERE k.model = p_model AND k.log = p_log AND k.key = p_key;
        IF FOUND THEN
            RETURN prior.row_id;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'idempotency key % of model % could not be claimed', quote_literal(p_key), quote_literal(p_model)
        USING ERRCODE = 'serialization_failure';
END $$;
COMMENT ON FUNCTION drift.claim_idempotency_key(text, text, text, bigint, bytea) IS 'Records a new (model, log, key) and returns NULL, or returns the row id the key was first written with (internal, for the dedup triggers).';

CREATE OR REPLACE FUNCTION drift.idempotency_conflict(p_log text, p_model text, p_key text, p_row_id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    RAISE EXCEPTION '%_log: idempotency key % of model % was already used with another payload',
        CASE p_log WHEN 'interaction' THEN 'interaction' ELSE 'embeddings' END, quote_literal(p_key), quote_literal(p_model)
        USING ERRCODE = 'unique_violation', CONSTRAINT = 'idempotency_keys_pkey', COLUMN = 'idempotency_key',
              DETAIL = format('Key (model, key)=(%s, %s) was logged before as row %s with a different payload.',
                              p_model, p_key, p_row_id),
              HINT = 'A replay must send the same fields as the first request; a new interaction needs a new key.';
END $$;
COMMENT ON FUNCTION drift.idempotency_conflict(text, text, text, bigint) IS 'Raises the error for a key replayed with another payload (internal).';

CREATE OR REPLACE FUNCTION drift.interaction_log_dedup() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    -- The payload: every column a client sends except id and created_at (a retry's clock).
    h bytea := sha256(convert_to(ROW(NEW.model_version, NEW.prompt, NEW.response, NEW.is_refusal, NEW.toxicity,
        NEW.feedback, NEW.correct, NEW.latency_ms, NEW.metadata)::text, 'UTF8'));
    prior_id bigint;
    prior_hash bytea;
    same boolean;
BEGIN
    prior_id := drift.claim_idempotency_key(NEW.model, 'interaction', NEW.idempotency_key, NEW.id, h);
    IF prior_id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT k.payload_hash INTO prior_hash FROM drift.idempotency_keys k
    WHERE k.model = NEW.model AND k.log = 'interaction' AND k.key = NEW.idempotency_key;
    IF prior_hash IS NOT NULL THEN
        same := prior_hash = h;
    ELSE
        -- A key from before payload hashes: compare the columns no late label can have changed.
        SELECT (l.model_version, l.prompt, l.response, l.toxicity, l.latency_ms, l.metadata)
               IS NOT DISTINCT FROM (NEW.model_version, NEW.prompt, NEW.response, NEW.toxicity, NEW.latency_ms, NEW.metadata)
        INTO same FROM drift.interaction_log l WHERE l.id = prior_id;
    END IF;
    IF coalesce(same, false) THEN
        RETURN NULL;  -- a replay: nothing is written
    END IF;
    PERFORM drift.idempotency_conflict('interaction', NEW.model, NEW.idempotency_key, prior_id);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.interaction_log_dedup() IS 'Idempotency of interaction_log inserts with a key: a replay of the same payload is skipped, another payload is an error (unique_violation on idempotency_keys_pkey).';
CREATE OR REPLACE TRIGGER interaction_log_dedup BEFORE INSERT ON drift.interaction_log
    FOR EACH ROW WHEN (NEW.idempotency_key IS NOT NULL)
    EXECUTE FUNCTION drift.interaction_log_dedup();

CREATE OR REPLACE FUNCTION drift.embeddings_log_dedup() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    h bytea := sha256(convert_to(coalesce(NEW.interaction_id::text, ''), 'UTF8') || '\x00'::bytea
                      || vector_send(NEW.embedding));
    prior_id bigint;
BEGIN
    prior_id := drift.claim_idempotency_key(NEW.model, 'embedding', NEW.idempotency_key, NEW.id, h);
    IF prior_id IS NULL THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM drift.idempotency_keys k WHERE k.model = NEW.model AND k.log = 'embedding'
               AND k.key = NEW.idempotency_key AND k.payload_hash = h) THEN
        RETURN NULL;  -- a replay: nothing is written
    END IF;
    PERFORM drift.idempotency_conflict('embedding', NEW.model, NEW.idempotency_key, prior_id);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.embeddings_log_dedup() IS 'Idempotency of embeddings_log inserts with a key: a replay of the same payload is skipped, another payload is an error (unique_violation on idempotency_keys_pkey).';
CREATE OR REPLACE TRIGGER embeddings_log_dedup BEFORE INSERT ON drift.embeddings_log
    FOR EACH ROW WHEN (NEW.idempotency_key IS NOT NULL)
    EXECUTE FUNCTION drift.embeddings_log_dedup();

CREATE OR REPLACE FUNCTION drift.prune_ingest_keys(p_before timestamptz) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    keys bigint;
    batches bigint;
BEGIN
    DELETE FROM drift.idempotency_keys WHERE created_at < p_before;
    GET DIAGNOSTICS keys = ROW_COUNT;
    DELETE FROM drift.ingest_batches WHERE created_at < p_before;
    GET DIAGNOSTICS batches = ROW_COUNT;
    RETURN keys + batches;
END $$;
COMMENT ON FUNCTION drift.prune_ingest_keys(timestamptz) IS 'Forgets idempotency keys and SDK batch keys first used before p_before (with the log partitions they point into); returns the rows deleted. A replay after that is written again.';

-- ---------------------------------------------------------------------------------------------
-- Refusal patterns are checked when written: one invalid regex would fail every insert.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.refusal_patterns_validate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF length(NEW.pattern) > 1000 THEN
        RAISE EXCEPTION 'refusal pattern is % characters long; the limit is 1000', length(NEW.pattern)
            USING ERRCODE = 'invalid_regular_expression';
    END IF;
    BEGIN
        PERFORM '' ~* NEW.pattern;
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'refusal pattern % is not a valid regular expression: %', quote_literal(NEW.pattern), SQLERRM
            USING ERRCODE = 'invalid_regular_expression',
                  HINT = 'Patterns are POSIX regular expressions (ARE), matched case-insensitively with ~*.';
    END;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION drift.refusal_patterns_validate() IS 'Refuses a refusal pattern that is not a valid regular expression (or longer than 1000 characters).';
CREATE OR REPLACE TRIGGER refusal_patterns_validate BEFORE INSERT OR UPDATE OF pattern ON drift.refusal_patterns
    FOR EACH ROW EXECUTE FUNCTION drift.refusal_patterns_validate();
