-- driftloop drift engine: logs, incremental rollups, baselines, drift views, evaluate() and events.
--
-- Design in one paragraph: the log tables are append-only. Statement-level AFTER INSERT
-- triggers aggregate each statement's transition table into small *delta* rows per (model,
-- time bucket); they never update a shared row, so concurrent writers never wait on each
-- other and many single-row statements in one transaction never grow an update chain.
-- drift.compact_rollups() folds deltas into one rollup row per (model, bucket). Every drift
-- statistic is computed from rollups (+ pending deltas) and from baselines frozen by
-- drift.set_baseline(), so evaluating costs the same with a thousand or a billion rows logged.
-- All functions pin search_path so they behave the same on Supabase (pgvector in schema
-- `extensions`) and on a plain server (pgvector in `public`).

CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS drift;
COMMENT ON SCHEMA drift IS 'driftloop: drift detection (embedding, behavior, accuracy) and the events a worker acts on.';

-- ---------------------------------------------------------------------------------------------
-- Settings
-- ---------------------------------------------------------------------------------------------
CREATE TABLE drift.settings (
    key text PRIMARY KEY,
    value text NOT NULL,
    description text
);
COMMENT ON TABLE drift.settings IS 'Engine settings, changeable with SQL (UPDATE drift.settings SET value = ... WHERE key = ...). Values are validated on write.';
COMMENT ON COLUMN drift.settings.key IS 'Setting name, e.g. current_window or refusal_rate_threshold.';
COMMENT ON COLUMN drift.settings.value IS 'Setting value as text: an interval, a number or a boolean depending on the key.';
COMMENT ON COLUMN drift.settings.description IS 'What the setting does.';

INSERT INTO drift.settings (key, value, description) VALUES
    ('current_window', '1 hour', 'Length of the current window compared with the baseline: [as_of - current_window, as_of), rounded down to whole buckets.'),
    ('min_samples', '100', 'Minimum rows in the current window and in the baseline before a metric may report drift.'),
    ('alpha', '0.01', 'Significance level of the statistical tests: a metric drifts only when its p-value is below alpha.'),
    ('embedding_drift_threshold', '0.15', 'Centroid cosine distance above which embeddings count as drifted (EMBEDDING_DRIFT_THRESHOLD).'),
    ('refusal_rate_threshold', '0.05', 'Refusal rate above which behavior counts as drifted (REFUSAL_RATE_THRESHOLD).'),
    ('toxicity_rate_threshold', '0.02', 'Share of toxic responses above which behavior counts as drifted (TOXICITY_RATE_THRESHOLD).'),
    ('accuracy_drop_threshold', '0.05', 'Drop of accuracy below the baseline above which accuracy counts as drifted (ACCURACY_DROP_THRESHOLD).'),
    ('toxic_at', '0.5', 'A response is toxic when its toxicity score is at least this value. Applied when rows are logged.'),
    ('bucket_width', '1 minute', 'Width of the rollup time buckets. Change it only on an empty database.'),
    ('evaluate_interval', '1 minute', 'The log triggers evaluate a model at most once per this interval (0 disables trigger evaluation).'),
    ('cooldown', '1 hour', 'After an event is resolved or failed, no new event for the same model and metric until the evaluation clock has moved this far.'),
    ('auto_baseline', '1 day', 'A model without a baseline gets its first auto_baseline of data as baseline once that much has been logged (0 disables).')
ON CONFLICT (key) DO NOTHING;

