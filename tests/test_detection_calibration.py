"""Calibration: on drift-free traffic each test's p-value falls below alpha in at most about
alpha of the windows (a binomial bound), across seeds, dimensions and sample sizes."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
from scipy.stats import binom

import driftloop
from tests.support.detection import HOUR, T0, log_embeddings, log_interactions, report, set_baseline
from tests.support.detection_cases import EMBEDDING_CASES, TopicTraffic
from tests.support.helpers import add_model

ALPHA = 0.01
NO_DRIFT = EMBEDDING_CASES[0]
# (seed, dims, baseline embeddings, embeddings per window, windows)
EMBEDDING_CONFIGS = [(11, 128, 1500, 200, 120), (12, 128, 3000, 400, 120), (13, 384, 2000, 300, 120)]


def bound(windows: int) -> int:
    """Most false alarms a test at ALPHA gives in this many windows, but for 1 time in 1000."""
    return int(binom.ppf(0.999, windows, ALPHA))


def test_embedding_tests_hold_alpha_on_drift_free_windows(db_url: str, conn: psycopg.Connection[Any]) -> None:
    p_values: dict[str, list[float]] = {"centroid_distance": [], "novelty_rate": []}
    with driftloop.connect(db_url) as client:
        for seed, dims, ref, per_window, windows in EMBEDDING_CONFIGS:
            model = f"calib-{seed}"
            add_model(conn, model)
            rng = np.random.default_rng(seed)
            traffic = TopicTraffic(dims, seed)
            log_embeddings(client, model, traffic, NO_DRIFT, T0, 24 * HOUR, ref, rng)
            set_baseline(conn, model, T0, T0 + 24 * HOUR)
            starts = [T0 + (24 + i) * HOUR for i in range(windows)]
            for start in starts:
                log_embeddings(client, model, traffic, NO_DRIFT, start, HOUR, per_window, rng)
            conn.execute("SELECT drift.compact_rollups()")
            for start in starts:
                rows = report(conn, model, start + HOUR)
                assert rows["centroid_distance"]["n_current"] == per_window
                for metric, values in p_values.items():
                    values.append(rows[metric]["p_value"])

    total = sum(c[-1] for c in EMBEDDING_CONFIGS)
    for metric, values in p_values.items():
        p = np.array(values)
        assert len(p) == total and not np.isnan(p).any(), metric
        assert (p < ALPHA).sum() <= bound(total), (metric, (p < ALPHA).sum(), total)
        # Not conservative to the point of uselessness: small p-values do occur under no drift.
        assert (p < 0.2).mean() > 0.05, (metric, (p < 0.2).mean())


def test_rate_tests_hold_alpha_on_drift_free_windows(db_url: str, conn: psycopg.Connection[Any]) -> None:
    # (seed, baseline interactions, interactions per window, windows): small counts on purpose,
    # a 1% toxic rate gives about 3 toxic answers per window.
    configs = [(21, 6000, 300, 100), (22, 3000, 200, 100), (23, 12000, 500, 100)]
    rates = {"refusal": 0.02, "toxic": 0.01, "accuracy": 0.85}
    p_values: dict[str, list[float]] = {"refusal_rate": [], "toxicity_rate": [], "accuracy": []}
    with driftloop.connect(db_url) as client:
        for seed, ref, per_window, windows in configs:
            model = f"calib-rates-{seed}"
            add_model(conn, model)
            rng = np.random.default_rng(seed)
            log_interactions(client, model, T0, 24 * HOUR, ref, rng, **rates)
            set_baseline(conn, model, T0, T0 + 24 * HOUR)
            starts = [T0 + (24 + i) * HOUR for i in range(windows)]
            for start in starts:
                log_interactions(client, model, start, HOUR, per_window, rng, **rates)
            conn.execute("SELECT drift.compact_rollups()")
            for start in starts:
                rows = report(conn, model, start + HOUR)
                for metric, values in p_values.items():
                    assert rows[metric]["n_current"] == per_window
                    values.append(rows[metric]["p_value"])
    total = sum(c[-1] for c in configs)
    for metric, values in p_values.items():
        p = np.array(values)
        assert (p < ALPHA).sum() <= bound(total), (metric, (p < ALPHA).sum(), total)
        assert (p < 0.2).mean() > 0.05, (metric, (p < 0.2).mean())
