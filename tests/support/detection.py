"""Shared by the detection tests: log known traffic into a test database and read reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row

from driftloop.client import Client
from tests.support.detection_cases import EmbeddingCase, TopicTraffic, interaction_rows, spread_times
from tests.support.real_embeddings import RealCase, TopicSampler

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
REAL_RATE = 300  # real-embedding traffic of the sequential and whitened tests' tests, per hour


def log_embeddings(
    client: Client,
    model: str,
    traffic: TopicTraffic,
    case: EmbeddingCase,
    start: datetime,
    span: timedelta,
    n: int,
    rng: np.random.Generator,
) -> None:
    client.log_embeddings(model, traffic.sample(n, case, rng), created_at=spread_times(start, span, n, rng))


def log_interactions(
    client: Client,
    model: str,
    start: datetime,
    span: timedelta,
    n: int,
    rng: np.random.Generator,
    **rates: float,
) -> None:
    client.log_interactions(interaction_rows(model, spread_times(start, span, n, rng), rng, **rates))


def set_baseline(conn: psycopg.Connection[Any], model: str, starts: datetime, ends: datetime) -> None:
    conn.execute("SELECT drift.compact_rollups()")
    conn.execute("SELECT count(*) FROM drift.set_baseline(%s, %s, %s)", (model, starts, ends))


def report(conn: psycopg.Connection[Any], model: str, as_of: datetime) -> dict[str, dict[str, Any]]:
    """drift.drift_report(as_of) of one model, by metric."""
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute("SELECT * FROM drift.drift_report(%s, %s)", (as_of, [model])).fetchall()
    return {row["metric"]: row for row in rows}


def log_real_hours(client: Client, model: str, sampler: TopicSampler, case: RealCase, start: datetime,
                   hours: float, rng: np.random.Generator) -> tuple[np.ndarray, list[datetime]]:
    """REAL_RATE real-embedding rows an hour of `case` over [start, start + hours); the rows and their times."""
    n = int(REAL_RATE * hours)
    x = sampler.draw(n, case)
    times = spread_times(start, timedelta(hours=hours), n, rng)
    client.log_embeddings(model, x, created_at=times)
    return x, times


def per_minute(x: np.ndarray, times: list[datetime], start: datetime, minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts and vector sums per minute bucket, as the rollups keep them."""
    idx = np.array([int((t - start) / MINUTE) for t in times])
    n = np.bincount(idx, minlength=minutes).astype(float)
    sums = np.zeros((minutes, x.shape[1]))
    np.add.at(sums, idx, x.astype(np.float64))
    return n, sums


def baseline_sample(conn: psycopg.Connection[Any], model: str) -> np.ndarray:
    """drift.baseline_samples of a model in id order: what the numpy models whiten."""
    return np.array([r[0] for r in conn.execute(
        "SELECT embedding::real[] FROM drift.baseline_samples WHERE model = %s ORDER BY id", (model,)).fetchall()])
