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
