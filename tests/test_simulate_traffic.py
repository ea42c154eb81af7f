"""The traffic generator and scenarios without a database: what each drift does to the
traffic, reproducibility by seed, and the simulated clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from driftloop.simulate.chat import TemplateChatProvider
from driftloop.simulate.embeddings import SyntheticEmbeddingProvider
from driftloop.simulate.runner import Plan
from driftloop.simulate.scenarios import (
    NEW_INTENT,
    NEW_TOPIC,
    SCENARIOS,
    SPIKE_REFUSAL,
    SPIKE_TOXIC,
    behaviour,
    scenario,
)
from driftloop.simulate.topics import Catalogue
from driftloop.simulate.traffic import TrafficGenerator

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOTHING_FIXED: frozenset[str] = frozenset()


class TopicRouter:
    """Routes every question to its topic, as a perfect router trained before any drift would."""

    def __init__(self) -> None:
        self.catalogue = Catalogue()
        self.provider = SyntheticEmbeddingProvider(dims=64, seed=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        centres = self.provider.mixture.centres
        return np.array(self.catalogue.names, dtype=object)[np.argmax(X @ centres.T, axis=1)]


def generator(seed: int = 1, rate: float = 20.0) -> TrafficGenerator:
    return TrafficGenerator(
        SyntheticEmbeddingProvider(dims=64, seed=1, noise_seed=seed),
        TemplateChatProvider(),
        np.random.default_rng(seed),
        rate_per_minute=rate,
    )


def one_hour(name: str | None, minutes_in: float | None = 60, fixes: frozenset[str] = NOTHING_FIXED, seed: int = 1):
    injections = SCENARIOS[name].injections if name else ()
    g = generator(seed)
    return g.generate(
        "m",
        T0,
        T0 + timedelta(hours=1),
        behaviour(injections, minutes_in, fixes),
        router=TopicRouter(),
        router_version="v1",
        system_prompt="Be helpful.",
    )


def centroid_distance(a: np.ndarray, b: np.ndarray) -> float:
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    return float(1 - ca @ cb / (np.linalg.norm(ca) * np.linalg.norm(cb)))


def share(rows: list[dict], key: str) -> float:
    return float(np.mean([bool(r[key]) for r in rows]))


def test_rows_are_valid_interactions_in_the_slice() -> None:
    s = one_hour(None, None)
    assert 1000 < len(s) < 1400  # Poisson(20 per minute for 60 minutes)
    assert s.embeddings.shape == (len(s), 64)
    times = [r["created_at"] for r in s.rows]
    assert times == sorted(times) and times[0] >= T0 and times[-1] < T0 + timedelta(hours=1)
    labelled = [r for r in s.rows if r["correct"] is not None]
    assert all("label" in r["metadata"] for r in labelled)
    assert all("label" not in r["metadata"] for r in s.rows if r["correct"] is None)
    # Before any drift: few refusals, almost no toxic answers, a good router.
    assert share(s.rows, "is_refusal") < 0.03
    assert np.mean([r["toxicity"] >= 0.5 for r in s.rows]) < 0.01
    assert share(labelled, "correct") > 0.9


def test_same_seed_same_traffic() -> None:
    a, b, c = one_hour("all_at_once"), one_hour("all_at_once"), one_hour("all_at_once", seed=2)
    assert a.rows == b.rows
    np.testing.assert_array_equal(a.embeddings, b.embeddings)
    assert a.rows != c.rows


def test_embedding_drifts_move_the_centroid_and_the_control_does_not() -> None:
    base = one_hour(None, None, seed=3).embeddings
    assert centroid_distance(base, one_hour(None, None, seed=4).embeddings) < 0.02
    assert centroid_distance(base, one_hour("topic_shift").embeddings) > 0.25
    new = one_hour("new_topic")
    assert centroid_distance(base, new.embeddings) > 0.2
    assert share([{"x": r["metadata"]["topic"] == NEW_TOPIC} for r in new.rows], "x") == pytest.approx(0.45, abs=0.05)


def test_behaviour_spikes_until_a_prompt_written_for_them_is_in_force() -> None:
    spiked = one_hour("all_at_once")
    assert share(spiked.rows, "is_refusal") == pytest.approx(SPIKE_REFUSAL, abs=0.03)
    assert np.mean([r["toxicity"] >= 0.5 for r in spiked.rows]) == pytest.approx(SPIKE_TOXIC, abs=0.03)
    # A prompt written for refusals fixes refusals only; toxicity needs its own guidance.
    half = one_hour("all_at_once", fixes=frozenset({"refusal_rate"}))
    assert share(half.rows, "is_refusal") < 0.03
    assert np.mean([r["toxicity"] >= 0.5 for r in half.rows]) > 0.05
    fixed = one_hour("all_at_once", fixes=frozenset({"refusal_rate", "toxicity_rate"}))
    assert np.mean([r["toxicity"] >= 0.5 for r in fixed.rows]) < 0.01


def test_accuracy_decays_as_the_truth_moves_away_from_the_router() -> None:
    def accuracy(minutes: float | None) -> float:
        rows = [r for r in one_hour("accuracy_decay", minutes).rows if r["correct"] is not None]
        return share(rows, "correct")

    before, halfway, after = accuracy(None), accuracy(15), accuracy(60)
    assert before > 0.9
    assert before - 0.18 < halfway < before - 0.05
    assert after < before - 0.18
    labels = {r["metadata"]["label"] for r in one_hour("accuracy_decay", 60).rows if "label" in r["metadata"]}
    assert NEW_INTENT in labels


def test_scenario_names_accept_dashes_and_reject_unknown_ones() -> None:
    assert scenario("refusal-spike").name == "refusal_spike"
    with pytest.raises(ValueError, match="unknown scenario 'nope'; known: topic_shift"):
        scenario("nope")


def test_plan_aligns_simulated_time_to_steps() -> None:
    now = datetime(2026, 3, 1, 12, 7, 31, tzinfo=UTC)
    plan = Plan.make(days=1, rate_per_minute=8, now=now)
    assert plan.ends == datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
    assert plan.starts == plan.ends - timedelta(days=1)
    assert plan.baseline_ends == plan.starts + timedelta(hours=12)
    assert plan.drift_at == plan.baseline_ends + timedelta(hours=2)
    with pytest.raises(ValueError, match="too short"):
        Plan.make(days=0.001, rate_per_minute=8, now=now)


def test_late_labels_arrive_after_their_interaction() -> None:
    g = TrafficGenerator(
        SyntheticEmbeddingProvider(dims=64, seed=1, noise_seed=1),
        TemplateChatProvider(),
        np.random.default_rng(1),
        rate_per_minute=20,
        label_delay_minutes=15,
    )
    s = g.generate(
        "m", T0, T0 + timedelta(hours=1), behaviour((), None, NOTHING_FIXED),
        router=TopicRouter(), router_version="v1", system_prompt="Be helpful.",
    )  # fmt: skip
    # Nothing is labelled when logged; about 80% of the interactions get a label later.
    assert all(r["correct"] is None and "label" not in r["metadata"] for r in s.rows)
    assert len(s.labels) == pytest.approx(0.8 * len(s), rel=0.1)
    for label in s.labels:
        logged = s.rows[label.row]["created_at"]
        assert logged <= label.arrives_at <= logged + timedelta(minutes=15)
    assert np.mean([lb.correct for lb in s.labels]) > 0.9
