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