CREATE FUNCTION drift.setting(p_key text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$ SELECT value FROM drift.settings WHERE key = p_key $$;
COMMENT ON FUNCTION drift.setting(text) IS 'The value of one drift.settings key as text (NULL when unknown).';

CREATE FUNCTION drift.settings_validate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    num double precision;
BEGIN
    BEGIN
        CASE NEW.key
            WHEN 'current_window', 'bucket_width', 'evaluate_interval', 'cooldown', 'auto_baseline' THEN
                IF NEW.value::interval < interval '0' THEN
                    RAISE EXCEPTION 'must not be negative';
                END IF;
                IF NEW.key IN ('current_window', 'bucket_width') AND NEW.value::interval <= interval '0' THEN
                    RAISE EXCEPTION 'must be positive';
                END IF;
            WHEN 'min_samples' THEN
                IF NEW.value::integer < 1 THEN RAISE EXCEPTION 'must be at least 1'; END IF;
            WHEN 'alpha', 'embedding_drift_threshold', 'refusal_rate_threshold', 'toxicity_rate_threshold',
                 'accuracy_drop_threshold', 'toxic_at' THEN
                num := NEW.value::double precision;
                IF NOT (num >= 0 AND num <= 1) THEN RAISE EXCEPTION 'must be between 0 and 1'; END IF;
            ELSE
                NULL;  -- unknown keys are the user's own
        END CASE;
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'invalid value % for drift setting %: %', quote_literal(NEW.value), NEW.key, SQLERRM
            USING ERRCODE = 'invalid_parameter_value';
    END;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION drift.settings_validate() IS 'Rejects settings values of the wrong type or range with a clear error.';
CREATE TRIGGER settings_validate BEFORE INSERT OR UPDATE ON drift.settings
    FOR EACH ROW EXECUTE FUNCTION drift.settings_validate();

-- ---------------------------------------------------------------------------------------------
-- Models and logs
-- ---------------------------------------------------------------------------------------------
CREATE TABLE drift.models (
    model text PRIMARY KEY,
    embedding_dims integer CHECK (embedding_dims BETWEEN 1 AND 16000),
    interactions_seen boolean NOT NULL DEFAULT false,
    auto_evaluate boolean NOT NULL DEFAULT true,
    next_evaluation_at timestamptz NOT NULL DEFAULT '-infinity',
    last_evaluated_as_of timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE drift.models IS 'One row per model seen in the logs; registered by the log triggers.';
COMMENT ON COLUMN drift.models.model IS 'Model name as logged.';
COMMENT ON COLUMN drift.models.embedding_dims IS 'Dimension of this model''s embeddings, fixed by its first embedding; other dimensions are rejected.';
COMMENT ON COLUMN drift.models.interactions_seen IS 'Whether interactions were ever logged for this model (behavior and accuracy rows appear in the drift views).';
COMMENT ON COLUMN drift.models.auto_evaluate IS 'When true the log triggers evaluate this model (at most once per evaluate_interval). Simulations replaying past time set it false and call drift.evaluate(as_of).';
COMMENT ON COLUMN drift.models.next_evaluation_at IS 'Wall-clock time before which the log triggers do not evaluate this model again.';
COMMENT ON COLUMN drift.models.last_evaluated_as_of IS 'The latest as_of this model was evaluated at (the evaluation clock, used for cooldowns).';
COMMENT ON COLUMN drift.models.created_at IS 'When the model was first seen.';

CREATE TABLE drift.interaction_log (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    model text NOT NULL CHECK (model <> '' AND length(model) <= 200),
    model_version text,
    prompt text,
    response text,
    is_refusal boolean,
    toxicity real CHECK (toxicity >= 0 AND toxicity <= 1),
    feedback smallint CHECK (feedback IN (-1, 0, 1)),
    correct boolean,
    latency_ms real CHECK (latency_ms >= 0 AND latency_ms < 'Infinity'),
    metadata jsonb,
    idempotency_key text UNIQUE CHECK (length(idempotency_key) <= 200),
    labelled_at timestamptz
);
CREATE INDEX interaction_log_model_created_at ON drift.interaction_log (model, created_at);
COMMENT ON TABLE drift.interaction_log IS 'One row per model call: prompt, response and the signals behavior and accuracy drift are computed from. Append-only except for late feedback and labels (UPDATE of feedback/correct), which the rollups follow.';
COMMENT ON COLUMN drift.interaction_log.id IS 'Interaction id.';
COMMENT ON COLUMN drift.interaction_log.created_at IS 'When the interaction happened. Every window (including accuracy, for late labels) follows this time, not label arrival.';
COMMENT ON COLUMN drift.interaction_log.model IS 'Model (or application) name.';
COMMENT ON COLUMN drift.interaction_log.model_version IS 'Version of the model that answered.';
COMMENT ON COLUMN drift.interaction_log.prompt IS 'The user''s prompt.';
COMMENT ON COLUMN drift.interaction_log.response IS 'The model''s response.';
COMMENT ON COLUMN drift.interaction_log.is_refusal IS 'Whether the model refused. When NULL on insert it is filled from drift.refusal_patterns matched against the response.';
COMMENT ON COLUMN drift.interaction_log.toxicity IS 'Toxicity score 0..1 from the app or a scorer; toxic at >= the toxic_at setting.';
COMMENT ON COLUMN drift.interaction_log.feedback IS 'User feedback: -1 negative, 0 neutral, 1 positive.';
COMMENT ON COLUMN drift.interaction_log.correct IS 'Ground-truth label: whether the answer was correct (may arrive late by UPDATE).';
COMMENT ON COLUMN drift.interaction_log.latency_ms IS 'Response latency in milliseconds.';
COMMENT ON COLUMN drift.interaction_log.metadata IS 'Free-form JSON from the app.';
COMMENT ON COLUMN drift.interaction_log.idempotency_key IS 'Client-chosen key that makes a retried insert a no-op (used by the ingestion edge function).';
COMMENT ON COLUMN drift.interaction_log.labelled_at IS 'When feedback or a label last arrived by UPDATE.';

CREATE TABLE drift.embeddings_log (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    model text NOT NULL CHECK (model <> '' AND length(model) <= 200),
    interaction_id bigint,
    embedding vector NOT NULL
);
CREATE INDEX embeddings_log_model_created_at ON drift.embeddings_log (model, created_at);
COMMENT ON TABLE drift.embeddings_log IS 'Embeddings of user queries (or documents) per model; embedding drift is computed from their rollups. Append-only.';
COMMENT ON COLUMN drift.embeddings_log.id IS 'Embedding row id.';
COMMENT ON COLUMN drift.embeddings_log.created_at IS 'When the embedded query happened.';
COMMENT ON COLUMN drift.embeddings_log.model IS 'Model (or application) name; all its embeddings share one dimension.';
COMMENT ON COLUMN drift.embeddings_log.interaction_id IS 'The drift.interaction_log row this embedding belongs to, if any (no foreign key, so old logs can be dropped independently).';
COMMENT ON COLUMN drift.embeddings_log.embedding IS 'The embedding (pgvector). NaN and infinity are rejected by pgvector; a dimension other than the model''s is rejected by a trigger.';

CREATE TABLE drift.refusal_patterns (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    pattern text NOT NULL UNIQUE,
    enabled boolean NOT NULL DEFAULT true,
    description text
);
COMMENT ON TABLE drift.refusal_patterns IS 'Case-insensitive regular expressions that mark a response as a refusal when the app sends no is_refusal. Add your own rows.';
COMMENT ON COLUMN drift.refusal_patterns.id IS 'Pattern id.';
COMMENT ON COLUMN drift.refusal_patterns.pattern IS 'POSIX regular expression matched case-insensitively (~*) against the response.';
COMMENT ON COLUMN drift.refusal_patterns.enabled IS 'Disabled patterns are ignored.';
COMMENT ON COLUMN drift.refusal_patterns.description IS 'Why the pattern is there.';
INSERT INTO drift.refusal_patterns (pattern, description) VALUES
    ('\mI(''m| am) (sorry|afraid),? (but )?I (can(''|no)t|cannot|won''t|am unable|''m unable|am not able)', 'apology followed by a refusal'),
    ('\mI (can(''|no)t|cannot|won''t|will not) (help|assist|provide|do|comply|answer|share|create|write)', 'direct refusal'),
    ('\mI(''m| am) (unable|not able) to (help|assist|provide|comply|answer|do)', 'inability'),
    ('\mas an AI( language model)?,? I (can(''|no)t|cannot|don''t|do not)', 'as-an-AI refusal'),
    ('\m(this|that) (request )?(goes against|violates) (my|our) (guidelines|policies|policy)', 'policy refusal')
ON CONFLICT (pattern) DO NOTHING;

CREATE FUNCTION drift.refusal_matches(p_response text) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT EXISTS (SELECT 1 FROM drift.refusal_patterns p WHERE p.enabled AND p_response ~* p.pattern)
$$;
COMMENT ON FUNCTION drift.refusal_matches(text) IS 'Whether a response matches any enabled refusal pattern.';

CREATE FUNCTION drift.fill_refusal() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NEW.is_refusal := drift.refusal_matches(NEW.response);
    RETURN NEW;
END $$;
COMMENT ON FUNCTION drift.fill_refusal() IS 'Fills interaction_log.is_refusal from drift.refusal_patterns when the app sent none.';
CREATE TRIGGER interaction_log_fill_refusal BEFORE INSERT ON drift.interaction_log
    FOR EACH ROW WHEN (NEW.is_refusal IS NULL AND NEW.response IS NOT NULL)
    EXECUTE FUNCTION drift.fill_refusal();

-- ---------------------------------------------------------------------------------------------
-- Rollups: per (model, bucket) aggregates; deltas are appended by triggers, compacted later.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE drift.embedding_rollup (
    model text NOT NULL,
    bucket timestamptz NOT NULL,
    n bigint NOT NULL,
    vec_sum vector NOT NULL,
    sq_sum vector NOT NULL,
    PRIMARY KEY (model, bucket)
);
COMMENT ON TABLE drift.embedding_rollup IS 'Compacted embedding aggregates per model and time bucket.';
COMMENT ON COLUMN drift.embedding_rollup.model IS 'Model name.';
COMMENT ON COLUMN drift.embedding_rollup.bucket IS 'Start of the time bucket (date_bin of created_at by the bucket_width setting).';
COMMENT ON COLUMN drift.embedding_rollup.n IS 'Number of embeddings in the bucket.';
COMMENT ON COLUMN drift.embedding_rollup.vec_sum IS 'Element-wise sum of the embeddings.';
COMMENT ON COLUMN drift.embedding_rollup.sq_sum IS 'Element-wise sum of the squared embeddings.';

CREATE TABLE drift.embedding_rollup_delta (
    model text NOT NULL,
    bucket timestamptz NOT NULL,
    n bigint NOT NULL,
    vec_sum vector NOT NULL,
    sq_sum vector NOT NULL
);
CREATE INDEX embedding_rollup_delta_model_bucket ON drift.embedding_rollup_delta (model, bucket);
COMMENT ON TABLE drift.embedding_rollup_delta IS 'Embedding aggregates appended by the insert trigger, one row per statement, model and bucket; folded into embedding_rollup by drift.compact_rollups(). Append-only so concurrent writers never contend.';
COMMENT ON COLUMN drift.embedding_rollup_delta.model IS 'Model name.';
COMMENT ON COLUMN drift.embedding_rollup_delta.bucket IS 'Start of the time bucket.';
COMMENT ON COLUMN drift.embedding_rollup_delta.n IS 'Number of embeddings.';
COMMENT ON COLUMN drift.embedding_rollup_delta.vec_sum IS 'Element-wise sum of the embeddings.';
COMMENT ON COLUMN drift.embedding_rollup_delta.sq_sum IS 'Element-wise sum of the squared embeddings.';

CREATE TABLE drift.interaction_rollup (
    model text NOT NULL,
    bucket timestamptz NOT NULL,
    interactions bigint NOT NULL DEFAULT 0,
    refusal_known bigint NOT NULL DEFAULT 0,
    refusals bigint NOT NULL DEFAULT 0,
    toxicity_scored bigint NOT NULL DEFAULT 0,
    toxic bigint NOT NULL DEFAULT 0,
    toxicity_sum double precision NOT NULL DEFAULT 0,
    feedback_given bigint NOT NULL DEFAULT 0,
    feedback_positive bigint NOT NULL DEFAULT 0,
    labelled bigint NOT NULL DEFAULT 0,
    correct bigint NOT NULL DEFAULT 0,
    quality_n bigint NOT NULL DEFAULT 0,
    quality_ok bigint NOT NULL DEFAULT 0,
    latency_sum double precision NOT NULL DEFAULT 0,
    latency_n bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (model, bucket)
);
COMMENT ON TABLE drift.interaction_rollup IS 'Compacted interaction counts per model and time bucket (by interaction time; late labels adjust the bucket of their interaction).';
COMMENT ON COLUMN drift.interaction_rollup.model IS 'Model name.';
COMMENT ON COLUMN drift.interaction_rollup.bucket IS 'Start of the time bucket.';
COMMENT ON COLUMN drift.interaction_rollup.interactions IS 'Interactions logged.';
COMMENT ON COLUMN drift.interaction_rollup.refusal_known IS 'Interactions whose is_refusal is known (sent or filled from patterns).';
COMMENT ON COLUMN drift.interaction_rollup.refusals IS 'Interactions with is_refusal = true.';
COMMENT ON COLUMN drift.interaction_rollup.toxicity_scored IS 'Interactions with a toxicity score.';
COMMENT ON COLUMN drift.interaction_rollup.toxic IS 'Interactions with toxicity >= toxic_at (at the time they were logged).';
COMMENT ON COLUMN drift.interaction_rollup.toxicity_sum IS 'Sum of toxicity scores.';
COMMENT ON COLUMN drift.interaction_rollup.feedback_given IS 'Interactions with feedback -1 or 1.';
COMMENT ON COLUMN drift.interaction_rollup.feedback_positive IS 'Interactions with feedback 1.';
COMMENT ON COLUMN drift.interaction_rollup.labelled IS 'Interactions with a label (correct is not NULL).';
COMMENT ON COLUMN drift.interaction_rollup.correct IS 'Interactions with correct = true.';
COMMENT ON COLUMN drift.interaction_rollup.quality_n IS 'Interactions with a quality signal: a label, else feedback -1/1.';
COMMENT ON COLUMN drift.interaction_rollup.quality_ok IS 'Of those, correct (label) or positive (feedback where no label). Accuracy = quality_ok / quality_n.';
COMMENT ON COLUMN drift.interaction_rollup.latency_sum IS 'Sum of latency_ms.';
COMMENT ON COLUMN drift.interaction_rollup.latency_n IS 'Interactions with a latency.';

CREATE TABLE drift.interaction_rollup_delta (LIKE drift.interaction_rollup INCLUDING DEFAULTS);
CREATE INDEX interaction_rollup_delta_model_bucket ON drift.interaction_rollup_delta (model, bucket);
COMMENT ON TABLE drift.interaction_rollup_delta IS 'Interaction count deltas appended by the insert and label-update triggers; folded into interaction_rollup by drift.compact_rollups().';
COMMENT ON COLUMN drift.interaction_rollup_delta.model IS 'Model name.';
COMMENT ON COLUMN drift.interaction_rollup_delta.bucket IS 'Start of the time bucket.';
COMMENT ON COLUMN drift.interaction_rollup_delta.interactions IS 'See drift.interaction_rollup.';
COMMENT ON COLUMN drift.interaction_rollup_delta.refusal_known IS 'See drift.interaction_rollup.';
COMMENT ON COLUMN drift.interaction_rollup_delta.refusals IS 'See drift.interaction_rollup.';
COMMENT ON COLUMN drift.interaction_rollup_delta.toxicity_scored IS 'See drift.interaction_rollup.';
COMMENT ON COLUMN drift.interaction_rollup_delta.toxic IS 'See drift.interaction_rollup.';
COMMENT ON COLUMN drift.interaction_rollup_delta.toxicity_sum IS 'See drift.interaction_rollup.';
COMMENT ON COLUMN drift.interaction_rollup_delta.feedback_given IS 'See drift.interaction_rollup.';
COMMENT ON COLUMN drift.interaction_rollup_delta.feedback_positive IS 'See drift.interaction_rollup.';
COMMENT ON COLUMN drift.interaction_rollup_delta.labelled IS 'See drift.interaction_rollup.';
COMMENT ON COLUMN drift.interaction_rollup_delta.correct IS 'See drift.interaction_rollup.';
COMMENT ON COLUMN drift.interaction_rollup_delta.quality_n IS 'See drift.interaction_rollup.';
COMMENT ON COLUMN drift.interaction_rollup_delta.quality_ok IS 'See drift.interaction_rollup.';
COMMENT ON COLUMN drift.interaction_rollup_delta.latency_sum IS 'See drift.interaction_rollup.';
COMMENT ON COLUMN drift.interaction_rollup_delta.latency_n IS 'See drift.interaction_rollup.';

-- No SET search_path here: it would stop the planner from inlining this per-row call
-- (date_bin lives in pg_catalog, which is always searched first).
CREATE FUNCTION drift.bucket_of(p_at timestamptz, p_width interval) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.date_bin(p_width, p_at, timestamptz '2000-01-01 00:00:00+00') $$;
COMMENT ON FUNCTION drift.bucket_of(timestamptz, interval) IS 'Start of the rollup bucket holding a timestamp.';

-- ---------------------------------------------------------------------------------------------
-- Baselines: frozen aggregates of a reference window per model and drift kind.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE drift.baselines (
    model text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('embedding', 'behavior', 'accuracy')),
    starts timestamptz NOT NULL,
    ends timestamptz NOT NULL CHECK (ends > starts),
    set_at timestamptz NOT NULL DEFAULT now(),
    source text NOT NULL DEFAULT 'manual',
    n bigint NOT NULL DEFAULT 0,
    vec_sum vector,
    sq_sum vector,
    refusal_known bigint NOT NULL DEFAULT 0,
    refusals bigint NOT NULL DEFAULT 0,
    toxicity_scored bigint NOT NULL DEFAULT 0,
    toxic bigint NOT NULL DEFAULT 0,
    quality_n bigint NOT NULL DEFAULT 0,
    quality_ok bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (model, kind)
);
COMMENT ON TABLE drift.baselines IS 'The reference window of each model and drift kind, with its aggregates frozen when set (drift.set_baseline); the current window is compared with it.';
COMMENT ON COLUMN drift.baselines.model IS 'Model name.';
COMMENT ON COLUMN drift.baselines.kind IS 'embedding, behavior or accuracy.';
COMMENT ON COLUMN drift.baselines.starts IS 'Start of the reference window (inclusive).';
COMMENT ON COLUMN drift.baselines.ends IS 'End of the reference window (exclusive).';
COMMENT ON COLUMN drift.baselines.set_at IS 'When the baseline was set.';
COMMENT ON COLUMN drift.baselines.source IS 'manual, auto (first auto_baseline of data) or the action that moved it.';
COMMENT ON COLUMN drift.baselines.n IS 'Rows in the window: embeddings for kind embedding, interactions otherwise.';
COMMENT ON COLUMN drift.baselines.vec_sum IS 'Element-wise sum of the window''s embeddings (kind embedding).';
COMMENT ON COLUMN drift.baselines.sq_sum IS 'Element-wise sum of squares of the window''s embeddings (kind embedding).';
COMMENT ON COLUMN drift.baselines.refusal_known IS 'Interactions with known is_refusal (kind behavior).';
COMMENT ON COLUMN drift.baselines.refusals IS 'Refusals (kind behavior).';
COMMENT ON COLUMN drift.baselines.toxicity_scored IS 'Interactions with a toxicity score (kind behavior).';
COMMENT ON COLUMN drift.baselines.toxic IS 'Toxic interactions (kind behavior).';
COMMENT ON COLUMN drift.baselines.quality_n IS 'Interactions with a label or feedback (kind accuracy).';
COMMENT ON COLUMN drift.baselines.quality_ok IS 'Correct or positively rated of those (kind accuracy).';

-- ---------------------------------------------------------------------------------------------
-- Events and model versions
-- ---------------------------------------------------------------------------------------------
CREATE TABLE drift.drift_events (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    model text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('embedding', 'behavior', 'accuracy')),
    metric text NOT NULL,
    score double precision,
    threshold double precision,
    p_value double precision,
    window_start timestamptz,
    window_end timestamptz,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'resolved', 'failed')),
    details jsonb NOT NULL DEFAULT '{}',
    closed_at timestamptz,
    closed_as_of timestamptz
);
CREATE UNIQUE INDEX drift_events_one_open ON drift.drift_events (model, kind, metric)
    WHERE status IN ('pending', 'running');
