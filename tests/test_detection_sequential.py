"""Repeated evaluation: evaluating every minute raises no false event on a long drift-free
stream, and a step change raises one event, once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg

import driftloop
from driftloop.client import Client
from tests.support.detection import HOUR, T0, log_embeddings, log_interactions, report, set_baseline
from tests.support.detection_cases import EMBEDDING_CASES, EmbeddingCase, TopicTraffic
from tests.support.helpers import add_model

MINUTE = timedelta(minutes=1)
PER_MINUTE = 30
RATES = {"refusal": 0.03, "toxic": 0.01, "accuracy": 0.9}


def minute_of_traffic(
    client: Client, model: str, traffic: TopicTraffic, case: EmbeddingCase, at: datetime, rng: np.random.Generator
) -> None:
    log_embeddings(client, model, traffic, case, at, MINUTE, PER_MINUTE, rng)
    log_interactions(client, model, at, MINUTE, PER_MINUTE, rng, **RATES)


def evaluate(conn: psycopg.Connection[Any], as_of: datetime) -> list[tuple[str, str]]:
    rows = conn.execute("SELECT kind, metric FROM drift.evaluate(%s)", (as_of,)).fetchall()
    return [(kind, metric) for kind, metric in rows]


def test_drift_free_stream_evaluated_every_minute_raises_nothing_then_a_step_raises_one_event(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    model = "seq"
    add_model(conn, model)
    rng = np.random.default_rng(41)
    traffic = TopicTraffic(128, 41)
    no_drift, new_topic = EMBEDDING_CASES[0], EmbeddingCase("new topic at 20%", new_topic=0.2)
    start = T0 + 6 * HOUR
    with driftloop.connect(db_url) as client:
        log_embeddings(client, model, traffic, no_drift, T0, 6 * HOUR, 6 * 60 * PER_MINUTE, rng)
        log_interactions(client, model, T0, 6 * HOUR, 6 * 60 * PER_MINUTE, rng, **RATES)
        set_baseline(conn, model, T0, start)

        # Eight drift-free hours, evaluated every minute: 480 looks at 5 metrics.
        naive_alarms = 0
        for minute in range(8 * 60):
            at = start + minute * MINUTE
            minute_of_traffic(client, model, traffic, no_drift, at, rng)
            assert evaluate(conn, at + MINUTE) == [], at
            if minute >= 60:  # full windows only
                rows = report(conn, model, at + MINUTE).values()
                naive_alarms += any(r["p_value"] is not None and r["p_value"] < r["details"]["alpha"] for r in rows)
        # The same looks at alpha each would have raised false events: the control is doing the work.
        assert naive_alarms > 0

        # A new topic takes 20% of the traffic.
        change = start + 8 * HOUR
        raised: list[tuple[datetime, tuple[str, str]]] = []
        for minute in range(60):
            at = change + minute * MINUTE
            minute_of_traffic(client, model, traffic, new_topic, at, rng)
            raised += [(at, event) for event in evaluate(conn, at + MINUTE)]
            assert evaluate(conn, at + MINUTE) == []  # evaluating again adds nothing
    metrics = [event for _, event in raised]
    assert ("embedding", "novelty_rate") in metrics
    assert len(metrics) == len(set(metrics)), raised  # each drift once
    assert {kind for kind, _ in metrics} == {"embedding"}  # behavior and accuracy did not change
    first = min(at for at, _ in raised)
    assert first - change <= 15 * MINUTE, first - change
    assert conn.execute("SELECT count(*) FROM drift.drift_events").fetchone() == (len(metrics),)
