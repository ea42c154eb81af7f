"""Event rows are data, never instructions.

Anyone who can insert a drift_events row (a compromised ingest key, a bad migration) must not
be able to choose what runs, nor to move a live model's baseline somewhere useless:

- what command runs comes only from driftloop.toml: hostile strings in an event's model,
  metric and details reach the configured command as data and run nothing else;
- before reindex or retrain moves a baseline to an event's window, the worker checks that
  window against the rollups; an empty or ancient window is refused with a clear error on
  the event, and the baseline stays where it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

import driftloop
from driftloop.worker import load_config, run_once
from tests.support.helpers import DRIFTLOOP, insert_events, write_config

RECORDER = """
import json, os, sys
with open(sys.argv[1], "a") as out:
    out.write(json.dumps({"argv": sys.argv[1:], "stdin": json.load(sys.stdin),
                          "model": os.environ["DRIFTLOOP_MODEL"], "metric": os.environ["DRIFTLOOP_METRIC"]}) + "\\n")
"""


def test_hostile_event_details_run_nothing_but_the_configured_command(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    runs = tmp_path / "runs.jsonl"
    pwned = tmp_path / "pwned"
    recorder = tmp_path / "recorder.py"
    recorder.write_text(RECORDER)
    config = write_config(
        tmp_path,
        f"""
[actions.record]
type = "command"
argv = ["{sys.executable}", "{recorder}", "{runs}"]

[actions.evil]                 # defined, but routed only to models that never occur
type = "command"
argv = ["touch", "{pwned}"]

[[routes]]
model = "never-*"
actions = ["evil"]

[[routes]]
actions = ["record"]
""",
    )
    hostile = {
        "argv": ["touch", str(pwned)],
        "command": f"touch {pwned}",
        "actions": ["evil"],
        "type": "command",
        "shell": f"$(touch {pwned}); `touch {pwned}`; touch {pwned} && echo",
        "path": "../../../../etc/passwd",
        "env": {"LD_PRELOAD": str(pwned), "PATH": str(tmp_path)},
        "value": f"'; touch {pwned}; '",
    }
    model = f"bot; touch {pwned} #"
    metric = f"accuracy$(touch {pwned})"
    insert_events(conn, [model], kind="accuracy", metric=metric, details=hostile)
    insert_events(conn, [f"--config={pwned}"], kind="behavior", details={"argv": ["-c", f"touch {pwned}"]})

    env = {**os.environ, "DRIFTLOOP_CONFIG": str(config)}
    done = subprocess.run([DRIFTLOOP, "worker", "--once"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    assert not pwned.exists()
    recorded = [json.loads(line) for line in runs.read_text().splitlines()]
    assert len(recorded) == 2  # one run per event, of the configured program only
    assert all(r["argv"] == [str(runs)] for r in recorded)
    first = next(r for r in recorded if r["model"] == model)
    assert first["metric"] == metric  # verbatim, as data
    assert first["stdin"]["event"]["details"] == hostile
    assert conn.execute("SELECT count(*) FROM drift.drift_events WHERE status = 'resolved'").fetchone() == (2,)


# -- baselines move only to windows the rollups back -----------------------------------------


def live_model(db_url: str, conn: psycopg.Connection[Any]) -> tuple[datetime, datetime]:
    """search-bot: 300 embeddings over the last two hours, baseline on the first hour."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    times = [now - timedelta(minutes=120) + i * timedelta(seconds=24) for i in range(300)]
    with driftloop.connect(db_url) as dl:
        dl.log_embeddings("search-bot", np.random.default_rng(3).normal(size=(300, 4)), created_at=times)
    baseline = (now - timedelta(minutes=120), now - timedelta(minutes=60))
    conn.execute("SELECT count(*) FROM drift.set_baseline('search-bot', %s, %s)", baseline)
    return baseline


def embedding_baseline(conn: psycopg.Connection[Any]) -> Any:
    return conn.execute(
        "SELECT starts, ends, n, source FROM drift.baselines WHERE model = 'search-bot' AND kind = 'embedding'"
    ).fetchone()


def last_error(conn: psycopg.Connection[Any], event_id: int) -> tuple[str, str]:
    row = conn.execute("SELECT status, last_error FROM drift.drift_events WHERE id = %s", (event_id,)).fetchone()
    return row[0], row[1] or ""


def test_a_forged_event_cannot_move_a_live_baseline(conn: psycopg.Connection[Any], db_url: str, tmp_path: Path) -> None:
    baseline = live_model(db_url, conn)
    before = embedding_baseline(conn)
    assert before[:3] == (*baseline, 150)
    config = load_config(write_config(tmp_path, "[[routes]]\nkind = 'embedding'\nactions = ['reindex']\n"))
    now = datetime.now(UTC).replace(second=0, microsecond=0)

    forged = {
        "ancient": (datetime(2001, 1, 1, tzinfo=UTC), datetime(2001, 1, 1, 1, tzinfo=UTC)),
        "empty": (now - timedelta(hours=10), now - timedelta(hours=9)),
        "future": (now + timedelta(days=1), now + timedelta(days=1, hours=1)),
    }
    for name, window in forged.items():
        [event_id] = insert_events(conn, ["search-bot"], window=window)
        [done] = run_once(db_url, config)
        status, error = last_error(conn, event_id)
        assert (done.status, status) == ("failed", "failed"), (name, error)
        assert "refusing to move the embedding baseline of 'search-bot'" in error, (name, error)
        assert "the rollups hold 0 embeddings there (min_samples = 100)" in error, (name, error)
        assert embedding_baseline(conn) == before, name

    # An old window with data, behind the current baseline: moving back is refused too.
    conn.execute("SELECT count(*) FROM drift.set_baseline('search-bot', %s, %s)", (now - timedelta(minutes=60), now))
    moved = embedding_baseline(conn)
    [event_id] = insert_events(conn, ["search-bot"], window=baseline)
    [done] = run_once(db_url, config)
    assert done.status == "failed"
    assert "back to" in last_error(conn, event_id)[1]
    assert embedding_baseline(conn) == moved

    # A genuine event (its window holds the logged rows) still moves the baseline.
    later = (now - timedelta(minutes=50), now)
    [event_id] = insert_events(conn, ["search-bot"], window=later)
    [done] = run_once(db_url, config)
    assert done.status == "resolved", last_error(conn, event_id)
    assert embedding_baseline(conn)[:3] == (*later, 125)


def test_a_forged_accuracy_event_trains_and_moves_nothing(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    config = load_config(write_config(tmp_path, "[[routes]]\nkind = 'accuracy'\nactions = ['retrain']\n"))
    window = (datetime(2001, 1, 1, tzinfo=UTC), datetime(2001, 1, 1, 1, tzinfo=UTC))
    [event_id] = insert_events(conn, ["router"], kind="accuracy", window=window)
    [done] = run_once(db_url, config)
    status, error = last_error(conn, event_id)
    assert status == "failed"
    assert "refusing to move the accuracy baseline of 'router'" in error
    assert "0 labelled or rated interactions" in error
    assert conn.execute("SELECT count(*) FROM drift.model_versions").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM drift.baselines WHERE kind = 'accuracy'").fetchone() == (0,)
    assert done.actions[0].permanent