CREATE INDEX drift_events_model_metric_closed ON drift.drift_events (model, kind, metric, closed_as_of DESC)
    WHERE closed_as_of IS NOT NULL;
COMMENT ON TABLE drift.drift_events IS 'One row per detected drift; the worker claims pending events and runs the corrective actions. At most one open (pending/running) event per model, kind and metric.';
COMMENT ON COLUMN drift.drift_events.id IS 'Event id (also the pg_notify payload on channel drift_events).';
COMMENT ON COLUMN drift.drift_events.created_at IS 'When the event was raised (wall clock).';
COMMENT ON COLUMN drift.drift_events.model IS 'Model name.';
COMMENT ON COLUMN drift.drift_events.kind IS 'embedding, behavior or accuracy.';
COMMENT ON COLUMN drift.drift_events.metric IS 'centroid_distance, refusal_rate, toxicity_rate or accuracy.';
COMMENT ON COLUMN drift.drift_events.score IS 'The metric''s score at detection (see the drift views).';
COMMENT ON COLUMN drift.drift_events.threshold IS 'The threshold the score was compared with.';
COMMENT ON COLUMN drift.drift_events.p_value IS 'p-value of the statistical test at detection.';
COMMENT ON COLUMN drift.drift_events.window_start IS 'Start of the current window that drifted.';
COMMENT ON COLUMN drift.drift_events.window_end IS 'End of the current window that drifted (the evaluation time, rounded to buckets).';
COMMENT ON COLUMN drift.drift_events.status IS 'pending, running (claimed by a worker), resolved or failed (dead letter).';
COMMENT ON COLUMN drift.drift_events.details IS 'Current and baseline values, sample sizes, the test used and alpha.';
COMMENT ON COLUMN drift.drift_events.closed_at IS 'When the event became resolved or failed (wall clock).';
COMMENT ON COLUMN drift.drift_events.closed_as_of IS 'The model''s evaluation clock when the event closed; the cooldown counts from here.';

