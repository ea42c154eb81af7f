-- driftloop schema at head, generated from db/migrations and db/repeatable (`make schema`).
-- Paste into the Supabase SQL editor (or run with psql) on a database with pgvector;
-- `driftloop db upgrade` continues from it later.

BEGIN;
CREATE SCHEMA IF NOT EXISTS drift;

-- migration 0001_engine

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


-- migration 0002_worker

-- Worker: claims on drift events, a record of every action run, versioned system prompts.
-- The worker claims events with one UPDATE ... FOR NO KEY UPDATE SKIP LOCKED statement and
-- writes results only while it still holds the claim (claimed_by = itself, status running).

ALTER TABLE drift.drift_events
    ADD COLUMN attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    ADD COLUMN run_after timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN claimed_by text,
    ADD COLUMN claimed_at timestamptz,
    ADD COLUMN lease_expires_at timestamptz,
    ADD COLUMN last_error text,
    ADD COLUMN resolution jsonb;

COMMENT ON COLUMN drift.drift_events.attempts IS
    'How many times a worker has claimed this event; counted at claim time, so a worker that crashes still uses up an attempt.';
COMMENT ON COLUMN drift.drift_events.max_attempts IS
    'After this many attempts a failing event becomes failed (the dead letter); driftloop events retry ID re-queues it.';
COMMENT ON COLUMN drift.drift_events.run_after IS
    'A pending event is not claimed before this time: the retry backoff (exponential with jitter) after a failed attempt.';
COMMENT ON COLUMN drift.drift_events.claimed_by IS
    'The worker holding a running event (host:pid:nonce); NULL whenever status is not running.';
COMMENT ON COLUMN drift.drift_events.claimed_at IS
    'When the current or last claim was taken.';
COMMENT ON COLUMN drift.drift_events.lease_expires_at IS
    'The claim holds until then; the holder extends it while it works. A running event past its lease belongs to whichever worker claims it next.';
COMMENT ON COLUMN drift.drift_events.last_error IS
    'The error of the last failed attempt (for a failed event: why it was given up).';
COMMENT ON COLUMN drift.drift_events.resolution IS
    'What the worker did: {"worker": ..., "actions": [{"action", "type", "outcome", "run_id", "summary"}]}.';

-- The claim query reads these two sets: due pending events and expired leases.
CREATE INDEX drift_events_due_idx ON drift.drift_events (run_after, id) WHERE status = 'pending';
CREATE INDEX drift_events_lease_idx ON drift.drift_events (lease_expires_at) WHERE status = 'running';

CREATE TABLE drift.action_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id bigint NOT NULL REFERENCES drift.drift_events (id) ON DELETE CASCADE,
    action text NOT NULL,
    action_type text NOT NULL,
    attempt integer NOT NULL,
    worker text NOT NULL,
    outcome text NOT NULL DEFAULT 'running'
        CHECK (outcome IN ('running', 'succeeded', 'failed', 'lease_lost', 'abandoned', 'released')),
    output jsonb,
    error text,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz
);

COMMENT ON TABLE drift.action_runs IS
    'One row per run of a configured action for a drift event (every attempt), written by the worker.';
COMMENT ON COLUMN drift.action_runs.id IS 'Identity of the run.';
COMMENT ON COLUMN drift.action_runs.event_id IS 'The drift event the action ran for.';
COMMENT ON COLUMN drift.action_runs.action IS 'The action''s name in driftloop.toml (a built-in name when used without a table).';
COMMENT ON COLUMN drift.action_runs.action_type IS 'The built-in type: webhook, command, update_system_prompt, reindex or retrain.';
COMMENT ON COLUMN drift.action_runs.attempt IS 'The event''s attempt number this run belongs to.';
COMMENT ON COLUMN drift.action_runs.worker IS 'The worker that ran it (host:pid:nonce).';
COMMENT ON COLUMN drift.action_runs.outcome IS
    'running; succeeded or failed; lease_lost (the worker lost its claim before it could record the result); abandoned (its worker died, another took the event over); released (its worker shut down and gave the event back).';
COMMENT ON COLUMN drift.action_runs.output IS 'What the action reports (JSON), e.g. the new prompt version or the promoted model version.';
COMMENT ON COLUMN drift.action_runs.error IS 'Why it failed (for a command: the tail of its stderr).';
COMMENT ON COLUMN drift.action_runs.started_at IS 'When the action started (the end of the event''s reaction time).';
COMMENT ON COLUMN drift.action_runs.finished_at IS 'When the action finished; NULL while running.';

-- The idempotency key: an action succeeds at most once per event; a retried event skips
-- the actions that already succeeded.
CREATE UNIQUE INDEX action_runs_succeeded_key ON drift.action_runs (event_id, action) WHERE outcome = 'succeeded';
CREATE INDEX action_runs_event_idx ON drift.action_runs (event_id);

CREATE TABLE drift.prompt_versions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model text NOT NULL,
    version integer NOT NULL CHECK (version > 0),
    prompt text NOT NULL,
    active boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text,
    reason text,
    event_id bigint REFERENCES drift.drift_events (id) ON DELETE SET NULL,
    UNIQUE (model, version)
);

COMMENT ON TABLE drift.prompt_versions IS
    'System prompts per model, every version kept; at most one active per model. Apps read the active one with SELECT drift.active_prompt(model).';
COMMENT ON COLUMN drift.prompt_versions.id IS 'Identity of the version row.';
COMMENT ON COLUMN drift.prompt_versions.model IS 'The model (application) the prompt is for.';
COMMENT ON COLUMN drift.prompt_versions.version IS 'Version number, 1, 2, ... per model.';
COMMENT ON COLUMN drift.prompt_versions.prompt IS 'The system prompt text.';
COMMENT ON COLUMN drift.prompt_versions.active IS 'Whether apps use this version now.';
COMMENT ON COLUMN drift.prompt_versions.created_at IS 'When the version was created.';
COMMENT ON COLUMN drift.prompt_versions.created_by IS 'Who created it: the worker id, or a user.';
COMMENT ON COLUMN drift.prompt_versions.reason IS 'Why, e.g. the drift that triggered it.';
COMMENT ON COLUMN drift.prompt_versions.event_id IS 'The drift event it answers, if any; one version per model and event.';

CREATE UNIQUE INDEX prompt_versions_one_active ON drift.prompt_versions (model) WHERE active;
CREATE UNIQUE INDEX prompt_versions_event_key ON drift.prompt_versions (model, event_id) WHERE event_id IS NOT NULL;

ALTER TABLE drift.model_versions ADD COLUMN parameters jsonb;
COMMENT ON COLUMN drift.model_versions.parameters IS
    'The trained model itself when it is small enough to keep here (the built-in trainer: a linear classifier {"type": "linear", "classes", "coef", "intercept"}), so apps load the active version from the database.';


-- migration 0003_simulation

-- Simulation mode (`driftloop simulate`, `driftloop demo`): what each run injected and when,
-- so detection delay and recovery can be measured against the truth.

CREATE TABLE drift.simulation_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    command text NOT NULL CHECK (command IN ('simulate', 'demo')),
    seed bigint NOT NULL,
    quick boolean NOT NULL DEFAULT false,
    starts timestamptz NOT NULL,
    baseline_ends timestamptz NOT NULL,
    ends timestamptz NOT NULL,
    step interval NOT NULL,
    params jsonb NOT NULL DEFAULT '{}'::jsonb,
    status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'finished', 'failed')),
    error text,
    CHECK (starts < baseline_ends AND baseline_ends < ends)
);
COMMENT ON TABLE drift.simulation_runs IS
    'One run of `driftloop simulate` or `driftloop demo`: simulated traffic over [starts, ends).';
COMMENT ON COLUMN drift.simulation_runs.id IS 'Run number.';
COMMENT ON COLUMN drift.simulation_runs.created_at IS 'Wall-clock time the run started.';
COMMENT ON COLUMN drift.simulation_runs.finished_at IS 'Wall-clock time the run ended (null while running).';
COMMENT ON COLUMN drift.simulation_runs.command IS 'simulate or demo.';
COMMENT ON COLUMN drift.simulation_runs.seed IS 'Random seed: the same seed and parameters give the same traffic.';
COMMENT ON COLUMN drift.simulation_runs.quick IS 'Whether --quick (a shorter, smaller run) was given.';
COMMENT ON COLUMN drift.simulation_runs.starts IS 'Simulated time of the first interaction.';
COMMENT ON COLUMN drift.simulation_runs.baseline_ends IS
    'End of the drift-free period used as every simulated model''s baseline.';
COMMENT ON COLUMN drift.simulation_runs.ends IS 'Simulated time the run stops at.';
COMMENT ON COLUMN drift.simulation_runs.step IS 'Simulated time between two drift evaluations.';
COMMENT ON COLUMN drift.simulation_runs.params IS
    'Everything else that shaped the traffic: rate, embedding size and provider, chat provider.';
COMMENT ON COLUMN drift.simulation_runs.status IS 'running, finished or failed.';
COMMENT ON COLUMN drift.simulation_runs.error IS 'Why a failed run failed.';

CREATE TABLE drift.simulation_models (
    model text PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES drift.simulation_runs (id) ON DELETE CASCADE,
    scenario text NOT NULL
);
COMMENT ON TABLE drift.simulation_models IS
    'The models a simulation created; `--reset` deletes the data of these models and no others.';
COMMENT ON COLUMN drift.simulation_models.model IS 'Model name, as in drift.interaction_log.model.';
COMMENT ON COLUMN drift.simulation_models.run_id IS 'The run that created the model.';
COMMENT ON COLUMN drift.simulation_models.scenario IS 'The scenario simulated under this model name.';

CREATE TABLE drift.simulation_drifts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES drift.simulation_runs (id) ON DELETE CASCADE,
    model text NOT NULL REFERENCES drift.simulation_models (model) ON DELETE CASCADE,
    scenario text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('embedding', 'behavior', 'accuracy')),
    metric text NOT NULL,
    effect text NOT NULL,
    starts_at timestamptz NOT NULL,
    description text NOT NULL,
    magnitude jsonb NOT NULL DEFAULT '{}'::jsonb,
    seed bigint NOT NULL
);
CREATE INDEX simulation_drifts_run_idx ON drift.simulation_drifts (run_id, model);
COMMENT ON TABLE drift.simulation_drifts IS
    'Ground truth: each drift a simulation injected, when it started and how large it was.';
COMMENT ON COLUMN drift.simulation_drifts.id IS 'Injected drift id.';
COMMENT ON COLUMN drift.simulation_drifts.run_id IS 'The simulation run.';
COMMENT ON COLUMN drift.simulation_drifts.model IS 'The simulated model the drift was injected into.';
COMMENT ON COLUMN drift.simulation_drifts.scenario IS 'Scenario name (topic_shift, new_topic, ...).';
COMMENT ON COLUMN drift.simulation_drifts.kind IS 'The drift kind that should be detected: embedding, behavior or accuracy.';
COMMENT ON COLUMN drift.simulation_drifts.metric IS 'The metric that should be detected, as in drift.drift_events.metric.';
COMMENT ON COLUMN drift.simulation_drifts.effect IS
    'What was changed in the traffic: topic_shift, new_topic, refusal_spike, toxicity_spike, accuracy_decay.';
COMMENT ON COLUMN drift.simulation_drifts.starts_at IS 'Simulated time the drift starts; detection delay is measured from here.';
COMMENT ON COLUMN drift.simulation_drifts.description IS 'The drift in words, for reports.';
COMMENT ON COLUMN drift.simulation_drifts.magnitude IS 'Its size: the quantity before and after (rates, topic shares).';
COMMENT ON COLUMN drift.simulation_drifts.seed IS 'The run''s random seed (repeated for self-contained exports).';

CREATE TABLE drift.simulation_timeline (
    run_id bigint NOT NULL REFERENCES drift.simulation_runs (id) ON DELETE CASCADE,
    model text NOT NULL REFERENCES drift.simulation_models (model) ON DELETE CASCADE,
    as_of timestamptz NOT NULL,
    kind text NOT NULL,
    metric text NOT NULL,
    value double precision,
    baseline_value double precision,
    score double precision,
    threshold double precision,
    p_value double precision,
    drifted boolean,
    n_current bigint,
    n_baseline bigint,
    PRIMARY KEY (model, metric, as_of)
);
COMMENT ON TABLE drift.simulation_timeline IS
    'drift.drift_report(as_of) of each simulated model at each simulated evaluation: the report plots it.';
COMMENT ON COLUMN drift.simulation_timeline.run_id IS 'The simulation run.';
COMMENT ON COLUMN drift.simulation_timeline.model IS 'Simulated model.';
COMMENT ON COLUMN drift.simulation_timeline.as_of IS 'Simulated evaluation time.';
COMMENT ON COLUMN drift.simulation_timeline.kind IS 'Drift kind of the metric.';
COMMENT ON COLUMN drift.simulation_timeline.metric IS 'Metric name, as in drift.drift_status.';
COMMENT ON COLUMN drift.simulation_timeline.value IS 'The metric in the current window.';
COMMENT ON COLUMN drift.simulation_timeline.baseline_value IS 'The metric in the baseline window.';
COMMENT ON COLUMN drift.simulation_timeline.score IS 'Drift score compared with the threshold.';
COMMENT ON COLUMN drift.simulation_timeline.threshold IS 'Threshold in force.';
COMMENT ON COLUMN drift.simulation_timeline.p_value IS 'p-value of the drift test.';
COMMENT ON COLUMN drift.simulation_timeline.drifted IS 'Whether the engine judged the metric drifted at as_of.';
COMMENT ON COLUMN drift.simulation_timeline.n_current IS 'Samples in the current window.';
COMMENT ON COLUMN drift.simulation_timeline.n_baseline IS 'Samples in the baseline window.';

CREATE TABLE drift.simulation_actions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES drift.simulation_runs (id) ON DELETE CASCADE,
    model text NOT NULL REFERENCES drift.simulation_models (model) ON DELETE CASCADE,
    event_id bigint NOT NULL,
    sim_at timestamptz NOT NULL,
    kind text NOT NULL,
    metric text NOT NULL,
    actions text[] NOT NULL,
    outcome text NOT NULL,
    detail text
);
CREATE INDEX simulation_actions_run_idx ON drift.simulation_actions (run_id, model);
COMMENT ON TABLE drift.simulation_actions IS
    'What the worker did about each drift event of a simulated model, at which simulated time.';
COMMENT ON COLUMN drift.simulation_actions.id IS 'Row id.';
COMMENT ON COLUMN drift.simulation_actions.run_id IS 'The simulation run.';
COMMENT ON COLUMN drift.simulation_actions.model IS 'Simulated model.';
COMMENT ON COLUMN drift.simulation_actions.event_id IS 'The drift event (drift.drift_events.id) the worker processed.';
COMMENT ON COLUMN drift.simulation_actions.sim_at IS 'Simulated time the worker acted: the evaluation that raised the event.';
COMMENT ON COLUMN drift.simulation_actions.kind IS 'Drift kind of the event.';
COMMENT ON COLUMN drift.simulation_actions.metric IS 'Metric of the event.';
COMMENT ON COLUMN drift.simulation_actions.actions IS 'Names of the actions the worker ran, in order.';
COMMENT ON COLUMN drift.simulation_actions.outcome IS 'The event status after the worker: resolved, failed or pending (retry).';
COMMENT ON COLUMN drift.simulation_actions.detail IS 'The worker''s result or error message.';


-- migration 0004_detection

-- Detection: settings of the calibrated tests, the per-model embedding calibration, the bounded
-- baseline sample (novelty rate) and the per-bucket novelty cache. How the tests work:
-- db/repeatable/40_statistics.sql and 50_baselines.sql.

INSERT INTO drift.settings (key, value, description) VALUES
    ('false_alarm_interval', '30 days', 'Expected data time between false events of one drift-free model evaluated every bucket; sets the per-evaluation significance level (0 = use alpha at every evaluation).'),
    ('novelty_sample_size', '2000', 'Embeddings sampled from the baseline window for the nearest-neighbour novelty rate; bounds its cost whatever the history size.'),
    ('novelty_per_bucket', '200', 'At most this many embeddings of each bucket (a hashed-id subsample) are searched for the novelty rate: its cost stays flat however busy the model.'),
    ('novelty_quantile', '0.99', 'An embedding is novel when its nearest baseline-sample neighbour is farther than this quantile of the sample''s own nearest-neighbour distances.'),
    ('embedding_distance_floor', '0', 'Optional effect floor: centroid cosine distance below which a significant mean shift is not reported as drift (0 = off).')
ON CONFLICT (key) DO NOTHING;

-- ---------------------------------------------------------------------------------------------
-- Baseline calibration of the embedding tests
-- ---------------------------------------------------------------------------------------------
CREATE TABLE drift.embedding_calibration (
    model text PRIMARY KEY,
    dims integer NOT NULL,
    units integer NOT NULL,
    unit_source text NOT NULL CHECK (unit_source IN ('buckets', 'sample')),
    trace1 double precision NOT NULL,
    trace2 double precision NOT NULL,
    trace3 double precision NOT NULL,
    blocks integer NOT NULL,
    dispersion double precision NOT NULL,
    sample_n integer NOT NULL,
    novelty_radius double precision,
    novelty_expected double precision,
    computed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE drift.embedding_calibration IS 'Null distribution of the embedding tests, estimated from each model''s baseline when it is set.';
COMMENT ON COLUMN drift.embedding_calibration.model IS 'Model name.';
COMMENT ON COLUMN drift.embedding_calibration.dims IS 'Embedding dimension.';
COMMENT ON COLUMN drift.embedding_calibration.units IS 'Baseline units the covariance traces come from (non-empty buckets, or sample rows when the baseline has fewer than 30 buckets).';
COMMENT ON COLUMN drift.embedding_calibration.unit_source IS 'buckets (rollups) or sample (drift.baseline_samples rows).';
COMMENT ON COLUMN drift.embedding_calibration.trace1 IS 'tr(S): total variance of one embedding, from the spread of the baseline units'' means.';
COMMENT ON COLUMN drift.embedding_calibration.trace2 IS 'tr(S^2), from squared inner products of pairs of distinct units'' deviations.';
COMMENT ON COLUMN drift.embedding_calibration.trace3 IS 'tr(S^3), from triples of distinct units (clamped to the range any covariance allows).';
COMMENT ON COLUMN drift.embedding_calibration.blocks IS 'Window-length blocks of the baseline used for the overdispersion (0: too few, dispersion 1).';
COMMENT ON COLUMN drift.embedding_calibration.dispersion IS 'Spread of window-length block means relative to what independent embeddings predict (at least 1); scales the null.';
COMMENT ON COLUMN drift.embedding_calibration.sample_n IS 'Rows in drift.baseline_samples for this model.';
COMMENT ON COLUMN drift.embedding_calibration.novelty_radius IS 'Cosine distance: the novelty_quantile of the sample''s leave-one-out nearest-neighbour distances.';
COMMENT ON COLUMN drift.embedding_calibration.novelty_expected IS 'Share of sample points farther than the radius from their nearest other sample point: the novelty rate expected without drift.';
COMMENT ON COLUMN drift.embedding_calibration.computed_at IS 'When the calibration was computed.';

CREATE TABLE drift.baseline_samples (
    model text NOT NULL,
    id bigint NOT NULL,
    embedding vector NOT NULL,
    nn_distance double precision,
    PRIMARY KEY (model, id)
);
COMMENT ON TABLE drift.baseline_samples IS 'A fixed-size, deterministic pseudo-random sample (by hashed id) of each model''s baseline embeddings, with a per-model HNSW index: the reference of the novelty rate.';
COMMENT ON COLUMN drift.baseline_samples.model IS 'Model name.';
COMMENT ON COLUMN drift.baseline_samples.id IS 'The drift.embeddings_log id sampled.';
COMMENT ON COLUMN drift.baseline_samples.embedding IS 'The embedding.';
COMMENT ON COLUMN drift.baseline_samples.nn_distance IS 'Cosine distance to its nearest other sample point (leave-one-out).';

CREATE TABLE drift.novelty_rollup (
    model text NOT NULL,
    bucket timestamptz NOT NULL,
    n bigint NOT NULL,
    scored bigint NOT NULL,
    novel bigint NOT NULL,
    PRIMARY KEY (model, bucket)
);
COMMENT ON TABLE drift.novelty_rollup IS 'Novelty counts per model and bucket, so each embedding is compared with the baseline sample once; a bucket whose embedding count changed is scored again. Cleared when the baseline moves.';
COMMENT ON COLUMN drift.novelty_rollup.model IS 'Model name.';
COMMENT ON COLUMN drift.novelty_rollup.bucket IS 'Start of the time bucket.';
COMMENT ON COLUMN drift.novelty_rollup.n IS 'Embeddings in the bucket when it was scored (a bucket that has more now is scored again).';
COMMENT ON COLUMN drift.novelty_rollup.scored IS 'Embeddings searched: all of them, or a novelty_per_bucket subsample by hashed id.';
COMMENT ON COLUMN drift.novelty_rollup.novel IS 'Of those, embeddings farther than the novelty radius from every baseline-sample point.';


-- migration 0005_layout

-- The code layer moves out of the migrations: every function, trigger and view of schema drift
-- is now defined once, in db/repeatable/, and re-applied after every upgrade. Databases
-- migrated before this revision still hold the old definitions, some with return types the
-- new ones change (the report functions now return drift.report_row): drop them all here;
-- the repeatable files recreate them in the same transaction. Tables and data are untouched.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass::text AS obj FROM pg_class c
             WHERE c.relnamespace = 'drift'::regnamespace AND c.relkind IN ('v', 'm') LOOP
        EXECUTE format('DROP VIEW IF EXISTS %s CASCADE', r.obj);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure::text AS obj FROM pg_proc p WHERE p.pronamespace = 'drift'::regnamespace LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.obj);
    END LOOP;
END $$;

-- One row type for every drift report row (the report functions and the drift views).
CREATE TYPE drift.report_row AS (
    model text,
    kind text,
    metric text,
    score double precision,
    threshold double precision,
    p_value double precision,
    n_current bigint,
    n_baseline bigint,
    drifted boolean,
    window_start timestamptz,
    window_end timestamptz,
    value double precision,
    baseline_value double precision,
    details jsonb
);

