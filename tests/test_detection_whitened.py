"""The whitened window test (metric whitened_mean_shift) on real text embeddings: the mean test
in the sequential test's whitened features over the last three hours, computed in SQL from the
rollups as the numpy model the benchmark replays for 30+ days computes it (the drift-free
replay of the tests is tests/test_detection_evidence.py's, which checks both tests)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row

import driftloop
from tests.support import detection_stream as ds
from tests.support.detection import HOUR, MINUTE, T0, baseline_sample, log_real_hours, per_minute, report, set_baseline
from tests.support.helpers import add_model
from tests.support.real_embeddings import REAL_CASES, Corpus, RealCase, TopicSampler, ada_like, load_slice

NEW_TOPIC_10 = next(c for c in REAL_CASES if c.name == "new topic 10%")


def calibration(conn: psycopg.Connection[Any], model: str) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    row = cur.execute("SELECT * FROM drift.embedding_calibration WHERE model = %s", (model,)).fetchone()
    assert row is not None
    return row


@pytest.mark.parametrize("dims", [256, 1536])
def test_sql_whitened_test_is_the_replayed_model(db_url: str, conn: psycopg.Connection[Any], dims: int) -> None:
    """A new topic at 10% for three hours: the SQL row's statistic, p-value and decision line
    equal the numpy model's on the same rows and baseline sample (at 1536-d through the 256
    landmarks; the SQL's chi-square tail is Wilson-Hilferty's, within 1% in ln p of scipy's
    here), and drifted = (score > threshold) = (p_value < look_alpha of three hours)."""
    rng = np.random.default_rng(21)
    corpus = load_slice()
    if dims != 256:
        corpus = Corpus(ada_like(corpus.vectors, dims), corpus.sections)
    sampler = TopicSampler(corpus, rng, topics=8)
    model = f"whitened-agree-{dims}"
    add_model(conn, model)
    start = T0 + 24 * HOUR
    with driftloop.connect(db_url) as client:
        ref, _ = log_real_hours(client, model, sampler, RealCase("baseline"), T0, 24, rng)
        set_baseline(conn, model, T0, start)
        x, times = log_real_hours(client, model, sampler, NEW_TOPIC_10, start, 3, rng)
    row = report(conn, model, start + 3 * HOUR)["whitened_mean_shift"]

    cal = calibration(conn, model)
    base = ds.EvidenceBaseline.of(ref.astype(np.float64), baseline_sample(conn, model))
    np.testing.assert_allclose([cal["whitened_trace1"], cal["whitened_trace2"], cal["whitened_trace3"]],
                               ds.whitened_traces(base), rtol=1e-3)
    n, sums = per_minute(x, times, start, 180)
    expected = ds.whitened_logp(n, sums, base, length=180, dispersion=cal["whitened_dispersion"])[-1]
    assert row["p_value"] > 0
    assert abs(np.log(row["p_value"]) - expected) < 1e-2 * max(1.0, abs(expected)), (row["p_value"], expected)
    assert row["details"]["test_window_n"] == len(x) and row["n_current"] == int(n[-60:].sum())
    look = ds.look_alpha(180)
    assert row["details"]["look_alpha"] == pytest.approx(look, rel=1e-6)
    assert row["drifted"] == (row["score"] > row["threshold"]) == (row["p_value"] < look)


def test_a_new_topic_at_ten_percent_is_judged_on_three_hours(db_url: str, conn: psycopg.Connection[Any]) -> None:
    """Three hours of a new topic at 10% of the traffic: drift.evaluate() raises an event on
    whitened_mean_shift, which judges the three hours at once, while the one-hour centroid test
    does not; a twin fed drift-free traffic raises nothing. Its window starts no earlier than
    the baseline's end, so an hour after the baseline it holds that hour only."""
    rng = np.random.default_rng(7)
    start = T0 + 24 * HOUR
    models = {"whitened-drift": NEW_TOPIC_10, "whitened-quiet": RealCase("none")}
    with driftloop.connect(db_url) as client:
        for model, case in models.items():
            sampler = TopicSampler(load_slice(), np.random.default_rng(2), topics=8)
            add_model(conn, model)
            log_real_hours(client, model, sampler, RealCase("baseline"), T0, 24, rng)
            set_baseline(conn, model, T0, start)
            log_real_hours(client, model, sampler, case, start, 3, rng)

    early = report(conn, "whitened-drift", start + HOUR)["whitened_mean_shift"]
    assert datetime.fromisoformat(early["details"]["test_window_start"]) == start
    assert early["details"]["test_window_n"] == early["n_current"]

    cur = conn.cursor(row_factory=dict_row)
    events: list[dict[str, Any]] = []
    for step in range(1, 19):
        events += cur.execute("SELECT * FROM drift.evaluate(%s) WHERE kind = 'embedding'",
                              (start + step * 10 * MINUTE,)).fetchall()
    end = report(conn, "whitened-drift", start + 3 * HOUR)
    assert end["whitened_mean_shift"]["drifted"] and not end["centroid_distance"]["drifted"]
    raised = [e["metric"] for e in events if e["model"] == "whitened-drift"]
    assert "whitened_mean_shift" in raised and "centroid_distance" not in raised
    quiet = report(conn, "whitened-quiet", start + 3 * HOUR)["whitened_mean_shift"]
    assert quiet["threshold"] is not None and not quiet["drifted"] and quiet["p_value"] > 1e-3
    assert not [e for e in events if e["model"] == "whitened-quiet"]


def test_a_baseline_that_wanders_over_hours_widens_the_null(db_url: str, conn: psycopg.Connection[Any]) -> None:
    """Traffic whose topic mix changes every three hours varies more between three-hour blocks
    than independent embeddings would: set as the baseline, its whitened_dispersion (the mean
    ratio over its eight blocks) is well above 1, and the test's null is widened by it; a steady
    baseline keeps about 1 (it is never below)."""
    start = T0 + 24 * HOUR
    with driftloop.connect(db_url) as client:
        for model, wander in (("whitened-steady", False), ("whitened-wander", True)):
            rng = np.random.default_rng(5)
            sampler = TopicSampler(load_slice(), rng, topics=8)
            add_model(conn, model)
            for block in range(8):
                if wander:  # another mix of the same topics every three hours
                    sampler.weights = rng.dirichlet(np.full(len(sampler.weights), 2.0))
                log_real_hours(client, model, sampler, RealCase("baseline"), T0 + 3 * block * HOUR, 3, rng)
            set_baseline(conn, model, T0, start)
    steady, wandering = calibration(conn, "whitened-steady"), calibration(conn, "whitened-wander")
    assert steady["whitened_dispersion"] == pytest.approx(1.0, abs=0.2)
    assert wandering["whitened_dispersion"] > 2, wandering["whitened_dispersion"]