CREATE FUNCTION drift.drift_events_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('drift_events', n.id::text) FROM new_events n ORDER BY n.id;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.drift_events_notify() IS 'Notifies channel drift_events with the id of every new event (delivered at commit).';
CREATE TRIGGER drift_events_notify AFTER INSERT ON drift.drift_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION drift.drift_events_notify();

CREATE FUNCTION drift.drift_events_stamp_close() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF NEW.status IN ('resolved', 'failed') AND OLD.status NOT IN ('resolved', 'failed') THEN
        NEW.closed_at := now();
        NEW.closed_as_of := coalesce(
            (SELECT greatest(m.last_evaluated_as_of, NEW.window_end) FROM drift.models m WHERE m.model = NEW.model),
            NEW.window_end, now());
    ELSIF NEW.status IN ('pending', 'running') THEN
        NEW.closed_at := NULL;
        NEW.closed_as_of := NULL;
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION drift.drift_events_stamp_close() IS 'Stamps closed_at and closed_as_of when an event is resolved or failed; clears them when it is re-queued.';
CREATE TRIGGER drift_events_stamp_close BEFORE UPDATE OF status ON drift.drift_events
    FOR EACH ROW EXECUTE FUNCTION drift.drift_events_stamp_close();

CREATE TABLE drift.model_versions (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    model text NOT NULL,
    version text NOT NULL,
    status text NOT NULL DEFAULT 'candidate',
    created_at timestamptz NOT NULL DEFAULT now(),
    metrics jsonb NOT NULL DEFAULT '{}',
    parent_version text,
    event_id bigint REFERENCES drift.drift_events (id) ON DELETE SET NULL,
    UNIQUE (model, version)
);
CREATE UNIQUE INDEX model_versions_one_active ON drift.model_versions (model) WHERE status = 'active';
COMMENT ON TABLE drift.model_versions IS 'Model versions produced by retraining: candidate until its holdout evaluation beats the active one, then active (at most one per model).';
COMMENT ON COLUMN drift.model_versions.id IS 'Row id.';
COMMENT ON COLUMN drift.model_versions.model IS 'Model name.';
COMMENT ON COLUMN drift.model_versions.version IS 'Version label, unique per model.';
COMMENT ON COLUMN drift.model_versions.status IS 'candidate, active or retired.';
COMMENT ON COLUMN drift.model_versions.created_at IS 'When the version was registered.';
COMMENT ON COLUMN drift.model_versions.metrics IS 'Holdout metrics of the version (e.g. accuracy, n).';
COMMENT ON COLUMN drift.model_versions.parent_version IS 'The version it was trained to replace.';
COMMENT ON COLUMN drift.model_versions.event_id IS 'The drift event that triggered the training.';

-- ---------------------------------------------------------------------------------------------
-- Log triggers: validate, register models, append rollup deltas, maybe evaluate.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION drift.register_model(p_model text) RETURNS drift.models
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

