"""Late labels: accuracy windows follow interaction time, not label arrival."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg

import driftloop
from tests.support.detection import HOUR, T0, log_interactions, report, set_baseline
from tests.support.detection_cases import spread_times
from tests.support.helpers import add_model


def test_late_labels_count_in_the_window_of_their_interaction(db_url: str, conn: psycopg.Connection[Any]) -> None:
    model = "labels"
    add_model(conn, model)
    rng = np.random.default_rng(51)
    with driftloop.connect(db_url) as client:
        log_interactions(client, model, T0, 4 * HOUR, 12000, rng, refusal=0.02, toxic=0.01, accuracy=0.9)
        set_baseline(conn, model, T0, T0 + 4 * HOUR)
        # An hour of traffic whose labels are not known yet.
        hour = T0 + 4 * HOUR
        ids = client.log_interactions(
            [{"model": model, "created_at": t, "is_refusal": False} for t in spread_times(hour, HOUR, 3000, rng)]
        )
    conn.execute("SELECT drift.compact_rollups()")
    before = report(conn, model, hour + HOUR)["accuracy"]
    assert (before["n_current"], before["drifted"]) == (0, False)

    # The labels arrive hours later, and they are bad: 70% correct against 90%.
    correct = rng.random(len(ids)) < 0.7
    conn.execute(
        "UPDATE drift.interaction_log l SET correct = v.correct"
        " FROM unnest(%s::bigint[], %s::boolean[]) AS v(id, correct) WHERE l.id = v.id",
        (ids, correct.tolist()),
    )
    conn.execute("SELECT drift.compact_rollups()")
    in_their_window = report(conn, model, hour + HOUR)["accuracy"]
    assert in_their_window["n_current"] == 3000
    assert abs(in_their_window["value"] - correct.mean()) < 1e-9
    assert in_their_window["drifted"]
    assert in_their_window["details"]["window_time"].startswith("interaction time")
    # The window the labels arrived in (by data time) holds none of them.
    later = report(conn, model, hour + 4 * HOUR)["accuracy"]
    assert (later["n_current"], later["drifted"]) == (0, False)
    # An evaluation of the interactions' window raises the accuracy event.
    events = conn.execute("SELECT kind, metric FROM drift.evaluate(%s)", (hour + HOUR,)).fetchall()
    assert events == [("accuracy", "accuracy")]
