"""Each scenario end to end on a real database: injected at a known time, detected by the
engine with the right kind and metric within the expected delay, acted on by the real
worker, and the metric back under its threshold afterwards. The control raises nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from driftloop.database import connect
from driftloop.simulate.outcomes import RunRecord, false_alarms, outcomes
from driftloop.simulate.runner import Options, Plan, run_simulation
from driftloop.simulate.scenarios import SCENARIOS
from driftloop.simulate.store import load_run

# A quick plan: 8 simulated hours (4 baseline), drift one hour after the baseline,
# evaluated every 5 minutes over a 1-hour window, 6 interactions a minute.
DAYS, RATE = 1 / 3, 6.0
# How long each kind may take to be flagged. Embedding drift is judged by the cosine
# distance between centroids, which grows with the square of the drifted share of the
# window: it needs most of the 1-hour window. Rates cross their thresholds sooner.
MAX_DELAY = {
    "embedding": timedelta(minutes=60),
    "behavior": timedelta(minutes=30),
    "accuracy": timedelta(minutes=45),
}
ACTION = {"embedding": "reindex", "behavior": "update_system_prompt", "accuracy": "retrain"}


def simulate(url: str, name: str, *, seed: int = 7) -> tuple[RunRecord, Plan]:
    options = Options(scenarios=(SCENARIOS[name],), seed=seed, days=DAYS, rate_per_minute=RATE, prefix="test-")
    plan = Plan.make(days=DAYS, rate_per_minute=RATE)
    run_id = run_simulation(url, options, plan)
    with connect(url) as conn:
        return load_run(conn, run_id), plan


@pytest.mark.parametrize("name", [n for n in SCENARIOS if n != "control"])
def test_injected_drift_is_detected_acted_on_and_recovers(db_url: str, name: str) -> None:
    run, plan = simulate(db_url, name)
    (model,) = run.models
    injected = {(i.kind, i.metric) for i in SCENARIOS[name].injections}
    # The ground truth is in the database: what was injected, into which model, from when.
    assert {(t.kind, t.metric) for t in run.truths} == injected
    assert all(t.model == model and t.starts_at == plan.drift_at for t in run.truths)

    for result in outcomes(run):
        truth = result.truth
        what = f"{name}: {truth.kind}/{truth.metric}"
        assert result.event is not None, f"{what} was not detected"
        expected = next(i for i in SCENARIOS[name].injections if (i.kind, i.metric) == (truth.kind, truth.metric))
        assert result.event.kind == truth.kind and result.event.metric in expected.metrics, what
        assert result.delay is not None and timedelta(0) < result.delay <= MAX_DELAY[truth.kind], (
            f"{what} detected after {result.delay}"
        )
        first = result.actions[0]
        assert first.actions == (ACTION[truth.kind],), what
        assert first.outcome == "resolved", f"{what}: {first.detail}"
        # After the action the metric returns under its threshold and stays there.
        after = [p for p in run.timeline[model] if p.metric == truth.metric and p.as_of > first.sim_at]
        assert result.recovered, f"{what} did not recover: last score {after[-1].score} vs {after[-1].threshold}"
        assert after[-1].score is not None and after[-1].threshold is not None
        assert after[-1].score <= after[-1].threshold, what
    # Nothing was raised before the drift started, nor of a kind that was not injected.
    assert false_alarms(run) == []


def test_drift_free_control_raises_nothing(db_url: str) -> None:
    run, plan = simulate(db_url, "control")
    (model,) = run.models
    assert run.truths == []
    assert run.events == []
    assert run.actions == []
    steps = (plan.ends - plan.baseline_ends) // plan.step
    points = run.timeline[model]
    # Every metric was evaluated at every step, with enough samples to judge, and never drifted.
    metrics = {p.metric for p in points}
    assert metrics >= {"centroid_distance", "refusal_rate", "toxicity_rate", "accuracy"}
    assert len(points) == len(metrics) * steps
    assert all(p.n_current is not None and p.n_current >= 100 for p in points)
    assert not any(p.drifted for p in points)