CREATE FUNCTION drift.evaluate_due(p_models text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    due text[];
    every interval := coalesce(drift.setting('evaluate_interval'), '1 minute')::interval;
BEGIN
    IF every <= interval '0' THEN
        RETURN;
    END IF;
    -- SKIP LOCKED: a concurrent writer already evaluating this model is enough; never wait.
    WITH claimed AS (
        SELECT m.model FROM drift.models m
        WHERE m.model = ANY (p_models) AND m.auto_evaluate AND m.next_evaluation_at <= clock_timestamp()
        FOR UPDATE SKIP LOCKED
    ), stamped AS (
        UPDATE drift.models m SET next_evaluation_at = clock_timestamp() + every
        FROM claimed WHERE m.model = claimed.model
        RETURNING m.model
    )
    SELECT array_agg(stamped.model) INTO due FROM stamped;
    IF due IS NOT NULL THEN
        -- A failing evaluation must never make the application's insert fail.
        BEGIN
            PERFORM drift.evaluate_models(now(), due);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'driftloop: evaluation of % failed: %', due, SQLERRM;
        END;
    END IF;
END $$;
COMMENT ON FUNCTION drift.evaluate_due(text[]) IS 'Called by the log triggers: evaluates the given models at now() if their evaluate_interval has passed, at most once per interval, without ever waiting on another writer.';

CREATE FUNCTION drift.check_embedding_models(p_models text[], p_lo integer[], p_hi integer[],
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

CREATE FUNCTION drift.flush_staged_embeddings() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
BEGIN
    INSERT INTO drift.embedding_rollup_delta (model, bucket, n, vec_sum, sq_sum)
    SELECT e.model, drift.bucket_of(e.created_at, drift.setting('bucket_width')::interval), count(*),
        sum(e.embedding), sum(e.embedding * e.embedding)
    FROM pg_temp.drift_staged_embeddings s JOIN drift.embeddings_log e ON e.id = s.id
    GROUP BY 1, 2;
    DELETE FROM pg_temp.drift_staged_embeddings;
    -- Under SET CONSTRAINTS IMMEDIATE this runs before commit: later statements stage anew.
    PERFORM set_config('drift.staging_xact', '', true);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.flush_staged_embeddings() IS 'Deferred to commit: folds the embeddings staged by small statements of the transaction into one rollup delta per model and bucket.';

CREATE FUNCTION drift.embeddings_log_after_insert() RETURNS trigger
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
                IF to_regclass('pg_temp.drift_staged_embeddings') IS NULL THEN
                    CREATE TEMP TABLE drift_staged_embeddings (id bigint NOT NULL) ON COMMIT DELETE ROWS;
                    CREATE TEMP TABLE drift_staged_flush (flush boolean) ON COMMIT DELETE ROWS;
                    CREATE CONSTRAINT TRIGGER drift_staged_flush AFTER INSERT ON pg_temp.drift_staged_flush
                        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION drift.flush_staged_embeddings();
                END IF;
                INSERT INTO pg_temp.drift_staged_flush VALUES (true);
                PERFORM set_config('drift.staging_xact', xact, true);
            END IF;
            INSERT INTO pg_temp.drift_staged_embeddings SELECT n.id FROM new_rows n;
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
CREATE TRIGGER embeddings_log_rollup AFTER INSERT ON drift.embeddings_log
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.embeddings_log_after_insert();

CREATE FUNCTION drift.embeddings_log_immutable() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    RAISE EXCEPTION 'embeddings_log row id=%: model, created_at and embedding cannot be changed (the rollups already count them); delete and insert instead', OLD.id
        USING ERRCODE = 'object_not_in_prerequisite_state';
END $$;
COMMENT ON FUNCTION drift.embeddings_log_immutable() IS 'Rejects updates of the columns the embedding rollups are built from.';
CREATE TRIGGER embeddings_log_immutable BEFORE UPDATE OF model, created_at, embedding ON drift.embeddings_log
    FOR EACH ROW EXECUTE FUNCTION drift.embeddings_log_immutable();

-- The interaction delta query, shared by the insert and the update trigger: `changes` is a row
-- source with a `sign` column (+1 new row, -1 old row), so a late label moves counts exactly.
CREATE FUNCTION drift.interaction_delta_sql(p_changes text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
SELECT format($q$
    INSERT INTO drift.interaction_rollup_delta (model, bucket, interactions, refusal_known, refusals,
        toxicity_scored, toxic, toxicity_sum, feedback_given, feedback_positive, labelled, correct,
        quality_n, quality_ok, latency_sum, latency_n)
    SELECT c.model, drift.bucket_of(c.created_at, $1),
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
$q$, p_changes)
$$;
COMMENT ON FUNCTION drift.interaction_delta_sql(text) IS 'SQL text of the interaction rollup delta insert over a signed change set (internal).';

CREATE FUNCTION drift.interaction_log_after_change() RETURNS trigger
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
        -- Rows whose counted columns did not change produce all-zero deltas: drop them.
        DELETE FROM drift.interaction_rollup_delta d
        WHERE d.interactions = 0 AND d.refusal_known = 0 AND d.refusals = 0 AND d.toxicity_scored = 0
          AND d.toxic = 0 AND d.toxicity_sum = 0 AND d.feedback_given = 0 AND d.feedback_positive = 0
          AND d.labelled = 0 AND d.correct = 0 AND d.quality_n = 0 AND d.quality_ok = 0
          AND d.latency_sum = 0 AND d.latency_n = 0
          AND d.model IN (SELECT n.model FROM new_rows n);
    END IF;
    IF cardinality(due) > 0 THEN
        PERFORM drift.evaluate_due(due);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.interaction_log_after_change() IS 'Statement trigger on interaction_log: registers models, appends signed rollup deltas for inserts and for late feedback/labels, evaluates due models.';
CREATE TRIGGER interaction_log_rollup_insert AFTER INSERT ON drift.interaction_log
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.interaction_log_after_change();
CREATE TRIGGER interaction_log_rollup_update AFTER UPDATE ON drift.interaction_log
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.interaction_log_after_change();

CREATE FUNCTION drift.interaction_log_stamp_label() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NEW.labelled_at := now();
    RETURN NEW;
END $$;
COMMENT ON FUNCTION drift.interaction_log_stamp_label() IS 'Stamps labelled_at when feedback or a label arrives after the interaction was logged.';
CREATE TRIGGER interaction_log_stamp_label BEFORE UPDATE ON drift.interaction_log
    FOR EACH ROW WHEN (OLD.feedback IS DISTINCT FROM NEW.feedback OR OLD.correct IS DISTINCT FROM NEW.correct)
    EXECUTE FUNCTION drift.interaction_log_stamp_label();

-- ---------------------------------------------------------------------------------------------
-- Compaction and window aggregates
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION drift.compact_rollups() RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    folded bigint := 0;
    k bigint;
BEGIN
    -- One compactor at a time; others simply read the deltas that are still there.
    IF NOT pg_try_advisory_xact_lock(hashtext('drift.compact_rollups')) THEN
        RETURN 0;
    END IF;
    WITH moved AS (
        DELETE FROM drift.embedding_rollup_delta RETURNING *
    )
    INSERT INTO drift.embedding_rollup AS r (model, bucket, n, vec_sum, sq_sum)
    SELECT model, bucket, sum(n), sum(vec_sum), sum(sq_sum) FROM moved GROUP BY model, bucket ORDER BY model, bucket
    ON CONFLICT (model, bucket) DO UPDATE
        SET n = r.n + excluded.n, vec_sum = r.vec_sum + excluded.vec_sum, sq_sum = r.sq_sum + excluded.sq_sum;
    GET DIAGNOSTICS k = ROW_COUNT;
    folded := folded + k;

    WITH moved AS (
        DELETE FROM drift.interaction_rollup_delta RETURNING *
    )
    INSERT INTO drift.interaction_rollup AS r
    SELECT model, bucket, sum(interactions), sum(refusal_known), sum(refusals), sum(toxicity_scored), sum(toxic),
        sum(toxicity_sum), sum(feedback_given), sum(feedback_positive), sum(labelled), sum(correct),
        sum(quality_n), sum(quality_ok), sum(latency_sum), sum(latency_n)
    FROM moved GROUP BY model, bucket ORDER BY model, bucket
    ON CONFLICT (model, bucket) DO UPDATE SET
        interactions = r.interactions + excluded.interactions,
        refusal_known = r.refusal_known + excluded.refusal_known,
        refusals = r.refusals + excluded.refusals,
        toxicity_scored = r.toxicity_scored + excluded.toxicity_scored,
        toxic = r.toxic + excluded.toxic,
        toxicity_sum = r.toxicity_sum + excluded.toxicity_sum,
        feedback_given = r.feedback_given + excluded.feedback_given,
        feedback_positive = r.feedback_positive + excluded.feedback_positive,
        labelled = r.labelled + excluded.labelled,
        correct = r.correct + excluded.correct,
        quality_n = r.quality_n + excluded.quality_n,
        quality_ok = r.quality_ok + excluded.quality_ok,
        latency_sum = r.latency_sum + excluded.latency_sum,
        latency_n = r.latency_n + excluded.latency_n;
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN folded + k;
END $$;
COMMENT ON FUNCTION drift.compact_rollups() IS 'Folds the rollup deltas into one row per model and bucket; returns the rollup rows written. Skips (returns 0) while another session compacts.';

CREATE FUNCTION drift.embedding_window(p_model text, p_from timestamptz, p_to timestamptz,
    OUT n bigint, OUT vec_sum vector, OUT sq_sum vector)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    SELECT coalesce(sum(s.n), 0)::bigint, sum(s.vec_sum), sum(s.sq_sum) FROM (
        SELECT r.n, r.vec_sum, r.sq_sum FROM drift.embedding_rollup r
        WHERE r.model = p_model AND r.bucket >= p_from AND r.bucket < p_to
        UNION ALL
        SELECT d.n, d.vec_sum, d.sq_sum FROM drift.embedding_rollup_delta d
        WHERE d.model = p_model AND d.bucket >= p_from AND d.bucket < p_to
    ) s
$$;
COMMENT ON FUNCTION drift.embedding_window(text, timestamptz, timestamptz) IS 'Embedding count, sum and sum of squares of a model over the buckets in [from, to), from rollups and pending deltas.';

CREATE FUNCTION drift.interaction_window(p_model text, p_from timestamptz, p_to timestamptz)
RETURNS drift.interaction_rollup
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT p_model, p_from,
        coalesce(sum(s.interactions), 0)::bigint, coalesce(sum(s.refusal_known), 0)::bigint,
        coalesce(sum(s.refusals), 0)::bigint, coalesce(sum(s.toxicity_scored), 0)::bigint,
        coalesce(sum(s.toxic), 0)::bigint, coalesce(sum(s.toxicity_sum), 0),
        coalesce(sum(s.feedback_given), 0)::bigint, coalesce(sum(s.feedback_positive), 0)::bigint,
        coalesce(sum(s.labelled), 0)::bigint, coalesce(sum(s.correct), 0)::bigint,
        coalesce(sum(s.quality_n), 0)::bigint, coalesce(sum(s.quality_ok), 0)::bigint,
        coalesce(sum(s.latency_sum), 0), coalesce(sum(s.latency_n), 0)::bigint
    FROM (
        SELECT * FROM drift.interaction_rollup r
        WHERE r.model = p_model AND r.bucket >= p_from AND r.bucket < p_to
        UNION ALL
        SELECT * FROM drift.interaction_rollup_delta d
        WHERE d.model = p_model AND d.bucket >= p_from AND d.bucket < p_to
    ) s
$$;
COMMENT ON FUNCTION drift.interaction_window(text, timestamptz, timestamptz) IS 'Interaction counts of a model over the buckets in [from, to), from rollups and pending deltas (bucket = from).';

-- ---------------------------------------------------------------------------------------------
-- Baselines
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION drift.set_baseline(model text, starts timestamptz, ends timestamptz,
    kinds text[] DEFAULT ARRAY['embedding', 'behavior', 'accuracy'], source text DEFAULT 'manual')
RETURNS SETOF drift.baselines
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    k text;
    e record;
    i drift.interaction_rollup;
    p_model alias FOR model;
BEGIN
    IF starts IS NULL OR ends IS NULL OR ends <= starts THEN
        RAISE EXCEPTION 'baseline window must have starts < ends (got % .. %)', starts, ends
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM drift.models m WHERE m.model = p_model) THEN
        RAISE EXCEPTION 'unknown model %: nothing has been logged for it', quote_literal(p_model)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH k IN ARRAY kinds LOOP
        IF k NOT IN ('embedding', 'behavior', 'accuracy') THEN
            RAISE EXCEPTION 'unknown drift kind %: use embedding, behavior or accuracy', quote_literal(k)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF k = 'embedding' THEN
            e := drift.embedding_window(p_model, starts, ends);
            RETURN QUERY
            INSERT INTO drift.baselines AS b (model, kind, starts, ends, source, n, vec_sum, sq_sum)
            VALUES (p_model, k, starts, ends, source, e.n, e.vec_sum, e.sq_sum)
            ON CONFLICT ON CONSTRAINT baselines_pkey DO UPDATE SET
                starts = excluded.starts, ends = excluded.ends, source = excluded.source, set_at = now(),
                n = excluded.n, vec_sum = excluded.vec_sum, sq_sum = excluded.sq_sum
            RETURNING b.*;
        ELSE
            i := drift.interaction_window(p_model, starts, ends);
            RETURN QUERY
            INSERT INTO drift.baselines AS b (model, kind, starts, ends, source, n, refusal_known, refusals,
                toxicity_scored, toxic, quality_n, quality_ok)
            VALUES (p_model, k, starts, ends, source, i.interactions, i.refusal_known, i.refusals,
                i.toxicity_scored, i.toxic, i.quality_n, i.quality_ok)
            ON CONFLICT ON CONSTRAINT baselines_pkey DO UPDATE SET
                starts = excluded.starts, ends = excluded.ends, source = excluded.source, set_at = now(),
                n = excluded.n, refusal_known = excluded.refusal_known, refusals = excluded.refusals,
                toxicity_scored = excluded.toxicity_scored, toxic = excluded.toxic,
                quality_n = excluded.quality_n, quality_ok = excluded.quality_ok
            RETURNING b.*;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION drift.set_baseline(text, timestamptz, timestamptz, text[], text) IS 'Sets the reference window of a model (for the given drift kinds, default all) and freezes its aggregates from the rollups; windows round to whole buckets.';

CREATE FUNCTION drift.ensure_auto_baselines(p_as_of timestamptz, p_models text[] DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    span interval := coalesce(drift.setting('auto_baseline'), '0')::interval;
    cur_start timestamptz := drift.bucket_of(p_as_of, drift.setting('bucket_width')::interval)
        - drift.setting('current_window')::interval;
    min_n bigint := drift.setting('min_samples')::bigint;
    cand record;
    first_bucket timestamptz;
    made integer := 0;
BEGIN
    IF span <= interval '0' THEN
        RETURN 0;
    END IF;
    FOR cand IN
        SELECT m.model, k.kind FROM drift.models m
        CROSS JOIN unnest(ARRAY['embedding', 'behavior', 'accuracy']) AS k(kind)
        LEFT JOIN drift.baselines b ON b.model = m.model AND b.kind = k.kind
        WHERE (p_models IS NULL OR m.model = ANY (p_models))
          AND (CASE WHEN k.kind = 'embedding' THEN m.embedding_dims IS NOT NULL ELSE m.interactions_seen END)
          -- no baseline yet, or an automatic one still too small (e.g. labels arrive late)
          AND (b.model IS NULL OR (b.source = 'auto' AND
               (CASE WHEN k.kind = 'accuracy' THEN b.quality_n ELSE b.n END) < min_n))
    LOOP
        IF cand.kind = 'embedding' THEN
            SELECT min(x.bucket) INTO first_bucket FROM (
                (SELECT r.bucket FROM drift.embedding_rollup r WHERE r.model = cand.model ORDER BY r.bucket LIMIT 1)
                UNION ALL
                (SELECT d.bucket FROM drift.embedding_rollup_delta d WHERE d.model = cand.model ORDER BY d.bucket LIMIT 1)
            ) x;
        ELSE
            SELECT min(x.bucket) INTO first_bucket FROM (
                (SELECT r.bucket FROM drift.interaction_rollup r WHERE r.model = cand.model ORDER BY r.bucket LIMIT 1)
                UNION ALL
                (SELECT d.bucket FROM drift.interaction_rollup_delta d WHERE d.model = cand.model ORDER BY d.bucket LIMIT 1)
            ) x;
        END IF;
        -- Only once the whole baseline span lies before the current window.
        IF first_bucket IS NOT NULL AND first_bucket + span <= cur_start THEN
            PERFORM drift.set_baseline(cand.model, first_bucket, first_bucket + span, ARRAY[cand.kind], 'auto');
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$;
COMMENT ON FUNCTION drift.ensure_auto_baselines(timestamptz, text[]) IS 'Gives models without a baseline their first auto_baseline of data as baseline, once that span lies before the current window.';

-- ---------------------------------------------------------------------------------------------
-- Statistics
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION drift.normal_sf(z double precision) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
DECLARE
    x double precision := abs(z) / sqrt(2.0);
    t double precision := 1.0 / (1.0 + 0.5 * x);
    erfc double precision;
BEGIN
    -- erfc by the Chebyshev fit of Numerical Recipes (erfcc): relative error < 1.2e-7 everywhere,
    -- so tail p-values stay accurate. (PostgreSQL before 18 has no erfc.)
    IF x > 26 THEN
        erfc := 0;  -- below 1e-295: exp() would underflow
    ELSE
    erfc := t * exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
            + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
            + t * (-0.82215223 + t * 0.17087277)))))))));
    END IF;
    IF z >= 0 THEN
        RETURN 0.5 * erfc;
    END IF;
    RETURN 1.0 - 0.5 * erfc;
