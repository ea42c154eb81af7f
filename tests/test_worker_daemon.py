"""The daemon as real processes: many workers, crashes, signals."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import psycopg

from tests.support.helpers import count, insert_events, kill_group, start_worker, wait_until, write_config


def test_four_workers_process_a_thousand_events_exactly_once(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    seen = tmp_path / "seen.txt"
    config = write_config(
        tmp_path,
        f"""
[worker]
concurrency = 2
poll_interval_s = 1

[actions.log_it]
type = "command"
argv = ["sh", "-c", "echo $DRIFTLOOP_EVENT_ID >> {seen}"]

[[routes]]
actions = ["log_it"]
""",
    )
    logs = [tmp_path / f"worker{i}.log" for i in range(4)]
    workers = [start_worker(config, log) for log in logs]
    try:
        ids: list[int] = []
        for batch in range(10):  # arriving while the workers run, as evaluate() would raise them
            ids += insert_events(conn, [f"model-{batch}-{i}" for i in range(100)])
        wait_until(
            lambda: count(conn, "SELECT count(*) FROM drift.drift_events WHERE status = 'resolved'") == 1000,
            timeout=150,
            what="1000 resolved events",
        )
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        assert [proc.wait(timeout=30) for proc in workers] == [0, 0, 0, 0]
    finally:
        for proc in workers:
            kill_group(proc)

    runs = conn.execute("""SELECT count(*), count(DISTINCT event_id), count(*) FILTER (WHERE outcome = 'succeeded'),
                                  count(DISTINCT worker)
                           FROM drift.action_runs""").fetchone()
    assert runs[:3] == (1000, 1000, 1000)
    assert runs[3] >= 2  # the work was shared
    lines = seen.read_text().split()
    assert len(lines) == 1000 and sorted(map(int, lines)) == sorted(ids)
    assert count(conn, "SELECT count(*) FROM drift.drift_events WHERE attempts <> 1 OR claimed_by IS NOT NULL") == 0
    assert not any("deadlock" in log.read_text() for log in logs)


def slow_config(tmp_path: Path, *, lease_s: float, grace_s: float = 30) -> Path:
    """The action marks its start, then sleeps on its first attempt only."""
    marks = tmp_path / "marks.txt"
    return write_config(
        tmp_path,
        f"""
[worker]
lease_s = {lease_s}
poll_interval_s = 0.5
shutdown_grace_s = {grace_s}

[actions.slow]
type = "command"
argv = ["sh", "-c", '''
    echo start $DRIFTLOOP_ATTEMPT >> {marks}
    if [ $DRIFTLOOP_ATTEMPT = 1 ]; then sleep 3; fi
    echo end $DRIFTLOOP_ATTEMPT >> {marks}
''']

[[routes]]
actions = ["slow"]
""",
    )


def marks(tmp_path: Path) -> list[str]:
    path = tmp_path / "marks.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_sigkill_mid_action_another_worker_takes_over_after_the_lease(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    config = slow_config(tmp_path, lease_s=1.5)
    victim = start_worker(config, tmp_path / "victim.log")
    try:
        [event_id] = insert_events(conn, ["m1"])
        wait_until(lambda: "start 1" in marks(tmp_path), timeout=30, what="the action to start")
        kill_group(victim)  # the worker and its action die mid-action
        victim.wait(timeout=10)
        status, holder = conn.execute("SELECT status, claimed_by FROM drift.drift_events").fetchone()
        assert status == "running" and holder is not None  # still claimed by the dead worker

        rescuer = start_worker(config, tmp_path / "rescuer.log")
        try:
            wait_until(
                lambda: count(conn, "SELECT count(*) FROM drift.drift_events WHERE status = 'resolved'"),
                timeout=30,
                what="the event to be resolved by the second worker",
            )
        finally:
            rescuer.send_signal(signal.SIGTERM)
            assert rescuer.wait(timeout=30) == 0
    finally:
        kill_group(victim)

    assert marks(tmp_path) == ["start 1", "start 2", "end 2"]
    attempts, holder = conn.execute("SELECT attempts, claimed_by FROM drift.drift_events").fetchone()
    assert (attempts, holder) == (2, None)
    runs = conn.execute("SELECT attempt, outcome, worker FROM drift.action_runs ORDER BY id").fetchall()
    assert [(r[0], r[1]) for r in runs] == [(1, "abandoned"), (2, "succeeded")]
    assert runs[0][2] != runs[1][2]
    assert conn.execute("SELECT id FROM drift.drift_events").fetchone() == (event_id,)


def test_sigterm_lets_the_running_action_finish_and_exits_zero(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    worker = start_worker(slow_config(tmp_path, lease_s=30, grace_s=20), tmp_path / "worker.log")
    try:
        insert_events(conn, ["m1"])
        wait_until(lambda: "start 1" in marks(tmp_path), timeout=30, what="the action to start")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=25) == 0
    finally:
        kill_group(worker)
    assert marks(tmp_path) == ["start 1", "end 1"]
    assert conn.execute("SELECT status, claimed_by FROM drift.drift_events").fetchone() == ("resolved", None)


def test_sigterm_past_the_grace_period_releases_the_event(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    worker = start_worker(slow_config(tmp_path, lease_s=30, grace_s=0.5), tmp_path / "worker.log")
    try:
        insert_events(conn, ["m1"])
        wait_until(lambda: "start 1" in marks(tmp_path), timeout=30, what="the action to start")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
    finally:
        kill_group(worker)
    assert marks(tmp_path) == ["start 1"]  # cancelled: the sleeping action was killed
    row = conn.execute("SELECT status, claimed_by, attempts FROM drift.drift_events").fetchone()
    assert row == ("pending", None, 0)  # back in the queue; the interrupted attempt does not count
    assert conn.execute("SELECT outcome FROM drift.action_runs").fetchall() == [("released",)]
    assert count(conn, "SELECT count(*) FROM drift.drift_events WHERE status = 'running'") == 0


def test_a_second_signal_exits_at_once(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    worker = start_worker(slow_config(tmp_path, lease_s=30, grace_s=60), tmp_path / "worker.log")
    try:
        insert_events(conn, ["m1"])
        wait_until(lambda: "start 1" in marks(tmp_path), timeout=30, what="the action to start")
        worker.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping" in (tmp_path / "worker.log").read_text(), timeout=10, what="shutdown")
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=5) == 1
    finally:
        kill_group(worker)
    # The action was not waited for: the event stays claimed until its lease expires.
    assert conn.execute("SELECT status FROM drift.drift_events").fetchone() == ("running",)
