-- driftloop drift engine: logs, incremental rollups, baselines, drift views, evaluate() and events.
--
-- Design in one paragraph: the log tables are append-only. Statement-level AFTER INSERT
-- triggers aggregate each statement's transition table into small *delta* rows per (model,
-- time bucket); they never update a shared row, so concurrent writers never wait on each
-- other and many single-row statements in one transaction never grow an update chain.
-- drift.compact_rollups() folds deltas into one rollup row per (model, bucket). Every drift
-- statistic is computed from rollups (+ pending deltas) and from baselines frozen by
-- drift.set_baseline(), so evaluating costs the same with a thousand or a billion rows logged.
-- This file holds the tables; the functions, triggers and views live in db/repeatable/.

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
