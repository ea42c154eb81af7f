"""drift.evaluate reads rollups, not the raw history: its cost does not grow with the rows logged.

Cost is counted in shared buffers touched (EXPLAIN (ANALYZE, BUFFERS)), not in seconds, so
the test is deterministic: the same current window and baseline with 10x more history must
touch the same buffers, while a naive aggregate over the raw rows touches ~10x more.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

import driftloop

MODEL = "support-bot"
DIMS = 32
AS_OF = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
BASELINE = (AS_OF - 5 * HOUR, AS_OF - 4 * HOUR)
WINDOW_ROWS = 200  # in the baseline and in the current window each
# Buffers a lookup may add when an index over 10x more rollup rows gains a level.
SLACK = 6

NAIVE_CENTROID = """
CREATE FUNCTION pg_temp.naive_centroid(p_model text) RETURNS SETOF double precision
LANGUAGE plpgsql AS $$
BEGIN
    -- What the rollups save: reading every raw embedding of the model.
    RETURN QUERY SELECT (avg(e.embedding) <=> sum(e.embedding)) FROM drift.embeddings_log e WHERE e.model = p_model;
END $$
"""


def log(client: driftloop.Client, start: datetime, span: timedelta, count: int, seed: int) -> None:
    """`count` interactions with their embeddings, evenly over [start, start + span); drift-free."""
    rng = np.random.default_rng(seed)
    centre = np.zeros(DIMS)
    centre[0] = 3.0
    step = span / count
    rows = [
        {"model": MODEL, "created_at": start + i * step, "response": "Here you go.", "is_refusal": i % 50 == 0,
         "toxicity": 0.9 if i % 100 == 0 else 0.1, "correct": i % 10 != 0, "latency_ms": 80.0,
         "embedding": centre + rng.standard_normal(DIMS)}
        for i in range(count)
    ]  # fmt: skip
    for chunk in range(0, count, 5000):
        client.log_interactions(rows[chunk : chunk + 5000])


def buffers(conn: psycopg.Connection[Any], query: str, *params: Any) -> int:
    """Shared buffers touched while executing `query` (fewest of three runs: warm caches and plans)."""
    counts = []
    for _ in range(3):
        row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}", params).fetchone()
        assert row is not None
        plan = (row[0] if isinstance(row[0], list) else json.loads(row[0]))[0]["Plan"]
        counts.append(plan["Shared Hit Blocks"] + plan["Shared Read Blocks"])
    return min(counts)


def settle(conn: psycopg.Connection[Any]) -> None:
    """Fold the deltas, then vacuum so the deleted delta rows leave no dead tuples to step over."""
    conn.execute("SELECT drift.compact_rollups()")
    for table in ("embedding_rollup_delta", "interaction_rollup_delta", "embedding_rollup", "interaction_rollup",
                  "embeddings_log", "interaction_log"):  # fmt: skip
        conn.execute(f"VACUUM (ANALYZE) drift.{table}")


@pytest.fixture
def client(db_url: str, conn: psycopg.Connection[Any]) -> Iterator[driftloop.Client]:
    conn.execute("UPDATE drift.settings SET value = '0' WHERE key = 'evaluate_interval'")
    with driftloop.connect(db_url) as c:
        yield c


def test_evaluate_touches_the_same_buffers_with_10x_more_history(
    client: driftloop.Client, conn: psycopg.Connection[Any]
) -> None:
    conn.execute(NAIVE_CENTROID)
    log(client, BASELINE[0], HOUR, WINDOW_ROWS, seed=1)
    log(client, AS_OF - HOUR, HOUR, WINDOW_ROWS, seed=2)
    log(client, AS_OF - 3 * DAY, 2 * DAY, 1_600, seed=3)  # 2,000 rows in all
    client.set_baseline(MODEL, *BASELINE)
    assert client.evaluate(AS_OF) == []  # drift-free: evaluating writes no events to count
    settle(conn)

    small = {
        "evaluate": buffers(conn, "SELECT * FROM drift.evaluate(%s)", AS_OF),
        "report": buffers(conn, "SELECT * FROM drift.drift_report(%s)", AS_OF),
        "naive": buffers(conn, "SELECT * FROM pg_temp.naive_centroid(%s)", MODEL),
    }

    log(client, AS_OF - 10 * DAY, 7 * DAY, 18_000, seed=4)  # 20,000 rows: 10x the history
    assert conn.execute("SELECT count(*) FROM drift.embeddings_log").fetchone() == (20_000,)
    assert conn.execute("SELECT count(*) FROM drift.interaction_log").fetchone() == (20_000,)
    assert client.evaluate(AS_OF) == []
    settle(conn)

    large = {
        "evaluate": buffers(conn, "SELECT * FROM drift.evaluate(%s)", AS_OF),
        "report": buffers(conn, "SELECT * FROM drift.drift_report(%s)", AS_OF),
        "naive": buffers(conn, "SELECT * FROM pg_temp.naive_centroid(%s)", MODEL),
    }

    # The measurement sees the work done inside a function: the naive scan grows with the rows.
    assert large["naive"] >= 5 * small["naive"], (small, large)
    # Evaluating does not: same window, same baseline, same buffers (up to an index level).
    assert small["evaluate"] > 0 and small["report"] > 0
    assert large["evaluate"] <= small["evaluate"] + SLACK, (small, large)
    assert large["report"] <= small["report"] + SLACK, (small, large)


def test_an_evaluation_computes_the_drift_report_once(client: driftloop.Client, db_url: str) -> None:
    """The evaluation history and the events are written from one report, not from two computations."""
    log(client, BASELINE[0], HOUR, WINDOW_ROWS, seed=1)
    log(client, AS_OF - HOUR, HOUR, WINDOW_ROWS, seed=2)
    client.set_baseline(MODEL, *BASELINE)
    # A session of its own, counting calls per function: its transaction's counts are this evaluation's.
    with psycopg.connect(db_url) as session:
        session.execute("SET track_functions = 'all'")
        session.execute("SELECT count(*) FROM drift.evaluate(%s)", (AS_OF,))
        calls = dict(
            session.execute(
                """SELECT funcname, calls FROM pg_stat_xact_user_functions
                   WHERE schemaname = 'drift' AND funcname LIKE '%%report%%'"""
            ).fetchall()
        )
        history = session.execute(
            "SELECT count(*) FROM drift.evaluation_history WHERE model = %s AND as_of = %s", (MODEL, AS_OF)
        ).fetchone()
        session.rollback()
    assert calls["drift_report"] == 1, calls
    for kind in ("embedding_report", "behavior_report", "accuracy_report"):
        assert calls[kind] == 1, calls
    # centroid_distance, novelty_rate, mean_shift_evidence, whitened_mean_shift, refusal_rate,
    # toxicity_rate, accuracy
    assert history == (7,)
