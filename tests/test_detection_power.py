"""Power: every drift case of the benchmark is detected at the benchmark's sizes."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg

import driftloop
from tests.support.detection import HOUR, T0, log_embeddings, log_interactions, report, set_baseline
from tests.support.detection_cases import EMBEDDING_CASES, TopicTraffic
from tests.support.helpers import add_model

ALPHA = 0.01
WINDOWS = 5


def test_each_embedding_drift_is_detected_at_reference_2000_window_500(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    model = "power-emb"
    add_model(conn, model)
    rng = np.random.default_rng(31)
    traffic = TopicTraffic(384, 31)
    cases = EMBEDDING_CASES[1:]
    with driftloop.connect(db_url) as client:
        log_embeddings(client, model, traffic, EMBEDDING_CASES[0], T0, 24 * HOUR, 2000, rng)
        set_baseline(conn, model, T0, T0 + 24 * HOUR)
        hour = T0 + 24 * HOUR
        windows: dict[str, list[Any]] = {}
        for case in cases:
            for _ in range(WINDOWS):
                log_embeddings(client, model, traffic, case, hour, HOUR, 500, rng)
                hour += HOUR
                windows.setdefault(case.name, []).append(hour)
    conn.execute("SELECT drift.compact_rollups()")
    for case in cases:
        for as_of in windows[case.name]:
            rows = report(conn, model, as_of)
            best = min(rows["centroid_distance"]["p_value"], rows["novelty_rate"]["p_value"])
            assert best < ALPHA, (case.name, as_of, best)
            # Every drift row carries an effect size next to its p-value.
            assert rows["centroid_distance"]["details"]["effect_size"] is not None
            assert rows["novelty_rate"]["details"]["effect_size"] is not None
        if case.new_topic:
            # A new topic is what the mean test cannot see and the novelty rate can.
            assert all(report(conn, model, a)["novelty_rate"]["p_value"] < ALPHA for a in windows[case.name])


def test_rate_rises_and_accuracy_drops_are_flagged_within_an_hour_of_100_per_minute(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    model = "power-rates"
    add_model(conn, model)
    rng = np.random.default_rng(32)
    base = {"refusal": 0.04, "toxic": 0.01, "accuracy": 0.90}
    # One hour per window, 100 interactions a minute.
    windows = {
        "none": base,
        "+2 points, -3 points": {"refusal": 0.06, "toxic": 0.03, "accuracy": 0.87},
        "+5 points, -5 points": {"refusal": 0.09, "toxic": 0.06, "accuracy": 0.85},
        "-10 points": {**base, "accuracy": 0.80},
    }
    with driftloop.connect(db_url) as client:
        log_interactions(client, model, T0, 4 * HOUR, 24000, rng, **base)
        set_baseline(conn, model, T0, T0 + 4 * HOUR)
        ends = {}
        for i, (name, rates) in enumerate(windows.items()):
            log_interactions(client, model, T0 + (4 + i) * HOUR, HOUR, 6000, rng, **rates)
            ends[name] = T0 + (5 + i) * HOUR
    conn.execute("SELECT drift.compact_rollups()")

    def drifted() -> dict[str, set[str]]:
        return {name: {m for m, r in report(conn, model, end).items() if r["drifted"]} for name, end in ends.items()}

    # Defaults: the rate must be past the seed's threshold AND significantly above the baseline.
    flagged = drifted()
    assert flagged["none"] == set()
    assert flagged["+2 points, -3 points"] == {"refusal_rate", "toxicity_rate"}  # a 3-point drop is under 0.05
    # A 5-point drop sits exactly at the 0.05 threshold: flagged or not, depending on the noise.
    assert flagged["+5 points, -5 points"] - {"accuracy"} == {"refusal_rate", "toxicity_rate"}
    assert flagged["-10 points"] == {"accuracy"}
    # With the absolute floors off, the statistics alone see every change.
    conn.execute(
        "UPDATE drift.settings SET value = '0' WHERE key IN"
        " ('refusal_rate_threshold', 'toxicity_rate_threshold', 'accuracy_drop_threshold')"
    )
    assert drifted() == {
        "none": set(),
        "+2 points, -3 points": {"refusal_rate", "toxicity_rate", "accuracy"},
        "+5 points, -5 points": {"refusal_rate", "toxicity_rate", "accuracy"},
        "-10 points": {"accuracy"},
    }
    row = report(conn, model, ends["+2 points, -3 points"])["refusal_rate"]
    assert row["details"]["ci_low"] < row["value"] < row["details"]["ci_high"]
    assert row["details"]["effect_size"] > 0


def test_a_model_without_baseline_reports_every_embedding_metric_undrifted(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    model = "no-baseline"
    add_model(conn, model)
    rng = np.random.default_rng(33)
    with driftloop.connect(db_url) as client:
        log_embeddings(client, model, TopicTraffic(64, 33), EMBEDDING_CASES[5], T0, HOUR, 300, rng)
    conn.execute("SELECT drift.compact_rollups()")
    rows = report(conn, model, T0 + HOUR)
    assert {m: (r["n_current"], r["n_baseline"], r["drifted"]) for m, r in rows.items()} == {
        "centroid_distance": (300, 0, False),
        "novelty_rate": (300, 0, False),
        "mean_shift_evidence": (300, 0, False),
        "whitened_mean_shift": (300, 0, False),
    }
    assert rows["novelty_rate"]["p_value"] is None
    assert rows["mean_shift_evidence"]["score"] is None  # nothing to fold without a baseline
    assert rows["whitened_mean_shift"]["score"] is None  # nor a whitening to test in


def test_novelty_searches_at_most_novelty_per_bucket_embeddings_and_caches_them(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    model = "busy"
    add_model(conn, model)
    conn.execute("UPDATE drift.settings SET value = '30' WHERE key = 'novelty_per_bucket'")
    rng = np.random.default_rng(34)
    traffic = TopicTraffic(64, 34)
    with driftloop.connect(db_url) as client:
        log_embeddings(client, model, traffic, EMBEDDING_CASES[0], T0, 24 * HOUR, 2000, rng)
        set_baseline(conn, model, T0, T0 + 24 * HOUR)
        # 100 a minute for an hour, a new topic at 20%.
        log_embeddings(client, model, traffic, EMBEDDING_CASES[5], T0 + 24 * HOUR, HOUR, 6000, rng)
    conn.execute("SELECT drift.compact_rollups()")
    as_of = T0 + 25 * HOUR
    live = report(conn, model, as_of)["novelty_rate"]
    assert (live["n_current"], live["details"]["scored_current"]) == (6000, 60 * 30)
    assert live["drifted"]

    events = conn.execute("SELECT metric FROM drift.evaluate(%s)", (as_of,)).fetchall()
    assert ("novelty_rate",) in events
    cached = conn.execute(
        "SELECT count(*), sum(n), sum(scored) FROM drift.novelty_rollup WHERE model = %s", (model,)
    ).fetchone()
    assert cached == (60, 6000, 60 * 30)
    # Served from the cache, the report says the same.
    assert report(conn, model, as_of)["novelty_rate"]["p_value"] == live["p_value"]