-- Which code layer the database runs: a digest of db/repeatable/, written when it is applied,
-- so driftloop can tell a database whose functions are older than the installed package.
CREATE TABLE drift.code_layer (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    digest text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE drift.code_layer IS 'The functions, triggers and views in force: a digest of the repeatable SQL files applied by the last upgrade (one row).';
COMMENT ON COLUMN drift.code_layer.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN drift.code_layer.digest IS 'SHA-256 of the repeatable SQL files, in the order they were applied.';
COMMENT ON COLUMN drift.code_layer.applied_at IS 'When they were applied.';


-- migration 0007_roles

-- Least-privilege roles and the column that records who logged each row.
--
-- Roles are cluster-wide: every database of the server shares them, so they are created only
-- when absent (test databases, or a second driftloop database on the same server, reuse them).
-- They are NOLOGIN: an operator grants them to login users (see the README). What each may
-- do is in db/repeatable/95_security.sql, re-applied after every upgrade.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['driftloop_ingest', 'driftloop_worker', 'driftloop_reader'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created concurrently by a migration of another database
            END;
        END IF;
    END LOOP;
END $$;
COMMENT ON ROLE driftloop_ingest IS 'driftloop: inserts interactions, embeddings and feedback; reads only rows it logged.';
COMMENT ON ROLE driftloop_worker IS 'driftloop: claims and finishes drift events, runs actions, moves baselines, reads rollups and views.';
COMMENT ON ROLE driftloop_reader IS 'driftloop: reads the drift views and drift_events (dashboards, /metrics).';

-- Who logged a row: the JWT subject the edge functions (or PostgREST) set in
-- request.jwt.claims, else the database user. Row-level security compares it with the caller,
-- so one client never reads or labels another client's rows. An inline expression, not a
-- function call: migrations run before the functions of db/repeatable exist.
ALTER TABLE drift.interaction_log ADD COLUMN inserted_by text
    DEFAULT coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', current_user::text);
ALTER TABLE drift.embeddings_log ADD COLUMN inserted_by text
    DEFAULT coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', current_user::text);
COMMENT ON COLUMN drift.interaction_log.inserted_by IS 'Who logged the row: the JWT sub of a signed-in client, else the database user. Row-level security lets clients read and label only their own rows.';
COMMENT ON COLUMN drift.embeddings_log.inserted_by IS 'Who logged the row: the JWT sub of a signed-in client, else the database user.';


-- migration 0008_metrics

-- Evaluation history: every drift.evaluate() leaves one row per model, kind and metric and
-- rollup bucket of its as_of, so dashboards plot each score against its decision line over
-- time without re-running the statistics, and /metrics knows when each model was last evaluated.
CREATE TABLE drift.evaluation_history (
    model text NOT NULL,
    kind text NOT NULL,
    metric text NOT NULL,
    bucket timestamptz NOT NULL,
    as_of timestamptz NOT NULL,
    evaluated_at timestamptz NOT NULL DEFAULT now(),
    score double precision,
    threshold double precision,
    p_value double precision,
    value double precision,
    baseline_value double precision,
    drifted boolean,
    n_current bigint,
    n_baseline bigint,
    PRIMARY KEY (model, kind, metric, bucket)
);
-- /metrics reads the latest evaluated_at per model.
CREATE INDEX evaluation_history_model_evaluated_at ON drift.evaluation_history (model, evaluated_at);
COMMENT ON TABLE drift.evaluation_history IS 'One row per model, kind, metric and rollup bucket of the evaluation time: the drift report as drift.evaluate() saw it (the last evaluation in the bucket wins). Read by drift.score_timeseries and /metrics.';
COMMENT ON COLUMN drift.evaluation_history.model IS 'Model name.';
COMMENT ON COLUMN drift.evaluation_history.kind IS 'embedding, behavior or accuracy.';
COMMENT ON COLUMN drift.evaluation_history.metric IS 'Metric name, as in drift.drift_status.';
COMMENT ON COLUMN drift.evaluation_history.bucket IS 'Rollup bucket (bucket_width) holding as_of.';
COMMENT ON COLUMN drift.evaluation_history.as_of IS 'The evaluation time on the data clock (drift.evaluate(as_of)).';
COMMENT ON COLUMN drift.evaluation_history.evaluated_at IS 'Wall-clock time of the evaluation (transaction time).';
COMMENT ON COLUMN drift.evaluation_history.score IS 'The score, as in drift.drift_status.';
COMMENT ON COLUMN drift.evaluation_history.threshold IS 'The decision line the score was compared with.';
COMMENT ON COLUMN drift.evaluation_history.p_value IS 'p-value of the test.';
COMMENT ON COLUMN drift.evaluation_history.value IS 'Current value of the metric.';
COMMENT ON COLUMN drift.evaluation_history.baseline_value IS 'Baseline value of the metric.';
COMMENT ON COLUMN drift.evaluation_history.drifted IS 'Whether the row counted as drifted.';
COMMENT ON COLUMN drift.evaluation_history.n_current IS 'Samples in the current window.';
COMMENT ON COLUMN drift.evaluation_history.n_baseline IS 'Samples in the baseline.';


-- migration 0009_incidents

-- Incidents: the drift events of one model and kind whose windows overlap are one incident;
-- the worker runs a route's actions once per incident. The incident keeps the pre-drift
-- reference (the baseline before any of its actions moved it), against which recovery is judged.
CREATE TABLE drift.incidents (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    model text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('embedding', 'behavior', 'accuracy')),
    created_at timestamptz NOT NULL DEFAULT now(),
    first_as_of timestamptz NOT NULL,
    last_as_of timestamptz NOT NULL,
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    reference jsonb NOT NULL DEFAULT '{}',
    reference_centroid vector
);
CREATE INDEX incidents_model_kind_idx ON drift.incidents (model, kind, window_end DESC);
COMMENT ON TABLE drift.incidents IS 'One drift incident: the events of one model and kind whose windows overlap. The worker runs a route''s actions once per incident; recovery is judged against the incident''s pre-drift reference.';
COMMENT ON COLUMN drift.incidents.id IS 'Incident id (drift_events.incident_id).';
COMMENT ON COLUMN drift.incidents.model IS 'Model name.';
COMMENT ON COLUMN drift.incidents.kind IS 'embedding, behavior or accuracy.';
COMMENT ON COLUMN drift.incidents.created_at IS 'When the first event was raised (wall clock).';
COMMENT ON COLUMN drift.incidents.first_as_of IS 'Data time (evaluation as_of) of the first event.';
COMMENT ON COLUMN drift.incidents.last_as_of IS 'Data time of the latest event.';
COMMENT ON COLUMN drift.incidents.window_start IS 'Start of the earliest event window.';
COMMENT ON COLUMN drift.incidents.window_end IS 'End of the latest event window; a later event whose window starts before it joins the incident, one that starts exactly there opens a new incident that inherits this one''s reference.';
COMMENT ON COLUMN drift.incidents.reference IS 'The pre-drift reference: {"baseline": the baseline row when the first incident of a chain opened (without its vectors), "metrics": {metric: {"baseline_value", "threshold"}} from each metric''s first event, "continues": the incident whose reference it inherited}.';
COMMENT ON COLUMN drift.incidents.reference_centroid IS 'Sum of the pre-drift baseline''s embeddings (kind embedding): the centroid recovery is judged against.';

ALTER TABLE drift.drift_events ADD COLUMN incident_id bigint REFERENCES drift.incidents (id) ON DELETE SET NULL;
CREATE INDEX drift_events_incident_idx ON drift.drift_events (incident_id);
COMMENT ON COLUMN drift.drift_events.incident_id IS 'The incident the event belongs to (drift.incidents); set when the event is inserted.';

ALTER TABLE drift.action_runs ADD COLUMN recovery jsonb;
COMMENT ON COLUMN drift.action_runs.recovery IS 'The latest recovery verdict after the run (drift.record_recovery): {"as_of", "metrics": [{"metric", "value", "reference_value", "reference_limit", "within_reference", "baseline_value", "within_current"}], "recovered_vs_reference", "recovered_vs_current"}.';

-- Events raised before this revision: one incident each (their grouping is not reconstructed).
DO $$
DECLARE
    e record;
    new_id bigint;
BEGIN
    FOR e IN SELECT * FROM drift.drift_events ORDER BY id LOOP
        INSERT INTO drift.incidents (model, kind, created_at, first_as_of, last_as_of, window_start, window_end)
        VALUES (e.model, e.kind, e.created_at, coalesce(e.window_end, e.created_at), coalesce(e.window_end, e.created_at),
            coalesce(e.window_start, e.created_at), coalesce(e.window_end, e.created_at))
        RETURNING id INTO new_id;
        UPDATE drift.drift_events SET incident_id = new_id WHERE id = e.id;
    END LOOP;
END $$;


-- migration 0010_ingest_safety

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


-- migration 0011_partitions

-- Time partitions for the two log tables. interaction_log and embeddings_log become
-- partitioned by RANGE (created_at), one partition per partition_interval (a day by default,
-- a week with '7 days'), plus a DEFAULT partition that takes rows no partition covers yet
-- (back-filled history, a simulation replaying past days), so an insert never fails for want
-- of a partition. drift.ensure_partitions() (db/repeatable/35_partitions.sql) keeps
-- partitions_ahead partitions ready and moves default rows into their partition;
-- drift.prune_logs() drops whole partitions.
--
-- A primary key of a partitioned table must contain the partition key: the key is now
-- (id, created_at). id stays unique in practice (one identity sequence; the old sequence's
-- position is carried over), and lookups by id alone (late feedback and labels) use the
-- primary key's index on every partition. Idempotency keys already live outside the logs
-- (drift.idempotency_keys, 0010), which is what made this possible.
--
-- Existing rows are moved: the old table is renamed, the partitioned one created with the
-- same columns, defaults, checks and comments, the rows copied with their ids, the old table
-- dropped (its triggers with it; the code layer recreates them on the partitioned parents).

INSERT INTO drift.settings (key, value, description) VALUES
    ('partition_interval', '1 day', 'Time span of one partition of interaction_log and embeddings_log: 1 day (daily) to 7 days (weekly). A change applies to partitions created from then on.'),
    ('partitions_ahead', '3', 'Partitions drift.ensure_partitions() keeps ready beyond the current one (called by drift.evaluate(), driftloop db upgrade and db prune).'),
    ('rollup_hourly_after', '7 days', 'Rollup buckets older than this are compacted to one row per model and hour by drift.compact_rollups_hourly() (0 = never). Windows over older data are then counted by whole hours.')
ON CONFLICT (key) DO NOTHING;

DO $$
DECLARE
    t text;
    old regclass;
    seq text;
    seq_last bigint;
    seq_called boolean;
    rls boolean;
    force_rls boolean;
    table_comment text;
    iv interval := coalesce((SELECT value FROM drift.settings WHERE key = 'partition_interval'), '1 day')::interval;
    ahead integer := coalesce((SELECT value FROM drift.settings WHERE key = 'partitions_ahead'), '3')::integer;
    -- A Monday: daily partitions start at midnight UTC, weekly ones on Mondays.
    origin constant timestamptz := '2000-01-03 00:00:00+00';
    starts timestamptz;
    part text;
    steps timestamptz[];
BEGIN
    FOREACH t IN ARRAY ARRAY['interaction_log', 'embeddings_log'] LOOP
        old := format('drift.%I', t)::regclass;
        SELECT c.relrowsecurity, c.relforcerowsecurity, obj_description(c.oid, 'pg_class')
        INTO rls, force_rls, table_comment FROM pg_class c WHERE c.oid = old;
        seq := pg_get_serial_sequence(old::text, 'id');
        EXECUTE format('SELECT last_value, is_called FROM %s', seq) INTO seq_last, seq_called;
        EXECUTE format('ALTER TABLE drift.%I RENAME TO %I', t, t || '_unpartitioned');

        EXECUTE format(
            'CREATE TABLE drift.%I (LIKE drift.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY'
            ' INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS) PARTITION BY RANGE (created_at)',
            t, t || '_unpartitioned');
        EXECUTE format('SELECT setval(%L, %s, %L)', pg_get_serial_sequence(format('drift.%I', t), 'id'),
            seq_last, seq_called);
        EXECUTE format('COMMENT ON TABLE drift.%I IS %L', t,
            table_comment || ' Partitioned by created_at (partition_interval); old partitions are dropped by drift.prune_logs().');
        EXECUTE format('CREATE TABLE drift.%I PARTITION OF drift.%I DEFAULT', t || '_default', t);
        EXECUTE format('COMMENT ON TABLE drift.%I IS %L', t || '_default',
            'Rows of drift.' || t || ' that no time partition covers yet; drift.ensure_partitions() moves them into their partition.');

        -- A partition for every interval that holds rows, and for now .. partitions_ahead.
        EXECUTE format('SELECT array_agg(DISTINCT date_bin($1, created_at, $2)) FROM drift.%I', t || '_unpartitioned')
            INTO steps USING iv, origin;
        FOR starts IN
            SELECT DISTINCT x FROM unnest(coalesce(steps, '{}') || ARRAY(
                SELECT generate_series(date_bin(iv, now(), origin), date_bin(iv, now(), origin) + ahead * iv, iv))) x
        LOOP
            part := t || '_p' || to_char(starts AT TIME ZONE 'UTC', 'YYYYMMDD');
            EXECUTE format('CREATE TABLE drift.%I PARTITION OF drift.%I FOR VALUES FROM (%L) TO (%L)',
                part, t, starts, starts + iv);
        END LOOP;

        EXECUTE format('INSERT INTO drift.%I SELECT * FROM drift.%I', t, t || '_unpartitioned');
        EXECUTE format('DROP TABLE drift.%I', t || '_unpartitioned');
        EXECUTE format('ALTER TABLE drift.%I ADD CONSTRAINT %I PRIMARY KEY (id, created_at)', t, t || '_pkey');
        EXECUTE format('CREATE INDEX %I ON drift.%I (model, created_at)', t || '_model_created_at', t);
        IF rls THEN
            EXECUTE format('ALTER TABLE drift.%I ENABLE ROW LEVEL SECURITY', t);
        END IF;
        IF force_rls THEN
            EXECUTE format('ALTER TABLE drift.%I FORCE ROW LEVEL SECURITY', t);
        END IF;
    END LOOP;
END $$;


-- migration 0012_evidence

-- Sequential embedding evidence: a CUSUM per model, one row per folded bucket, so a drift that
-- persists accumulates evidence across windows instead of being judged one hour at a time.

INSERT INTO drift.settings (key, value, description) VALUES
    ('evidence_shift', '0.25', 'Shift of the mean, in baseline standard deviations per embedding along the direction of movement, that the sequential embedding test (mean_shift_evidence) is tuned to: smaller waits longer for subtler drifts.'),
    ('evidence_direction_window', '1 hour', 'The sequential embedding test projects each new bucket on the direction the mean moved over this much data just before it.'),
    ('evidence_horizon', '6 hours', 'When the sequential embedding test starts or catches up, it folds at most this much data back from now.')
ON CONFLICT (key) DO NOTHING;

CREATE TABLE drift.embedding_evidence (
    model text NOT NULL,
    bucket timestamptz NOT NULL,
    n bigint NOT NULL,
    z double precision,
    statistic double precision NOT NULL,
    since timestamptz,
    run_n bigint NOT NULL,
    PRIMARY KEY (model, bucket)
);
COMMENT ON TABLE drift.embedding_evidence IS 'The sequential embedding test of each model: its CUSUM statistic after each folded bucket since the baseline was set (drift.embedding_evidence_fold). Cleared when the baseline moves.';
COMMENT ON COLUMN drift.embedding_evidence.model IS 'Model name.';
COMMENT ON COLUMN drift.embedding_evidence.bucket IS 'Start of the folded bucket.';
COMMENT ON COLUMN drift.embedding_evidence.n IS 'Embeddings of the bucket when it was folded (later arrivals are not counted).';
COMMENT ON COLUMN drift.embedding_evidence.z IS 'The bucket''s embeddings projected on the direction the mean moved before it, standardized: N(0, n) without drift. NULL when that direction had fewer than min_samples embeddings.';
COMMENT ON COLUMN drift.embedding_evidence.statistic IS 'CUSUM after this bucket, in nats: max(0, previous + evidence_shift * z - n * evidence_shift^2 / 2).';
COMMENT ON COLUMN drift.embedding_evidence.since IS 'First bucket of the current run of evidence (the statistic was 0 before it); NULL while the statistic is 0.';
COMMENT ON COLUMN drift.embedding_evidence.run_n IS 'Embeddings folded since the run began.';

-- The whitening of the sequential test: its direction is the ridge-whitened mean shift,
-- (S_a + ridge I)^-1 (window mean - baseline mean), S_a the covariance of half the baseline
-- sample; the other half's covariance S_b gives the variance along it.
ALTER TABLE drift.embedding_calibration
    ADD COLUMN evidence_rank integer,
    ADD COLUMN evidence_bias double precision;
COMMENT ON COLUMN drift.embedding_calibration.evidence_rank IS 'Features the sequential test whitens in: the embedding dimensions, or (wider embeddings) inner products with that many centred baseline-sample points. NULL: no sequential test (too small a sample).';
COMMENT ON COLUMN drift.embedding_calibration.evidence_bias IS 'tr((S_a + ridge I)^-1 S_b) / baseline rows: the mean per embedding of the sequential test''s projection without drift, which the estimated baseline mean puts there; taken off.';

CREATE TABLE drift.embedding_whitening (
    model text NOT NULL,
    i integer NOT NULL,
    landmark vector,
    cov_row vector,
    inverse_row vector,
    PRIMARY KEY (model, i)
);
COMMENT ON TABLE drift.embedding_whitening IS 'Per model and feature i: the feature map, the features'' sample covariance and its ridge inverse, computed from drift.baseline_samples when the baseline is set (drift.embedding_whiten).';
COMMENT ON COLUMN drift.embedding_whitening.model IS 'Model name.';
COMMENT ON COLUMN drift.embedding_whitening.i IS 'Feature number, from 1.';
COMMENT ON COLUMN drift.embedding_whitening.landmark IS 'Feature i is the inner product with this unit vector, one of an orthonormal basis of the span of centred baseline-sample points (wider embeddings); NULL: feature i is embedding dimension i.';
COMMENT ON COLUMN drift.embedding_whitening.cov_row IS 'Row i of the covariance S_b of the features over one half of the baseline sample (even rows in id order): the variance along a direction.';
COMMENT ON COLUMN drift.embedding_whitening.inverse_row IS 'Row i of (S_a + ridge I)^-1, S_a the covariance over the other half (odd rows), ridge its mean eigenvalue (tr S_a / rank).';


-- migration 0014_reliability

-- Reliability under restarts and growth.
--
-- 1. drift_events.lease_renewed_at: when the holder last took or renewed its lease. A lease
--    renewed before the server (re)started gets one full lease length after the start before
--    another worker may take it over (drift.lease_expiry): the lease clock kept running while
--    no holder could reach the server to renew it.
-- 2. drift.interaction_id_ranges: the id span [min_id, max_id] of the rows written into each
--    partition step of interaction_log (one row per insert statement and step, folded by
--    drift.fold_id_ranges). A late label by id finds the step of its row here and updates
--    with a created_at range the planner prunes on: one partition, not every partition's key.
-- 3. drift.action_run_counts: the finished runs per action and outcome, and the bins of the
--    duration and reaction histograms, kept by triggers on action_runs, so /metrics reads a
--    few rows however many runs there are.

ALTER TABLE drift.drift_events ADD COLUMN lease_renewed_at timestamptz;
COMMENT ON COLUMN drift.drift_events.lease_renewed_at IS
    'When the holder last took or extended its lease (lease_expires_at minus the lease length). A lease renewed before the server started is not taken over until the server has been up for one lease length.';
UPDATE drift.drift_events SET lease_renewed_at = claimed_at WHERE status = 'running';

CREATE TABLE drift.interaction_id_ranges (
    starts timestamptz NOT NULL,
    ends timestamptz NOT NULL,
    min_id bigint NOT NULL,
    max_id bigint NOT NULL,
    CHECK (starts < ends AND min_id <= max_id)
);
COMMENT ON TABLE drift.interaction_id_ranges IS 'Where the rows of drift.interaction_log are by id: the ids written into the partition step [starts, ends), one row per insert statement until drift.fold_id_ranges() merges them. Read by drift.interaction_steps(id).';
COMMENT ON COLUMN drift.interaction_id_ranges.starts IS 'Start of the partition step (drift.partition_start of created_at).';
COMMENT ON COLUMN drift.interaction_id_ranges.ends IS 'End of the step (exclusive).';
COMMENT ON COLUMN drift.interaction_id_ranges.min_id IS 'Smallest id written into the step.';
COMMENT ON COLUMN drift.interaction_id_ranges.max_id IS 'Largest id written into the step.';
CREATE INDEX interaction_id_ranges_ids ON drift.interaction_id_ranges USING gist (int8range(min_id, max_id, '[]'));
CREATE INDEX interaction_id_ranges_step ON drift.interaction_id_ranges (starts, ends);
INSERT INTO drift.interaction_id_ranges (starts, ends, min_id, max_id)
SELECT s, s + iv, min(id), max(id)
FROM (SELECT coalesce((SELECT value FROM drift.settings WHERE key = 'partition_interval'), '1 day')::interval AS iv) c,
     LATERAL (SELECT l.id, date_bin(c.iv, l.created_at, timestamptz '2000-01-03 00:00:00+00') AS s
              FROM drift.interaction_log l) x
GROUP BY s, iv;

CREATE TABLE drift.action_run_counts (
    family text NOT NULL CHECK (family IN ('outcome', 'duration', 'reaction')),
    action text NOT NULL,
    outcome text NOT NULL,
    bin integer NOT NULL,
    runs bigint NOT NULL,
    seconds_sum double precision NOT NULL,
    PRIMARY KEY (family, action, outcome, bin)
);
COMMENT ON TABLE drift.action_run_counts IS 'Counters of drift.action_runs kept by its triggers (drift.count_action_runs, drift.count_action_runs_insert; deleted runs stay counted): finished runs per action and outcome (family outcome), runs per action and duration bin (duration), first runs per reaction-time bin (reaction). The views behind /metrics read these few rows instead of every run.';
COMMENT ON COLUMN drift.action_run_counts.family IS 'outcome, duration or reaction.';
COMMENT ON COLUMN drift.action_run_counts.action IS 'Action name (empty for reaction).';
COMMENT ON COLUMN drift.action_run_counts.outcome IS 'Run outcome (family outcome; empty otherwise).';
COMMENT ON COLUMN drift.action_run_counts.bin IS 'Histogram bin: the number of bounds below the value (drift.histogram_bin); 0 for family outcome.';
COMMENT ON COLUMN drift.action_run_counts.runs IS 'Runs (for reaction: events) counted.';
COMMENT ON COLUMN drift.action_run_counts.seconds_sum IS 'Their total seconds (duration or reaction time; 0 for family outcome).';
-- The counts of the runs already recorded (the bounds as the views of this release use them;
-- from here on the triggers of db/repeatable/75_timeseries.sql keep them).
INSERT INTO drift.action_run_counts (family, action, outcome, bin, runs, seconds_sum)
SELECT 'outcome', r.action, r.outcome, 0, count(*), 0
FROM drift.action_runs r WHERE r.outcome <> 'running'
GROUP BY r.action, r.outcome
UNION ALL
SELECT 'duration', r.action, '', width_bucket(r.d, b.bounds) - (r.d = ANY (b.bounds))::int, count(*), sum(r.d)
FROM (SELECT action, date_part('epoch', finished_at - started_at) AS d FROM drift.action_runs
      WHERE outcome IN ('succeeded', 'failed', 'lease_lost') AND finished_at IS NOT NULL) r,
     (SELECT '{0.01,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,300,900}'::float8[] AS bounds) b
GROUP BY 2, 4
UNION ALL
SELECT 'reaction', '', '', width_bucket(x.d, b.bounds) - (x.d = ANY (b.bounds))::int, count(*), sum(x.d)
FROM (SELECT greatest(date_part('epoch', f.started_at - e.created_at), 0) AS d
      FROM (SELECT event_id, min(started_at) AS started_at FROM drift.action_runs GROUP BY event_id) f
      JOIN drift.drift_events e ON e.id = f.event_id) x,
     (SELECT '{0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,300,900,3600}'::float8[] AS bounds) b
GROUP BY 4;

-- 4. drift.event_status_counts: events per status as appended deltas (+1/-1 per transition,
--    written by triggers on drift_events, folded by drift.compact_rollups), so /metrics sums a
--    few rows instead of counting every event ever raised.
CREATE TABLE drift.event_status_counts (
    status text NOT NULL,
    events bigint NOT NULL
);
COMMENT ON TABLE drift.event_status_counts IS 'Events per status as deltas: the sum of events per status is the number of drift_events in it. Appended by triggers on drift_events (no row is updated, so claims never wait on a counter), folded to one row per status by drift.fold_event_status_counts(). Read by drift.event_status_totals.';
COMMENT ON COLUMN drift.event_status_counts.status IS 'pending, running, resolved or failed.';
COMMENT ON COLUMN drift.event_status_counts.events IS 'Events that entered (positive) or left (negative) the status.';
INSERT INTO drift.event_status_counts (status, events) SELECT status, count(*) FROM drift.drift_events GROUP BY status;


-- migration 0015_command_exits

-- A command's exit, recorded the moment the child exits (drift.record_exit), before its run is
-- finished: a worker SIGKILLed in between leaves the outcome to the worker that takes the event
-- over (drift.take_over_runs), which finishes the run with it instead of running the command
-- a second time.
ALTER TABLE drift.action_runs ADD COLUMN exit_code integer, ADD COLUMN exited_at timestamptz;
COMMENT ON COLUMN drift.action_runs.exit_code IS 'A command''s exit status, recorded as soon as it exited (NULL: not a command, or not exited yet).';
COMMENT ON COLUMN drift.action_runs.exited_at IS 'When the command''s exit was recorded; a run still running with an exit is finished by the next holder with that outcome, not run again.';


-- migration 0016_whitened_window

-- The whitened window test (metric whitened_mean_shift): the mean test in the sequential
-- test's whitened features, over a window longer than the current one, so that a small
-- drift that persists for hours is judged on all of that data at once.

INSERT INTO drift.settings (key, value, description) VALUES
    ('whitened_window', '3 hours', 'Data the whitened embedding mean test (whitened_mean_shift) judges at once, ending at the current window''s end: longer catches smaller drifts that persist, later.')
ON CONFLICT (key) DO NOTHING;

ALTER TABLE drift.embedding_calibration
    ADD COLUMN whitened_trace1 double precision,
    ADD COLUMN whitened_trace2 double precision,
    ADD COLUMN whitened_trace3 double precision,
    ADD COLUMN whitened_dispersion double precision;
COMMENT ON COLUMN drift.embedding_calibration.whitened_trace1 IS 'tr M, M = (S_a + ridge I)^-1 S_b (the sequential test''s whitening): the whitened mean statistic has mean tr M h without drift, h = dispersion (1/n + 1/n_baseline).';
COMMENT ON COLUMN drift.embedding_calibration.whitened_trace2 IS 'tr M^2, less the bias of S_b as a sample covariance: the statistic''s variance is 2 tr M^2 h^2 without drift.';
COMMENT ON COLUMN drift.embedding_calibration.whitened_dispersion IS 'How much more the whitened statistic of whitened_window-long blocks of the baseline varies than independent embeddings predict (at least 1; 1 with fewer than 6 blocks): traffic that wanders over hours.';
COMMENT ON COLUMN drift.embedding_calibration.whitened_trace3 IS 'tr M^3, less the bias of S_b: its third cumulant is 8 tr M^3 h^3, for the three-moment chi-square fit of its tail.';


-- repeatable 10_settings.sql

-- Settings: one reader, one validator for every key.

CREATE OR REPLACE FUNCTION drift.setting(p_key text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$ SELECT value FROM drift.settings WHERE key = p_key $$;
COMMENT ON FUNCTION drift.setting(text) IS 'The value of one drift.settings key as text (NULL when unknown).';

CREATE OR REPLACE FUNCTION drift.setting_spec(p_key text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- Every key of the engine with its type and range: (type, low, high), bounds inclusive,
    -- '>0' for "positive". Windows are bounded: an interval of '1000000 years' or 'infinity'
    -- would silently stop detection or overflow the timestamp arithmetic of evaluate().
    SELECT CASE p_key
        WHEN 'current_window'           THEN ARRAY['interval', '>0', '90 days']
        WHEN 'bucket_width'             THEN ARRAY['interval', '>0', '1 day']
        WHEN 'evaluate_interval'        THEN ARRAY['interval', '0', '90 days']
        WHEN 'cooldown'                 THEN ARRAY['interval', '0', '90 days']
        WHEN 'auto_baseline'            THEN ARRAY['interval', '0', '90 days']
        -- data time between false alarms: a quiet model may rightly ask for years
        WHEN 'false_alarm_interval'     THEN ARRAY['interval', '0', '3650 days']
        WHEN 'min_samples'              THEN ARRAY['integer', '1', '1000000000']
        -- log partitions: daily to weekly; how many kept ready; when old rollups become hourly
        WHEN 'partition_interval'       THEN ARRAY['interval', '1 day', '7 days']
        WHEN 'partitions_ahead'         THEN ARRAY['integer', '1', '366']
        WHEN 'rollup_hourly_after'      THEN ARRAY['interval', '0', '3650 days']
        WHEN 'novelty_per_bucket'       THEN ARRAY['integer', '10', '1000000']
        WHEN 'novelty_sample_size'      THEN ARRAY['integer', '100', '100000']
        WHEN 'alpha'                    THEN ARRAY['number', '0', '1']
        WHEN 'embedding_drift_threshold' THEN ARRAY['number', '0', '1']
        WHEN 'refusal_rate_threshold'   THEN ARRAY['number', '0', '1']
        WHEN 'toxicity_rate_threshold'  THEN ARRAY['number', '0', '1']
        WHEN 'accuracy_drop_threshold'  THEN ARRAY['number', '0', '1']
        WHEN 'toxic_at'                 THEN ARRAY['number', '0', '1']
        WHEN 'novelty_quantile'         THEN ARRAY['number', '0.5', '0.999']
        WHEN 'embedding_distance_floor' THEN ARRAY['number', '0', '2']
        -- the sequential embedding test: its reference shift, direction window and catch-up reach
        WHEN 'evidence_shift'           THEN ARRAY['number', '0.01', '2']
        WHEN 'evidence_direction_window' THEN ARRAY['interval', '>0', '1 day']
        WHEN 'evidence_horizon'         THEN ARRAY['interval', '>0', '7 days']
        -- the whitened window test: how much data it judges at once
        WHEN 'whitened_window'          THEN ARRAY['interval', '>0', '7 days']
    END
$$;
COMMENT ON FUNCTION drift.setting_spec(text) IS 'Type and range of an engine setting as {type, low, high} (NULL for a key of the user''s own).';

CREATE OR REPLACE FUNCTION drift.settings_validate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    spec text[] := drift.setting_spec(NEW.key);
    low text := spec[2];
    high text := spec[3];
    positive boolean := low = '>0';
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.key IS DISTINCT FROM OLD.key AND drift.setting_spec(OLD.key) IS NOT NULL THEN
        RAISE EXCEPTION 'drift setting % cannot be renamed: the engine reads it by name', OLD.key
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF spec IS NULL THEN
        RETURN NEW;
    END IF;
    IF positive THEN
        low := '0';
    END IF;
    BEGIN
        IF spec[1] = 'interval' THEN
            IF NEW.value::interval < low::interval OR (positive AND NEW.value::interval = low::interval) THEN
                RAISE EXCEPTION '%', CASE WHEN positive THEN 'must be positive' ELSE 'must not be negative' END;
            END IF;
            -- also refuses 'infinity' (PostgreSQL 17+), which compares above every finite interval
            IF NEW.value::interval > high::interval THEN
                RAISE EXCEPTION 'must be at most %', high;
            END IF;
        ELSIF spec[1] = 'integer' THEN
            IF NEW.value::integer < low::integer OR NEW.value::integer > coalesce(high::integer, 2147483647) THEN
                RAISE EXCEPTION 'must be an integer %', CASE WHEN high IS NULL THEN 'of at least ' || low
                                                             ELSE 'between ' || low || ' and ' || high END;
            END IF;
        ELSE
            -- NOT (x BETWEEN ...) also refuses NaN.
            IF NOT (NEW.value::double precision BETWEEN low::double precision AND high::double precision) THEN
                RAISE EXCEPTION 'must be a number between % and %', low, high;
            END IF;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'invalid value % for drift setting %: %', quote_literal(NEW.value), NEW.key, SQLERRM
            USING ERRCODE = 'invalid_parameter_value';
    END;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION drift.settings_validate() IS 'Rejects a drift.settings value of the wrong type or range for its key (every key of the engine), with a clear error; engine keys cannot be renamed.';
CREATE OR REPLACE TRIGGER settings_validate BEFORE INSERT OR UPDATE ON drift.settings
    FOR EACH ROW EXECUTE FUNCTION drift.settings_validate();

CREATE OR REPLACE FUNCTION drift.settings_keep() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- Deleting min_samples made evaluate() divide by zero, deleting bucket_width failed every
    -- insert: an engine setting can be changed, never removed.
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'drift.settings cannot be truncated: the engine reads its rows'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF drift.setting_spec(OLD.key) IS NOT NULL THEN
        RAISE EXCEPTION 'drift setting % cannot be deleted: the engine reads it', OLD.key
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'Change its value with UPDATE drift.settings SET value = ... WHERE key = ...';
    END IF;
    RETURN OLD;
END $$;
COMMENT ON FUNCTION drift.settings_keep() IS 'Refuses deleting an engine setting (and truncating drift.settings); keys of the user''s own may be deleted.';
CREATE OR REPLACE TRIGGER settings_keep BEFORE DELETE ON drift.settings
    FOR EACH ROW EXECUTE FUNCTION drift.settings_keep();
CREATE OR REPLACE TRIGGER settings_keep_truncate BEFORE TRUNCATE ON drift.settings
    FOR EACH STATEMENT EXECUTE FUNCTION drift.settings_keep();


-- repeatable 20_ingest.sql

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


-- repeatable 30_rollups.sql

-- Rollups: time buckets, compaction of the delta rows, and window aggregates over both.

-- No SET search_path here: it would stop the planner from inlining this per-row call
-- (date_bin lives in pg_catalog, which is always searched first).
CREATE OR REPLACE FUNCTION drift.bucket_of(p_at timestamptz, p_width interval) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.date_bin(p_width, p_at, timestamptz '2000-01-01 00:00:00+00') $$;
COMMENT ON FUNCTION drift.bucket_of(timestamptz, interval) IS 'Start of the rollup bucket holding a timestamp.';

-- ---------------------------------------------------------------------------------------------
-- Compaction and window aggregates
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.fold_deltas(p_rollup regclass, p_delta regclass) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    sums text;
    adds text;
    k bigint;
BEGIN
    -- Every column but the key is an additive aggregate (counts, sums, vector sums): the
    -- rollup table's own column list is the one definition of what is folded.
    SELECT string_agg(format('sum(%I)', a.attname), ', ' ORDER BY a.attnum),
           string_agg(format('%1$I = r.%1$I + excluded.%1$I', a.attname), ', ' ORDER BY a.attnum)
    INTO sums, adds
    FROM pg_attribute a
    WHERE a.attrelid = p_rollup AND a.attnum > 0 AND NOT a.attisdropped AND a.attname NOT IN ('model', 'bucket');
    EXECUTE format($q$
        WITH moved AS (DELETE FROM %2$s RETURNING *)
        INSERT INTO %1$s AS r SELECT model, bucket, %3$s FROM moved GROUP BY model, bucket ORDER BY model, bucket
        ON CONFLICT (model, bucket) DO UPDATE SET %4$s $q$, p_rollup, p_delta, sums, adds);
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN k;
END $$;
COMMENT ON FUNCTION drift.fold_deltas(regclass, regclass) IS 'Moves the rows of a rollup delta table into its rollup table, one row per model and bucket, adding every aggregate column; returns the rollup rows written.';

CREATE OR REPLACE FUNCTION drift.compact_rollups() RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- One compactor at a time; others simply read the deltas that are still there.
    IF NOT pg_try_advisory_xact_lock(hashtext('drift.compact_rollups')) THEN
        RETURN 0;
    END IF;
    PERFORM drift.fold_id_ranges();  -- the id spans of the log's partition steps (36_id_ranges.sql)
    PERFORM drift.fold_event_status_counts();  -- events per status for /metrics (80_queue.sql)
    RETURN drift.fold_deltas('drift.embedding_rollup', 'drift.embedding_rollup_delta')
         + drift.fold_deltas('drift.interaction_rollup', 'drift.interaction_rollup_delta');
END $$;
COMMENT ON FUNCTION drift.compact_rollups() IS 'Folds the rollup deltas into one row per model and bucket; returns the rollup rows written. Skips (returns 0) while another session compacts.';

-- The one read of "rollups plus pending deltas" that both embedding readers below share. It
-- has no SET clause so that the planner inlines it into each caller's query: embedding_window
-- then runs the plan it ran before (two index range scans, one aggregate). Measured: written
-- as a sum over embedding_buckets (a second function call and a per-bucket aggregate first)
-- embedding_window took 1.4x as long over an hour and 2.2x over a six-day baseline.
-- (Only columns and pg_catalog operators: the caller's search_path cannot change its meaning.)
CREATE OR REPLACE FUNCTION drift.embedding_rollup_rows(p_model text, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (bucket timestamptz, n bigint, vec_sum vector, sq_sum vector)
LANGUAGE sql STABLE
AS $$
    SELECT r.bucket, r.n, r.vec_sum, r.sq_sum FROM drift.embedding_rollup r
    WHERE r.model = p_model AND r.bucket >= p_from AND r.bucket < p_to
    UNION ALL
    SELECT d.bucket, d.n, d.vec_sum, d.sq_sum FROM drift.embedding_rollup_delta d
    WHERE d.model = p_model AND d.bucket >= p_from AND d.bucket < p_to
$$;
COMMENT ON FUNCTION drift.embedding_rollup_rows(text, timestamptz, timestamptz) IS 'The embedding rollup rows and pending delta rows of a model in [from, to): a bucket not compacted yet has several. Read through drift.embedding_window or drift.embedding_buckets.';

-- The window readers run their cached generic plan (an index range scan on (model, bucket),
-- right for any window). Left to choose, the plan cache re-plans every call once the rollups
-- hold months of buckets: the generic plan's estimate for an unknown range grows with the
-- table, so it loses to a custom plan, which costs a planning per call (measured: every
-- evaluation 1.3-1.8x slower with 90 days of rollups than with 1 day, at the same work).
CREATE OR REPLACE FUNCTION drift.embedding_window(p_model text, p_from timestamptz, p_to timestamptz,
    OUT n bigint, OUT vec_sum vector, OUT sq_sum vector)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
SET plan_cache_mode = force_generic_plan
AS $$
    SELECT coalesce(sum(s.n), 0)::bigint, sum(s.vec_sum), sum(s.sq_sum)
    FROM drift.embedding_rollup_rows(p_model, p_from, p_to) s
$$;
COMMENT ON FUNCTION drift.embedding_window(text, timestamptz, timestamptz) IS 'Embedding count, sum and sum of squares of a model over the buckets in [from, to), from rollups and pending deltas.';

CREATE OR REPLACE FUNCTION drift.embedding_buckets(p_model text, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (bucket timestamptz, n bigint, vec_sum vector, sq_sum vector)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
SET plan_cache_mode = force_generic_plan
AS $$
    SELECT s.bucket, sum(s.n)::bigint, sum(s.vec_sum), sum(s.sq_sum)
    FROM drift.embedding_rollup_rows(p_model, p_from, p_to) s
    GROUP BY s.bucket
$$;
COMMENT ON FUNCTION drift.embedding_buckets(text, timestamptz, timestamptz) IS 'Embedding count, sum and sum of squares of a model per non-empty bucket in [from, to) (in no particular order), from rollups and pending deltas.';

CREATE OR REPLACE FUNCTION drift.interaction_window(p_model text, p_from timestamptz, p_to timestamptz)
RETURNS drift.interaction_rollup
LANGUAGE sql STABLE
SET search_path = pg_catalog
SET plan_cache_mode = force_generic_plan  -- see drift.embedding_window
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


-- repeatable 35_partitions.sql

-- Partitions of the log tables (created by migration 0011_partitions): the partitions that
-- exist, creating the ones ahead, retention, and hourly compaction of old rollup buckets.
--
-- Each log is partitioned by RANGE (created_at) in steps of partition_interval, aligned to
-- midnight UTC (weekly ones start on Mondays), plus a DEFAULT partition for rows no step
-- covers yet. The rollups, baselines and events do not depend on the raw rows once they are
-- counted, so a whole partition can be dropped and detection goes on unchanged.

CREATE OR REPLACE FUNCTION drift.log_partitions()
RETURNS TABLE (log text, partition text, starts timestamptz, ends timestamptz, is_default boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT parent.relname::text, child.relname::text, b[1]::timestamptz, b[2]::timestamptz,
        pg_get_expr(child.relpartbound, child.oid) = 'DEFAULT'
    FROM pg_inherits i
    JOIN pg_class parent ON parent.oid = i.inhparent
    JOIN pg_class child ON child.oid = i.inhrelid
    LEFT JOIN LATERAL regexp_match(pg_get_expr(child.relpartbound, child.oid),
                                   'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS b ON true
    WHERE parent.relnamespace = 'drift'::regnamespace
      AND parent.relname IN ('interaction_log', 'embeddings_log')
    ORDER BY 1, 3 NULLS FIRST
$$;
COMMENT ON FUNCTION drift.log_partitions() IS 'The partitions of drift.interaction_log and drift.embeddings_log with their time range [starts, ends) (NULL for the default partition), read from the catalog.';

CREATE OR REPLACE FUNCTION drift.partition_start(p_at timestamptz, p_interval interval)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$ SELECT date_bin(p_interval, p_at, timestamptz '2000-01-03 00:00:00+00') $$;
COMMENT ON FUNCTION drift.partition_start(timestamptz, interval) IS 'Start of the partition step holding a timestamp (midnight UTC; weekly steps start on Mondays).';

CREATE OR REPLACE FUNCTION drift.create_log_partition(p_log text, p_starts timestamptz, p_ends timestamptz)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    name text := p_log || '_p' || to_char(p_starts AT TIME ZONE 'UTC', 'YYYYMMDD');
BEGIN
    IF p_log NOT IN ('interaction_log', 'embeddings_log') THEN
        RAISE EXCEPTION 'not a driftloop log table: %', p_log USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_regclass(format('drift.%I', name)) IS NOT NULL THEN  -- another width starting the same day
        name := name || to_char(p_starts AT TIME ZONE 'UTC', '"h"HH24') || '_' || to_char(p_ends AT TIME ZONE 'UTC', 'YYYYMMDD');
    END IF;
    -- Created apart, filled with the default partition's rows of its range, then attached:
    -- a partition cannot be created while the default partition holds rows of its range. The
    -- moved rows were counted by the rollups when first inserted; no trigger fires here
    -- (statement triggers belong to the parent, and the new table has no triggers yet).
    EXECUTE format('CREATE TABLE drift.%I (LIKE drift.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
                   ' INCLUDING STORAGE INCLUDING COMPRESSION)', name, p_log);
    EXECUTE format('WITH moved AS (DELETE FROM drift.%I WHERE created_at >= $1 AND created_at < $2 RETURNING *)'
                   ' INSERT INTO drift.%I SELECT * FROM moved', p_log || '_default', name)
        USING p_starts, p_ends;
    EXECUTE format('ALTER TABLE drift.%I ATTACH PARTITION drift.%I FOR VALUES FROM (%L) TO (%L)',
                   p_log, name, p_starts, p_ends);
    -- Like every table of schema drift; no role gets rights on a partition itself: the
    -- parent's rights, policies and statement triggers apply to every access through it.
    EXECUTE format('ALTER TABLE drift.%I ENABLE ROW LEVEL SECURITY', name);
    RETURN name;
END $$;
COMMENT ON FUNCTION drift.create_log_partition(text, timestamptz, timestamptz) IS 'Creates the partition [starts, ends) of a log table, moving in the rows the default partition holds for that range (internal; see drift.ensure_partitions).';

-- SECURITY DEFINER: drift.evaluate() calls it, and whoever evaluates (the worker role,
-- pg_cron) may not create tables in schema drift. It creates only log partitions of fixed
-- names and ranges, at most a year of steps ahead.
CREATE OR REPLACE FUNCTION drift.ensure_partitions(p_until timestamptz DEFAULT NULL, p_from_default boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
DECLARE
    iv interval := drift.setting('partition_interval')::interval;
    until timestamptz := least(coalesce(p_until, now() + drift.setting('partitions_ahead')::integer * iv),
                               now() + 366 * iv);
    t text;
    s timestamptz;
    e timestamptz;
    covered timestamptz;
    created integer := 0;
BEGIN
    -- Fast path (every evaluate() call): the partition of the last step exists in both logs,
    -- looked up by name (reading every partition's bounds costs ~0.15 ms per partition). A
    -- partition named otherwise (after a partition_interval change) takes the full check.
    IF NOT p_from_default AND (
        SELECT bool_and(c.relispartition) AND count(*) = 2
        FROM pg_class c
        WHERE c.relnamespace = 'drift'::regnamespace
          AND c.relname IN ('interaction_log_p' || to_char(drift.partition_start(until, iv) AT TIME ZONE 'UTC', 'YYYYMMDD'),
                            'embeddings_log_p' || to_char(drift.partition_start(until, iv) AT TIME ZONE 'UTC', 'YYYYMMDD'))
    ) THEN
        RETURN 0;
    END IF;
    IF NOT p_from_default AND (
        SELECT count(*) = 2 AND bool_and(x.last_end >= until)
        FROM (SELECT max(p.ends) AS last_end FROM drift.log_partitions() p WHERE NOT p.is_default GROUP BY p.log) x
    ) THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('drift.ensure_partitions'));
    FOREACH t IN ARRAY ARRAY['interaction_log', 'embeddings_log'] LOOP
        -- From now on to `until`; with p_from_default also every step the default partition
        -- has rows of (maintenance: back-filled history leaves the default partition).
        FOR s IN
            SELECT generate_series(drift.partition_start(now(), iv), until, iv)
            UNION
            SELECT d.step FROM drift.default_steps(t, iv) d WHERE p_from_default
            ORDER BY 1
        LOOP
            e := s + iv;
            -- Steps may overlap partitions of another width (partition_interval changed):
            -- create only the uncovered part. Skip every partition covering the start in turn:
            -- the one after a covering partition may start exactly where it ends (daily
            -- partitions inside a new weekly step).
            LOOP
                SELECT max(p.ends) INTO covered FROM drift.log_partitions() p
                WHERE p.log = t AND NOT p.is_default AND p.starts <= s AND p.ends > s;
                EXIT WHEN covered IS NULL OR s >= e;
                s := covered;
            END LOOP;
            SELECT least(e, min(p.starts)) INTO e FROM drift.log_partitions() p
            WHERE p.log = t AND NOT p.is_default AND p.starts > s AND p.starts < e;
            IF s < e THEN
                PERFORM drift.create_log_partition(t, s, e);
                created := created + 1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN created;
END $$;
COMMENT ON FUNCTION drift.ensure_partitions(timestamptz, boolean) IS 'Creates the log partitions from now to p_until (default: partitions_ahead steps ahead) that do not exist yet; with p_from_default also those for the rows in the default partitions, moving those rows in. Returns the partitions created. Called by drift.evaluate() (cheap when nothing is missing), driftloop db upgrade and db prune.';

CREATE OR REPLACE FUNCTION drift.default_steps(p_log text, p_interval interval)
RETURNS TABLE (step timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT DISTINCT drift.partition_start(created_at, $1) FROM drift.%I',
                                p_log || '_default') USING p_interval;
END $$;
COMMENT ON FUNCTION drift.default_steps(text, interval) IS 'The partition steps the default partition of a log holds rows of (internal).';

CREATE OR REPLACE FUNCTION drift.prune_logs(p_older_than interval)
RETURNS TABLE (log text, partition text, starts timestamptz, ends timestamptz, bytes bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    cutoff timestamptz;
    p record;
BEGIN
    IF p_older_than IS NULL OR p_older_than < interval '1 hour' THEN
        RAISE EXCEPTION 'prune_logs: the age must be at least 1 hour (got %)', p_older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    cutoff := now() - p_older_than;
    PERFORM pg_advisory_xact_lock(hashtext('drift.ensure_partitions'));
    -- Deltas of the rows about to go are folded first: the rollups keep every count.
    PERFORM drift.compact_rollups();
    FOR p IN SELECT * FROM drift.log_partitions() l WHERE NOT l.is_default AND l.ends <= cutoff LOOP
        log := p.log;
        partition := p.partition;
        starts := p.starts;
        ends := p.ends;
        bytes := pg_total_relation_size(format('drift.%I', p.partition)::regclass);
        EXECUTE format('DROP TABLE drift.%I', p.partition);
        RETURN NEXT;
    END LOOP;
    -- Old rows that sit in a default partition go too (counted as one entry per log).
    FOREACH log IN ARRAY ARRAY['interaction_log', 'embeddings_log'] LOOP
        EXECUTE format('DELETE FROM drift.%I WHERE created_at < $1', log || '_default') USING cutoff;
        GET DIAGNOSTICS bytes = ROW_COUNT;
        IF bytes > 0 THEN
            partition := log || '_default';
            starts := NULL;
            ends := cutoff;
            bytes := NULL;
            RETURN NEXT;
        END IF;
    END LOOP;
    PERFORM drift.fold_id_ranges(cutoff);  -- the id spans of the steps just dropped
    IF to_regprocedure('drift.prune_ingest_keys(timestamptz)') IS NOT NULL THEN
        PERFORM drift.prune_ingest_keys(cutoff);  -- keys pointing into the dropped partitions
    END IF;
END $$;
COMMENT ON FUNCTION drift.prune_logs(interval) IS 'Retention: drops every log partition whose range ended more than p_older_than ago (whole partitions: no row-by-row delete, no bloat), deletes older rows left in the default partitions, forgets their idempotency keys. Rollups, baselines, events and model versions stay. Returns the partitions dropped with their size.';

CREATE OR REPLACE FUNCTION drift.compact_rollups_hourly(p_older_than interval DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    age interval := coalesce(p_older_than, drift.setting('rollup_hourly_after')::interval);
    cutoff timestamptz;
    k bigint;
    folded bigint := 0;
BEGIN
    IF age IS NULL OR age <= interval '0' OR drift.setting('bucket_width')::interval >= interval '1 hour' THEN
        RETURN 0;
    END IF;
    cutoff := date_trunc('hour', now() - age);
    PERFORM drift.compact_rollups();
    -- Only hours holding more than one bucket, or a bucket not on the hour, are rewritten.
    WITH hours AS (
        SELECT r.model, date_trunc('hour', r.bucket, 'UTC') AS hour
        FROM drift.embedding_rollup r WHERE r.bucket < cutoff
        GROUP BY 1, 2 HAVING count(*) > 1 OR min(r.bucket) <> date_trunc('hour', min(r.bucket), 'UTC')
    ), moved AS (
        DELETE FROM drift.embedding_rollup r USING hours h
        WHERE r.model = h.model AND r.bucket >= h.hour AND r.bucket < h.hour + interval '1 hour'
        RETURNING r.*
    )
    INSERT INTO drift.embedding_rollup (model, bucket, n, vec_sum, sq_sum)
    SELECT m.model, date_trunc('hour', m.bucket, 'UTC'), sum(m.n), sum(m.vec_sum), sum(m.sq_sum)
    FROM moved m GROUP BY 1, 2;
    GET DIAGNOSTICS k = ROW_COUNT;
    folded := folded + k;

    WITH hours AS (
        SELECT r.model, date_trunc('hour', r.bucket, 'UTC') AS hour
        FROM drift.interaction_rollup r WHERE r.bucket < cutoff
        GROUP BY 1, 2 HAVING count(*) > 1 OR min(r.bucket) <> date_trunc('hour', min(r.bucket), 'UTC')
    ), moved AS (
        DELETE FROM drift.interaction_rollup r USING hours h
        WHERE r.model = h.model AND r.bucket >= h.hour AND r.bucket < h.hour + interval '1 hour'
        RETURNING r.*
    )
    INSERT INTO drift.interaction_rollup
    SELECT m.model, date_trunc('hour', m.bucket, 'UTC'), sum(m.interactions), sum(m.refusal_known), sum(m.refusals),
        sum(m.toxicity_scored), sum(m.toxic), sum(m.toxicity_sum), sum(m.feedback_given), sum(m.feedback_positive),
        sum(m.labelled), sum(m.correct), sum(m.quality_n), sum(m.quality_ok), sum(m.latency_sum), sum(m.latency_n)
    FROM moved m GROUP BY 1, 2;
    GET DIAGNOSTICS k = ROW_COUNT;
    folded := folded + k;

    -- Novelty counts follow the embedding buckets they were scored for.
    WITH hours AS (
        SELECT r.model, date_trunc('hour', r.bucket, 'UTC') AS hour
        FROM drift.novelty_rollup r WHERE r.bucket < cutoff
        GROUP BY 1, 2 HAVING count(*) > 1 OR min(r.bucket) <> date_trunc('hour', min(r.bucket), 'UTC')
    ), moved AS (
        DELETE FROM drift.novelty_rollup r USING hours h
        WHERE r.model = h.model AND r.bucket >= h.hour AND r.bucket < h.hour + interval '1 hour'
        RETURNING r.*
    )
    INSERT INTO drift.novelty_rollup (model, bucket, n, scored, novel)
    SELECT m.model, date_trunc('hour', m.bucket, 'UTC'), sum(m.n), sum(m.scored), sum(m.novel)
    FROM moved m GROUP BY 1, 2;

    -- The sequential test's statistic, a state and not a sum, keeps its last value of each hour
    -- (the model's latest row, which the next fold continues from, is always one of them).
    DELETE FROM drift.embedding_evidence e
    WHERE e.bucket < cutoff AND EXISTS (
        SELECT 1 FROM drift.embedding_evidence l
        WHERE l.model = e.model AND l.bucket > e.bucket AND l.bucket < date_trunc('hour', e.bucket, 'UTC') + interval '1 hour');
    RETURN folded;
END $$;
COMMENT ON FUNCTION drift.compact_rollups_hourly(interval) IS 'Folds the rollup buckets (embedding, interaction, novelty) older than p_older_than (default: the rollup_hourly_after setting) into one row per model and hour, and keeps the sequential test''s last statistic of each such hour; returns the hourly rollup rows written. Sums are exact; windows over that data are counted by whole hours.';

REVOKE EXECUTE ON FUNCTION drift.ensure_partitions(timestamptz, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION drift.create_log_partition(text, timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION drift.prune_logs(interval) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION drift.compact_rollups_hourly(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION drift.ensure_partitions(timestamptz, boolean) TO driftloop_worker;


-- repeatable 36_id_ranges.sql

-- Where a row of interaction_log is, by id: a late label (feedback, correct) names a row by
-- id alone, and interaction_log is partitioned by created_at, so `WHERE id = $1` probes the
-- primary key of every partition (90 days: 90 probes and 90 partitions planned and locked).
-- drift.interaction_id_ranges (migration 0014) keeps the span of ids written into each
-- partition step; drift.interaction_steps(id) reads the step(s) an id can be in, and the
-- label's UPDATE adds `created_at >= starts AND created_at < ends`, which the planner prunes
-- to one partition. Ids come from one sequence and grow with insertion time; a step keeps
-- one span per run of ids written into it (a back-fill into an old step adds a span), so
-- spans overlap only where writers interleave steps (at a step's edge): an id then has two
-- candidate steps, tried newest first.

CREATE OR REPLACE FUNCTION drift.record_id_ranges() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- One row per statement and step, appended (never updated): concurrent writers do not
    -- wait on each other; drift.fold_id_ranges() merges them later.
    INSERT INTO drift.interaction_id_ranges (starts, ends, min_id, max_id)
    SELECT s.starts, s.starts + s.iv, min(n.id), max(n.id)
    FROM new_rows n
    CROSS JOIN LATERAL (
        SELECT drift.partition_start(n.created_at, c.iv) AS starts, c.iv
        FROM (SELECT drift.setting('partition_interval')::interval AS iv) c
    ) s
    GROUP BY s.starts, s.iv;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.record_id_ranges() IS 'After an insert into interaction_log: appends the span of ids written into each partition step to drift.interaction_id_ranges.';
CREATE OR REPLACE TRIGGER interaction_log_id_ranges AFTER INSERT ON drift.interaction_log
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.record_id_ranges();

-- SECURITY DEFINER: the ingest role labels its own rows but may not read the ranges table;
-- this returns time spans only, never a row.
CREATE OR REPLACE FUNCTION drift.interaction_steps(p_id bigint)
RETURNS TABLE (starts timestamptz, ends timestamptz)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
    SELECT DISTINCT r.starts, r.ends
    FROM drift.interaction_id_ranges r
    WHERE int8range(r.min_id, r.max_id, '[]') @> p_id
    ORDER BY r.starts DESC
$$;
COMMENT ON FUNCTION drift.interaction_steps(bigint) IS 'The partition steps [starts, ends) an interaction id can be in, newest first (none: no such id was ever written). A label updates with created_at >= starts AND created_at < ends, which touches one partition.';

CREATE OR REPLACE FUNCTION drift.fold_id_ranges(p_before timestamptz DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    k bigint;
BEGIN
    -- Retention first: the steps of dropped partitions hold no rows any more.
    IF p_before IS NOT NULL THEN
        DELETE FROM drift.interaction_id_ranges r WHERE r.ends <= p_before;
    END IF;
    -- Spans next to each other in id order that belong to the same step become one; a span
    -- of another step in between keeps them apart. (A back-fill written model by model puts
    -- each model's block of ids into every step: merged into one span per step, every step
    -- would overlap every other, and a label would try them all.)
    WITH ordered AS (
        SELECT r.starts, r.ends, r.min_id, r.max_id,
            (r.starts, r.ends) IS DISTINCT FROM (lag(r.starts) OVER w, lag(r.ends) OVER w) AS new_island
        FROM drift.interaction_id_ranges r
        WINDOW w AS (ORDER BY r.min_id, r.max_id)
    ), islands AS (
        SELECT o.*, sum(o.new_island::int) OVER (ORDER BY o.min_id, o.max_id) AS island FROM ordered o
    ), merged AS (
        SELECT i.starts, i.ends, min(i.min_id) AS min_id, max(i.max_id) AS max_id, count(*) AS spans
        FROM islands i GROUP BY i.island, i.starts, i.ends
    ), folded AS (
        SELECT * FROM merged WHERE spans > 1
    ), moved AS (  -- every span deleted lies inside the span written for its step
        DELETE FROM drift.interaction_id_ranges r USING folded f
        WHERE r.starts = f.starts AND r.ends = f.ends AND r.min_id >= f.min_id AND r.max_id <= f.max_id
    )
    INSERT INTO drift.interaction_id_ranges (starts, ends, min_id, max_id)
    SELECT f.starts, f.ends, f.min_id, f.max_id FROM folded f;
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN k;
END $$;
COMMENT ON FUNCTION drift.fold_id_ranges(timestamptz) IS 'Merges the id spans of a partition step that follow each other in id order (drift.compact_rollups calls it, one session at a time); with p_before also forgets the steps that ended by then (drift.prune_logs). Returns the spans written.';


-- repeatable 40_statistics.sql

-- Distributions and tests the drift reports use.
--
-- * Embedding mean drift: T = squared distance between the current and baseline mean
--   embeddings. Its null distribution is a weighted chi-square whose weights are the
--   eigenvalues of the embeddings' covariance; we match its first three cumulants
--   (tr S, tr S^2, tr S^3, estimated from pairs and triples of baseline *buckets* of the
--   rollups, so correlated dimensions and minute-to-minute variation are included) and
--   widen it by the spread of window-length blocks of the baseline (overdispersion).
-- * Rates (refusal, toxicity, errors): one-sided two-sample test on Anscombe's arcsine
--   transform (better tails than the plain z-test at small rates), Wilson intervals,
--   combined with the seed's absolute thresholds.
-- * Repeated evaluation: drifted (and so an event) needs p_value below a per-evaluation
--   level chosen so that a drift-free model evaluated every bucket raises on average at most
--   one false event per false_alarm_interval (default 30 days), over all its metrics.
--   The level comes from the up-crossing rate of a sliding-window statistic.

CREATE OR REPLACE FUNCTION drift.normal_sf(z double precision) RETURNS double precision
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

CREATE OR REPLACE FUNCTION drift.proportion_above_p(x bigint, n bigint, p0 double precision) RETURNS double precision
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

CREATE OR REPLACE FUNCTION drift.chi2_sf_real(x double precision, nu double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- Wilson-Hilferty with real degrees of freedom (the matched-moment nu is not an integer).
    SELECT CASE WHEN nu <= 0 THEN NULL WHEN x <= 0 THEN 1.0
        ELSE drift.normal_sf((cbrt(x / nu) - (1 - 2.0 / (9 * nu))) / sqrt(2.0 / (9 * nu))) END
$$;
COMMENT ON FUNCTION drift.chi2_sf_real(double precision, double precision) IS 'Upper tail of the chi-square distribution with real degrees of freedom nu (Wilson-Hilferty).';

CREATE OR REPLACE FUNCTION drift.normal_isf(p double precision) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
DECLARE
    q double precision;
    r double precision;
    lo double precision := least(p, 1 - p);
    x double precision;
BEGIN
    -- z with P(Z > z) = p: Acklam's rational approximation (relative error < 1.2e-9).
    IF p <= 0 THEN RETURN 'Infinity'; END IF;
    IF p >= 1 THEN RETURN '-Infinity'; END IF;
    IF lo < 0.02425 THEN
        q := sqrt(-2 * ln(lo));
        x := (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e+00) * q
               - 2.549732539343734e+00) * q + 4.374664141464968e+00) * q + 2.938163982698783e+00)
             / ((((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e+00) * q
               + 3.754408661907416e+00) * q + 1);
    ELSE
        q := lo - 0.5;
        r := q * q;
        x := (((((-3.969683028665376e+01 * r + 2.209460984245205e+02) * r - 2.759285104469687e+02) * r
               + 1.383577518672690e+02) * r - 3.066479806614716e+01) * r + 2.506628277459239e+00) * q
             / (((((-5.447609879822406e+01 * r + 1.615858368580409e+02) * r - 1.556989798598866e+02) * r
               + 6.680131188771972e+01) * r - 1.328068155288572e+01) * r + 1);
    END IF;
    -- x is the lower quantile of lo (x <= 0); the upper quantile of p is its mirror image.
    RETURN CASE WHEN p <= 0.5 THEN -x ELSE x END;
END $$;
COMMENT ON FUNCTION drift.normal_isf(double precision) IS 'Inverse upper tail of the standard normal: the z with P(Z > z) = p.';

CREATE OR REPLACE FUNCTION drift.look_alpha(p_window interval DEFAULT NULL) RETURNS double precision
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
DECLARE
    alpha double precision := drift.setting('alpha')::float8;
    width interval := drift.setting('bucket_width')::interval;
    horizon interval := coalesce(drift.setting('false_alarm_interval'), '0')::interval;
    win double precision;
    looks double precision;
    lo double precision := 0.5;
    hi double precision := 38;
    u double precision;
    -- Event streams per model (centroid_distance, novelty_rate, refusal_rate, toxicity_rate,
    -- accuracy): the budget of one false event per interval is shared between them. The
    -- embedding tests added later (mean_shift_evidence, whitened_mean_shift at the level of its
    -- longer window) are not counted here: their false events were measured together with the
    -- one-hour mean test's by replaying drift-free real-embedding traffic (docs/detection.md).
    streams constant integer := 5;
BEGIN
    IF horizon <= interval '0' THEN
        RETURN alpha;
    END IF;
    win := greatest(1, extract(epoch FROM coalesce(p_window, drift.setting('current_window')::interval))
                       / extract(epoch FROM width));
    looks := streams * extract(epoch FROM horizon) / extract(epoch FROM width);
    -- A sliding window of `win` buckets, evaluated every bucket, crosses level u about
    -- u*phi(u)/win times per bucket (scan statistics); doubled because quadratic statistics
    -- decorrelate twice as fast, and never more than the exceedance rate P(Z > u) itself.
    -- Bisection for: looks * rate(u) = 1 (rate falls as u grows).
    FOR i IN 1..80 LOOP
        u := (lo + hi) / 2;
        IF looks * least(drift.normal_sf(u), 2 * u * exp(-u * u / 2) / sqrt(2 * pi()) / win) > 1 THEN
            lo := u;
        ELSE
            hi := u;
        END IF;
    END LOOP;
    RETURN least(alpha, drift.normal_sf(hi));
END $$;
COMMENT ON FUNCTION drift.look_alpha(interval) IS 'Per-evaluation significance level: drift-free traffic evaluated every bucket with this window raises at most one false event per false_alarm_interval per model (never above alpha).';

CREATE OR REPLACE FUNCTION drift.rate_increase_p(x_cur bigint, n_cur bigint, x_base bigint, n_base bigint)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- One-sided two-sample test on Anscombe's arcsine transform asin(sqrt((x+3/8)/(n+3/4))),
    -- whose variance 1/(4n+2) hardly depends on the rate: its tails stay honest at the small
    -- rates (refusals, toxicity) where the pooled z-test over-rejects.
    SELECT CASE
        WHEN n_cur IS NULL OR n_base IS NULL OR n_cur < 1 OR n_base < 1 THEN NULL
        ELSE drift.normal_sf(
            (asin(sqrt((x_cur + 0.375) / (n_cur + 0.75))) - asin(sqrt((x_base + 0.375) / (n_base + 0.75))))
            / sqrt(1.0 / (4 * n_cur + 2) + 1.0 / (4 * n_base + 2)))
    END
$$;
COMMENT ON FUNCTION drift.rate_increase_p(bigint, bigint, bigint, bigint) IS 'p-value of a one-sided arcsine two-sample test that the current rate x_cur/n_cur exceeds the baseline rate.';

CREATE OR REPLACE FUNCTION drift.wilson_interval(x bigint, n bigint, level double precision,
    OUT low double precision, OUT high double precision)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT (p + z * z / (2 * m) - z * sqrt(p * (1 - p) / m + z * z / (4 * m * m))) / (1 + z * z / m),
           (p + z * z / (2 * m) + z * sqrt(p * (1 - p) / m + z * z / (4 * m * m))) / (1 + z * z / m)
    FROM (SELECT x / nullif(n, 0)::float8 AS p, nullif(n, 0)::float8 AS m,
                 drift.normal_isf((1 - level) / 2) AS z) s
$$;
COMMENT ON FUNCTION drift.wilson_interval(bigint, bigint, double precision) IS 'Two-sided Wilson score interval of a proportion x/n at the given confidence level.';

CREATE OR REPLACE FUNCTION drift.cohens_h(p1 double precision, p0 double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$ SELECT 2 * asin(sqrt(least(greatest(p1, 0), 1))) - 2 * asin(sqrt(least(greatest(p0, 0), 1))) $$;
COMMENT ON FUNCTION drift.cohens_h(double precision, double precision) IS 'Cohen''s h effect size between two proportions (difference of arcsine-transformed rates).';

CREATE OR REPLACE FUNCTION drift.scale_vector(v vector, f double precision) RETURNS vector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, public, extensions
AS $$ SELECT v * array_fill(f::real, ARRAY[vector_dims(v)])::vector $$;
COMMENT ON FUNCTION drift.scale_vector(vector, double precision) IS 'v times a scalar (pgvector multiplies element-wise only).';

-- ---------------------------------------------------------------------------------------------
-- The calibrated embedding mean tests
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.three_moment_sf(stat double precision, k1 double precision, k2 double precision,
    nu double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- Pearson's three-moment fit of a weighted chi-square with cumulants k1, k2 and shape nu:
    -- (T - k1)/sqrt(k2) ~ (X - nu)/sqrt(2 nu), X ~ chi2(nu).
    SELECT drift.chi2_sf_real(nu + (stat - k1) * sqrt(2 * nu / k2), nu)
$$;
COMMENT ON FUNCTION drift.three_moment_sf(double precision, double precision, double precision, double precision) IS 'P(T > stat) for a weighted chi-square T fitted by its mean k1, variance k2 and shape nu (Pearson''s three-moment chi-square).';

CREATE OR REPLACE FUNCTION drift.embedding_mean_test(n_cur bigint, sum_cur vector, n_base bigint, sum_base vector,
    c drift.embedding_calibration,
    OUT statistic double precision, OUT expected double precision, OUT dof double precision,
    OUT p_value double precision, OUT effect_size double precision)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, public, extensions
AS $$
    -- T = |mean_cur - mean_base|^2 is a weighted chi-square under no drift, with cumulants
    -- k1 = tr1 h, k2 = 2 tr2 h^2, k3 = 8 tr3 h^3, h = dispersion (1/n_cur + 1/n_base).
    -- Pearson's three-moment fit: (T - k1)/sqrt(k2) ~ (X - nu)/sqrt(2 nu), X ~ chi2(nu),
    -- nu = tr2^3 / tr3^2, which keeps the heavy tail that few dominant directions give.
    SELECT t.stat, k.k1, k.nu, drift.three_moment_sf(t.stat, k.k1, k.k2, k.nu),
        sqrt(greatest(t.stat - k.k1, 0) / (c).trace1)
    FROM (SELECT -(d <#> d) AS stat
          FROM (SELECT drift.scale_vector(sum_cur, 1.0 / nullif(n_cur, 0)) - drift.scale_vector(sum_base, 1.0 / nullif(n_base, 0)) AS d) x) t,
         (SELECT (c).trace1 * h AS k1, 2 * (c).trace2 * h * h AS k2, (c).trace2 ^ 3 / (c).trace3 ^ 2 AS nu
          FROM (SELECT (c).dispersion * (1.0 / nullif(n_cur, 0) + 1.0 / nullif(n_base, 0)) AS h) hh) k
    WHERE n_cur > 0 AND n_base > 0 AND (c).model IS NOT NULL
$$;
COMMENT ON FUNCTION drift.embedding_mean_test(bigint, vector, bigint, vector, drift.embedding_calibration) IS 'Calibrated test that the current mean embedding differs from the baseline mean (three-moment chi-square fit of |mean difference|^2, from rollup sums); effect_size = shift in units of the baseline''s RMS spread.';

-- ---------------------------------------------------------------------------------------------
-- Decision thresholds on the score scale: each report row's threshold is the score at which
-- its test rejects at the given level now, so drifted = (score > threshold) is the decision.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.chi2_isf_real(p double precision, nu double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- The exact inverse of drift.chi2_sf_real (Wilson-Hilferty), so tests and thresholds agree.
    SELECT CASE WHEN nu <= 0 THEN NULL
        ELSE nu * power(greatest(1 - 2.0 / (9 * nu) + drift.normal_isf(p) * sqrt(2.0 / (9 * nu)), 0), 3) END
$$;
COMMENT ON FUNCTION drift.chi2_isf_real(double precision, double precision) IS 'Inverse upper tail of the chi-square distribution with real degrees of freedom nu (Wilson-Hilferty): the x with drift.chi2_sf_real(x, nu) = p.';

CREATE OR REPLACE FUNCTION drift.three_moment_isf(level double precision, k1 double precision, k2 double precision,
    nu double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- The exact inverse of drift.three_moment_sf: its p-value is below level exactly above this.
    SELECT k1 + (drift.chi2_isf_real(level, nu) - nu) * sqrt(k2 / (2 * nu))
$$;
COMMENT ON FUNCTION drift.three_moment_isf(double precision, double precision, double precision, double precision) IS 'The statistic at which drift.three_moment_sf falls to level.';

CREATE OR REPLACE FUNCTION drift.embedding_mean_threshold(n_cur bigint, sum_cur vector, n_base bigint, sum_base vector,
    c drift.embedding_calibration, level double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, public, extensions
AS $$
    -- The test rejects when T = |a - b|^2 passes T* (the level's quantile of its null fit).
    -- With the two mean vectors' norms as they are, |a - b|^2 = |a|^2 + |b|^2 - 2|a||b| cos,
    -- so T > T* exactly when the centroid cosine distance passes 1 - (|a|^2 + |b|^2 - T*) / (2|a||b|).
    SELECT least(greatest(1 - (na * na + nb * nb - tstar) / (2 * na * nb), 0), 2)
    FROM (SELECT vector_norm(sum_cur) / n_cur AS na, vector_norm(sum_base) / n_base AS nb,
                 drift.three_moment_isf(level, k.k1, k.k2, k.nu) AS tstar
          FROM (SELECT (c).trace1 * h AS k1, 2 * (c).trace2 * h * h AS k2, (c).trace2 ^ 3 / (c).trace3 ^ 2 AS nu
                FROM (SELECT (c).dispersion * (1.0 / n_cur + 1.0 / n_base) AS h) hh) k) s
    WHERE n_cur > 0 AND n_base > 0 AND (c).model IS NOT NULL AND na > 0 AND nb > 0
$$;
COMMENT ON FUNCTION drift.embedding_mean_threshold(bigint, vector, bigint, vector, drift.embedding_calibration, double precision) IS 'Centroid cosine distance at which drift.embedding_mean_test rejects at the given level for these windows: its p-value is below level exactly when the distance is above this.';

CREATE OR REPLACE FUNCTION drift.rate_increase_threshold(n_cur bigint, x_base bigint, n_base bigint, level double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- The current rate x/n_cur at which drift.rate_increase_p(x, n_cur, x_base, n_base) = level:
    -- the arcsine statistic solved for x.
    SELECT CASE
        WHEN n_cur IS NULL OR n_base IS NULL OR n_cur < 1 OR n_base < 1 OR level IS NULL THEN NULL
        WHEN theta >= pi() / 2 THEN 'Infinity'::float8
        ELSE (power(sin(theta), 2) * (n_cur + 0.75) - 0.375) / n_cur
    END
    FROM (SELECT asin(sqrt((x_base + 0.375) / (n_base + 0.75)))
                 + drift.normal_isf(level) * sqrt(1.0 / (4 * n_cur + 2) + 1.0 / (4 * n_base + 2)) AS theta) t
$$;
COMMENT ON FUNCTION drift.rate_increase_threshold(bigint, bigint, bigint, double precision) IS 'Current rate above which drift.rate_increase_p falls below level (n_cur current samples against x_base of n_base).';

CREATE OR REPLACE FUNCTION drift.proportion_above_threshold(n bigint, p0 double precision, level double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- The rate at which drift.proportion_above_p(x, n, p0) = level.
    SELECT CASE
        WHEN n IS NULL OR n < 1 OR p0 IS NULL OR level IS NULL THEN NULL
        WHEN p0 <= 0 THEN 0.0
        WHEN p0 >= 1 THEN 'Infinity'::float8
        ELSE p0 + drift.normal_isf(level) * sqrt(p0 * (1 - p0) / n)
    END
$$;
COMMENT ON FUNCTION drift.proportion_above_threshold(bigint, double precision, double precision) IS 'Rate above which drift.proportion_above_p falls below level (n samples against the fixed rate p0).';


-- repeatable 50_baselines.sql

-- Baselines: frozen aggregates of each model's reference window, the embedding calibration
-- computed from them, and the nearest-neighbour novelty rate.
--
-- * Novelty rate: the share of current embeddings whose nearest neighbour in a bounded,
--   fixed-size sample of the baseline (pgvector HNSW) is farther than the sample's own
--   leave-one-out nearest-neighbour distance quantile. Under no drift a new embedding and
--   a sample point are exchangeable, so the expected rate is the sample's own rate; each
--   embedding is scored once (drift.novelty_rollup caches per-bucket counts), and at most
--   novelty_per_bucket embeddings of a bucket are (a hashed-id subsample), so the cost per
--   evaluation is bounded however busy the model is.

-- ---------------------------------------------------------------------------------------------
-- Baselines
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.set_baseline(model text, starts timestamptz, ends timestamptz,
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
    IF NOT (isfinite(starts) AND isfinite(ends)) THEN
        RAISE EXCEPTION 'baseline window must have finite bounds (got % .. %)', starts, ends
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

CREATE OR REPLACE FUNCTION drift.ensure_auto_baselines(p_as_of timestamptz, p_models text[] DEFAULT NULL) RETURNS integer
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

CREATE OR REPLACE FUNCTION drift.baseline_bucket_sql(p_model text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    -- Per-bucket embedding sums of a model's baseline window (rollups plus pending deltas).
    SELECT format($q$
        SELECT s.bucket, sum(s.n)::bigint AS n, sum(s.vec_sum) AS vec_sum FROM (
            SELECT r.bucket, r.n, r.vec_sum FROM drift.embedding_rollup r, drift.baselines b
            WHERE r.model = %1$L AND b.model = %1$L AND b.kind = 'embedding' AND r.bucket >= b.starts AND r.bucket < b.ends
            UNION ALL
            SELECT d.bucket, d.n, d.vec_sum FROM drift.embedding_rollup_delta d, drift.baselines b
            WHERE d.model = %1$L AND b.model = %1$L AND b.kind = 'embedding' AND d.bucket >= b.starts AND d.bucket < b.ends
        ) s GROUP BY s.bucket HAVING sum(s.n) > 0 $q$, p_model)
$$;
COMMENT ON FUNCTION drift.baseline_bucket_sql(text) IS 'SQL text of the per-bucket sums of a model''s baseline window (internal).';

CREATE OR REPLACE FUNCTION drift.sample_nn_distances(p_model text, p_dims integer) RETURNS void
LANGUAGE plpgsql
-- The planner prices an exact scan and sort of a few thousand rows below the HNSW index, but
-- large vectors are TOASTed and that scan is then ~40x slower per query; without a sort
-- node the only plan left for ORDER BY distance is the index.
SET enable_sort = off
SET search_path = pg_catalog, public, extensions
AS $$
BEGIN
    EXECUTE format($q$
        UPDATE drift.baseline_samples s SET nn_distance = nn.d
        FROM (SELECT a.id, (SELECT o.embedding::vector(%2$s) <=> a.embedding::vector(%2$s)
                            FROM drift.baseline_samples o
                            WHERE o.model = %1$L AND o.id <> a.id
                            ORDER BY o.embedding::vector(%2$s) <=> a.embedding::vector(%2$s) LIMIT 1) AS d
              FROM drift.baseline_samples a WHERE a.model = %1$L) nn
        WHERE s.model = %1$L AND s.id = nn.id $q$, p_model, p_dims);
END $$;
COMMENT ON FUNCTION drift.sample_nn_distances(text, integer) IS 'Stores each baseline-sample point''s cosine distance to its nearest other sample point (leave-one-out), by HNSW search.';

CREATE OR REPLACE FUNCTION drift.embedding_calibrate(p_model text) RETURNS drift.embedding_calibration
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    b drift.baselines;
    dims integer;
    width interval := drift.setting('bucket_width')::interval;
    win interval := drift.setting('current_window')::interval;
    sample_size integer := drift.setting('novelty_sample_size')::integer;
    q double precision := drift.setting('novelty_quantile')::float8;
    lo timestamptz;
    hi timestamptz;
    buckets integer;
    src text;
    units_sql text;
    k integer;
    t1 double precision;
    t2 double precision;
    t3 double precision;
    nblocks integer := 0;
    phi double precision := 1;
    m_sample integer;
    radius double precision;
    expected double precision;
    idx text := 'baseline_samples_hnsw_' || left(md5(p_model), 16);
    result drift.embedding_calibration;
BEGIN
    DELETE FROM drift.embedding_calibration c WHERE c.model = p_model;
    DELETE FROM drift.baseline_samples s WHERE s.model = p_model;
    DELETE FROM drift.novelty_rollup r WHERE r.model = p_model;
    DELETE FROM drift.embedding_evidence e WHERE e.model = p_model;
    DELETE FROM drift.embedding_whitening w WHERE w.model = p_model;
    SELECT * INTO b FROM drift.baselines x WHERE x.model = p_model AND x.kind = 'embedding';
    SELECT m.embedding_dims INTO dims FROM drift.models m WHERE m.model = p_model;
    IF b.model IS NULL THEN
        EXECUTE format('DROP INDEX IF EXISTS drift.%I', idx);
    END IF;
    IF b.model IS NULL OR b.n < 2 OR dims IS NULL THEN
        RETURN NULL;
    END IF;

    -- The sample: raw rows of the baseline's buckets, chosen by hashed id (deterministic,
    -- unrelated to content). Only rows of buckets the baseline counts: [starts, ends) rounded up.
    lo := CASE WHEN drift.bucket_of(b.starts, width) = b.starts THEN b.starts ELSE drift.bucket_of(b.starts, width) + width END;
    hi := CASE WHEN drift.bucket_of(b.ends, width) = b.ends THEN b.ends ELSE drift.bucket_of(b.ends, width) + width END;
    INSERT INTO drift.baseline_samples (model, id, embedding)
    SELECT p_model, e.id, e.embedding FROM drift.embeddings_log e
    WHERE e.model = p_model AND e.created_at >= lo AND e.created_at < hi
    ORDER BY hashint8(e.id), e.id
    LIMIT sample_size;
    GET DIAGNOSTICS m_sample = ROW_COUNT;

    -- pgvector indexes need a fixed dimension: one partial expression index per model.
    IF dims <= 2000 AND to_regclass(format('drift.%I', idx)) IS NULL THEN
        EXECUTE format('CREATE INDEX %I ON drift.baseline_samples USING hnsw ((embedding::vector(%s)) vector_cosine_ops) WHERE model = %L',
            idx, dims, p_model);
    END IF;
    PERFORM drift.sample_nn_distances(p_model, dims);
    SELECT percentile_disc(q) WITHIN GROUP (ORDER BY s.nn_distance) INTO radius
    FROM drift.baseline_samples s WHERE s.model = p_model AND s.nn_distance IS NOT NULL;
    SELECT avg((s.nn_distance > radius)::integer) INTO expected
    FROM drift.baseline_samples s WHERE s.model = p_model AND s.nn_distance IS NOT NULL;

    -- Units for the covariance traces: baseline buckets (rollups) when there are enough,
    -- at most 2000 of them chosen by hashed time; else the sample rows (n = 1 each).
    EXECUTE format('SELECT count(*) FROM (%s) x', drift.baseline_bucket_sql(p_model)) INTO buckets;
    IF buckets >= 30 THEN
        src := 'buckets';
        units_sql := format('SELECT extract(epoch FROM bucket) AS ord, n, vec_sum FROM (%s) x
            ORDER BY hashint8(extract(epoch FROM bucket)::bigint) LIMIT 2000', drift.baseline_bucket_sql(p_model));
    ELSE
        src := 'sample';
        units_sql := format('SELECT id AS ord, 1::bigint AS n, embedding AS vec_sum FROM drift.baseline_samples WHERE model = %L',
            p_model);
    END IF;
    -- w_j = sqrt(n_j) (mean_j - baseline mean): zero mean, covariance S when units are
    -- independent. E|w|^2 = tr S; E (w_i.w_j)^2 = tr S^2 and
    -- E (w_i.w_j)(w_j.w_k)(w_k.w_i) = tr S^3 for distinct units, whatever their distribution.
    -- Units are numbered in time order and paired at far-apart offsets, so buckets next to
    -- each other (which may share a burst of traffic) are never paired.
    EXECUTE format($q$
        WITH u AS (
            SELECT (row_number() OVER (ORDER BY x.ord) - 1)::integer AS i, count(*) OVER ()::integer AS k,
                drift.scale_vector(x.vec_sum, 1 / sqrt(x.n::float8))
                  - drift.scale_vector(%1$L::vector, sqrt(x.n::float8) / %2$s) AS w
            FROM (%3$s) x
        ), offs AS (
            SELECT DISTINCT 1 + (r * (max(u.k) / 2 - 1)) / 8 AS o FROM u, generate_series(1, 8) r GROUP BY r
        ), pairs AS (
            SELECT (a.w <#> b.w) ^ 2 AS p2
            FROM u a CROSS JOIN offs JOIN u b ON b.i = (a.i + offs.o) %% a.k
        ), triples AS (
            SELECT -(a.w <#> b.w) * (b.w <#> c.w) * (c.w <#> a.w) AS p3
            FROM u a CROSS JOIN offs
            JOIN u b ON b.i = (a.i + offs.o) %% a.k
            JOIN u c ON c.i = (a.i + 2 * offs.o) %% a.k
            WHERE (2 * offs.o) %% a.k <> 0 AND offs.o %% a.k <> 0 AND (2 * offs.o) %% a.k <> offs.o %% a.k
        )
        SELECT (SELECT max(k) FROM u), (SELECT avg(-(w <#> w)) FROM u), (SELECT avg(p2) FROM pairs),
            (SELECT avg(p3) FROM triples) $q$,
        b.vec_sum, b.n, units_sql) INTO k, t1, t2, t3;
    IF k IS NULL OR k < 3 OR t1 IS NULL OR t1 <= 0 OR t2 IS NULL OR t2 <= 0 THEN
        RETURN NULL;
    END IF;
    -- Any covariance has tr2^2/tr1 <= tr3 <= tr2^1.5; clamp the noisy estimate into that range.
    t3 := least(greatest(coalesce(t3, t2 * t2 / t1), t2 * t2 / t1), t2 ^ 1.5);

    -- Overdispersion at the scale of the current window: block means vary more than
    -- independent embeddings predict when traffic drifts within the baseline (hours, days).
    EXECUTE format($q$
        WITH blk AS (
            SELECT floor(extract(epoch FROM x.bucket - %4$L::timestamptz) / %5$s)::bigint AS blk,
                sum(x.n)::bigint AS n, sum(x.vec_sum) AS vec_sum
            FROM (%3$s) x GROUP BY 1
        ), w AS (
            SELECT blk.n, drift.scale_vector(blk.vec_sum, 1 / sqrt(blk.n::float8))
                - drift.scale_vector(%1$L::vector, sqrt(blk.n::float8) / %2$s) AS w
            FROM blk WHERE blk.n::float8 < %2$s
        )
        SELECT count(*)::integer, avg(-(w.w <#> w.w) / (1 - w.n::float8 / %2$s)) / %6$s FROM w $q$,
        b.vec_sum, b.n, drift.baseline_bucket_sql(p_model), lo, extract(epoch FROM win), t1) INTO nblocks, phi;
    IF nblocks < 8 OR phi IS NULL THEN
        nblocks := 0;
        phi := 1;
    END IF;

    INSERT INTO drift.embedding_calibration (model, dims, units, unit_source, trace1, trace2, trace3, blocks,
        dispersion, sample_n, novelty_radius, novelty_expected)
    VALUES (p_model, dims, k, src, t1, t2, t3, nblocks, greatest(phi, 1), m_sample, radius, expected);
    PERFORM drift.embedding_whiten(p_model);
    SELECT * INTO result FROM drift.embedding_calibration c WHERE c.model = p_model;
    RETURN result;
END $$;
COMMENT ON FUNCTION drift.embedding_calibrate(text) IS 'Recomputes a model''s embedding calibration from its baseline: the bounded baseline sample with its HNSW index and leave-one-out distances, the covariance traces, the block overdispersion and the sequential test''s whitening; clears the novelty cache and the sequential evidence.';

CREATE OR REPLACE FUNCTION drift.baselines_calibrate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM drift.embedding_calibrate(CASE WHEN TG_OP = 'DELETE' THEN OLD.model ELSE NEW.model END);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.baselines_calibrate() IS 'Recalibrates the embedding tests whenever a model''s embedding baseline is set or moved; removes the calibration, sample and index when it is deleted.';
CREATE OR REPLACE TRIGGER baselines_calibrate AFTER INSERT OR UPDATE ON drift.baselines
    FOR EACH ROW WHEN (NEW.kind = 'embedding') EXECUTE FUNCTION drift.baselines_calibrate();
CREATE OR REPLACE TRIGGER baselines_uncalibrate AFTER DELETE ON drift.baselines
    FOR EACH ROW WHEN (OLD.kind = 'embedding') EXECUTE FUNCTION drift.baselines_calibrate();

-- ---------------------------------------------------------------------------------------------
-- Novelty rate
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.novelty_buckets(p_model text, p_buckets timestamptz[])
RETURNS TABLE (bucket timestamptz, n bigint, scored bigint, novel bigint)
LANGUAGE plpgsql STABLE
SET enable_sort = off  -- use the HNSW index: see drift.sample_nn_distances
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    c drift.embedding_calibration;
    width interval := drift.setting('bucket_width')::interval;
    cap bigint := coalesce(drift.setting('novelty_per_bucket'), '200')::bigint;
    lo timestamptz;
    hi timestamptz;
BEGIN
    SELECT * INTO c FROM drift.embedding_calibration x WHERE x.model = p_model;
    IF c.model IS NULL OR c.novelty_radius IS NULL OR cardinality(p_buckets) = 0 THEN
        RETURN;
    END IF;
    SELECT min(x), max(x) + width INTO lo, hi FROM unnest(p_buckets) x;
    -- The model's literal in the query lets the planner use its partial HNSW index; the
    -- embeddings come from the (model, created_at) index, bounded by the buckets asked for.
    -- Ids are picked first (small rows to sort), then only the picked embeddings are read.
    -- Both reads of the log carry the time range as parameters, which EXECUTE plans as
    -- constants: the planner prunes to the partitions of those buckets, so scoring costs the
    -- same with 1 or 90 days of partitions (joined on id alone, every partition was read).
    RETURN QUERY EXECUTE format($q$
        WITH ids AS (
            SELECT e.id, e.created_at, drift.bucket_of(e.created_at, $2) AS bucket FROM drift.embeddings_log e
            WHERE e.model = %1$L AND e.created_at >= $5 AND e.created_at < $6
              AND drift.bucket_of(e.created_at, $2) = ANY ($1)
        ), pick AS (
            SELECT ids.id, ids.created_at, ids.bucket, count(*) OVER (PARTITION BY ids.bucket) AS n,
                row_number() OVER (PARTITION BY ids.bucket ORDER BY hashint8(ids.id), ids.id) AS rank
            FROM ids
        )
        SELECT p.bucket, max(p.n), count(*), count(*) FILTER (WHERE nn.d > $3)
        FROM pick p
        -- (id, created_at) is each partition's primary key: one probe per picked row (with
        -- the model too the planner scans the bucket's (model, created_at) range per row).
        JOIN drift.embeddings_log e ON e.id = p.id AND e.created_at = p.created_at
            AND e.created_at >= $5 AND e.created_at < $6
        CROSS JOIN LATERAL (
            SELECT s.embedding::vector(%2$s) <=> e.embedding::vector(%2$s) AS d
            FROM drift.baseline_samples s WHERE s.model = %1$L
            ORDER BY s.embedding::vector(%2$s) <=> e.embedding::vector(%2$s) LIMIT 1) nn
        WHERE p.rank <= $4
        GROUP BY p.bucket $q$, p_model, c.dims)
    USING p_buckets, width, c.novelty_radius, cap, lo, hi;
END $$;
COMMENT ON FUNCTION drift.novelty_buckets(text, timestamptz[]) IS 'Per bucket: embeddings, embeddings searched (at most novelty_per_bucket, by hashed id) and novel ones (nearest baseline-sample neighbour beyond the radius, by HNSW search).';

CREATE OR REPLACE FUNCTION drift.novelty_todo(p_model text, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (bucket timestamptz, n bigint, cached_scored bigint, cached_novel bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog
SET plan_cache_mode = force_generic_plan  -- a range scan of the rollups: see drift.embedding_window
AS $$
    -- Buckets of the window with their embedding count; the cached counts are NULL when the
    -- bucket was never scored or has gained embeddings since.
    SELECT r.bucket, r.n, c.scored, c.novel
    FROM (
        SELECT s.bucket, sum(s.n)::bigint AS n FROM (
            SELECT x.bucket, x.n FROM drift.embedding_rollup x
            WHERE x.model = p_model AND x.bucket >= p_from AND x.bucket < p_to
            UNION ALL
            SELECT d.bucket, d.n FROM drift.embedding_rollup_delta d
            WHERE d.model = p_model AND d.bucket >= p_from AND d.bucket < p_to
        ) s GROUP BY s.bucket
    ) r
    LEFT JOIN drift.novelty_rollup c ON c.model = p_model AND c.bucket = r.bucket AND c.n = r.n
$$;
COMMENT ON FUNCTION drift.novelty_todo(text, timestamptz, timestamptz) IS 'Buckets of a window with their embedding counts and cached novelty counts (NULL: to be scored).';

CREATE OR REPLACE FUNCTION drift.novelty_window(p_model text, p_from timestamptz, p_to timestamptz,
    OUT scored bigint, OUT novel bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
DECLARE
    todo timestamptz[];
    live_scored bigint;
    live_novel bigint;
BEGIN
    SELECT coalesce(sum(t.cached_scored), 0)::bigint, coalesce(sum(t.cached_novel), 0)::bigint,
           array_agg(t.bucket) FILTER (WHERE t.cached_novel IS NULL)
    INTO scored, novel, todo
    FROM drift.novelty_todo(p_model, p_from, p_to) t;
    IF todo IS NOT NULL THEN
        SELECT coalesce(sum(l.scored), 0), coalesce(sum(l.novel), 0) INTO live_scored, live_novel
        FROM drift.novelty_buckets(p_model, todo) l;
        scored := scored + live_scored;
        novel := novel + live_novel;
    END IF;
END $$;
COMMENT ON FUNCTION drift.novelty_window(text, timestamptz, timestamptz) IS 'Embeddings searched and novel embeddings of a model in [from, to): cached buckets from drift.novelty_rollup, the rest searched now.';

CREATE OR REPLACE FUNCTION drift.novelty_score(p_model text, p_from timestamptz, p_to timestamptz) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    todo timestamptz[];
    k integer;
BEGIN
    SELECT array_agg(t.bucket) INTO todo FROM drift.novelty_todo(p_model, p_from, p_to) t WHERE t.cached_novel IS NULL;
    IF todo IS NULL THEN
        RETURN 0;
    END IF;
    INSERT INTO drift.novelty_rollup AS c (model, bucket, n, scored, novel)
    SELECT p_model, l.bucket, l.n, l.scored, l.novel FROM drift.novelty_buckets(p_model, todo) l
    ON CONFLICT (model, bucket) DO UPDATE SET n = excluded.n, scored = excluded.scored, novel = excluded.novel;
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN k;
END $$;
COMMENT ON FUNCTION drift.novelty_score(text, timestamptz, timestamptz) IS 'Scores the not yet (or no longer) cached buckets of a window into drift.novelty_rollup; returns the buckets written.';


-- repeatable 55_evidence.sql

-- The sequential embedding test (metric mean_shift_evidence): evidence that the mean moved,
-- accumulated bucket by bucket, so a drift that persists is caught even when no single
-- window shows it at the strict per-evaluation level.
--
-- Each new bucket's embeddings are projected on a direction fixed before they are seen: the
-- mean shift of the evidence_direction_window before the bucket, whitened by the baseline
-- sample's covariance S with a ridge, u = (S + ridge I)^-1 (window mean - baseline mean)
-- (embeddings wider than 256 in the span of 256 sample points).
-- (Whitening counts a shift along a quiet direction for more than one along a noisy one;
-- measured on real text embeddings it is what lets 10% of traffic on a new topic show.)
-- Without drift the projections are centred, with variance u'Su each: z ~ N(0, n). A
-- CUSUM of the log-likelihood ratio for a shift of evidence_shift standard deviations per
-- embedding, S = max(0, S + k z - n k^2 / 2), grows while traffic keeps moving the same way
-- and falls back to 0 when it does not. Without drift it crosses h about once per
-- e^h / (k^2 / 2) embeddings (Siegmund), which sets h from false_alarm_interval.

CREATE OR REPLACE FUNCTION drift.spd_inverse(p_rows vector[], p_ridge double precision) RETURNS vector[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    r integer := array_length(p_rows, 1);
    m vector[];
    f real[];
    piv vector;
BEGIN
    -- Gauss-Jordan on [M + ridge I | I]. M is a covariance (symmetric, positive semi-definite)
    -- and ridge > 0, so every pivot is positive: no row exchanges are needed.
    FOR i IN 1..r LOOP
        f := p_rows[i]::real[] || array_fill(0::real, ARRAY[r]);
        f[i] := f[i] + p_ridge;
        f[r + i] := 1;
        m[i] := f::vector;
    END LOOP;
    FOR k IN 1..r LOOP
        piv := drift.scale_vector(m[k], 1.0 / (m[k]::real[])[k]);
        m[k] := piv;
        FOR i IN 1..r LOOP
            IF i <> k THEN
                m[i] := m[i] - drift.scale_vector(piv, (m[i]::real[])[k]);
            END IF;
        END LOOP;
    END LOOP;
    RETURN ARRAY(SELECT (m[i]::real[])[r + 1 : 2 * r]::vector FROM generate_series(1, r) i ORDER BY i);
END $$;
COMMENT ON FUNCTION drift.spd_inverse(vector[], double precision) IS 'Rows of (M + ridge I)^-1 for a symmetric positive semi-definite M given by its rows (Gauss-Jordan).';

CREATE OR REPLACE FUNCTION drift.evidence_features(p_model text, p_v vector) RETURNS vector
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    -- Linear, so the features of a bucket's vector sum are the sum of its rows' features.
    SELECT CASE WHEN count(w.landmark) = 0 THEN p_v
        ELSE array_agg(-(w.landmark <#> p_v) ORDER BY w.i)::vector END
    FROM drift.embedding_whitening w WHERE w.model = p_model AND w.landmark IS NOT NULL
$$;
COMMENT ON FUNCTION drift.evidence_features(text, vector) IS 'The sequential test''s features of an embedding (or of a sum of embeddings): itself, or its inner products with the model''s landmarks.';

CREATE OR REPLACE FUNCTION drift.evidence_inverse_times(p_model text, p_v vector) RETURNS vector
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    SELECT array_agg(-(w.inverse_row <#> p_v) ORDER BY w.i)::vector
    FROM drift.embedding_whitening w WHERE w.model = p_model
$$;
COMMENT ON FUNCTION drift.evidence_inverse_times(text, vector) IS 'The model''s ridge inverse (S_a + ridge I)^-1 times a feature vector.';

CREATE OR REPLACE FUNCTION drift.evidence_covariance_times(p_model text, p_v vector) RETURNS vector
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    SELECT array_agg(-(w.cov_row <#> p_v) ORDER BY w.i)::vector
    FROM drift.embedding_whitening w WHERE w.model = p_model
$$;
COMMENT ON FUNCTION drift.evidence_covariance_times(text, vector) IS 'The model''s covariance S_b times a feature vector.';

CREATE OR REPLACE FUNCTION drift.evidence_covariance(p_model text, p_half integer) RETURNS vector[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    -- Rows of the covariance of the features of one half of the sample (alternate rows in id
    -- order), from its rows centred on the half's mean, transposed to one vector per feature
    -- so that each entry is one inner product.
    WITH half AS (
        SELECT x.id, x.embedding FROM (
            SELECT s.id, s.embedding, row_number() OVER (ORDER BY s.id) AS k
            FROM drift.baseline_samples s WHERE s.model = p_model) x
        WHERE x.k % 2 = p_half
    ), mu AS (
        SELECT avg(h.embedding) AS m, count(*) AS n FROM half h
    ), y AS (
        SELECT h.id, drift.evidence_features(p_model, h.embedding - mu.m)::real[] AS f FROM half h, mu
    ), cols AS (
        SELECT t.j, array_agg(t.v ORDER BY y.id)::vector AS c
        FROM y CROSS JOIN LATERAL unnest(y.f) WITH ORDINALITY AS t(v, j) GROUP BY t.j
    ), rows_ AS (
        SELECT a.j, array_agg(-(a.c <#> b.c) / (SELECT n FROM mu) ORDER BY b.j)::vector AS row
        FROM cols a CROSS JOIN cols b GROUP BY a.j
    )
    SELECT array_agg(rows_.row ORDER BY rows_.j) FROM rows_
$$;
COMMENT ON FUNCTION drift.evidence_covariance(text, integer) IS 'Rows of the sample covariance of the sequential test''s features over one half of the model''s baseline sample (1: odd rows in id order, 0: even rows).';

CREATE OR REPLACE FUNCTION drift.embedding_whiten(p_model text) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    -- Wider embeddings are whitened in the span of this many sample points: the inverse
    -- costs rank^3 once per baseline, each bucket rank^2.
    max_rank constant integer := 256;
    m integer;
    dims integer;
    n_base bigint;
    lm vector[] := '{}';
    v vector;
    cand record;
    cov_a vector[];
    cov_b vector[];
    inv vector[];
    r integer;
    ridge double precision;
BEGIN
    DELETE FROM drift.embedding_whitening w WHERE w.model = p_model;
    -- Nothing of an earlier whitening survives a return below without one.
    UPDATE drift.embedding_calibration c SET evidence_rank = NULL, evidence_bias = NULL,
        whitened_trace1 = NULL, whitened_trace2 = NULL, whitened_trace3 = NULL
    WHERE c.model = p_model;
    SELECT count(*), max(vector_dims(s.embedding)) INTO m, dims FROM drift.baseline_samples s WHERE s.model = p_model;
    SELECT b.n INTO n_base FROM drift.baselines b WHERE b.model = p_model AND b.kind = 'embedding';
    IF m < 60 OR n_base IS NULL THEN
        RETURN NULL;
    END IF;
    IF dims > max_rank THEN
        -- An orthonormal basis (modified Gram-Schmidt) of the span of the first points of
        -- the first half, centred; a point already in the span of the earlier ones (a text
        -- logged twice) is passed over.
        FOR cand IN
            SELECT x.embedding - avg(x.embedding) OVER () AS c FROM (
                SELECT s.id, s.embedding, row_number() OVER (ORDER BY s.id) AS k
                FROM drift.baseline_samples s WHERE s.model = p_model) x
            WHERE x.k % 2 = 1 ORDER BY x.id
        LOOP
            v := cand.c;
            FOR i IN 1..coalesce(array_length(lm, 1), 0) LOOP
                v := v - drift.scale_vector(lm[i], -(lm[i] <#> v));
            END LOOP;
            IF vector_norm(v) > 1e-3 * vector_norm(cand.c) THEN
                lm := lm || drift.scale_vector(v, 1.0 / vector_norm(v));
            END IF;
            EXIT WHEN array_length(lm, 1) = max_rank;
        END LOOP;
        INSERT INTO drift.embedding_whitening (model, i, landmark)
        SELECT p_model, i, lm[i] FROM generate_series(1, array_length(lm, 1)) i;
    END IF;
    -- Two independent halves: the inverse from one, the variance along the direction it
    -- picks from the other (from the same half, the quietest-looking directions are partly
    -- sampling noise, and the variance would be underestimated: false alarms).
    cov_a := drift.evidence_covariance(p_model, 1);
    cov_b := drift.evidence_covariance(p_model, 0);
    r := array_length(cov_a, 1);
    SELECT sum((cov_a[i]::real[])[i]) / r INTO ridge FROM generate_series(1, r) i;
    IF NOT ridge > 0 THEN
        DELETE FROM drift.embedding_whitening w WHERE w.model = p_model;
        RETURN NULL;
    END IF;
    inv := drift.spd_inverse(cov_a, ridge);
    INSERT INTO drift.embedding_whitening AS w (model, i, cov_row, inverse_row)
    SELECT p_model, i, cov_b[i], inv[i] FROM generate_series(1, r) i
    ON CONFLICT (model, i) DO UPDATE SET cov_row = EXCLUDED.cov_row, inverse_row = EXCLUDED.inverse_row;
    -- The estimated baseline mean leaves E[(y - mean) . u] = tr(inv S) / n_base per embedding.
    UPDATE drift.embedding_calibration c SET evidence_rank = r,
        evidence_bias = (SELECT sum(-(inv[i] <#> cov_b[i])) FROM generate_series(1, r) i) / n_base
    WHERE c.model = p_model;
    PERFORM drift.whitened_traces(p_model);
    RETURN r;
END $$;
COMMENT ON FUNCTION drift.embedding_whiten(text) IS 'Computes the sequential test''s whitening of a model from its baseline sample (called by drift.embedding_calibrate); returns the rank, NULL when the sample is too small.';

CREATE OR REPLACE FUNCTION drift.embedding_evidence_fold(p_model text, p_until timestamptz) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    width interval := drift.setting('bucket_width')::interval;
    look_back interval := drift.setting('evidence_direction_window')::interval;
    horizon interval := drift.setting('evidence_horizon')::interval;
    k double precision := drift.setting('evidence_shift')::float8;
    min_n bigint := drift.setting('min_samples')::bigint;
    -- The direction window's vector sum is kept by adding and subtracting float4 vectors;
    -- after this many updates it is summed again from its buckets (in float8, as sum() does),
    -- so rounding never builds up over a long catch-up.
    resum_every constant integer := 120;
    b drift.baselines;
    bias double precision;
    mu_f vector;
    last drift.embedding_evidence;
    s double precision := 0;
    since timestamptz;
    run_n bigint := 0;
    first_fold timestamptz;
    r record;
    -- The direction window: its running totals, and its buckets in time order from win_head
    -- on with their counts and vector sums (those of the first window listed only once they
    -- begin to leave).
    win_from timestamptz;
    win_bucket timestamptz[] := '{}';
    win_n bigint[] := '{}';
    win_vec vector[] := '{}';
    win_listed boolean := false;
    win_head integer := 1;
    win_count bigint;
    win_sum vector;
    updates integer := 0;
    u vector;
    var double precision;
    z double precision;
    folded integer := 0;
BEGIN
    SELECT * INTO b FROM drift.baselines x WHERE x.model = p_model AND x.kind = 'embedding';
    SELECT c.evidence_bias INTO bias FROM drift.embedding_calibration c WHERE c.model = p_model;
    IF b.model IS NULL OR bias IS NULL THEN
        RETURN 0;
    END IF;
    mu_f := drift.evidence_features(p_model, drift.scale_vector(b.vec_sum, 1.0 / b.n));
    SELECT * INTO last FROM drift.embedding_evidence e WHERE e.model = p_model ORDER BY e.bucket DESC LIMIT 1;
    IF last.model IS NOT NULL THEN
        s := last.statistic;
        since := last.since;
        run_n := last.run_n;
    END IF;
    first_fold := greatest(b.ends, p_until - horizon, last.bucket + width);
    IF first_fold >= p_until THEN
        RETURN 0;  -- no complete bucket since the last fold: its window need not be read
    END IF;
    -- The direction window of the first bucket to fold, as one aggregate: a per-minute
    -- evaluation folds one bucket, and needs no more. The window is kept as embedding sums and
    -- featurized once per folded bucket (features are linear): featurizing each bucket that
    -- enters would cost a features product per bucket of the window instead.
    win_from := greatest(b.ends, first_fold - look_back);
    SELECT w.n, w.vec_sum INTO win_count, win_sum FROM drift.embedding_window(p_model, win_from, first_fold) w;
    FOR r IN
        SELECT x.bucket, x.n, x.vec_sum FROM drift.embedding_buckets(p_model, first_fold, p_until) x
        ORDER BY x.bucket
    LOOP
        -- The window before r is [greatest(r.bucket - look_back, b.ends), r.bucket); nothing
        -- before b.ends was read. Buckets can be sparse: any number leave at once.
        IF NOT win_listed AND r.bucket - look_back > win_from THEN
            -- A catch-up: the first window's buckets begin to leave; list them ahead of those since.
            SELECT coalesce(array_agg(x.bucket ORDER BY x.bucket), '{}') || win_bucket,
                   coalesce(array_agg(x.n ORDER BY x.bucket), '{}') || win_n,
                   coalesce(array_agg(x.vec_sum ORDER BY x.bucket), '{}') || win_vec
            INTO win_bucket, win_n, win_vec
            FROM drift.embedding_buckets(p_model, win_from, first_fold) x;
            -- The totals again from the lists: a row logged late since the first read is in both.
            SELECT coalesce(sum(t.c), 0), sum(t.v) INTO win_count, win_sum FROM unnest(win_n, win_vec) t(c, v);
            updates := 0;
            win_listed := true;
        END IF;
        WHILE win_head <= cardinality(win_bucket) AND win_bucket[win_head] < r.bucket - look_back LOOP
            win_count := win_count - win_n[win_head];
            win_sum := win_sum - win_vec[win_head];
            win_head := win_head + 1;
            updates := updates + 1;
        END LOOP;
        -- (Until the first window is listed, the totals hold more than the lists.)
        IF win_listed AND win_head > cardinality(win_bucket) THEN
            win_sum := NULL;  -- an empty window restarts from exact zero
            updates := 0;
        ELSIF win_listed AND updates >= resum_every THEN
            win_sum := (SELECT sum(v) FROM unnest(win_vec[win_head:]) v);
            updates := 0;
        END IF;
        z := NULL;
        IF win_count >= min_n AND win_count > 0 THEN
            u := drift.evidence_inverse_times(p_model,
                drift.scale_vector(drift.evidence_features(p_model, win_sum), 1.0 / win_count) - mu_f);
            var := -(u <#> drift.evidence_covariance_times(p_model, u));
            IF var > 0 THEN
                z := (-(drift.evidence_features(p_model, r.vec_sum) <#> u) - r.n * (-(mu_f <#> u) + bias)) / sqrt(var);
                IF s = 0 THEN
                    since := r.bucket;
                    run_n := 0;
                END IF;
                s := greatest(0, s + k * z - r.n * k * k / 2);
                run_n := run_n + r.n;
                IF s = 0 THEN
                    since := NULL;
                    run_n := 0;
                END IF;
            END IF;
        END IF;
        INSERT INTO drift.embedding_evidence (model, bucket, n, z, statistic, since, run_n)
        VALUES (p_model, r.bucket, r.n, z, s, since, run_n);
        folded := folded + 1;
        win_bucket := array_append(win_bucket, r.bucket);
        win_n := array_append(win_n, r.n);
        win_vec := array_append(win_vec, r.vec_sum);
        win_count := win_count + r.n;
        win_sum := CASE WHEN win_sum IS NULL THEN r.vec_sum ELSE win_sum + r.vec_sum END;
        updates := updates + 1;
    END LOOP;
    RETURN folded;
END $$;
COMMENT ON FUNCTION drift.embedding_evidence_fold(text, timestamptz) IS 'Folds the model''s buckets before p_until that are not folded yet (at most evidence_horizon back) into its sequential embedding test; returns the buckets folded. Called by drift.evaluate_models; each bucket is folded once.';

CREATE OR REPLACE FUNCTION drift.evidence_threshold(p_model text) RETURNS double precision
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    -- Drift-free, the CUSUM crosses h about once per e^h / (k^2 / 2) embeddings. A quarter of
    -- the model's false-alarm budget goes to this test, so that it and the one-hour mean test
    -- at look_alpha stay within the budget together (measured by replay: with half, the pair
    -- raised 0.88 false events per 30 days; with a quarter, 0.56): h = ln(4 N k^2 / 2) =
    -- ln(2 N k^2), N the embeddings the baseline's rate gives in one false_alarm_interval.
    SELECT CASE WHEN rate IS NULL OR rate <= 0 THEN NULL
        WHEN fa > 0 THEN greatest(ln(2 * rate * fa * k * k), 1.0)
        ELSE ln(1 / drift.setting('alpha')::float8)  -- false_alarm_interval 0: alpha per run
    END
    FROM (SELECT b.n / nullif(extract(epoch FROM b.ends - b.starts), 0) AS rate,
                 extract(epoch FROM coalesce(drift.setting('false_alarm_interval'), '0')::interval) AS fa,
                 drift.setting('evidence_shift')::float8 AS k
          FROM drift.baselines b WHERE b.model = p_model AND b.kind = 'embedding') x
$$;
COMMENT ON FUNCTION drift.evidence_threshold(text) IS 'Decision line of the sequential embedding test of a model, in nats: drift-free traffic at the baseline''s rate crosses it about once per four false_alarm_intervals.';

CREATE OR REPLACE FUNCTION drift.whitened_traces(p_model text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    inv vector[];
    cov_b vector[];
    r integer;
    m bigint;
    t1 double precision;
    t2 double precision;
    t3 double precision;
BEGIN
    SELECT array_agg(w.inverse_row ORDER BY w.i), array_agg(w.cov_row ORDER BY w.i) INTO inv, cov_b
    FROM drift.embedding_whitening w WHERE w.model = p_model AND w.inverse_row IS NOT NULL;
    r := cardinality(inv);
    -- S_b is the covariance of the even rows (in id order) of the baseline sample.
    SELECT count(*) / 2 INTO m FROM drift.baseline_samples s WHERE s.model = p_model;
    IF r IS NOT NULL AND m >= 2 THEN
        -- tr M^j for M = inv S_b: one product of two r x r matrices for M, one for M^2 (rows
        -- of M against rows of its transpose).
        WITH a AS (SELECT t.i, t.v FROM unnest(inv) WITH ORDINALITY t(v, i)),
        b AS (SELECT t.j, t.v FROM unnest(cov_b) WITH ORDINALITY t(v, j)),
        prod AS (SELECT a.i, b.j, -(a.v <#> b.v) AS x FROM a CROSS JOIN b),  -- M_ij (S_b is symmetric)
        mr AS (SELECT prod.i, array_agg(prod.x ORDER BY prod.j)::vector AS v FROM prod GROUP BY prod.i),
        mt AS (SELECT prod.j AS i, array_agg(prod.x ORDER BY prod.i)::vector AS v FROM prod GROUP BY prod.j),
        m2 AS (SELECT mr.i, array_agg(-(mr.v <#> mt.v) ORDER BY mt.i)::vector AS v FROM mr CROSS JOIN mt GROUP BY mr.i)
        SELECT (SELECT sum(prod.x) FROM prod WHERE prod.i = prod.j),
               (SELECT sum(-(mr.v <#> mt.v)) FROM mr JOIN mt ON mt.i = mr.i),
               (SELECT sum(-(m2.v <#> mt.v)) FROM m2 JOIN mt ON mt.i = m2.i)
        INTO t1, t2, t3;
    END IF;
    IF t1 > 0 THEN
        -- S_b is a sample covariance of m rows, so the plug-in traces overstate tr (inv Sigma)^j
        -- (Wishart moments: E t2 = (1 + 1/m) tr B^2 + (tr B)^2 / m, and E t3 about
        -- tr B^3 + 3 tr B tr B^2 / m + (tr B)^3 / m^2); uncorrected, the test is several times
        -- stricter than its level, and far stricter on a small baseline. Clamped into the range
        -- every covariance of rank r has.
        t2 := greatest((t2 - t1 * t1 / m) / (1 + 1.0 / m), t1 * t1 / r);
        t3 := greatest(t3 - 3 * t1 * t2 / m - t1 ^ 3 / (m::float8 * m), t2 * t2 / t1);
    ELSE
        t1 := NULL;
        t2 := NULL;
        t3 := NULL;
    END IF;
    UPDATE drift.embedding_calibration c SET whitened_trace1 = t1, whitened_trace2 = t2, whitened_trace3 = t3,
        whitened_dispersion = CASE WHEN t1 IS NOT NULL THEN drift.whitened_dispersion(p_model, t1) END
    WHERE c.model = p_model;
END $$;
CREATE OR REPLACE FUNCTION drift.whitened_dispersion(p_model text, p_trace1 double precision) RETURNS double precision
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    win interval := drift.setting('whitened_window')::interval;
    b drift.baselines;
    blocks integer;
    phi double precision;
BEGIN
    -- Without drift a block of n baseline rows has E[T] = tr M (1/n - 1/N) against the whole
    -- baseline's mean (it is part of it); blocks as long as the test's window vary more when
    -- traffic wanders over hours, and that ratio widens the test's null (at least 1).
    SELECT * INTO b FROM drift.baselines x WHERE x.model = p_model AND x.kind = 'embedding';
    IF b.model IS NULL THEN
        RETURN 1;
    END IF;
    EXECUTE format($q$
        SELECT count(*)::integer, avg(-(d.d <#> drift.evidence_inverse_times(%1$L, d.d)) / (%4$s * (1.0 / d.n - 1.0 / %3$s)))
        FROM (
            SELECT blk.n, drift.evidence_features(%1$L, drift.scale_vector(blk.vec_sum, 1.0 / blk.n)
                - drift.scale_vector(%2$L::vector, 1.0 / %3$s)) AS d
            FROM (SELECT floor(extract(epoch FROM x.bucket - %5$L::timestamptz) / %6$s)::bigint AS k,
                         sum(x.n)::bigint AS n, sum(x.vec_sum) AS vec_sum
                  FROM (%7$s) x GROUP BY 1) blk
            WHERE blk.n < %3$s
        ) d $q$,
        p_model, b.vec_sum, b.n, p_trace1, b.starts, extract(epoch FROM win), drift.baseline_bucket_sql(p_model))
    INTO blocks, phi;
    RETURN CASE WHEN blocks >= 6 AND phi > 1 THEN phi ELSE 1 END;
END $$;
COMMENT ON FUNCTION drift.whitened_dispersion(text, double precision) IS 'Overdispersion of the whitened window test: the mean ratio of the whitened statistic of whitened_window-long baseline blocks to its value for independent embeddings (at least 1; 1 with fewer than 6 blocks).';

COMMENT ON FUNCTION drift.whitened_traces(text) IS 'Stores the null cumulants of a model''s whitened window test, tr M^j for M = (S_a + ridge I)^-1 S_b with the sample covariance''s bias taken off, from its whitening (called by drift.embedding_whiten).';

-- The whitened window test (metric whitened_mean_shift): the mean test in the same whitened
-- features, T = d' (S_a + ridge I)^-1 d for d the mean features of whitened_window minus the
-- baseline's. The window is longer than the current one, so a drift that persists for hours is
-- judged on all of its data at once; without drift T is a weighted chi-square whose cumulants
-- are tr M^j h^j, M = (S_a + ridge I)^-1 S_b, h = dispersion (1/n + 1/n_baseline) (dispersion
-- from baseline blocks as long as the window: drift.whitened_dispersion), fitted
-- with three moments as the centroid test is (measured on real text embeddings, a new topic at
-- 10% of traffic moves the mean mostly along quiet directions, which whitening counts for more).
CREATE OR REPLACE FUNCTION drift.embedding_whitened_test(p_model text, n_cur bigint, sum_cur vector,
    n_base bigint, sum_base vector, c drift.embedding_calibration, level double precision,
    OUT statistic double precision, OUT expected double precision, OUT dof double precision,
    OUT p_value double precision, OUT decision double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    SELECT t.stat, k.k1, k.nu, drift.three_moment_sf(t.stat, k.k1, k.k2, k.nu),
        -- The statistic at which the test rejects at level: p_value < level exactly when T > it.
        drift.three_moment_isf(level, k.k1, k.k2, k.nu)
    FROM (SELECT -(d.d <#> drift.evidence_inverse_times(p_model, d.d)) AS stat
          FROM (SELECT drift.evidence_features(p_model, drift.scale_vector(sum_cur, 1.0 / nullif(n_cur, 0))
                       - drift.scale_vector(sum_base, 1.0 / nullif(n_base, 0))) AS d) d) t,
         (SELECT (c).whitened_trace1 * h AS k1, 2 * (c).whitened_trace2 * h * h AS k2,
                 (c).whitened_trace2 ^ 3 / nullif((c).whitened_trace3, 0) ^ 2 AS nu
          FROM (SELECT coalesce((c).whitened_dispersion, 1) * (1.0 / nullif(n_cur, 0) + 1.0 / nullif(n_base, 0)) AS h) hh) k
    WHERE n_cur > 0 AND n_base > 0 AND (c).whitened_trace2 > 0 AND (c).whitened_trace3 > 0
$$;
COMMENT ON FUNCTION drift.embedding_whitened_test(text, bigint, vector, bigint, vector, drift.embedding_calibration, double precision) IS 'Whitened mean-shift test of a window (count and vector sum, from rollups) against the baseline, in the model''s sequential-test features: statistic, its null mean, the fit''s degrees of freedom, p-value, and the statistic at which it rejects at level.';

-- Models whitened before the whitened window test existed get its traces from their stored
-- whitening (an upgrade); a no-op once every calibrated model has them.
SELECT drift.whitened_traces(c.model) FROM drift.embedding_calibration c
WHERE c.evidence_rank IS NOT NULL AND c.whitened_trace2 IS NULL;


-- repeatable 60_reports.sql

-- Drift reports at any time (drift.drift_report(as_of)) and now (the drift views). Every row is
-- a drift.report_row; its columns are documented once, on the type, and copied to the views.

-- ---------------------------------------------------------------------------------------------
-- Drift reports (any time) and views (now)
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.report_config(p_as_of timestamptz,
    OUT window_start timestamptz, OUT window_end timestamptz, OUT min_samples bigint, OUT alpha double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT e - drift.setting('current_window')::interval, e,
           drift.setting('min_samples')::bigint, drift.setting('alpha')::float8
    FROM (SELECT drift.bucket_of(p_as_of, drift.setting('bucket_width')::interval) AS e) x
$$;
COMMENT ON FUNCTION drift.report_config(timestamptz) IS 'The current window (whole buckets before as_of), min_samples and alpha used by the drift reports.';

CREATE OR REPLACE FUNCTION drift.embedding_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS SETOF drift.report_row
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    WITH cfg AS (
        SELECT c.*, drift.setting('embedding_drift_threshold')::float8 AS thr,
            drift.setting('embedding_distance_floor')::float8 AS floor, drift.look_alpha() AS look,
            drift.setting('whitened_window')::interval AS white_window,
            drift.look_alpha(drift.setting('whitened_window')::interval) AS white_look
        FROM drift.report_config(p_as_of) c
    ), cur AS (
        SELECT m.model, w.n, w.vec_sum, b.n AS nb, b.vec_sum AS vb, b.ends AS base_ends, cal AS cal
        FROM drift.models m
        CROSS JOIN cfg
        CROSS JOIN LATERAL drift.embedding_window(m.model, cfg.window_start, cfg.window_end) w
        LEFT JOIN drift.baselines b ON b.model = m.model AND b.kind = 'embedding'
        LEFT JOIN drift.embedding_calibration cal ON cal.model = m.model
        WHERE m.embedding_dims IS NOT NULL AND (p_models IS NULL OR m.model = ANY (p_models))
    ), mean_rows AS (
        SELECT cur.model, cur.n, cur.nb, cur.cal,
            CASE WHEN cur.n > 0 AND cur.nb > 0 THEN (cur.vec_sum <=> cur.vb) END AS dist, t.*,
            -- The decision line on the score's own scale: the centroid distance at which the
            -- mean test rejects at the per-evaluation level now (never below the floor).
            CASE WHEN cur.n >= cfg.min_samples AND cur.nb >= cfg.min_samples THEN
                greatest(drift.embedding_mean_threshold(cur.n, cur.vec_sum, cur.nb, cur.vb, cur.cal, cfg.look), cfg.floor)
            END AS decision
        FROM cur CROSS JOIN cfg
        LEFT JOIN LATERAL drift.embedding_mean_test(cur.n, cur.vec_sum, cur.nb, cur.vb, cur.cal) t ON true
    ), novelty_rows AS (
        -- Without a calibration (no baseline yet) the row is still there, with its count.
        SELECT cur.model, cur.nb, cur.cal, cur.n, nw.scored, nw.novel,
            CASE WHEN nw.scored > 0 THEN nw.novel::float8 / nw.scored END AS rate,
            round((cur.cal).novelty_expected * (cur.cal).sample_n)::bigint AS novel_base,
            nw.scored >= cfg.min_samples AS enough
        FROM cur CROSS JOIN cfg
        LEFT JOIN LATERAL drift.novelty_window(cur.model, cfg.window_start, cfg.window_end) nw
            ON (cur.cal).novelty_radius IS NOT NULL
    )
    SELECT s.model, 'embedding', 'centroid_distance', s.dist, s.decision, s.p_value, s.n, coalesce(s.nb, 0),
        coalesce(s.dist > s.decision, false),
        cfg.window_start, cfg.window_end, s.dist, 0::float8,
        jsonb_build_object('test', 'mean shift, three-moment chi-square calibrated on baseline buckets',
            'statistic', s.statistic, 'expected_statistic', s.expected, 'dof', s.dof,
            'effect_size', s.effect_size, 'effect_size_kind', 'mean shift / baseline RMS spread',
            'dispersion', (s.cal).dispersion, 'calibration_units', (s.cal).units,
            'alpha', cfg.alpha, 'look_alpha', cfg.look, 'distance_floor', cfg.floor,
            'seed_threshold', cfg.thr, 'seed_rule_drifted', coalesce(s.dist > cfg.thr, false),
            'threshold_kind', 'centroid distance at which the mean test rejects at look_alpha',
            'min_samples', cfg.min_samples)
    FROM mean_rows s CROSS JOIN cfg
    UNION ALL
    SELECT v.model, 'embedding', 'novelty_rate', v.rate, v.decision,
        drift.rate_increase_p(v.novel, v.scored, v.novel_base, (v.cal).sample_n), v.n, coalesce(v.nb, 0),
        coalesce(v.rate > v.decision, false),
        cfg.window_start, cfg.window_end, v.rate, (v.cal).novelty_expected,
        jsonb_build_object('test', 'nearest-neighbour novelty vs baseline sample, arcsine two-sample (one-sided)',
            'effect_size', v.rate - (v.cal).novelty_expected, 'effect_size_kind', 'excess novelty rate',
            'scored_current', v.scored, 'novel_current', v.novel, 'sample_n', (v.cal).sample_n,
            'radius', (v.cal).novelty_radius, 'alpha', cfg.alpha, 'look_alpha', cfg.look,
            'expected_rate', (v.cal).novelty_expected,
            'threshold_kind', 'novelty rate at which the test rejects at look_alpha',
            'min_samples', cfg.min_samples)
    FROM (SELECT nr.*, CASE WHEN nr.enough THEN greatest(
              drift.rate_increase_threshold(nr.scored, nr.novel_base, (nr.cal).sample_n, cfg.look),
              (nr.cal).novelty_expected) END AS decision
          FROM novelty_rows nr CROSS JOIN cfg) v CROSS JOIN cfg
    UNION ALL
    -- The sequential test: its statistic after the last bucket folded before the window's end,
    -- on the current window like every row (an event's window is what a reindex moves the
    -- baseline to, and what incidents group by); the run of evidence is in details.
    SELECT cur.model, 'embedding', 'mean_shift_evidence', ev.statistic,
        CASE WHEN ev.model IS NOT NULL AND cur.n >= cfg.min_samples THEN h.h END,
        -- About (run_n k^2/2) e^-S: how often drift-free traffic builds this much evidence in a run this long.
        CASE WHEN ev.model IS NOT NULL THEN least(1, (ev.run_n * h.k * h.k / 2 + 1) * exp(-least(ev.statistic, 700))) END,
        cur.n, coalesce(cur.nb, 0),
        coalesce(cur.n >= cfg.min_samples AND ev.statistic > h.h, false),
        cfg.window_start, cfg.window_end, ev.statistic, 0::float8,
        jsonb_build_object('test', 'CUSUM of each new bucket projected on the whitened direction the mean moved before it',
            'statistic_kind', 'evidence in nats (log-likelihood ratio)', 'reference_shift', h.k,
            'direction_window', drift.setting('evidence_direction_window'), 'last_bucket', ev.bucket,
            'last_z', ev.z, 'since', ev.since, 'run_embeddings', ev.run_n,
            'threshold_kind', 'evidence at which drift-free traffic at the baseline rate raises about one false event per four false_alarm_intervals',
            'alpha', cfg.alpha, 'min_samples', cfg.min_samples)
    FROM cur CROSS JOIN cfg
    CROSS JOIN LATERAL (SELECT drift.evidence_threshold(cur.model) AS h, drift.setting('evidence_shift')::float8 AS k) h
    LEFT JOIN LATERAL (SELECT e.* FROM drift.embedding_evidence e
                       WHERE e.model = cur.model AND e.bucket < cfg.window_end
                       ORDER BY e.bucket DESC LIMIT 1) ev ON true
    UNION ALL
    -- The whitened window test, over whitened_window ending where the current window ends (never
    -- before the baseline's end: that data is partly the baseline itself), at the per-evaluation
    -- level of a window that long. Its row keeps the current window, like the sequential test's.
    SELECT cur.model, 'embedding', 'whitened_mean_shift', wt.statistic,
        CASE WHEN lined THEN wt.decision END, wt.p_value, cur.n, coalesce(cur.nb, 0),
        coalesce(lined AND wt.statistic > wt.decision, false),
        cfg.window_start, cfg.window_end, wt.statistic, 0::float8,
        jsonb_build_object('test', 'mean shift in the sequential test''s whitened features over whitened_window, three-moment chi-square',
            'statistic_kind', 'squared whitened mean shift', 'expected_statistic', wt.expected, 'dof', wt.dof,
            'effect_size', CASE WHEN wt.statistic IS NOT NULL THEN sqrt(greatest(wt.statistic - wt.expected, 0)) END,
            'effect_size_kind', 'sqrt(statistic - its mean without drift): the ridge-whitened mean shift',
            'test_window_start', wf.from_, 'test_window_end', cfg.window_end, 'test_window_n', ww.n,
            'dispersion', (cur.cal).whitened_dispersion, 'alpha', cfg.alpha, 'look_alpha', cfg.white_look,
            'threshold_kind', 'statistic at which the test rejects at look_alpha of whitened_window',
            'min_samples', cfg.min_samples)
    FROM cur CROSS JOIN cfg
    CROSS JOIN LATERAL (SELECT greatest(cfg.window_end - cfg.white_window, cur.base_ends) AS from_) wf
    -- Without the traces (no whitening) the window is not even read.
    LEFT JOIN LATERAL drift.embedding_window(cur.model, wf.from_, cfg.window_end) ww ON (cur.cal).whitened_trace2 IS NOT NULL
    LEFT JOIN LATERAL drift.embedding_whitened_test(cur.model, ww.n, ww.vec_sum, cur.nb, cur.vb, cur.cal, cfg.white_look) wt
        ON ww.n > 0
    CROSS JOIN LATERAL (SELECT cur.n >= cfg.min_samples AND ww.n >= cfg.min_samples AND cur.nb >= cfg.min_samples
                               AND wt.decision IS NOT NULL AS lined) l
$$;
COMMENT ON FUNCTION drift.embedding_report(timestamptz, text[]) IS 'Embedding drift of each model at as_of: centroid_distance (score = centroid cosine distance; p-value of the calibrated mean-shift test from rollups), novelty_rate (share of embeddings far from every baseline-sample point; binomial-type test against the baseline''s own rate), mean_shift_evidence (score = CUSUM evidence in nats accumulated over the buckets folded so far) and whitened_mean_shift (score = squared whitened mean shift over whitened_window).';

CREATE OR REPLACE FUNCTION drift.behavior_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS SETOF drift.report_row
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    WITH cfg AS (SELECT c.*, drift.look_alpha() AS look FROM drift.report_config(p_as_of) c),
    cur AS (
        SELECT m.model, w AS c, b
        FROM drift.models m
        CROSS JOIN cfg
        CROSS JOIN LATERAL drift.interaction_window(m.model, cfg.window_start, cfg.window_end) w
        LEFT JOIN drift.baselines b ON b.model = m.model AND b.kind = 'behavior'
        WHERE m.interactions_seen AND (p_models IS NULL OR m.model = ANY (p_models))
    ), metrics AS (
        SELECT cur.model, x.*, x.n_base >= cfg.min_samples AS vs_base,
            -- Against the baseline when it has enough data, else against the absolute threshold.
            CASE WHEN x.n_base >= cfg.min_samples THEN drift.rate_increase_p(x.x_cur, x.n_cur, x.x_base, x.n_base)
                 ELSE drift.proportion_above_p(x.x_cur, x.n_cur, x.thr) END AS p,
            -- The decision line: past the seed's absolute threshold and past the rate at which
            -- the rise becomes significant at the per-evaluation level.
            CASE WHEN x.n_cur >= cfg.min_samples THEN greatest(x.thr,
                CASE WHEN x.n_base >= cfg.min_samples THEN drift.rate_increase_threshold(x.n_cur, x.x_base, x.n_base, cfg.look)
                     ELSE drift.proportion_above_threshold(x.n_cur, x.thr, cfg.look) END) END AS decision
        FROM cur CROSS JOIN cfg
        CROSS JOIN LATERAL (VALUES
            ('refusal_rate', (cur.c).refusals, (cur.c).refusal_known, coalesce((cur.b).refusals, 0),
                coalesce((cur.b).refusal_known, 0), drift.setting('refusal_rate_threshold')::float8),
            ('toxicity_rate', (cur.c).toxic, (cur.c).toxicity_scored, coalesce((cur.b).toxic, 0),
                coalesce((cur.b).toxicity_scored, 0), drift.setting('toxicity_rate_threshold')::float8)
        ) AS x(metric, x_cur, n_cur, x_base, n_base, thr)
    )
    SELECT mt.model, 'behavior', mt.metric,
        CASE WHEN mt.n_cur > 0 THEN mt.x_cur::float8 / mt.n_cur END, mt.decision, mt.p, mt.n_cur, mt.n_base,
        -- Both at once: above the seed's absolute threshold, and a rise significant at the
        -- per-evaluation level (decision is the larger of the two rates).
        coalesce(mt.x_cur::float8 / nullif(mt.n_cur, 0) > mt.decision, false),
        cfg.window_start, cfg.window_end,
        CASE WHEN mt.n_cur > 0 THEN mt.x_cur::float8 / mt.n_cur END,
        CASE WHEN mt.n_base > 0 THEN mt.x_base::float8 / mt.n_base END,
        jsonb_build_object(
            'test', CASE WHEN mt.vs_base THEN 'arcsine two-sample (one-sided) vs baseline'
                         ELSE 'one-sample z (one-sided) vs threshold' END,
            'effect_size', CASE WHEN mt.n_cur > 0 THEN drift.cohens_h(mt.x_cur::float8 / mt.n_cur,
                CASE WHEN mt.vs_base THEN mt.x_base::float8 / mt.n_base ELSE mt.thr END) END,
            'effect_size_kind', 'Cohen''s h',
            'ci_low', wi.low, 'ci_high', wi.high, 'ci_level', 1 - cfg.alpha,
            'alpha', cfg.alpha, 'look_alpha', cfg.look, 'min_samples', cfg.min_samples,
            'seed_threshold', mt.thr, 'seed_rule_drifted', coalesce(mt.x_cur::float8 / nullif(mt.n_cur, 0) > mt.thr, false),
            'threshold_kind', 'rate past both the seed threshold and significance at look_alpha',
            'count_current', mt.x_cur, 'count_baseline', mt.x_base)
    FROM metrics mt CROSS JOIN cfg
    LEFT JOIN LATERAL drift.wilson_interval(mt.x_cur, mt.n_cur, 1 - cfg.alpha) wi ON true
$$;
COMMENT ON FUNCTION drift.behavior_report(timestamptz, text[]) IS 'Behavior drift of each model at as_of: refusal and toxicity rates (score) above the absolute thresholds and significantly above the baseline (arcsine test at the per-evaluation level), with Wilson intervals.';

CREATE OR REPLACE FUNCTION drift.accuracy_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS SETOF drift.report_row
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    WITH cfg AS (
        SELECT c.*, drift.setting('accuracy_drop_threshold')::float8 AS thr, drift.look_alpha() AS look
        FROM drift.report_config(p_as_of) c
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
            drift.rate_increase_p(n_cur - ok_cur, n_cur, n_base - ok_base, n_base) AS p,
            -- The decision line on the drop scale: the seed's drop threshold, or the drop at
            -- which the error-rate rise becomes significant at the per-evaluation level.
            CASE WHEN n_cur >= cfg.min_samples AND n_base >= cfg.min_samples THEN greatest(cfg.thr,
                drift.rate_increase_threshold(n_cur, n_base - ok_base, n_base, cfg.look)
                - (n_base - ok_base)::float8 / n_base) END AS decision
        FROM cur CROSS JOIN cfg
    )
    SELECT s.model, 'accuracy', 'accuracy', s.acc_base - s.acc, s.decision, s.p, s.n_cur, s.n_base,
        coalesce(s.acc_base - s.acc > s.decision, false),
        cfg.window_start, cfg.window_end, s.acc, s.acc_base,
        jsonb_build_object('test', 'arcsine two-sample (one-sided) on the error rate vs baseline',
            'effect_size', drift.cohens_h(1 - s.acc, 1 - s.acc_base), 'effect_size_kind', 'Cohen''s h of the error rate',
            'ci_low', wi.low, 'ci_high', wi.high, 'ci_level', 1 - cfg.alpha,
            'alpha', cfg.alpha, 'look_alpha', cfg.look,
            'seed_threshold', cfg.thr, 'seed_rule_drifted', coalesce(s.acc_base - s.acc > cfg.thr, false),
            'threshold_kind', 'accuracy drop past both the seed threshold and significance at look_alpha',
            'min_samples', cfg.min_samples, 'labelled_current', s.labelled,
            'window_time', 'interaction time (late labels count in their interaction''s window)')
    FROM scored s CROSS JOIN cfg
    LEFT JOIN LATERAL drift.wilson_interval(s.ok_cur, s.n_cur, 1 - cfg.alpha) wi ON true
$$;
COMMENT ON FUNCTION drift.accuracy_report(timestamptz, text[]) IS 'Accuracy drift of each model at as_of: accuracy from labels (feedback where unlabelled) by interaction time, score = drop below the baseline accuracy; drifted when the drop exceeds the threshold and the error-rate rise is significant at the per-evaluation level.';

CREATE OR REPLACE FUNCTION drift.drift_report(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS SETOF drift.report_row
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT * FROM drift.embedding_report(p_as_of, p_models)
    UNION ALL SELECT * FROM drift.behavior_report(p_as_of, p_models)
    UNION ALL SELECT * FROM drift.accuracy_report(p_as_of, p_models)
$$;
COMMENT ON FUNCTION drift.drift_report(timestamptz, text[]) IS 'All drift metrics of all (or the given) models at any time as_of; the drift views are this at now().';

CREATE OR REPLACE VIEW drift.embedding_drift AS SELECT * FROM drift.embedding_report(now(), NULL);
CREATE OR REPLACE VIEW drift.behavior_drift AS SELECT * FROM drift.behavior_report(now(), NULL);
CREATE OR REPLACE VIEW drift.accuracy_drift AS SELECT * FROM drift.accuracy_report(now(), NULL);
CREATE OR REPLACE VIEW drift.drift_status AS
    SELECT * FROM drift.embedding_drift
    UNION ALL SELECT * FROM drift.behavior_drift
    UNION ALL SELECT * FROM drift.accuracy_drift;
COMMENT ON VIEW drift.embedding_drift IS 'Embedding drift now: centroid_distance, novelty_rate, mean_shift_evidence and whitened_mean_shift per model.';
COMMENT ON VIEW drift.behavior_drift IS 'Behavior drift now: refusal_rate and toxicity_rate per model.';
COMMENT ON VIEW drift.accuracy_drift IS 'Accuracy drift now: accuracy per model (score = drop below baseline).';
COMMENT ON VIEW drift.drift_status IS 'Every drift metric of every model now: the union of the three drift views.';

COMMENT ON COLUMN drift.report_row.model IS 'Model name.';
COMMENT ON COLUMN drift.report_row.kind IS 'embedding, behavior or accuracy.';
COMMENT ON COLUMN drift.report_row.metric IS 'centroid_distance, novelty_rate, mean_shift_evidence, whitened_mean_shift, refusal_rate, toxicity_rate or accuracy.';
COMMENT ON COLUMN drift.report_row.score IS 'The metric''s score compared with threshold: centroid cosine distance, rate, accuracy drop, evidence in nats, or the squared whitened mean shift.';
COMMENT ON COLUMN drift.report_row.threshold IS 'The decision line on the score''s scale: the score above which this row counts as drifted now (its test rejecting at details.look_alpha, and past the seed threshold details.seed_threshold for rates and accuracy); drifted = (score > threshold). NULL with too few samples.';
COMMENT ON COLUMN drift.report_row.p_value IS 'p-value of the calibrated statistical test of this window (see details.test).';
COMMENT ON COLUMN drift.report_row.n_current IS 'Samples in the current window.';
COMMENT ON COLUMN drift.report_row.n_baseline IS 'Samples in the baseline window.';
COMMENT ON COLUMN drift.report_row.drifted IS 'score > threshold: enough samples, p_value below the per-evaluation level details.look_alpha (at most one false event per false_alarm_interval), and the seed threshold passed (rates, accuracy drop) or the floor (centroid distance).';
COMMENT ON COLUMN drift.report_row.window_start IS 'Start of the current window.';
COMMENT ON COLUMN drift.report_row.window_end IS 'End of the current window (exclusive).';
COMMENT ON COLUMN drift.report_row.value IS 'Current value of the metric (distance, rate or accuracy).';
COMMENT ON COLUMN drift.report_row.baseline_value IS 'Baseline value of the metric.';
COMMENT ON COLUMN drift.report_row.details IS 'Test name, statistic, effect_size, intervals, alpha, look_alpha, min_samples and counts.';

-- The views show the same columns: copy the type's column comments onto each of them.
DO $$
DECLARE
    v text;
    c record;
BEGIN
    FOREACH v IN ARRAY ARRAY['embedding_drift', 'behavior_drift', 'accuracy_drift', 'drift_status'] LOOP
        FOR c IN SELECT a.attname, col_description(a.attrelid, a.attnum) AS doc FROM pg_attribute a
                 WHERE a.attrelid = 'drift.report_row'::regclass AND a.attnum > 0 AND NOT a.attisdropped LOOP
            EXECUTE format('COMMENT ON COLUMN drift.%I.%I IS %L', v, c.attname, c.doc);
        END LOOP;
    END LOOP;
END $$;


-- repeatable 70_evaluate.sql

-- Evaluate: turn drifted report rows into drift_events, from drift.evaluate() or from the log
-- triggers (at most once per evaluate_interval per model).

CREATE OR REPLACE FUNCTION drift.evaluate_due(p_models text[]) RETURNS void
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

CREATE OR REPLACE FUNCTION drift.evaluate_models(p_as_of timestamptz, p_models text[]) RETURNS SETOF drift.drift_events
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    cooldown interval := drift.setting('cooldown')::interval;
    report drift.report_row[];
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
    -- The report is computed once: the history and the events are written from the same rows.
    report := ARRAY(SELECT r FROM drift.drift_report(p_as_of, p_models) r);
    PERFORM drift.record_evaluation(p_as_of, report);  -- evaluation history (75_timeseries.sql)
    RETURN QUERY
    WITH raised AS (
        INSERT INTO drift.drift_events AS e (model, kind, metric, score, threshold, p_value, window_start,
            window_end, details)
        SELECT r.model, r.kind, r.metric, r.score, r.threshold, r.p_value, r.window_start, r.window_end,
            r.details || jsonb_build_object('value', r.value, 'baseline_value', r.baseline_value,
                'n_current', r.n_current, 'n_baseline', r.n_baseline, 'as_of', p_as_of)
        FROM unnest(report) r
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

CREATE OR REPLACE FUNCTION drift.evaluate(as_of timestamptz DEFAULT now()) RETURNS SETOF drift.drift_events
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- The scheduled entry point keeps the log partitions ahead of the clock (a catalog read
    -- when none is missing), so ingestion never waits on DDL.
    PERFORM drift.ensure_partitions();
    PERFORM drift.compact_rollups();
    RETURN QUERY SELECT * FROM drift.evaluate_models(as_of, NULL);
END $$;
COMMENT ON FUNCTION drift.evaluate(timestamptz) IS 'Creates missing log partitions ahead, compacts the rollups, compares every model''s current window [as_of - current_window, as_of) with its baseline, inserts and returns the new drift events (each notified on channel drift_events).';

CREATE OR REPLACE FUNCTION drift.prepare_report(p_as_of timestamptz, p_models text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    cfg record := drift.report_config(p_as_of);
    m record;
BEGIN
    -- Score and cache the window's novelty before the report reads it, so each embedding is
    -- searched once (a bucket that gained rows since is scored again), not at every read; and
    -- fold the complete buckets into the sequential test, each once.
    FOR m IN
        SELECT c.model FROM drift.embedding_calibration c
        WHERE p_models IS NULL OR c.model = ANY (p_models)
    LOOP
        PERFORM drift.novelty_score(m.model, cfg.window_start, cfg.window_end);
        PERFORM drift.embedding_evidence_fold(m.model, cfg.window_end);
    END LOOP;
END $$;
COMMENT ON FUNCTION drift.prepare_report(timestamptz, text[]) IS 'Called by drift.evaluate_models before it reads the report: caches the novelty counts of each calibrated model''s current window and folds its complete buckets into the sequential embedding test.';


-- repeatable 72_incidents.sql

-- Incidents: grouping drift events, and recovery judged against the pre-drift reference.

CREATE OR REPLACE FUNCTION drift.drift_events_join_incident() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, extensions
AS $$
DECLARE
    found_id bigint;
    previous_id bigint;
    v_as_of timestamptz := coalesce((NEW.details->>'as_of')::timestamptz, NEW.window_end, NEW.created_at);
    v_starts timestamptz := coalesce(NEW.window_start, v_as_of);
    v_ends timestamptz := coalesce(NEW.window_end, v_as_of);
    metric_ref jsonb := jsonb_build_object(NEW.metric, jsonb_build_object(
        'baseline_value', NEW.details->'baseline_value', 'threshold', NEW.threshold, 'as_of', v_as_of));
BEGIN
    IF NEW.incident_id IS NOT NULL THEN
        RETURN NEW;
    END IF;
    -- An open event of the same metric makes this insert a conflict (evaluate skips it):
    -- touch no incident for a row that will not be written.
    IF EXISTS (SELECT 1 FROM drift.drift_events o
               WHERE o.model = NEW.model AND o.kind = NEW.kind AND o.metric = NEW.metric
                 AND o.status IN ('pending', 'running')) THEN
        RETURN NEW;
    END IF;
    -- Concurrent evaluations of one model and kind group one at a time.
    PERFORM pg_advisory_xact_lock(hashtextextended('drift.incidents:' || NEW.model || ':' || NEW.kind, 0));
    -- The latest incident whose span this window overlaps; an incident with an open event
    -- spans until that event closes.
    SELECT i.id INTO found_id
    FROM drift.incidents i
    WHERE i.model = NEW.model AND i.kind = NEW.kind
      AND v_ends > i.window_start
      AND (v_starts < i.window_end
           OR EXISTS (SELECT 1 FROM drift.drift_events o WHERE o.incident_id = i.id AND o.status IN ('pending', 'running')))
      AND EXISTS (SELECT 1 FROM drift.drift_events o WHERE o.incident_id = i.id)
    ORDER BY i.window_end DESC, i.id DESC
    LIMIT 1
    FOR UPDATE;
    -- Once an action moved the baseline into the incident's span, a new event compares with
    -- that moved baseline: the drift goes on past the action, which was not enough. It opens
    -- a new incident continuing this one (its actions may run), not one more event of it.
    IF found_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM drift.baselines b JOIN drift.incidents i ON i.id = found_id
        WHERE b.model = NEW.model AND b.kind = NEW.kind AND b.ends > i.window_start) THEN
        previous_id := found_id;
        found_id := NULL;
    END IF;
    IF found_id IS NULL THEN
        -- A new incident. When it continues one (above), or its window starts right where the
        -- previous incident's ended, the drift persisted past that incident's actions and
        -- cooldown: it inherits that incident's pre-drift reference, since those actions may
        -- have moved the baseline. Otherwise the baseline as it is now, before any action of
        -- this incident moves it.
        IF previous_id IS NULL THEN
            SELECT i.id INTO previous_id
            FROM drift.incidents i
            WHERE i.model = NEW.model AND i.kind = NEW.kind AND i.window_end = v_starts
            ORDER BY i.id DESC
            LIMIT 1;
        END IF;
        IF previous_id IS NOT NULL THEN
            INSERT INTO drift.incidents (model, kind, first_as_of, last_as_of, window_start, window_end, reference,
                reference_centroid)
            SELECT NEW.model, NEW.kind, v_as_of, v_as_of, v_starts, v_ends,
                jsonb_set(p.reference, '{metrics}', metric_ref || coalesce(p.reference->'metrics', '{}'))
                    || jsonb_build_object('continues', previous_id),
                p.reference_centroid
            FROM drift.incidents p WHERE p.id = previous_id
            RETURNING incidents.id INTO found_id;
        ELSE
            INSERT INTO drift.incidents (model, kind, first_as_of, last_as_of, window_start, window_end, reference,
                reference_centroid)
            SELECT NEW.model, NEW.kind, v_as_of, v_as_of, v_starts, v_ends,
                jsonb_build_object('baseline', to_jsonb(b) - 'vec_sum' - 'sq_sum', 'metrics', metric_ref),
                b.vec_sum
            FROM (SELECT 1) AS one
            LEFT JOIN drift.baselines b ON b.model = NEW.model AND b.kind = NEW.kind
            RETURNING incidents.id INTO found_id;
        END IF;
    ELSE
        UPDATE drift.incidents i
        SET last_as_of = greatest(i.last_as_of, v_as_of),
            window_start = least(i.window_start, v_starts),
            window_end = greatest(i.window_end, v_ends),
            -- A metric's first event keeps its reference: a later one may already compare
            -- with a baseline this incident's actions moved.
            reference = jsonb_set(i.reference, '{metrics}', metric_ref || coalesce(i.reference->'metrics', '{}'))
        WHERE i.id = found_id;
    END IF;
    NEW.incident_id := found_id;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION drift.drift_events_join_incident() IS 'Puts a new drift event into the incident of its model and kind whose span its window overlaps (or that still has an open event), unless an action already moved the baseline into that span; else opens a new incident: its pre-drift reference is the current baseline, or the reference of the incident it continues (the drift persisted after that incident''s actions).';
CREATE OR REPLACE TRIGGER drift_events_join_incident BEFORE INSERT ON drift.drift_events
    FOR EACH ROW EXECUTE FUNCTION drift.drift_events_join_incident();

CREATE OR REPLACE FUNCTION drift.drift_events_drop_empty_incidents() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    DELETE FROM drift.incidents i
    WHERE i.id IN (SELECT o.incident_id FROM old_events o WHERE o.incident_id IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM drift.drift_events e WHERE e.incident_id = i.id);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.drift_events_drop_empty_incidents() IS 'Deletes the incidents left without events when events are deleted (a simulation reset, a purge).';
CREATE OR REPLACE TRIGGER drift_events_drop_empty_incidents AFTER DELETE ON drift.drift_events
    REFERENCING OLD TABLE AS old_events FOR EACH STATEMENT EXECUTE FUNCTION drift.drift_events_drop_empty_incidents();

CREATE OR REPLACE VIEW drift.incident_status AS
SELECT i.id, i.model, i.kind, i.first_as_of, i.last_as_of, i.window_start, i.window_end, i.created_at,
    CASE WHEN bool_or(e.status IN ('pending', 'running')) THEN 'open'
         WHEN bool_or(e.status = 'failed') AND NOT bool_or(e.status = 'resolved') THEN 'failed'
         ELSE 'resolved' END AS status,
    count(e.id) AS events,
    array_agg(DISTINCT e.metric ORDER BY e.metric) AS metrics,
    array_agg(e.id ORDER BY e.id) AS event_ids,
    (SELECT array_agg(DISTINCT r.action ORDER BY r.action) FROM drift.action_runs r
     JOIN drift.drift_events re ON re.id = r.event_id
     WHERE re.incident_id = i.id AND r.outcome = 'succeeded') AS actions_succeeded,
    i.reference
FROM drift.incidents i
LEFT JOIN drift.drift_events e ON e.incident_id = i.id
GROUP BY i.id;
COMMENT ON VIEW drift.incident_status IS 'One row per incident: its status (open while an event is pending or running), events, metrics, the actions that succeeded for it and its pre-drift reference.';
COMMENT ON COLUMN drift.incident_status.id IS 'Incident id.';
COMMENT ON COLUMN drift.incident_status.model IS 'Model name.';
COMMENT ON COLUMN drift.incident_status.kind IS 'embedding, behavior or accuracy.';
COMMENT ON COLUMN drift.incident_status.first_as_of IS 'Data time of the first event.';
COMMENT ON COLUMN drift.incident_status.last_as_of IS 'Data time of the latest event.';
COMMENT ON COLUMN drift.incident_status.window_start IS 'Start of the earliest event window.';
COMMENT ON COLUMN drift.incident_status.window_end IS 'End of the latest event window.';
COMMENT ON COLUMN drift.incident_status.created_at IS 'When the first event was raised (wall clock).';
COMMENT ON COLUMN drift.incident_status.status IS 'open (an event is pending or running), resolved, or failed (no event resolved).';
COMMENT ON COLUMN drift.incident_status.events IS 'Number of events in the incident.';
COMMENT ON COLUMN drift.incident_status.metrics IS 'The metrics that drifted.';
COMMENT ON COLUMN drift.incident_status.event_ids IS 'The incident''s events, oldest first.';
COMMENT ON COLUMN drift.incident_status.actions_succeeded IS 'The actions that succeeded for the incident (each runs once).';
COMMENT ON COLUMN drift.incident_status.reference IS 'The pre-drift reference recovery is judged against (drift.incidents.reference).';

CREATE OR REPLACE FUNCTION drift.incident_recovery(p_incident bigint, p_as_of timestamptz DEFAULT now())
RETURNS TABLE (metric text, value double precision, reference_value double precision,
    reference_limit double precision, within_reference boolean, baseline_value double precision,
    within_current boolean, window_start timestamptz, window_end timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, extensions
AS $$
    -- Per metric of the incident: its value now, the band of the ORIGINAL baseline and whether
    -- the value is back inside it, next to the engine's verdict against the current (possibly
    -- moved) baseline.
    WITH inc AS (SELECT * FROM drift.incidents WHERE id = p_incident),
    ref AS (
        SELECT m.key AS metric, (m.value->>'baseline_value')::float8 AS base,
            (m.value->>'threshold')::float8 AS threshold
        FROM inc, jsonb_each(inc.reference->'metrics') AS m
    ),
    now_rows AS (
        SELECT r.* FROM inc, drift.drift_report(p_as_of, ARRAY[inc.model]) r WHERE r.kind = inc.kind
    ),
    centroid AS (
        SELECT CASE WHEN w.n > 0 AND inc.reference_centroid IS NOT NULL
                    THEN (w.vec_sum <=> inc.reference_centroid)::float8 END AS distance
        FROM inc, now_rows r, drift.embedding_window(inc.model, r.window_start, r.window_end) w
        WHERE r.metric = 'centroid_distance'
    )
    SELECT ref.metric,
        CASE WHEN ref.metric = 'centroid_distance' THEN (SELECT distance FROM centroid) ELSE r.value END,
        CASE WHEN ref.metric = 'centroid_distance' THEN 0 ELSE ref.base END,
        CASE ref.metric
            WHEN 'accuracy' THEN ref.base - ref.threshold
            WHEN 'centroid_distance' THEN ref.threshold
            WHEN 'novelty_rate' THEN NULL
            WHEN 'mean_shift_evidence' THEN NULL
            WHEN 'whitened_mean_shift' THEN NULL
            ELSE greatest(ref.threshold, ref.base) END,
        CASE ref.metric
            WHEN 'accuracy' THEN r.value >= ref.base - ref.threshold
            WHEN 'centroid_distance' THEN (SELECT distance FROM centroid) <= ref.threshold
            WHEN 'novelty_rate' THEN NULL  -- needs the original baseline's sample, which a reindex replaces
            -- Statistics of the current baseline's whitening (which a reindex also replaces),
            -- not values comparable with the original's line.
            WHEN 'mean_shift_evidence' THEN NULL
            WHEN 'whitened_mean_shift' THEN NULL
            ELSE r.value <= greatest(ref.threshold, ref.base) END,
        r.baseline_value,
        NOT r.drifted,
        r.window_start, r.window_end
    FROM ref LEFT JOIN now_rows r ON r.metric = ref.metric
    ORDER BY ref.metric
$$;
COMMENT ON FUNCTION drift.incident_recovery(bigint, timestamptz) IS 'Recovery of an incident at as_of, per metric: the value against the band of the pre-drift baseline (accuracy >= reference - accuracy_drop_threshold; a rate <= max(threshold, reference rate); the centroid''s cosine distance from the ORIGINAL baseline centroid <= the first event''s threshold; novelty not judged), beside the engine''s verdict against the current, possibly moved, baseline.';

CREATE OR REPLACE FUNCTION drift.record_recovery(p_as_of timestamptz DEFAULT now(), p_models text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    inc record;
    verdict jsonb;
    written integer := 0;
    n integer;
BEGIN
    -- Incidents with a succeeded action, of the given models, first seen before as_of.
    FOR inc IN
        SELECT DISTINCT i.id FROM drift.incidents i
        JOIN drift.drift_events e ON e.incident_id = i.id
        JOIN drift.action_runs r ON r.event_id = e.id AND r.outcome = 'succeeded'
        WHERE (p_models IS NULL OR i.model = ANY (p_models)) AND i.first_as_of <= p_as_of
    LOOP
        SELECT jsonb_build_object(
                'as_of', p_as_of,
                'metrics', coalesce(jsonb_agg(to_jsonb(x) - 'window_start' - 'window_end'), '[]'),
                'recovered_vs_reference', bool_and(x.within_reference) FILTER (WHERE x.within_reference IS NOT NULL),
                'recovered_vs_current', bool_and(x.within_current))
            INTO verdict
        FROM drift.incident_recovery(inc.id, p_as_of) x;
        UPDATE drift.action_runs r SET recovery = verdict
        FROM drift.drift_events e
        WHERE e.id = r.event_id AND e.incident_id = inc.id AND r.outcome = 'succeeded'
          AND (r.recovery IS NULL OR (r.recovery->>'as_of')::timestamptz <= p_as_of);
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;
    END LOOP;
    RETURN written;
END $$;
COMMENT ON FUNCTION drift.record_recovery(timestamptz, text[]) IS 'Writes the recovery verdict at as_of (drift.incident_recovery) into action_runs.recovery of every succeeded run of the given models'' incidents; returns the runs written. driftloop check, driftloop report and the demo call it.';


-- repeatable 75_timeseries.sql

-- Time series for dashboards (Grafana's PostgreSQL data source) and the evaluation history.
-- Every view has a `time` column, as Grafana's $__timeFilter / $__timeGroupAlias macros
-- expect, and reads rollups, baselines, the evaluation history, events and action runs:
-- no view scans the raw logs. Times are on the data clock (the time the traffic happened),
-- which is the wall clock in live use and the simulated clock in simulations.

CREATE OR REPLACE FUNCTION drift.record_evaluation(p_as_of timestamptz, p_report drift.report_row[]) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    INSERT INTO drift.evaluation_history AS h (model, kind, metric, bucket, as_of, evaluated_at, score, threshold,
        p_value, value, baseline_value, drifted, n_current, n_baseline)
    SELECT r.model, r.kind, r.metric, drift.bucket_of(p_as_of, drift.setting('bucket_width')::interval), p_as_of,
        now(), r.score, r.threshold, r.p_value, r.value, r.baseline_value, r.drifted, r.n_current, r.n_baseline
    FROM unnest(p_report) AS r
    ON CONFLICT (model, kind, metric, bucket) DO UPDATE
    SET as_of = excluded.as_of, evaluated_at = excluded.evaluated_at, score = excluded.score,
        threshold = excluded.threshold, p_value = excluded.p_value, value = excluded.value,
        baseline_value = excluded.baseline_value, drifted = excluded.drifted,
        n_current = excluded.n_current, n_baseline = excluded.n_baseline
$$;
COMMENT ON FUNCTION drift.record_evaluation(timestamptz, drift.report_row[]) IS 'Writes the rows of a drift report computed at as_of into drift.evaluation_history, one row per metric and bucket (a later evaluation in the same bucket replaces it). drift.evaluate_models calls it with the report it raises events from, so the report is computed once per evaluation.';

CREATE OR REPLACE FUNCTION drift.baseline_band(p_rate double precision, p_n bigint, p_level double precision DEFAULT 0.95,
    OUT low double precision, OUT high double precision)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT greatest(p_rate - z * se, 0), least(p_rate + z * se, 1)
    FROM (SELECT sqrt(p_rate * (1 - p_rate) / nullif(p_n, 0)) AS se, drift.normal_isf((1 - p_level) / 2) AS z) s
$$;
COMMENT ON FUNCTION drift.baseline_band(double precision, bigint, double precision) IS 'The range a rate measured on n rows falls in with the given probability (normal approximation) when nothing has changed since the baseline rate p_rate: the baseline band of the trend panels.';

CREATE OR REPLACE VIEW drift.score_timeseries AS
SELECT h.bucket AS "time", h.model, h.kind, h.metric, h.score, h.threshold, h.p_value, h.value,
    h.baseline_value, h.drifted, h.n_current, h.n_baseline, h.as_of, h.evaluated_at
FROM drift.evaluation_history AS h;
COMMENT ON VIEW drift.score_timeseries IS 'Each model''s drift scores and decision lines over time, one row per metric and bucket, from the evaluation history (drifted = score > threshold).';
COMMENT ON COLUMN drift.score_timeseries."time" IS 'Start of the bucket of the evaluation (data clock).';
COMMENT ON COLUMN drift.score_timeseries.model IS 'Model name.';
COMMENT ON COLUMN drift.score_timeseries.kind IS 'embedding, behavior or accuracy.';
COMMENT ON COLUMN drift.score_timeseries.metric IS 'Metric name, as in drift.drift_status.';
COMMENT ON COLUMN drift.score_timeseries.score IS 'The drift score at that evaluation.';
COMMENT ON COLUMN drift.score_timeseries.threshold IS 'The decision line at that evaluation: drifted when the score is above it.';
COMMENT ON COLUMN drift.score_timeseries.p_value IS 'p-value of the test.';
COMMENT ON COLUMN drift.score_timeseries.value IS 'Current value of the metric (rate, accuracy or distance).';
COMMENT ON COLUMN drift.score_timeseries.baseline_value IS 'Baseline value of the metric.';
COMMENT ON COLUMN drift.score_timeseries.drifted IS 'Whether the metric counted as drifted.';
COMMENT ON COLUMN drift.score_timeseries.n_current IS 'Samples in the current window.';
COMMENT ON COLUMN drift.score_timeseries.n_baseline IS 'Samples in the baseline.';
COMMENT ON COLUMN drift.score_timeseries.as_of IS 'The exact evaluation time (data clock).';
COMMENT ON COLUMN drift.score_timeseries.evaluated_at IS 'Wall-clock time of the evaluation.';

CREATE OR REPLACE VIEW drift.interaction_timeseries AS
WITH buckets AS (
    SELECT r.model, r.bucket, sum(r.interactions) AS interactions, sum(r.refusal_known) AS refusal_known,
        sum(r.refusals) AS refusals, sum(r.toxicity_scored) AS toxicity_scored, sum(r.toxic) AS toxic,
        sum(r.quality_n) AS quality_n, sum(r.quality_ok) AS quality_ok,
        sum(r.latency_sum) AS latency_sum, sum(r.latency_n) AS latency_n
    FROM (
        SELECT model, bucket, interactions, refusal_known, refusals, toxicity_scored, toxic, quality_n, quality_ok,
            latency_sum, latency_n
        FROM drift.interaction_rollup
        UNION ALL
        SELECT model, bucket, interactions, refusal_known, refusals, toxicity_scored, toxic, quality_n, quality_ok,
            latency_sum, latency_n
        FROM drift.interaction_rollup_delta
    ) AS r
    GROUP BY r.model, r.bucket
)
SELECT b.bucket AS "time", b.model, b.interactions::bigint AS interactions,
    b.refusal_known::bigint AS refusal_known, b.refusals::bigint AS refusals,
    b.refusals / nullif(b.refusal_known, 0)::float8 AS refusal_rate,
    b.toxicity_scored::bigint AS toxicity_scored, b.toxic::bigint AS toxic,
    b.toxic / nullif(b.toxicity_scored, 0)::float8 AS toxicity_rate,
    b.quality_n::bigint AS quality_n, b.quality_ok::bigint AS quality_ok,
    b.quality_ok / nullif(b.quality_n, 0)::float8 AS accuracy,
    b.latency_sum / nullif(b.latency_n, 0) AS latency_ms,
    bb.refusals / nullif(bb.refusal_known, 0)::float8 AS baseline_refusal_rate,
    bb.toxic / nullif(bb.toxicity_scored, 0)::float8 AS baseline_toxicity_rate,
    ba.quality_ok / nullif(ba.quality_n, 0)::float8 AS baseline_accuracy,
    (b.bucket >= bb.starts AND b.bucket < bb.ends) AS in_behavior_baseline,
    (b.bucket >= ba.starts AND b.bucket < ba.ends) AS in_accuracy_baseline
FROM buckets AS b
LEFT JOIN drift.baselines AS bb ON bb.model = b.model AND bb.kind = 'behavior'
LEFT JOIN drift.baselines AS ba ON ba.model = b.model AND ba.kind = 'accuracy';
COMMENT ON VIEW drift.interaction_timeseries IS 'Per model and rollup bucket: interaction counts, refusal, toxicity and accuracy rates, and the baseline rates they are compared with (from the interaction rollups, compacted or not yet).';
COMMENT ON COLUMN drift.interaction_timeseries."time" IS 'Start of the rollup bucket (data clock).';
COMMENT ON COLUMN drift.interaction_timeseries.model IS 'Model name.';
COMMENT ON COLUMN drift.interaction_timeseries.interactions IS 'Interactions logged in the bucket.';
COMMENT ON COLUMN drift.interaction_timeseries.refusal_known IS 'Interactions with a known is_refusal (the refusal rate''s denominator).';
COMMENT ON COLUMN drift.interaction_timeseries.refusals IS 'Refusals.';
COMMENT ON COLUMN drift.interaction_timeseries.refusal_rate IS 'refusals / refusal_known. To aggregate buckets, divide the sums, not average the rates.';
COMMENT ON COLUMN drift.interaction_timeseries.toxicity_scored IS 'Interactions with a toxicity score.';
COMMENT ON COLUMN drift.interaction_timeseries.toxic IS 'Toxic interactions (toxicity >= toxic_at).';
COMMENT ON COLUMN drift.interaction_timeseries.toxicity_rate IS 'toxic / toxicity_scored.';
COMMENT ON COLUMN drift.interaction_timeseries.quality_n IS 'Interactions with a label, else feedback (the accuracy''s denominator).';
COMMENT ON COLUMN drift.interaction_timeseries.quality_ok IS 'Of those, correct or positively rated.';
COMMENT ON COLUMN drift.interaction_timeseries.accuracy IS 'quality_ok / quality_n.';
COMMENT ON COLUMN drift.interaction_timeseries.latency_ms IS 'Mean latency in milliseconds.';
COMMENT ON COLUMN drift.interaction_timeseries.baseline_refusal_rate IS 'Refusal rate of the model''s behavior baseline.';
COMMENT ON COLUMN drift.interaction_timeseries.baseline_toxicity_rate IS 'Toxicity rate of the model''s behavior baseline.';
COMMENT ON COLUMN drift.interaction_timeseries.baseline_accuracy IS 'Accuracy of the model''s accuracy baseline.';
COMMENT ON COLUMN drift.interaction_timeseries.in_behavior_baseline IS 'Whether the bucket lies inside the behavior baseline window.';
COMMENT ON COLUMN drift.interaction_timeseries.in_accuracy_baseline IS 'Whether the bucket lies inside the accuracy baseline window.';

CREATE OR REPLACE VIEW drift.embedding_timeseries AS
WITH buckets AS (
    SELECT r.model, r.bucket, sum(r.n) AS n, sum(r.vec_sum) AS vec_sum
    FROM (
        SELECT model, bucket, n, vec_sum FROM drift.embedding_rollup
        UNION ALL
        SELECT model, bucket, n, vec_sum FROM drift.embedding_rollup_delta
    ) AS r
    GROUP BY r.model, r.bucket
)
SELECT b.bucket AS "time", b.model, b.n::bigint AS embeddings,
    -- cosine distance is scale-free, so the sums stand in for the means
    (b.vec_sum <=> bl.vec_sum)::float8 AS centroid_distance,
    (b.bucket >= bl.starts AND b.bucket < bl.ends) AS in_baseline
FROM buckets AS b
LEFT JOIN drift.baselines AS bl ON bl.model = b.model AND bl.kind = 'embedding';
COMMENT ON VIEW drift.embedding_timeseries IS 'Per model and rollup bucket: embeddings logged and the cosine distance of that bucket''s centroid from the baseline centroid (from the embedding rollups).';
COMMENT ON COLUMN drift.embedding_timeseries."time" IS 'Start of the rollup bucket (data clock).';
COMMENT ON COLUMN drift.embedding_timeseries.model IS 'Model name.';
COMMENT ON COLUMN drift.embedding_timeseries.embeddings IS 'Embeddings logged in the bucket.';
COMMENT ON COLUMN drift.embedding_timeseries.centroid_distance IS 'Cosine distance between the bucket''s centroid and the baseline centroid (NULL without a baseline). One bucket is noisier than the window the detector reads.';
COMMENT ON COLUMN drift.embedding_timeseries.in_baseline IS 'Whether the bucket lies inside the embedding baseline window.';

CREATE OR REPLACE VIEW drift.event_timeline AS
SELECT coalesce((e.details ->> 'as_of')::timestamptz, e.window_end, e.created_at) AS "time",
    e.closed_as_of AS timeend, e.id AS event_id, e.model, e.kind, e.metric, e.status, e.score, e.threshold,
    e.p_value, e.attempts, e.max_attempts, e.created_at, e.closed_at, e.last_error,
    format('%s %s/%s drifted: score %s > threshold %s (%s)', e.model, e.kind, e.metric,
        round(e.score::numeric, 4), round(e.threshold::numeric, 4), e.status) AS text,
    ARRAY['drift', e.kind, e.metric, e.status] AS tags,
    extract(epoch FROM fr.started_at - e.created_at)::float8 AS reaction_seconds
FROM drift.drift_events AS e
-- a lateral join, so the first run is looked up once per event however often it is used
LEFT JOIN LATERAL (
    SELECT min(r.started_at) AS started_at FROM drift.action_runs AS r WHERE r.event_id = e.id
) AS fr ON true;
COMMENT ON VIEW drift.event_timeline IS 'Drift events on the data clock, shaped as Grafana annotations (time, timeend, text, tags).';
COMMENT ON COLUMN drift.event_timeline."time" IS 'When the drift was detected, on the data clock: the evaluation time (details.as_of), else the window end.';
COMMENT ON COLUMN drift.event_timeline.timeend IS 'When the event closed, on the data clock (closed_as_of); NULL while open.';
COMMENT ON COLUMN drift.event_timeline.event_id IS 'The drift event.';
COMMENT ON COLUMN drift.event_timeline.model IS 'Model name.';
COMMENT ON COLUMN drift.event_timeline.kind IS 'embedding, behavior or accuracy.';
COMMENT ON COLUMN drift.event_timeline.metric IS 'Metric name.';
COMMENT ON COLUMN drift.event_timeline.status IS 'pending, running, resolved or failed.';
COMMENT ON COLUMN drift.event_timeline.score IS 'Score at detection.';
COMMENT ON COLUMN drift.event_timeline.threshold IS 'Decision line at detection.';
COMMENT ON COLUMN drift.event_timeline.p_value IS 'p-value at detection.';
COMMENT ON COLUMN drift.event_timeline.attempts IS 'Worker attempts so far.';
COMMENT ON COLUMN drift.event_timeline.max_attempts IS 'Attempts before the event fails.';
COMMENT ON COLUMN drift.event_timeline.created_at IS 'When the event was raised (wall clock).';
COMMENT ON COLUMN drift.event_timeline.closed_at IS 'When it was resolved or failed (wall clock).';
COMMENT ON COLUMN drift.event_timeline.last_error IS 'Error of the last failed attempt.';
COMMENT ON COLUMN drift.event_timeline.text IS 'One line for an annotation.';
COMMENT ON COLUMN drift.event_timeline.tags IS 'Annotation tags: drift, kind, metric, status.';
COMMENT ON COLUMN drift.event_timeline.reaction_seconds IS 'From the event''s creation to the start of its first action run (NULL: no run yet).';

CREATE OR REPLACE VIEW drift.action_timeline AS
SELECT coalesce((e.details ->> 'as_of')::timestamptz, e.window_end, e.created_at) + (r.started_at - e.created_at)
        AS "time",
    coalesce((e.details ->> 'as_of')::timestamptz, e.window_end, e.created_at)
        + (coalesce(r.finished_at, now()) - e.created_at) AS timeend,
    r.id AS run_id, r.event_id, e.model, e.kind, e.metric, r.action, r.action_type, r.outcome, r.attempt, r.worker,
    r.started_at, r.finished_at, extract(epoch FROM r.finished_at - r.started_at)::float8 AS duration_seconds,
    extract(epoch FROM r.started_at - e.created_at)::float8 AS since_event_seconds,
    format('%s %s for %s/%s: %s', r.action, r.action_type, e.kind, e.metric, r.outcome) AS text,
    ARRAY['action', r.action, r.outcome] AS tags
FROM drift.action_runs AS r
JOIN drift.drift_events AS e ON e.id = r.event_id;
COMMENT ON VIEW drift.action_timeline IS 'Action runs on the data clock (the event''s detection time plus the time the worker took), shaped as Grafana annotations; one row per run.';
COMMENT ON COLUMN drift.action_timeline."time" IS 'Start of the run on the data clock: event detection time + (started_at - event created_at). Equals started_at in live use.';
COMMENT ON COLUMN drift.action_timeline.timeend IS 'End of the run on the same clock (now while running).';
COMMENT ON COLUMN drift.action_timeline.run_id IS 'The action run.';
COMMENT ON COLUMN drift.action_timeline.event_id IS 'The drift event it ran for.';
COMMENT ON COLUMN drift.action_timeline.model IS 'Model name.';
COMMENT ON COLUMN drift.action_timeline.kind IS 'Drift kind of the event.';
COMMENT ON COLUMN drift.action_timeline.metric IS 'Metric of the event.';
COMMENT ON COLUMN drift.action_timeline.action IS 'Action name in driftloop.toml.';
COMMENT ON COLUMN drift.action_timeline.action_type IS 'Built-in action type.';
COMMENT ON COLUMN drift.action_timeline.outcome IS 'running, succeeded, failed, lease_lost, abandoned or released.';
COMMENT ON COLUMN drift.action_timeline.attempt IS 'The event''s attempt number.';
COMMENT ON COLUMN drift.action_timeline.worker IS 'The worker that ran it.';
COMMENT ON COLUMN drift.action_timeline.started_at IS 'Wall-clock start.';
COMMENT ON COLUMN drift.action_timeline.finished_at IS 'Wall-clock end; NULL while running.';
COMMENT ON COLUMN drift.action_timeline.duration_seconds IS 'How long the run took.';
COMMENT ON COLUMN drift.action_timeline.since_event_seconds IS 'From the event''s creation to this run''s start (for the event''s first run: its reaction time, see drift.event_timeline).';
COMMENT ON COLUMN drift.action_timeline.text IS 'One line for an annotation.';
COMMENT ON COLUMN drift.action_timeline.tags IS 'Annotation tags: action, action name, outcome.';

CREATE OR REPLACE VIEW drift.evaluation_freshness AS
SELECT m.model, ev.evaluated_at AS last_evaluated_at, m.last_evaluated_as_of
FROM drift.models AS m
LEFT JOIN LATERAL (
    SELECT max(h.evaluated_at) AS evaluated_at FROM drift.evaluation_history AS h WHERE h.model = m.model
) AS ev ON true;
COMMENT ON VIEW drift.evaluation_freshness IS 'When each model was last evaluated: the wall clock (for "no evaluation for 10 minutes") and the data clock. Read by /metrics.';
COMMENT ON COLUMN drift.evaluation_freshness.model IS 'Model name.';
COMMENT ON COLUMN drift.evaluation_freshness.last_evaluated_at IS 'Wall-clock time of the last evaluation recorded in drift.evaluation_history (NULL: none yet).';
COMMENT ON COLUMN drift.evaluation_freshness.last_evaluated_as_of IS 'Data-clock time of the last evaluation.';

CREATE OR REPLACE VIEW drift.model_overview AS
SELECT f.model, f.last_evaluated_at, f.last_evaluated_as_of,
    coalesce(st.metrics, 0) AS metrics, coalesce(st.drifted, 0) AS drifted_metrics,
    coalesce(ec.open_events, 0) AS open_events, coalesce(ec.failed_events, 0) AS failed_events,
    coalesce(ec.events, 0) AS events, ar.last_action_at, ar.last_action, ar.last_outcome
FROM drift.evaluation_freshness AS f
LEFT JOIN (
    SELECT s.model, count(*) AS metrics, count(*) FILTER (WHERE s.drifted) AS drifted
    FROM drift.drift_status AS s GROUP BY s.model
) AS st ON st.model = f.model
LEFT JOIN (
    SELECT e.model, count(*) AS events, count(*) FILTER (WHERE e.status IN ('pending', 'running')) AS open_events,
        count(*) FILTER (WHERE e.status = 'failed') AS failed_events
    FROM drift.drift_events AS e GROUP BY e.model
) AS ec ON ec.model = f.model
LEFT JOIN LATERAL (
    SELECT r.started_at AS last_action_at, r.action AS last_action, r.outcome AS last_outcome
    FROM drift.action_runs AS r JOIN drift.drift_events AS e ON e.id = r.event_id
    WHERE e.model = f.model ORDER BY r.started_at DESC LIMIT 1
) AS ar ON true;
COMMENT ON VIEW drift.model_overview IS 'One row per model: drifted metrics now, open and failed events, the last evaluation and the last action.';
COMMENT ON COLUMN drift.model_overview.model IS 'Model name.';
COMMENT ON COLUMN drift.model_overview.last_evaluated_at IS 'Wall-clock time of the last evaluation recorded in drift.evaluation_history.';
COMMENT ON COLUMN drift.model_overview.last_evaluated_as_of IS 'Data-clock time of the last evaluation.';
COMMENT ON COLUMN drift.model_overview.metrics IS 'Metrics in drift.drift_status for the model.';
COMMENT ON COLUMN drift.model_overview.drifted_metrics IS 'Of those, drifted now.';
COMMENT ON COLUMN drift.model_overview.open_events IS 'Pending or running events.';
COMMENT ON COLUMN drift.model_overview.failed_events IS 'Failed events (dead letters).';
COMMENT ON COLUMN drift.model_overview.events IS 'Events ever raised.';
COMMENT ON COLUMN drift.model_overview.last_action_at IS 'Wall-clock start of the last action run.';
COMMENT ON COLUMN drift.model_overview.last_action IS 'Its action name.';
COMMENT ON COLUMN drift.model_overview.last_outcome IS 'Its outcome.';

-- ---------------------------------------------------------------------------------------------
-- Action metrics for /metrics: counters and histograms of drift.action_runs, so every exporter
-- serves the same values and a restart resets nothing. The triggers below keep them in
-- drift.action_run_counts (migration 0014) as each run is written, started or finished: a
-- scrape reads a few dozen rows whether there were ten runs or ten million. Each observation
-- is binned once (drift.histogram_bin: the bounds below it, so a value equal to a bound counts
-- in that bound's bucket, as Prometheus' `le` means); the views sum the bins per bound.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION drift.action_duration_bounds() RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '{0.01,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,300,900}'::float8[] $$;
COMMENT ON FUNCTION drift.action_duration_bounds() IS 'Bucket bounds (seconds) of driftloop_action_duration_seconds.';

CREATE OR REPLACE FUNCTION drift.event_reaction_bounds() RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '{0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,300,900,3600}'::float8[] $$;
COMMENT ON FUNCTION drift.event_reaction_bounds() IS 'Bucket bounds (seconds) of driftloop_event_reaction_seconds.';

CREATE OR REPLACE FUNCTION drift.histogram_bin(p_value float8, p_bounds float8[]) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.width_bucket(p_value, p_bounds) - (p_value = ANY (p_bounds))::int $$;
COMMENT ON FUNCTION drift.histogram_bin(float8, float8[]) IS 'How many bounds lie below the value (a value equal to a bound falls in that bound''s bucket).';

CREATE OR REPLACE FUNCTION drift.count_action_runs() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- Runs leaving a counted state are taken off, runs entering one added. Deleted runs (a
    -- simulation reset) stay counted: these are counters of all time, which never go down.
    WITH changes AS (
        SELECT -1 AS sign, o.* FROM old_rows o
        UNION ALL
        SELECT 1, n.* FROM new_rows n
    ), observed AS (
        SELECT 'outcome' AS family, c.action, c.outcome, 0 AS bin, c.sign, 0::float8 AS seconds
        FROM changes c WHERE c.outcome <> 'running'
        UNION ALL
        SELECT 'duration', c.action, '', drift.histogram_bin(d.seconds, drift.action_duration_bounds()), c.sign, d.seconds
        FROM changes c
        CROSS JOIN LATERAL (SELECT date_part('epoch', c.finished_at - c.started_at) AS seconds) d
        WHERE c.outcome IN ('succeeded', 'failed', 'lease_lost') AND c.finished_at IS NOT NULL
    ), summed AS (
        SELECT o.family, o.action, o.outcome, o.bin, sum(o.sign) AS runs, sum(o.sign * o.seconds) AS seconds_sum
        FROM observed o GROUP BY 1, 2, 3, 4
        HAVING sum(o.sign) <> 0 OR sum(o.sign * o.seconds) <> 0
    )
    INSERT INTO drift.action_run_counts AS t (family, action, outcome, bin, runs, seconds_sum)
    SELECT * FROM summed ORDER BY 1, 2, 3, 4
    ON CONFLICT (family, action, outcome, bin)
    DO UPDATE SET runs = t.runs + excluded.runs, seconds_sum = t.seconds_sum + excluded.seconds_sum;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.count_action_runs() IS 'After a write to action_runs: keeps the outcome counts and duration bins of drift.action_run_counts.';

CREATE OR REPLACE FUNCTION drift.count_action_runs_insert() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- An event's first run ends its reaction time (event created to first action started).
    INSERT INTO drift.action_run_counts AS t (family, action, outcome, bin, runs, seconds_sum)
    SELECT 'reaction', '', '', drift.histogram_bin(x.seconds, drift.event_reaction_bounds()), count(*), sum(x.seconds)
    FROM (
        SELECT greatest(date_part('epoch', f.started_at - e.created_at), 0) AS seconds
        FROM (SELECT n.event_id, min(n.started_at) AS started_at, min(n.id) AS first_id
              FROM new_rows n GROUP BY n.event_id) f
        JOIN drift.drift_events e ON e.id = f.event_id
        -- No run of the event before these (ids grow; one worker at a time writes an event's runs).
        WHERE NOT EXISTS (SELECT 1 FROM drift.action_runs r WHERE r.event_id = f.event_id AND r.id < f.first_id)
    ) x
    GROUP BY 4
    ORDER BY 4
    ON CONFLICT (family, action, outcome, bin)
    DO UPDATE SET runs = t.runs + excluded.runs, seconds_sum = t.seconds_sum + excluded.seconds_sum;
    -- Runs written already finished count like runs that finish.
    INSERT INTO drift.action_run_counts AS t (family, action, outcome, bin, runs, seconds_sum)
    SELECT o.family, o.action, o.outcome, o.bin, count(*), sum(o.seconds)
    FROM (
        SELECT 'outcome' AS family, n.action, n.outcome, 0 AS bin, 0::float8 AS seconds
        FROM new_rows n WHERE n.outcome <> 'running'
        UNION ALL
        SELECT 'duration', n.action, '', drift.histogram_bin(d.seconds, drift.action_duration_bounds()), d.seconds
        FROM new_rows n
        CROSS JOIN LATERAL (SELECT date_part('epoch', n.finished_at - n.started_at) AS seconds) d
        WHERE n.outcome IN ('succeeded', 'failed', 'lease_lost') AND n.finished_at IS NOT NULL
    ) o
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (family, action, outcome, bin)
    DO UPDATE SET runs = t.runs + excluded.runs, seconds_sum = t.seconds_sum + excluded.seconds_sum;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.count_action_runs_insert() IS 'After an insert into action_runs: counts the reaction time of each event''s first run, and runs written already finished.';

CREATE OR REPLACE TRIGGER action_runs_count_insert AFTER INSERT ON drift.action_runs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.count_action_runs_insert();
CREATE OR REPLACE TRIGGER action_runs_count_update AFTER UPDATE ON drift.action_runs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.count_action_runs();

CREATE OR REPLACE VIEW drift.action_outcomes AS
SELECT c.action, c.outcome, c.runs
FROM drift.action_run_counts AS c
WHERE c.family = 'outcome' AND c.runs > 0;
COMMENT ON VIEW drift.action_outcomes IS 'Finished action runs per action and outcome, all time (driftloop_actions_total).';
COMMENT ON COLUMN drift.action_outcomes.action IS 'Action name in driftloop.toml.';
COMMENT ON COLUMN drift.action_outcomes.outcome IS 'succeeded, failed, lease_lost, abandoned or released.';
COMMENT ON COLUMN drift.action_outcomes.runs IS 'Runs with that outcome.';

CREATE OR REPLACE VIEW drift.action_duration_histogram AS
WITH bins AS (
    SELECT c.action, c.bin AS lt, c.runs AS n, c.seconds_sum AS s
    FROM drift.action_run_counts AS c
    WHERE c.family = 'duration' AND c.runs > 0
)
SELECT bins.action, le.le, coalesce(sum(bins.n) FILTER (WHERE bins.lt < le.i), 0)::bigint AS runs,
    coalesce(sum(bins.s) FILTER (WHERE bins.lt < le.i), 0)::float8 AS seconds_sum
FROM bins
CROSS JOIN LATERAL unnest(drift.action_duration_bounds() || 'Infinity'::float8) WITH ORDINALITY AS le(le, i)
GROUP BY bins.action, le.le;
COMMENT ON VIEW drift.action_duration_histogram IS 'Cumulative histogram of action run durations per action (driftloop_action_duration_seconds): runs that ran to an end (succeeded, failed, lease_lost); abandoned and released runs were cut short.';
COMMENT ON COLUMN drift.action_duration_histogram.action IS 'Action name.';
COMMENT ON COLUMN drift.action_duration_histogram.le IS 'Upper bound of the bucket in seconds (Infinity: every run).';
COMMENT ON COLUMN drift.action_duration_histogram.runs IS 'Runs that took at most le seconds.';
COMMENT ON COLUMN drift.action_duration_histogram.seconds_sum IS 'Their total duration in seconds (at le = Infinity: the histogram''s sum).';

CREATE OR REPLACE VIEW drift.event_reaction_histogram AS
WITH bins AS (
    SELECT c.bin AS lt, c.runs AS n, c.seconds_sum AS s
    FROM drift.action_run_counts AS c
    WHERE c.family = 'reaction' AND c.runs > 0
)
SELECT le.le, coalesce(sum(bins.n) FILTER (WHERE bins.lt < le.i), 0)::bigint AS events,
    coalesce(sum(bins.s) FILTER (WHERE bins.lt < le.i), 0)::float8 AS seconds_sum
FROM bins
CROSS JOIN LATERAL unnest(drift.event_reaction_bounds() || 'Infinity'::float8) WITH ORDINALITY AS le(le, i)
GROUP BY le.le;
COMMENT ON VIEW drift.event_reaction_histogram IS 'Cumulative histogram of reaction times (driftloop_event_reaction_seconds): from an event''s creation to the start of its first action run, over the events that had one.';
COMMENT ON COLUMN drift.event_reaction_histogram.le IS 'Upper bound of the bucket in seconds (Infinity: every event).';
COMMENT ON COLUMN drift.event_reaction_histogram.events IS 'Events whose first action started at most le seconds after the event.';
COMMENT ON COLUMN drift.event_reaction_histogram.seconds_sum IS 'Their total reaction time in seconds (at le = Infinity: the histogram''s sum).';


-- repeatable 77_history_retention.sql

-- Retention of what every evaluation leaves behind: drift.evaluation_history gets one row per
-- model, metric and bucket each time drift.evaluate() runs (a minute apart: ~1,440 rows per
-- metric and day), for as long as the logs are kept and beyond. `driftloop db prune
-- --older-than AGE` deletes it with the log partitions of that age. Each metric's latest
-- evaluation stays however old, so /metrics still knows when a model was last evaluated
-- (drift.evaluation_freshness) and dashboards still show its last score.

CREATE OR REPLACE FUNCTION drift.prune_history(p_older_than interval)
RETURNS TABLE (history text, before timestamptz, rows_deleted bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    cutoff timestamptz;
BEGIN
    IF p_older_than IS NULL OR p_older_than < interval '1 hour' THEN
        RAISE EXCEPTION 'prune_history: the age must be at least 1 hour (got %)', p_older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    cutoff := now() - p_older_than;
    -- By the data clock (as_of), as the logs are pruned by created_at.
    DELETE FROM drift.evaluation_history h
    WHERE h.as_of < cutoff
      AND EXISTS (SELECT 1 FROM drift.evaluation_history n
                  WHERE n.model = h.model AND n.kind = h.kind AND n.metric = h.metric AND n.as_of > h.as_of);
    history := 'evaluation_history';
    before := cutoff;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    RETURN NEXT;
END $$;
COMMENT ON FUNCTION drift.prune_history(interval) IS 'Retention of the per-evaluation history: deletes the drift.evaluation_history rows evaluated (as_of) more than p_older_than ago, except the latest of each model and metric. Returns the rows deleted per table. Called by driftloop db prune with drift.prune_logs.';
REVOKE EXECUTE ON FUNCTION drift.prune_history(interval) FROM PUBLIC;


-- repeatable 80_queue.sql

-- The drift_events queue: every state transition the worker makes is one function here, and
-- each write after the claim goes through drift.hold_event, the one ownership check
-- (claimed_by = this worker AND status = 'running'). States: pending -> running (claim) ->
-- resolved | pending (retry after backoff) | failed (dead letter); a running event whose
-- lease expired may be claimed again by any worker.

CREATE OR REPLACE FUNCTION drift.hold_event(p_event_id bigint, p_worker text) RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    SELECT e.id FROM drift.drift_events e
    WHERE e.id = p_event_id AND e.claimed_by = p_worker AND e.status = 'running'
    FOR NO KEY UPDATE
$$;
COMMENT ON FUNCTION drift.hold_event(bigint, text) IS 'The event id while p_worker still holds the event (row locked until the transaction ends), else NULL: the ownership check of every write after a claim.';

-- No SET search_path: a per-row call the planner inlines (pg_postmaster_start_time lives in
-- pg_catalog, which is always searched first).
CREATE OR REPLACE FUNCTION drift.lease_expiry(p_expires timestamptz, p_renewed timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    -- While the server is down no holder can renew its lease, yet the clock runs on: after a
    -- restart every lease taken before it gets one full lease length from the start, so a
    -- live holder (its action may have finished during the outage) renews and records its
    -- result before anyone takes the event over and runs the action a second time.
    SELECT CASE WHEN p_renewed < pg_catalog.pg_postmaster_start_time()
                THEN greatest(p_expires, pg_catalog.pg_postmaster_start_time() + (p_expires - p_renewed))
                ELSE p_expires END
$$;
COMMENT ON FUNCTION drift.lease_expiry(timestamptz, timestamptz) IS 'When a lease really ends: lease_expires_at, or for a lease last renewed before the server started, no earlier than one lease length after the start.';

CREATE OR REPLACE FUNCTION drift.claim_events(p_worker text, p_limit integer, p_lease_s double precision,
    p_models text[] DEFAULT NULL)
RETURNS TABLE (id bigint, created_at timestamptz, model text, kind text, metric text, score double precision,
    threshold double precision, p_value double precision, window_start timestamptz, window_end timestamptz,
    details jsonb, attempts integer, max_attempts integer, age_s double precision)
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    -- One statement: pending events whose backoff has passed and running ones whose holder let
    -- the lease expire (it crashed or hung). The attempt is counted here, so a worker that dies
    -- mid-action still uses one up.
    WITH claimable AS (
        SELECT c.id FROM drift.drift_events c
        WHERE ((c.status = 'pending' AND c.run_after <= now())
            OR (c.status = 'running' AND drift.lease_expiry(c.lease_expires_at, c.lease_renewed_at) < now()))
          AND (p_models IS NULL OR c.model = ANY (p_models))
          -- One event of an incident at a time, oldest first: its actions run once for the
          -- incident, and the later events then find them done (72_incidents.sql).
          AND NOT EXISTS (
              SELECT 1 FROM drift.drift_events o
              WHERE o.incident_id = c.incident_id AND o.id < c.id AND o.status IN ('pending', 'running'))
        ORDER BY c.run_after, c.id
        LIMIT p_limit
        FOR NO KEY UPDATE SKIP LOCKED
    )
    UPDATE drift.drift_events AS e
    SET status = 'running', attempts = e.attempts + 1, claimed_by = p_worker, claimed_at = now(),
        lease_expires_at = now() + make_interval(secs => p_lease_s), lease_renewed_at = now()
    FROM claimable
    WHERE e.id = claimable.id
    RETURNING e.id, e.created_at, e.model, e.kind, e.metric, e.score, e.threshold, e.p_value,
        e.window_start, e.window_end, e.details, e.attempts, e.max_attempts,
        extract(epoch FROM clock_timestamp() - e.created_at)::float8
$$;
COMMENT ON FUNCTION drift.claim_events(text, integer, double precision, text[]) IS 'Claims up to p_limit due events (pending past their backoff, or running past their lease) for p_worker with a lease of p_lease_s seconds, skipping rows other workers hold (SKIP LOCKED); NULL p_models: every model.';

CREATE OR REPLACE FUNCTION drift.extend_leases(p_worker text, p_ids bigint[], p_lease_s double precision)
RETURNS SETOF bigint
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    UPDATE drift.drift_events e SET lease_expires_at = now() + make_interval(secs => p_lease_s), lease_renewed_at = now()
    WHERE e.id IN (SELECT drift.hold_event(x, p_worker) FROM unnest(p_ids) x)
    RETURNING e.id
$$;
COMMENT ON FUNCTION drift.extend_leases(text, bigint[], double precision) IS 'Extends the leases of the events p_worker still holds; returns their ids (a missing id was lost to another worker).';

CREATE OR REPLACE FUNCTION drift.start_run(p_event_id bigint, p_worker text, p_action text, p_action_type text,
    p_lease_s double precision)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    -- The fence of an action: its run row is written, and the lease renewed to a full length,
    -- in one statement under the event's row lock, before the action starts. An action
    -- therefore never starts on a lease that has run out (or been taken) since the claim.
    WITH held AS (
        UPDATE drift.drift_events e
        SET lease_expires_at = now() + make_interval(secs => p_lease_s), lease_renewed_at = now()
        WHERE e.id = (SELECT drift.hold_event(p_event_id, p_worker))
        RETURNING e.id, e.attempts
    ), started AS (
        -- A retry after a lost reply (the server restarted after the commit) finds its run
        -- instead of leaving it running forever beside a second one.
        SELECT r.id FROM drift.action_runs r JOIN held ON r.event_id = held.id AND r.attempt = held.attempts
        WHERE r.action = p_action AND r.worker = p_worker AND r.outcome = 'running'
    ), inserted AS (
        INSERT INTO drift.action_runs (event_id, action, action_type, attempt, worker)
        SELECT held.id, p_action, p_action_type, held.attempts, p_worker FROM held
        WHERE NOT EXISTS (SELECT 1 FROM started)
        RETURNING id
    )
    SELECT id FROM started
    UNION ALL
    SELECT id FROM inserted
$$;
COMMENT ON FUNCTION drift.start_run(bigint, text, text, text, double precision) IS 'Records the start of an action run for an event p_worker holds and renews its lease for p_lease_s seconds; returns the run id (NULL: the event is no longer held). Idempotent within an attempt: called again, it returns the run already started.';

CREATE OR REPLACE FUNCTION drift.finish_run(p_event_id bigint, p_worker text, p_run_id bigint, p_outcome text,
    p_output jsonb, p_error text)
RETURNS text
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    -- The result counts only while the claim is still ours; otherwise the run is lease_lost.
    WITH finished AS (
        UPDATE drift.action_runs
        SET outcome = CASE WHEN (SELECT drift.hold_event(p_event_id, p_worker)) IS NOT NULL THEN p_outcome ELSE 'lease_lost' END,
            finished_at = clock_timestamp(), output = p_output, error = p_error
        WHERE id = p_run_id AND outcome = 'running'
        RETURNING outcome
    )
    SELECT outcome FROM finished
    UNION ALL
    -- A retry after a lost reply (the server restarted after the commit): the run is already
    -- finished by this worker, and saying so is not a lost lease. (Same snapshot: this part
    -- sees the row as it was before the UPDATE above, so it answers only when that did nothing.)
    SELECT r.outcome FROM drift.action_runs r
    WHERE r.id = p_run_id AND r.worker = p_worker AND r.outcome IN (p_outcome, 'lease_lost')
$$;
COMMENT ON FUNCTION drift.finish_run(bigint, text, bigint, text, jsonb, text) IS 'Records the outcome of a running action run; returns the outcome stored (lease_lost when p_worker no longer holds the event, NULL when the run was not running). Idempotent: repeated by the same worker, it returns the outcome already stored.';

CREATE OR REPLACE FUNCTION drift.record_exit(p_event_id bigint, p_worker text, p_run_id bigint, p_exit_code integer,
    p_output jsonb, p_error text)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    -- Written the moment a command exits, before anything else. It takes no lock on the event
    -- (finish_run does, and waits for it), so it commits at once; a worker killed after it
    -- leaves the outcome to whoever takes the event over (take_over_runs), which finishes the
    -- run with it instead of running the command a second time.
    UPDATE drift.action_runs
    SET exit_code = p_exit_code, exited_at = clock_timestamp(), output = p_output, error = p_error
    WHERE id = p_run_id AND event_id = p_event_id AND worker = p_worker AND outcome = 'running'
    RETURNING true
$$;
COMMENT ON FUNCTION drift.record_exit(bigint, text, bigint, integer, jsonb, text) IS 'Records the exit status (and output or error) of the command of a running run of p_worker, before the run is finished; true when recorded.';

CREATE OR REPLACE FUNCTION drift.take_over_runs(p_event_id bigint, p_worker text, p_at_most_once text[] DEFAULT '{}')
RETURNS TABLE (run_id bigint, action text, outcome text, worker text, dead_letter boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    r record;
    why text;
BEGIN
    -- Only the holder settles what earlier holders left; the event stays locked until commit.
    IF drift.hold_event(p_event_id, p_worker) IS NULL THEN
        RETURN;
    END IF;
    -- A run another worker left running means that worker lost the event (it died). With its
    -- command's exit recorded, the run ends with that outcome (a later attempt skips an action
    -- that succeeded); without, nobody knows how far it got: abandoned.
    FOR r IN
        UPDATE drift.action_runs a
        SET outcome = CASE WHEN a.exited_at IS NULL THEN 'abandoned' WHEN a.exit_code = 0 THEN 'succeeded' ELSE 'failed' END,
            finished_at = coalesce(a.exited_at, clock_timestamp()),
            error = CASE WHEN a.exited_at IS NULL
                         THEN 'worker ' || a.worker || ' lost its claim; taken over by ' || p_worker
                         ELSE a.error END
        WHERE a.event_id = p_event_id AND a.outcome = 'running' AND a.worker <> p_worker
        RETURNING a.id, a.action, a.action_type, a.outcome, a.worker
    LOOP
        run_id := r.id; action := r.action; outcome := r.outcome; worker := r.worker;
        -- An at_most_once action that may have run must not run again: the event goes to the
        -- dead letter, in this same transaction, for a human to check and retry.
        dead_letter := r.outcome = 'abandoned' AND r.action = ANY (p_at_most_once) AND why IS NULL;
        IF dead_letter THEN
            why := format('action %s is at_most_once and may have run already: worker %s started it (run %s) and died '
                          'before its outcome was recorded, so it is not run again. Check what it did, then '
                          '`driftloop events retry %s` runs it again.', r.action, r.worker, r.id, p_event_id);
            UPDATE drift.drift_events
            SET status = 'failed', last_error = why, claimed_by = NULL, lease_expires_at = NULL,
                resolution = jsonb_build_object('worker', p_worker, 'actions', jsonb_build_array(jsonb_build_object(
                    'action', r.action, 'type', r.action_type, 'outcome', 'abandoned', 'run_id', r.id, 'summary', why)))
            WHERE id = p_event_id;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION drift.take_over_runs(bigint, text, text[]) IS 'On an event p_worker took over: finishes the runs other workers left running with their recorded command exit, marks the others abandoned, and dead-letters the event (failed) when one of those is an action named in p_at_most_once; returns the runs settled (dead_letter marks the run that failed the event).';

CREATE OR REPLACE FUNCTION drift.resolve_event(p_event_id bigint, p_worker text, p_resolution jsonb) RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    WITH done AS (
        UPDATE drift.drift_events
        SET status = 'resolved', resolution = p_resolution, claimed_by = NULL, lease_expires_at = NULL
        WHERE id = (SELECT drift.hold_event(p_event_id, p_worker))
        RETURNING 1
    )
    -- A retry after a lost reply finds the event resolved by this worker: done, not lost.
    SELECT EXISTS (SELECT 1 FROM done)
        OR EXISTS (SELECT 1 FROM drift.drift_events e
                   WHERE e.id = p_event_id AND e.status = 'resolved' AND e.resolution ->> 'worker' = p_worker)
$$;
COMMENT ON FUNCTION drift.resolve_event(bigint, text, jsonb) IS 'running -> resolved, with what the worker did; false when p_worker no longer holds the event. Idempotent: true again when p_worker already resolved it.';

CREATE OR REPLACE FUNCTION drift.fail_attempt(p_event_id bigint, p_worker text, p_error text, p_delay_s double precision,
    p_permanent boolean, p_resolution jsonb)
RETURNS text
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    -- Back to pending after a backoff, or failed (the dead letter) when attempts are used up
    -- or the error is permanent.
    UPDATE drift.drift_events
    SET status = CASE WHEN p_permanent OR attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
        run_after = now() + make_interval(secs => p_delay_s), last_error = p_error, resolution = p_resolution,
        claimed_by = NULL, lease_expires_at = NULL
    WHERE id = (SELECT drift.hold_event(p_event_id, p_worker))
    RETURNING status
$$;
COMMENT ON FUNCTION drift.fail_attempt(bigint, text, text, double precision, boolean, jsonb) IS 'running -> pending after p_delay_s (a retry with backoff) or -> failed when attempts are used up or the error is permanent; returns the new status (NULL when p_worker no longer holds the event).';

CREATE OR REPLACE FUNCTION drift.release_events(p_worker text, p_ids bigint[]) RETURNS SETOF bigint
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    -- A stopping worker gives its unfinished events back; the interrupted attempt is not counted.
    UPDATE drift.action_runs
    SET outcome = 'released', finished_at = clock_timestamp(), error = 'the worker shut down before the action finished'
    WHERE event_id = ANY (p_ids) AND worker = p_worker AND outcome = 'running';
    UPDATE drift.drift_events
    SET status = 'pending', attempts = greatest(attempts - 1, 0), run_after = now(),
        claimed_by = NULL, lease_expires_at = NULL
    WHERE id IN (SELECT drift.hold_event(x, p_worker) FROM unnest(p_ids) x)
    RETURNING id
$$;
COMMENT ON FUNCTION drift.release_events(text, bigint[]) IS 'running -> pending for the events p_worker holds (it is shutting down), their running action runs marked released; returns the ids released.';

CREATE OR REPLACE FUNCTION drift.retry_event(p_event_id bigint) RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    -- failed (or backing off) -> pending now, with a fresh set of attempts.
    WITH queued AS (
        UPDATE drift.drift_events
        SET status = 'pending', attempts = 0, run_after = now(), claimed_by = NULL, lease_expires_at = NULL
        WHERE id = p_event_id AND status IN ('failed', 'pending')
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM queued)
$$;
COMMENT ON FUNCTION drift.retry_event(bigint) IS 'Re-queues a failed (or backing-off pending) event to run now with fresh attempts; false when it is running or resolved.';

CREATE OR REPLACE FUNCTION drift.drift_events_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('drift_events', n.id::text) FROM new_events n ORDER BY n.id;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.drift_events_notify() IS 'Notifies channel drift_events with the id of every new event (delivered at commit).';
CREATE OR REPLACE TRIGGER drift_events_notify AFTER INSERT ON drift.drift_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION drift.drift_events_notify();

CREATE OR REPLACE FUNCTION drift.drift_events_stamp_close() RETURNS trigger
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
CREATE OR REPLACE TRIGGER drift_events_stamp_close BEFORE UPDATE OF status ON drift.drift_events
    FOR EACH ROW EXECUTE FUNCTION drift.drift_events_stamp_close();

CREATE OR REPLACE FUNCTION drift.active_prompt(p_model text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT prompt FROM drift.prompt_versions WHERE model = p_model AND active
$$;
COMMENT ON FUNCTION drift.active_prompt(text) IS
    'The active system prompt of a model (NULL when it has none): the one query apps run before calling their LLM.';

CREATE OR REPLACE FUNCTION drift.activate_prompt(
    p_model text, p_prompt text, p_event_id bigint DEFAULT NULL,
    p_created_by text DEFAULT NULL, p_reason text DEFAULT NULL
) RETURNS drift.prompt_versions
LANGUAGE plpgsql AS $$
DECLARE
    result drift.prompt_versions;
BEGIN
    -- Serialise version numbering per model.
    PERFORM pg_advisory_xact_lock(hashtext('drift.prompt_versions'), hashtext(p_model));
    IF p_event_id IS NOT NULL THEN
        SELECT * INTO result FROM drift.prompt_versions WHERE model = p_model AND event_id = p_event_id;
        IF FOUND THEN
            RETURN result;  -- this event already produced its version: running twice does no harm
        END IF;
    END IF;
    UPDATE drift.prompt_versions SET active = false WHERE model = p_model AND active;
    INSERT INTO drift.prompt_versions (model, version, prompt, active, created_by, reason, event_id)
    SELECT p_model, coalesce(max(version), 0) + 1, p_prompt, true, p_created_by, p_reason, p_event_id
    FROM drift.prompt_versions WHERE model = p_model
    RETURNING * INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION drift.activate_prompt(text, text, bigint, text, text) IS
    'Adds a new prompt version for the model and makes it the active one (previous versions are kept). With an event id it is idempotent: the version that event created is returned.';

CREATE OR REPLACE FUNCTION drift.rollback_prompt(p_model text) RETURNS drift.prompt_versions
LANGUAGE plpgsql AS $$
DECLARE
    current_version integer;
    result drift.prompt_versions;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('drift.prompt_versions'), hashtext(p_model));
    SELECT version INTO current_version FROM drift.prompt_versions WHERE model = p_model AND active;
    IF current_version IS NULL THEN
        RAISE EXCEPTION 'model % has no active prompt to roll back', p_model USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO result FROM drift.prompt_versions
    WHERE model = p_model AND version < current_version ORDER BY version DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model % has no prompt version before version %', p_model, current_version
            USING ERRCODE = 'no_data_found';
    END IF;
    UPDATE drift.prompt_versions SET active = false WHERE model = p_model AND active;
    UPDATE drift.prompt_versions SET active = true WHERE id = result.id RETURNING * INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION drift.rollback_prompt(text) IS
    'Makes the version before the active one active again and returns it; repeated calls walk further back. Raises when there is nothing to roll back to.';

-- Events per status for /metrics, counted as statuses change (drift.event_status_counts,
-- migration 0014): appended deltas, never an updated counter row, so a claim or an
-- evaluation raising events never waits on another transaction's count.
CREATE OR REPLACE FUNCTION drift.count_event_statuses() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO drift.event_status_counts (status, events)
        SELECT n.status, count(*) FROM new_rows n GROUP BY n.status;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO drift.event_status_counts (status, events)
        SELECT o.status, -count(*) FROM old_rows o GROUP BY o.status;
    ELSE
        -- Most updates (lease renewals) change no status: nothing is written.
        INSERT INTO drift.event_status_counts (status, events)
        SELECT c.status, sum(c.sign) FROM (
            SELECT o.status, -1 AS sign FROM old_rows o
            UNION ALL SELECT n.status, 1 FROM new_rows n
        ) c
        GROUP BY c.status HAVING sum(c.sign) <> 0;
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION drift.count_event_statuses() IS 'After a write to drift_events: appends the change of events per status to drift.event_status_counts.';
CREATE OR REPLACE TRIGGER drift_events_count_insert AFTER INSERT ON drift.drift_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.count_event_statuses();
CREATE OR REPLACE TRIGGER drift_events_count_update AFTER UPDATE ON drift.drift_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.count_event_statuses();
CREATE OR REPLACE TRIGGER drift_events_count_delete AFTER DELETE ON drift.drift_events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION drift.count_event_statuses();

CREATE OR REPLACE FUNCTION drift.fold_event_status_counts() RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    k bigint;
BEGIN
    -- Deltas appended meanwhile are not seen by the DELETE and stay for the next fold.
    WITH moved AS (DELETE FROM drift.event_status_counts RETURNING *)
    INSERT INTO drift.event_status_counts (status, events)
    SELECT m.status, sum(m.events) FROM moved m GROUP BY m.status HAVING sum(m.events) <> 0;
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN k;
END $$;
COMMENT ON FUNCTION drift.fold_event_status_counts() IS 'Folds the status deltas into one row per status (drift.compact_rollups calls it, one session at a time); returns the rows written.';

CREATE OR REPLACE VIEW drift.event_status_totals AS
SELECT s.status, coalesce(sum(c.events), 0)::bigint AS events
FROM unnest('{pending,running,resolved,failed}'::text[]) AS s(status)
LEFT JOIN drift.event_status_counts AS c ON c.status = s.status
GROUP BY s.status;
COMMENT ON VIEW drift.event_status_totals IS 'Drift events per status now (driftloop_events), from the deltas of drift.event_status_counts: as many rows to read as status changes since the last fold, not one per event.';
COMMENT ON COLUMN drift.event_status_totals.status IS 'pending, running, resolved or failed.';
COMMENT ON COLUMN drift.event_status_totals.events IS 'Events in that status.';


-- repeatable 90_simulation.sql

-- Simulation: clean-up of the models `driftloop simulate` and `driftloop demo` created.

-- Deletes every row of the given simulated models from every table of schema drift that has
-- a `model` column, and the rows that reference those rows through a foreign key. It finds
-- the tables in the catalog, so tables added by later migrations are covered too. It refuses
-- names that no simulation created: user models are never touched.
CREATE OR REPLACE FUNCTION drift.delete_simulated_models(models text[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    unknown text[];
    tables regclass[];
    pending regclass[];
    t regclass;
    fk record;
    n bigint;
    total bigint := 0;
    progress boolean;
BEGIN
    SELECT array_agg(m) INTO unknown
      FROM unnest(models) AS m
     WHERE m NOT IN (SELECT model FROM drift.simulation_models);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'not models created by a simulation: %', array_to_string(unknown, ', ')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT coalesce(array_agg(c.oid::regclass), '{}') INTO tables
      FROM pg_class c
      JOIN pg_namespace ns ON ns.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'model' AND NOT a.attisdropped
     WHERE ns.nspname = 'drift' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
       AND c.relname NOT LIKE 'simulation\_%';

    -- Rows without a model column that point at rows being deleted (e.g. action runs of an event).
    FOR fk IN
        SELECT con.conrelid::regclass AS child, ca.attname AS child_col,
               con.confrelid::regclass AS parent, pa.attname AS parent_col
          FROM pg_constraint con
          JOIN pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = con.conkey[1]
          JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = con.confkey[1]
         WHERE con.contype = 'f' AND cardinality(con.conkey) = 1
           AND con.confrelid = ANY (tables) AND NOT con.conrelid = ANY (tables)
           AND con.conrelid::regclass::text NOT LIKE 'drift.simulation\_%'
    LOOP
        EXECUTE format('DELETE FROM %s WHERE %I IN (SELECT %I FROM %s WHERE model = ANY ($1))',
                       fk.child, fk.child_col, fk.parent_col, fk.parent) USING models;
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
    END LOOP;

    -- A table referenced by another one must be emptied after it: retry until all are done.
    pending := tables;
    WHILE cardinality(pending) > 0 LOOP
        progress := false;
        FOREACH t IN ARRAY pending LOOP
            BEGIN
                EXECUTE format('DELETE FROM %s WHERE model = ANY ($1)', t) USING models;
                GET DIAGNOSTICS n = ROW_COUNT;
                total := total + n;
                pending := array_remove(pending, t);
                progress := true;
            EXCEPTION WHEN foreign_key_violation THEN
                NULL;  -- still referenced; try again after the others
            END;
        END LOOP;
        IF NOT progress THEN
            RAISE EXCEPTION 'cannot delete simulated models: rows of % are still referenced',
                array_to_string(pending::text[], ', ');
        END IF;
    END LOOP;

    DELETE FROM drift.simulation_models WHERE model = ANY (models);
    DELETE FROM drift.simulation_runs r
     WHERE NOT EXISTS (SELECT 1 FROM drift.simulation_models m WHERE m.run_id = r.id);
    RETURN total;
END
$$;
COMMENT ON FUNCTION drift.delete_simulated_models(text[]) IS
    'Deletes all data of models created by a simulation (refuses any other name); returns the rows deleted.';


-- repeatable 95_security.sql

-- Security: grants and row-level security for the driftloop roles and, when present,
-- Supabase's anon / authenticated / service_role. Re-applied after every upgrade, so tables
-- and functions that later migrations add are covered too.
--
--   driftloop_ingest  INSERT logs; UPDATE feedback/correct and SELECT only rows it logged.
--   driftloop_worker  reads everything; writes events, runs, baselines, rollups, versions.
--   driftloop_reader  SELECT on the views and drift_events only.
--   anon              INSERT logs only (one key shared by every browser: it reads nothing).
--   authenticated     INSERT logs; SELECT and label its own rows (inserted_by = JWT sub).
--   service_role      everything (the app's backend; on Supabase it bypasses RLS anyway).
--
-- The log triggers and the report functions behind the views run as their owner (SECURITY
-- DEFINER, search_path pinned): a role that may only insert logs still feeds the rollups and
-- raises drift events, and a reader sees the views without reading the tables behind them.

CREATE OR REPLACE FUNCTION drift.client_id() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', current_user::text)
$$;
COMMENT ON FUNCTION drift.client_id() IS 'Who is calling: the JWT sub in request.jwt.claims (set by PostgREST or the edge functions), else the database user. Compared with inserted_by by the row-level security policies.';

DO $$
DECLARE
    t regclass;
    tname name;
    f regprocedure;
    cfg text[];
    ingest text[];
    ingest_readers text[];
    worker_only_reads constant text[] := ARRAY['settings', 'refusal_patterns', 'interaction_log', 'embeddings_log',
        'code_layer', 'alembic_version'];
    has_anon boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon');
    has_authenticated boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated');
    has_service boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role');
BEGIN
    ingest := ARRAY['driftloop_ingest'] || CASE WHEN has_anon THEN ARRAY['anon'] ELSE '{}' END
        || CASE WHEN has_authenticated THEN ARRAY['authenticated'] ELSE '{}' END;
    ingest_readers := ARRAY['driftloop_ingest'] || CASE WHEN has_authenticated THEN ARRAY['authenticated'] ELSE '{}' END;

    -- Row-level security on every table of schema drift, and a clean slate of table rights
    -- for the roles this file manages (a right a release withdrew does not linger).
    FOR t, tname IN SELECT c.oid, c.relname FROM pg_class c
        WHERE c.relnamespace = 'drift'::regnamespace AND c.relkind IN ('r', 'p') LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('REVOKE ALL ON %s FROM driftloop_ingest, driftloop_worker, driftloop_reader', t);
        -- A log partition is reached through its parent only: written directly, a row would
        -- skip the parent's statement triggers (the rollups). No rights, no policies.
        CONTINUE WHEN (SELECT c.relispartition FROM pg_class c WHERE c.oid = t);
        EXECUTE format('DROP POLICY IF EXISTS worker_all ON %s', t);
        EXECUTE format('CREATE POLICY worker_all ON %s TO driftloop_worker USING (true) WITH CHECK (true)', t);
        EXECUTE format('GRANT SELECT ON %s TO driftloop_worker', t);
        IF NOT (tname LIKE 'simulation\_%' OR tname = ANY (worker_only_reads)) THEN
            EXECUTE format('GRANT INSERT, UPDATE, DELETE ON %s TO driftloop_worker', t);
        END IF;
        IF has_service THEN
            EXECUTE format('GRANT ALL ON %s TO service_role', t);
            EXECUTE format('DROP POLICY IF EXISTS service_all ON %s', t);
            EXECUTE format('CREATE POLICY service_all ON %s TO service_role USING (true) WITH CHECK (true)', t);
        END IF;
        IF has_anon THEN EXECUTE format('REVOKE ALL ON %s FROM anon', t); END IF;
        IF has_authenticated THEN EXECUTE format('REVOKE ALL ON %s FROM authenticated', t); END IF;
    END LOOP;

    EXECUTE format('GRANT USAGE ON SCHEMA drift TO driftloop_ingest, driftloop_worker, driftloop_reader%s%s%s',
        CASE WHEN has_anon THEN ', anon' ELSE '' END, CASE WHEN has_authenticated THEN ', authenticated' ELSE '' END,
        CASE WHEN has_service THEN ', service_role' ELSE '' END);
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA drift TO driftloop_worker;
    IF has_service THEN GRANT ALL ON ALL SEQUENCES IN SCHEMA drift TO service_role; END IF;

    -- Logs: clients insert, and read or label only their own rows. The ids are allocated with
    -- nextval (the SDK and the functions return them), hence USAGE on the identity sequences.
    FOR t IN SELECT unnest(ARRAY['drift.interaction_log', 'drift.embeddings_log']::regclass[]) LOOP
        EXECUTE format('GRANT INSERT ON %s TO %s', t, array_to_string(ingest, ', '));
        EXECUTE format('GRANT SELECT ON %s TO %s', t, array_to_string(ingest_readers, ', '));
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %s', pg_get_serial_sequence(t::text, 'id'), array_to_string(ingest, ', '));
        EXECUTE format('DROP POLICY IF EXISTS clients_insert ON %s', t);
        EXECUTE format('CREATE POLICY clients_insert ON %s FOR INSERT TO %s WITH CHECK (inserted_by = (SELECT drift.client_id()))',
            t, array_to_string(ingest, ', '));
        EXECUTE format('DROP POLICY IF EXISTS clients_select_own ON %s', t);
        EXECUTE format('CREATE POLICY clients_select_own ON %s FOR SELECT TO %s USING (inserted_by = (SELECT drift.client_id()))',
            t, array_to_string(ingest_readers, ', '));
    END LOOP;
    EXECUTE format('GRANT UPDATE (feedback, correct) ON drift.interaction_log TO %s', array_to_string(ingest_readers, ', '));
    DROP POLICY IF EXISTS clients_label_own ON drift.interaction_log;
    EXECUTE format('CREATE POLICY clients_label_own ON drift.interaction_log FOR UPDATE TO %s'
        ' USING (inserted_by = (SELECT drift.client_id())) WITH CHECK (inserted_by = (SELECT drift.client_id()))',
        array_to_string(ingest_readers, ', '));
    -- The functions check an embedding's dimension before writing: the model registry's
    -- dimensions are readable to the ingest role (nothing else of drift.models).
    GRANT SELECT (model, embedding_dims) ON drift.models TO driftloop_ingest;
    DROP POLICY IF EXISTS ingest_dims ON drift.models;
    CREATE POLICY ingest_dims ON drift.models FOR SELECT TO driftloop_ingest USING (true);

    -- Every driftloop command checks the schema version before it runs: readable to all roles.
    -- (alembic_version does not exist yet when `driftloop db sql`'s script reaches this file.)
    FOR t IN SELECT c.oid FROM pg_class c
        WHERE c.relnamespace = 'drift'::regnamespace AND c.relname IN ('code_layer', 'alembic_version') LOOP
        EXECUTE format('GRANT SELECT ON %s TO driftloop_ingest, driftloop_reader', t);
        EXECUTE format('DROP POLICY IF EXISTS schema_version_read ON %s', t);
        EXECUTE format('CREATE POLICY schema_version_read ON %s FOR SELECT TO driftloop_ingest, driftloop_reader USING (true)', t);
    END LOOP;

    -- Readers: the views (which read the tables as their owner) and the events.
    GRANT SELECT ON drift.drift_events TO driftloop_reader;
    DROP POLICY IF EXISTS reader_events ON drift.drift_events;
    CREATE POLICY reader_events ON drift.drift_events FOR SELECT TO driftloop_reader USING (true);
    FOR t IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'drift'::regnamespace AND c.relkind IN ('v', 'm') LOOP
        EXECUTE format('REVOKE ALL ON %s FROM driftloop_ingest, driftloop_worker, driftloop_reader', t);
        EXECUTE format('GRANT SELECT ON %s TO driftloop_reader, driftloop_worker%s', t,
            CASE WHEN has_service THEN ', service_role' ELSE '' END);
        IF has_anon THEN EXECUTE format('REVOKE ALL ON %s FROM anon', t); END IF;
        IF has_authenticated THEN EXECUTE format('REVOKE ALL ON %s FROM authenticated', t); END IF;
    END LOOP;

    -- Functions that run as their owner: the log tables' triggers (ingest feeds the rollups
    -- and raises events it may not write itself) and every function a view calls (a view
    -- checks table rights as its owner, but runs its functions as the caller).
    FOR f IN
        SELECT DISTINCT t.tgfoid::regprocedure FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'drift'::regnamespace AND NOT t.tgisinternal
        UNION
        SELECT DISTINCT d.refobjid::regprocedure
        FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
        JOIN pg_class c ON c.oid = r.ev_class JOIN pg_proc p ON p.oid = d.refobjid
        WHERE c.relnamespace = 'drift'::regnamespace AND d.refclassid = 'pg_proc'::regclass
          AND p.pronamespace = 'drift'::regnamespace
    LOOP
        SELECT proconfig INTO cfg FROM pg_proc WHERE oid = f;
        IF NOT EXISTS (SELECT 1 FROM unnest(cfg) c WHERE c LIKE 'search\_path=%') THEN
            -- A definer function must never resolve names through the caller's search_path.
            EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, public, extensions, pg_temp', f);
        END IF;
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f);
        IF (SELECT prorettype <> 'trigger'::regtype FROM pg_proc WHERE oid = f) THEN
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO driftloop_reader, driftloop_worker%s', f,
                CASE WHEN has_service THEN ', service_role' ELSE '' END);
        END IF;
    END LOOP;
END $$;


CREATE TABLE IF NOT EXISTS drift.alembic_version (version_num varchar(32) NOT NULL CONSTRAINT alembic_version_pkc PRIMARY KEY);
INSERT INTO drift.alembic_version (version_num) VALUES ('0016_whitened_window');
INSERT INTO drift.code_layer (digest) VALUES ('69918affca1fe1864e9b3abec0fada3b9d81fb07187103df2998714afa781ecf');
COMMIT;
