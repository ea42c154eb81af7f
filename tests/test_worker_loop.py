"""The closed loop with the real engine: drift detected -> event -> worker acts -> no drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

import driftloop
from driftloop.worker import load_config, run_once


def test_embedding_drift_is_detected_acted_on_and_gone(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # no driftloop.toml here: the seed's default routes
    monkeypatch.delenv("DRIFTLOOP_CONFIG", raising=False)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    rng = np.random.default_rng(3)
    old_topic, new_topic = np.eye(16)[0] * 3, np.eye(16)[1] * 3
    with driftloop.connect(db_url) as dl:
        for start, centre in ((now - timedelta(hours=3), old_topic), (now - timedelta(minutes=50), new_topic)):
            times = [start + timedelta(seconds=12 * i) for i in range(240)]
            dl.log_embeddings("search-bot", centre + rng.normal(size=(240, 16)), created_at=times)
        dl.set_baseline("search-bot", now - timedelta(hours=3), now - timedelta(hours=2))
        dl.evaluate()

    events = conn.execute(
        "SELECT id, window_start, window_end FROM drift.drift_events "
        "WHERE model = 'search-bot' AND kind = 'embedding' AND status = 'pending'"
    ).fetchall()
    assert events, "the engine raised embedding drift events"

    done = run_once(db_url, load_config())

    assert sorted(d.event_id for d in done) == [e[0] for e in events]
    assert all(d.status == "resolved" for d in done)
    # The embedding events of one drift are one incident: one reindex, the other events skip it.
    assert sorted(d.outcomes["reindex"] for d in done) == ["skipped"] * (len(done) - 1) + ["succeeded"]
    baseline = conn.execute(
        "SELECT starts, ends FROM drift.baselines WHERE model = 'search-bot' AND kind = 'embedding'"
    ).fetchone()
    assert baseline == events[0][1:]
    # The new topic is the new normal: no embedding metric reports drift any more.
    drifted = conn.execute(
        "SELECT metric, drifted FROM drift.drift_status WHERE model = 'search-bot' AND kind = 'embedding'"
    ).fetchall()
    assert drifted and not any(d for _, d in drifted), drifted