END $$;
COMMENT ON FUNCTION drift.normal_sf(double precision) IS 'Upper tail P(Z > z) of the standard normal distribution.';

CREATE FUNCTION drift.chi2_sf(x double precision, k integer) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- Wilson-Hilferty: (X/k)^(1/3) is close to normal; accurate for the large k of embeddings.
    SELECT CASE WHEN k < 1 THEN NULL WHEN x <= 0 THEN 1.0
        ELSE drift.normal_sf((cbrt(x / k) - (1 - 2.0 / (9 * k))) / sqrt(2.0 / (9 * k))) END
$$;
COMMENT ON FUNCTION drift.chi2_sf(double precision, integer) IS 'Upper tail of the chi-square distribution with k degrees of freedom (Wilson-Hilferty approximation).';

CREATE FUNCTION drift.mean_shift_test(n_cur bigint, sum_cur vector, n_base bigint, sum_base vector, sq_base vector,
    OUT statistic double precision, OUT dof integer, OUT p_value double precision)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, public, extensions
AS $$
    -- Per-dimension z-tests of the mean shift, with the baseline's variance as the null scale,
    -- summed into one chi-square statistic (a diagonal Hotelling test). Everything comes from
    -- the rollups' sums and sums of squares.
    WITH d AS (
        SELECT (c::float8 / n_cur - b::float8 / n_base) AS diff,
               greatest(s::float8 / n_base - (b::float8 / n_base) ^ 2, 1e-9) AS var
        FROM unnest(sum_cur::real[], sum_base::real[], sq_base::real[]) AS u(c, b, s)
    ), t AS (
        SELECT sum(diff * diff / (var * (1.0 / n_cur + 1.0 / n_base))) AS stat, count(*)::integer AS k FROM d
    )
    SELECT t.stat, t.k, drift.chi2_sf(t.stat, t.k) FROM t
    WHERE n_cur > 0 AND n_base > 1
$$;
COMMENT ON FUNCTION drift.mean_shift_test(bigint, vector, bigint, vector, vector) IS 'Chi-square test that the current mean embedding differs from the baseline mean, from rollup sums (diagonal covariance).';

