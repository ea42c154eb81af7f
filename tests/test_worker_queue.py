"""Claims, retries, the dead letter and idempotency, with `run_once` and the `events` commands."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from driftloop.worker import load_config, run_once
from driftloop.worker.store import LeaseLost, Store
from tests.support.helpers import DRIFTLOOP, count, insert_events, write_config


def config(tmp_path: Path, max_backoff: float = 0.0) -> Any:
    """log_it appends the event id to seen.txt; flaky fails while fail.flag exists."""
    seen, flag = tmp_path / "seen.txt", tmp_path / "fail.flag"
    return load_config(
        write_config(
            tmp_path,
            f"""
[worker]
backoff_base_s = {max_backoff}
backoff_max_s = {max_backoff}

[actions.log_it]
type = "command"
argv = ["sh", "-c", "echo $DRIFTLOOP_EVENT_ID >> {seen}"]

[actions.flaky]
type = "command"
argv = ["sh", "-c", "if [ -e {flag} ]; then echo 'upstream is down' >&2; exit 1; fi"]

[[routes]]
kind = "embedding"
actions = ["log_it", "flaky"]
""",
        )
    )


def test_run_once_processes_pending_events_and_records_every_run(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    ids = insert_events(conn, ["m1", "m2", "m3"])

    done = run_once(db_url, config(tmp_path), worker_id="w1")

    assert sorted(d.event_id for d in done) == ids
    assert all(d.status == "resolved" and d.outcomes == {"log_it": "succeeded", "flaky": "succeeded"} for d in done)
    assert sorted(map(int, (tmp_path / "seen.txt").read_text().split())) == ids
    rows = conn.execute(
        "SELECT status, attempts, claimed_by, resolution FROM drift.drift_events ORDER BY id"
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [("resolved", 1, None)] * 3
    assert [a["action"] for a in rows[0][3]["actions"]] == ["log_it", "flaky"]
    assert rows[0][3]["worker"] == "w1"
    assert count(conn, "SELECT count(*) FROM drift.action_runs WHERE outcome = 'succeeded' AND worker = 'w1'") == 6
    assert run_once(db_url, config(tmp_path)) == []  # nothing left


def test_failures_back_off_then_dead_letter_then_retry_by_command(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "fail.flag").touch()
    [event_id] = insert_events(conn, ["m1"])
    conn.execute("UPDATE drift.drift_events SET max_attempts = 3 WHERE id = %s", (event_id,))

    statuses = [d.status for d in run_once(db_url, config(tmp_path))]  # zero backoff: retried at once
    assert statuses == ["pending", "pending", "failed"]
    status, attempts, error = conn.execute(
        "SELECT status, attempts, last_error FROM drift.drift_events WHERE id = %s", (event_id,)
    ).fetchone()
    assert (status, attempts) == ("failed", 3)
    assert "exited with 1" in error and "upstream is down" in error
    # log_it succeeded in attempt 1 and was skipped afterwards: it ran exactly once.
    assert (tmp_path / "seen.txt").read_text().split() == [str(event_id)]
    runs = conn.execute("SELECT action, attempt, outcome FROM drift.action_runs ORDER BY id").fetchall()
    assert runs == [("log_it", 1, "succeeded"), ("flaky", 1, "failed"), ("flaky", 2, "failed"), ("flaky", 3, "failed")]

    listed = subprocess.run(
        [DRIFTLOOP, "events", "list", "--status", "failed"], capture_output=True, text=True, check=True
    ).stdout
    (row,) = [line for line in listed.splitlines()[1:] if line.split()[0] == str(event_id)]  # under a header
    assert "3/3" in row.split() and "upstream is down" in row

    (tmp_path / "fail.flag").unlink()
    subprocess.run([DRIFTLOOP, "events", "retry", str(event_id)], check=True, capture_output=True)
    [done] = run_once(db_url, config(tmp_path))
    assert done.status == "resolved" and done.outcomes == {"log_it": "skipped", "flaky": "succeeded"}

    again = subprocess.run([DRIFTLOOP, "events", "retry", str(event_id)], capture_output=True, text=True)
    assert again.returncode != 0 and "already resolved" in again.stderr


def test_a_failed_attempt_waits_for_its_backoff(conn: psycopg.Connection[Any], db_url: str, tmp_path: Path) -> None:
    (tmp_path / "fail.flag").touch()
    [event_id] = insert_events(conn, ["m1"])
    assert [d.status for d in run_once(db_url, config(tmp_path, max_backoff=600))] == ["pending"]
    assert run_once(db_url, config(tmp_path, max_backoff=600)) == []  # not due yet
    wait_s = conn.execute(
        "SELECT extract(epoch FROM run_after - now()) FROM drift.drift_events WHERE id = %s", (event_id,)
    ).fetchone()[0]
    assert 250 < wait_s <= 600  # half fixed, half jitter


def test_results_are_written_only_by_the_lease_holder(conn: psycopg.Connection[Any], db_url: str) -> None:
    [event_id] = insert_events(conn, ["m1"])
    first = Store(db_url, "worker-a", lease_s=30, pool_size=2)
    second = Store(db_url, "worker-b", lease_s=30, pool_size=2)
    try:
        [event] = first.claim(10)
        run_id = first.start_run(event, "log_it", "command")
        assert second.claim(10) == []  # held
        conn.execute("UPDATE drift.drift_events SET lease_expires_at = now() - interval '1 second'")
        [taken] = second.claim(10)  # a expired: b takes it over
        assert taken.id == event_id and taken.attempts == 2

        with pytest.raises(LeaseLost):
            first.finish_run(event_id, run_id, "succeeded", {"late": True}, None)
        with pytest.raises(LeaseLost):
            first.resolve(event_id, {"worker": "worker-a"})
        assert first.extend_leases([event_id]) == set()

        status, holder = conn.execute("SELECT status, claimed_by FROM drift.drift_events").fetchone()
        assert (status, holder) == ("running", "worker-b")
        assert conn.execute("SELECT outcome FROM drift.action_runs WHERE id = %s", (run_id,)).fetchone() == (
            "lease_lost",
        )
        second.resolve(event_id, {"worker": "worker-b"})
    finally:
        first.close()
        second.close()


def test_worker_once_from_cron(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    """`driftloop worker --once`: process what is due, print one line per event, exit 0."""
    ids = insert_events(conn, ["m1", "m2"])
    path = write_config(
        tmp_path, '[actions.log_it]\ntype = "command"\nargv = ["true"]\n\n[[routes]]\nactions = ["log_it"]\n'
    )
    result = subprocess.run(
        [DRIFTLOOP, "worker", "--once", "--concurrency", "2", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        f"event {i} m{n} embedding/centroid_distance: resolved (log_it=succeeded)" for n, i in enumerate(ids, 1)
    ]
    assert count(conn, "SELECT count(*) FROM drift.drift_events WHERE status = 'resolved'") == 2