CREATE FUNCTION drift.proportion_increase_p(x_cur bigint, n_cur bigint, x_base bigint, n_base bigint)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- One-sided pooled two-proportion z-test: H1 is "the current rate is higher".
    SELECT CASE
        WHEN n_cur IS NULL OR n_base IS NULL OR n_cur < 1 OR n_base < 1 THEN NULL
        WHEN (x_cur + x_base) = 0 OR (x_cur + x_base) = (n_cur + n_base) THEN 1.0
        ELSE drift.normal_sf(
            (x_cur::float8 / n_cur - x_base::float8 / n_base)
            / sqrt(((x_cur + x_base)::float8 / (n_cur + n_base)) * (1 - (x_cur + x_base)::float8 / (n_cur + n_base))
                   * (1.0 / n_cur + 1.0 / n_base)))
    END
$$;
COMMENT ON FUNCTION drift.proportion_increase_p(bigint, bigint, bigint, bigint) IS 'p-value of a one-sided two-proportion z-test that the current rate exceeds the baseline rate.';

CREATE FUNCTION drift.proportion_above_p(x bigint, n bigint, p0 double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- One-sided one-sample z-test against a fixed rate, used when there is no baseline yet.
    SELECT CASE
        WHEN n IS NULL OR n < 1 OR p0 IS NULL THEN NULL
        WHEN p0 <= 0 THEN CASE WHEN x > 0 THEN 0.0 ELSE 1.0 END
        WHEN p0 >= 1 THEN 1.0
        ELSE drift.normal_sf((x::float8 / n - p0) / sqrt(p0 * (1 - p0) / n))
    END
$$;
COMMENT ON FUNCTION drift.proportion_above_p(bigint, bigint, double precision) IS 'p-value of a one-sided z-test that a rate exceeds p0.';

-- ---------------------------------------------------------------------------------------------
-- Drift reports (any time) and views (now)
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION drift.report_config(p_as_of timestamptz,
    OUT window_start timestamptz, OUT window_end timestamptz, OUT min_samples bigint, OUT alpha double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT e - drift.setting('current_window')::interval, e,
           drift.setting('min_samples')::bigint, drift.setting('alpha')::float8
    FROM (SELECT drift.bucket_of(p_as_of, drift.setting('bucket_width')::interval) AS e) x
$$;
COMMENT ON FUNCTION drift.report_config(timestamptz) IS 'The current window (whole buckets before as_of), min_samples and alpha used by the drift reports.';

CREATE FUNCTION drift.embedding_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS TABLE (model text, kind text, metric text, score double precision, threshold double precision,
    p_value double precision, n_current bigint, n_baseline bigint, drifted boolean,
    window_start timestamptz, window_end timestamptz, value double precision, baseline_value double precision,
    details jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    WITH cfg AS (
        SELECT c.*, drift.setting('embedding_drift_threshold')::float8 AS thr FROM drift.report_config(p_as_of) c
    ), cur AS (
        SELECT m.model, w.n, w.vec_sum, b.n AS nb, b.vec_sum AS vb, b.sq_sum AS sb
        FROM drift.models m
        CROSS JOIN cfg
        CROSS JOIN LATERAL drift.embedding_window(m.model, cfg.window_start, cfg.window_end) w
        LEFT JOIN drift.baselines b ON b.model = m.model AND b.kind = 'embedding'
        WHERE m.embedding_dims IS NOT NULL AND (p_models IS NULL OR m.model = ANY (p_models))
    ), scored AS (
        SELECT cur.*,
            CASE WHEN cur.n > 0 AND cur.nb > 0 THEN (cur.vec_sum <=> cur.vb) END AS dist,
            t.statistic, t.dof, t.p_value
        FROM cur
        LEFT JOIN LATERAL drift.mean_shift_test(cur.n, cur.vec_sum, cur.nb, cur.vb, cur.sb) t ON true
    )
    SELECT s.model, 'embedding', 'centroid_distance', s.dist, cfg.thr, s.p_value, s.n, coalesce(s.nb, 0),
        coalesce(s.n >= cfg.min_samples AND s.nb >= cfg.min_samples AND s.dist > cfg.thr AND s.p_value < cfg.alpha, false),
        cfg.window_start, cfg.window_end, s.dist, 0::float8,
        jsonb_build_object('test', 'diagonal chi-square mean shift', 'statistic', s.statistic, 'dof', s.dof,
            'alpha', cfg.alpha, 'min_samples', cfg.min_samples)
    FROM scored s CROSS JOIN cfg
$$;
COMMENT ON FUNCTION drift.embedding_report(timestamptz, text[]) IS 'Embedding drift of each model at as_of: cosine distance between the current and baseline centroids (score) and a chi-square mean-shift p-value, from rollups only.';

CREATE FUNCTION drift.behavior_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS TABLE (model text, kind text, metric text, score double precision, threshold double precision,
    p_value double precision, n_current bigint, n_baseline bigint, drifted boolean,
    window_start timestamptz, window_end timestamptz, value double precision, baseline_value double precision,
    details jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    WITH cfg AS (SELECT * FROM drift.report_config(p_as_of)),
    cur AS (
        SELECT m.model, w AS c, b
        FROM drift.models m
        CROSS JOIN cfg
        CROSS JOIN LATERAL drift.interaction_window(m.model, cfg.window_start, cfg.window_end) w
        LEFT JOIN drift.baselines b ON b.model = m.model AND b.kind = 'behavior'
        WHERE m.interactions_seen AND (p_models IS NULL OR m.model = ANY (p_models))
    ), metrics AS (
        SELECT cur.model, x.*,
            -- Against the baseline when it has enough data, else against the absolute threshold.
            CASE WHEN x.n_base >= cfg.min_samples THEN drift.proportion_increase_p(x.x_cur, x.n_cur, x.x_base, x.n_base)
                 ELSE drift.proportion_above_p(x.x_cur, x.n_cur, x.thr) END AS p,
            CASE WHEN x.n_base >= cfg.min_samples THEN 'two-proportion z (one-sided) vs baseline'
                 ELSE 'one-sample z (one-sided) vs threshold' END AS test
        FROM cur CROSS JOIN cfg
        CROSS JOIN LATERAL (VALUES
            ('refusal_rate', (cur.c).refusals, (cur.c).refusal_known, coalesce((cur.b).refusals, 0),
                coalesce((cur.b).refusal_known, 0), drift.setting('refusal_rate_threshold')::float8),
            ('toxicity_rate', (cur.c).toxic, (cur.c).toxicity_scored, coalesce((cur.b).toxic, 0),
                coalesce((cur.b).toxicity_scored, 0), drift.setting('toxicity_rate_threshold')::float8)
        ) AS x(metric, x_cur, n_cur, x_base, n_base, thr)
    )
    SELECT mt.model, 'behavior', mt.metric,
        CASE WHEN mt.n_cur > 0 THEN mt.x_cur::float8 / mt.n_cur END, mt.thr, mt.p, mt.n_cur, mt.n_base,
        coalesce(mt.n_cur >= cfg.min_samples AND mt.x_cur::float8 / mt.n_cur > mt.thr AND mt.p < cfg.alpha, false),
        cfg.window_start, cfg.window_end,
        CASE WHEN mt.n_cur > 0 THEN mt.x_cur::float8 / mt.n_cur END,
        CASE WHEN mt.n_base > 0 THEN mt.x_base::float8 / mt.n_base END,
        jsonb_build_object('test', mt.test, 'alpha', cfg.alpha, 'min_samples', cfg.min_samples,
            'count_current', mt.x_cur, 'count_baseline', mt.x_base)
    FROM metrics mt CROSS JOIN cfg
$$;
COMMENT ON FUNCTION drift.behavior_report(timestamptz, text[]) IS 'Behavior drift of each model at as_of: refusal and toxicity rates (score) against the absolute thresholds, with a one-sided proportion test against the baseline.';

CREATE FUNCTION drift.accuracy_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS TABLE (model text, kind text, metric text, score double precision, threshold double precision,
    p_value double precision, n_current bigint, n_baseline bigint, drifted boolean,
    window_start timestamptz, window_end timestamptz, value double precision, baseline_value double precision,
    details jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    WITH cfg AS (
        SELECT c.*, drift.setting('accuracy_drop_threshold')::float8 AS thr FROM drift.report_config(p_as_of) c
    ), cur AS (
        SELECT m.model, w.quality_n AS n_cur, w.quality_ok AS ok_cur, w.labelled,
            coalesce(b.quality_n, 0) AS n_base, coalesce(b.quality_ok, 0) AS ok_base
        FROM drift.models m
        CROSS JOIN cfg
        CROSS JOIN LATERAL drift.interaction_window(m.model, cfg.window_start, cfg.window_end) w
        LEFT JOIN drift.baselines b ON b.model = m.model AND b.kind = 'accuracy'
        WHERE m.interactions_seen AND (p_models IS NULL OR m.model = ANY (p_models))
    ), scored AS (
        SELECT cur.*,
            CASE WHEN n_cur > 0 THEN ok_cur::float8 / n_cur END AS acc,
            CASE WHEN n_base > 0 THEN ok_base::float8 / n_base END AS acc_base,
            -- Errors are the complement: a drop in accuracy is a rise in the error rate.
            drift.proportion_increase_p(n_cur - ok_cur, n_cur, n_base - ok_base, n_base) AS p
        FROM cur
    )
    SELECT s.model, 'accuracy', 'accuracy', s.acc_base - s.acc, cfg.thr, s.p, s.n_cur, s.n_base,
        coalesce(s.n_cur >= cfg.min_samples AND s.n_base >= cfg.min_samples AND s.acc_base - s.acc > cfg.thr
                 AND s.p < cfg.alpha, false),
        cfg.window_start, cfg.window_end, s.acc, s.acc_base,
        jsonb_build_object('test', 'two-proportion z (one-sided) vs baseline', 'alpha', cfg.alpha,
            'min_samples', cfg.min_samples, 'labelled_current', s.labelled,
            'window_time', 'interaction time (late labels count in their interaction''s window)')
    FROM scored s CROSS JOIN cfg
$$;
COMMENT ON FUNCTION drift.accuracy_report(timestamptz, text[]) IS 'Accuracy drift of each model at as_of: accuracy from labels (feedback where unlabelled), score = drop below the baseline accuracy.';

CREATE FUNCTION drift.drift_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS TABLE (model text, kind text, metric text, score double precision, threshold double precision,
    p_value double precision, n_current bigint, n_baseline bigint, drifted boolean,
    window_start timestamptz, window_end timestamptz, value double precision, baseline_value double precision,
    details jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT * FROM drift.embedding_report(p_as_of, p_models)
    UNION ALL SELECT * FROM drift.behavior_report(p_as_of, p_models)
    UNION ALL SELECT * FROM drift.accuracy_report(p_as_of, p_models)
$$;
COMMENT ON FUNCTION drift.drift_report(timestamptz, text[]) IS 'All drift metrics of all (or the given) models at any time as_of; the drift views are this at now().';

CREATE VIEW drift.embedding_drift AS SELECT * FROM drift.embedding_report(now(), NULL);
CREATE VIEW drift.behavior_drift AS SELECT * FROM drift.behavior_report(now(), NULL);
CREATE VIEW drift.accuracy_drift AS SELECT * FROM drift.accuracy_report(now(), NULL);
CREATE VIEW drift.drift_status AS
    SELECT * FROM drift.embedding_drift
    UNION ALL SELECT * FROM drift.behavior_drift
    UNION ALL SELECT * FROM drift.accuracy_drift;
COMMENT ON VIEW drift.embedding_drift IS 'Embedding drift now: one row per model (metric centroid_distance).';
COMMENT ON VIEW drift.behavior_drift IS 'Behavior drift now: refusal_rate and toxicity_rate per model.';
COMMENT ON VIEW drift.accuracy_drift IS 'Accuracy drift now: accuracy per model (score = drop below baseline).';
COMMENT ON VIEW drift.drift_status IS 'Every drift metric of every model now: the union of the three drift views.';

DO $$
DECLARE
    v text;
    c text;
BEGIN
    FOREACH v IN ARRAY ARRAY['embedding_drift', 'behavior_drift', 'accuracy_drift', 'drift_status'] LOOP
        FOREACH c IN ARRAY ARRAY[
            'model|Model name.',
            'kind|embedding, behavior or accuracy.',
            'metric|centroid_distance, refusal_rate, toxicity_rate or accuracy.',
            'score|The metric''s score compared with threshold: centroid cosine distance, rate, or accuracy drop.',
            'threshold|The threshold from drift.settings.',
            'p_value|p-value of the statistical test (see details.test).',
            'n_current|Samples in the current window.',
            'n_baseline|Samples in the baseline window.',
            'drifted|true when enough samples, score above threshold and p_value below alpha.',
            'window_start|Start of the current window.',
            'window_end|End of the current window (exclusive).',
            'value|Current value of the metric (distance, rate or accuracy).',
            'baseline_value|Baseline value of the metric.',
            'details|Test name, alpha, min_samples and counts.'
        ] LOOP
            EXECUTE format('COMMENT ON COLUMN drift.%I.%I IS %L', v, split_part(c, '|', 1), split_part(c, '|', 2));
        END LOOP;
    END LOOP;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Evaluate: raise events for new drifts
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION drift.prepare_report(p_as_of timestamptz, p_models text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NULL;  -- nothing to prepare for the rollup-only statistics of this revision
END $$;
COMMENT ON FUNCTION drift.prepare_report(timestamptz, text[]) IS 'Extension point: drift.evaluate_models calls it before reading the report, so statistics that cache per-window work (novelty counts, revision 0004) do it once per evaluation. A no-op in revision 0001.';

CREATE FUNCTION drift.evaluate_models(p_as_of timestamptz, p_models text[]) RETURNS SETOF drift.drift_events
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    cooldown interval := drift.setting('cooldown')::interval;
BEGIN
    PERFORM drift.ensure_auto_baselines(p_as_of, p_models);
    -- Advance the evaluation clock; a row another transaction holds is skipped, never waited for.
    UPDATE drift.models m SET last_evaluated_as_of = greatest(m.last_evaluated_as_of, p_as_of)
    WHERE m.model IN (
        SELECT l.model FROM drift.models l
        WHERE (p_models IS NULL OR l.model = ANY (p_models))
          AND (l.last_evaluated_as_of IS NULL OR l.last_evaluated_as_of < p_as_of)
        FOR UPDATE SKIP LOCKED);
    PERFORM drift.prepare_report(p_as_of, p_models);
    RETURN QUERY
    WITH raised AS (
        INSERT INTO drift.drift_events AS e (model, kind, metric, score, threshold, p_value, window_start,
            window_end, details)
        SELECT r.model, r.kind, r.metric, r.score, r.threshold, r.p_value, r.window_start, r.window_end,
            r.details || jsonb_build_object('value', r.value, 'baseline_value', r.baseline_value,
                'n_current', r.n_current, 'n_baseline', r.n_baseline, 'as_of', p_as_of)
        FROM drift.drift_report(p_as_of, p_models) r
        WHERE r.drifted
          AND NOT EXISTS (
              SELECT 1 FROM drift.drift_events c
              WHERE c.model = r.model AND c.kind = r.kind AND c.metric = r.metric
                AND c.closed_as_of IS NOT NULL AND c.closed_as_of > p_as_of - cooldown)
        ORDER BY r.model, r.kind, r.metric
        ON CONFLICT (model, kind, metric) WHERE status IN ('pending', 'running') DO NOTHING
        RETURNING e.*
    )
    SELECT * FROM raised;
END $$;
COMMENT ON FUNCTION drift.evaluate_models(timestamptz, text[]) IS 'Evaluates the given models (NULL: all) at as_of and inserts events for new drifts: none while an event for the same model and metric is open, none within the cooldown after one closed.';

CREATE FUNCTION drift.evaluate(as_of timestamptz DEFAULT now()) RETURNS SETOF drift.drift_events
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM drift.compact_rollups();
    RETURN QUERY SELECT * FROM drift.evaluate_models(as_of, NULL);
END $$;
COMMENT ON FUNCTION drift.evaluate(timestamptz) IS 'Compacts the rollups, compares every model''s current window [as_of - current_window, as_of) with its baseline, inserts and returns the new drift events (each notified on channel drift_events).';
