"""A command whose worker is SIGKILLed after the command ran is not run a second time.

The window: the command has exited, but its worker is killed before the run's outcome is
recorded. Before, the next worker ran the command again (only DRIFTLOOP_DELIVERY let the
command notice). Now the worker records the exit the moment the child exits, in a short
transaction that takes no lock on the event, and the worker that takes the event over finishes
the run with that exit. The window is made exact without touching the worker: the test holds
the event's row lock, so the worker can record the exit but then waits to finish the run, and
is killed there. The server is told to check for lost clients while a statement waits
(client_connection_check_interval), so the dead worker's waiting statement is aborted rather
than completed once the lock goes: as if the kill had come before it was sent.

An action set `at_most_once = true` goes further: a run whose worker died while the command
ran (no exit recorded: it may have done its effect) is not run again; the event is
dead-lettered with the reason, and `driftloop events retry` (a human's decision) runs it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from driftloop.database import connect
from driftloop.worker.store import Store
from tests.support.helpers import (
    DRIFTLOOP,
    count,
    file_lines,
    insert_events,
    kill_group,
    shell_action_config,
    start_worker,
    wait_until,
)

LEASE_S = 2


def status_of(conn: psycopg.Connection[Any], event_id: int) -> str:
    return str(conn.execute("SELECT status FROM drift.drift_events WHERE id = %s", (event_id,)).fetchone()[0])  # type: ignore[index]


def stop(worker: subprocess.Popen[bytes] | None) -> None:
    if worker is None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    finally:
        kill_group(worker)


def test_a_command_that_exited_is_not_run_again_when_its_worker_dies_before_recording_the_run(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    started, effects, go = tmp_path / "started.txt", tmp_path / "effects.txt", tmp_path / "go"
    script = tmp_path / "act.sh"
    script.write_text(
        f'echo "$DRIFTLOOP_ATTEMPT" >> {started}\n'
        f"while [ ! -e {go} ]; do sleep 0.05; done\n"
        f'echo "$DRIFTLOOP_DELIVERY" >> {effects}\n'
        'echo "done for $DRIFTLOOP_EVENT_ID"\n'
    )
    config = shell_action_config(tmp_path, script, lease_s=LEASE_S)
    [event_id] = insert_events(conn, ["exit-recorded"])
    database = sql.Identifier(conn.info.dbname)
    conn.execute(sql.SQL("ALTER DATABASE {} SET client_connection_check_interval = '100ms'").format(database))
    first = start_worker(config, tmp_path / "first.log")
    second = None
    try:
        wait_until(lambda: file_lines(started), timeout=60, what="the command to start")
        with connect(db_url) as lock:  # a transaction: the event's row stays locked until it ends
            lock.execute("SELECT id FROM drift.drift_events WHERE id = %s FOR UPDATE", (event_id,))
            go.touch()
            wait_until(
                lambda: count(conn, "SELECT count(*) FROM drift.action_runs WHERE exited_at IS NOT NULL"),
                timeout=30,
                what="the worker to record the command's exit",
            )
            # The command is done and its exit recorded; the worker now waits on the row lock
            # to finish the run. Killed there, as the OOM killer would.
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
            wait_until(
                lambda: (
                    not count(
                        conn,
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s",
                        (f"%:{first.pid}:%",),
                    )
                ),
                timeout=30,
                what="the server to end the killed worker's sessions",
            )
            lock.rollback()
        assert conn.execute("SELECT outcome FROM drift.action_runs").fetchall() == [("running",)]

        second = start_worker(config, tmp_path / "second.log")
        wait_until(
            lambda: status_of(conn, event_id) == "resolved", timeout=60, what="the next worker to resolve the event"
        )
        time.sleep(1)  # a second run would have written its start line by now
    finally:
        kill_group(first)
        stop(second)

    assert file_lines(started) == ["1"]  # the command ran once
    assert file_lines(effects) == [f"{event_id}:act"]
    [(attempt, outcome, exit_code, output)] = conn.execute(
        "SELECT attempt, outcome, exit_code, output FROM drift.action_runs WHERE event_id = %s", (event_id,)
    ).fetchall()
    assert (attempt, outcome, exit_code) == (1, "succeeded", 0)
    assert output["stdout"] == f"done for {event_id}\n"  # the first run's output, kept
    [resolution] = conn.execute("SELECT resolution FROM drift.drift_events WHERE id = %s", (event_id,)).fetchone()  # type: ignore[misc]
    [action] = resolution["actions"]
    assert (action["outcome"], action["summary"]) == ("skipped", "succeeded in an earlier attempt")


def test_an_at_most_once_command_whose_worker_died_mid_run_is_dead_lettered_not_run_again(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    started, go = tmp_path / "started.txt", tmp_path / "go"
    script = tmp_path / "act.sh"
    script.write_text(
        f'echo "$DRIFTLOOP_ATTEMPT" >> {started}\nwhile [ ! -e {go} ]; do sleep 0.05; done\n'  # ready, then waits
    )
    config = shell_action_config(tmp_path, script, lease_s=LEASE_S, extra="at_most_once = true")
    [event_id] = insert_events(conn, ["at-most-once"])
    first = start_worker(config, tmp_path / "first.log")
    second = None
    try:
        wait_until(lambda: file_lines(started), timeout=60, what="the command to start")
        os.kill(first.pid, signal.SIGKILL)  # mid-command: its effect may or may not have happened
        first.wait(timeout=10)
        second = start_worker(config, tmp_path / "second.log")
        wait_until(lambda: status_of(conn, event_id) == "failed", timeout=60, what="the event to be dead-lettered")
        time.sleep(1)  # a second run would have written its start line by now
        assert file_lines(started) == ["1"]
        [error] = conn.execute("SELECT last_error FROM drift.drift_events WHERE id = %s", (event_id,)).fetchone()  # type: ignore[misc]
        assert "action act is at_most_once and may have run already" in error
        assert f"driftloop events retry {event_id}" in error
        assert conn.execute("SELECT attempt, outcome FROM drift.action_runs").fetchall() == [(1, "abandoned")]

        # A human checked what the first run did and decides to run it again.
        go.touch()
        retried = subprocess.run(
            [DRIFTLOOP, "events", "retry", str(event_id)], capture_output=True, text=True, timeout=60
        )
        assert retried.returncode == 0, retried.stderr
        wait_until(lambda: status_of(conn, event_id) == "resolved", timeout=60, what="the retried event to resolve")
    finally:
        kill_group(first)
        stop(second)
    assert file_lines(started) == ["1", "1"]  # attempts count afresh after a retry
    assert conn.execute("SELECT outcome FROM drift.action_runs ORDER BY id").fetchall() == [
        ("abandoned",),
        ("succeeded",),
    ]


def test_a_recorded_failure_is_settled_as_failed_and_the_action_runs_again(
    conn: psycopg.Connection[Any], db_url: str
) -> None:
    """The exit record is an outcome like any other: a failure found there is retried as usual."""
    [event_id] = insert_events(conn, ["exit-failed"])
    dead = Store(db_url, "worker-dead", lease_s=30, pool_size=1)
    heir = Store(db_url, "worker-heir", lease_s=30, pool_size=1)
    try:
        [event] = dead.claim(1)
        run_id = dead.start_run(event, "act", "command")
        assert dead.record_exit(event_id, run_id, 3, {"exit_code": 3}, "act exited with 3; stderr: no disk")
        conn.execute("UPDATE drift.drift_events SET lease_expires_at = now() - interval '1 second'")
        [again] = heir.claim(1)
        assert again.attempts == 2
        assert heir.take_over_runs(event_id, ["act"]) == [
            {"run_id": run_id, "action": "act", "outcome": "failed", "worker": "worker-dead", "dead_letter": False}
        ]
        assert dead.record_exit(event_id, run_id, 0, {}, None) is False  # settled: no longer running
    finally:
        dead.close()
        heir.close()
    assert conn.execute("SELECT outcome, error FROM drift.action_runs").fetchall() == [
        ("failed", "act exited with 3; stderr: no disk")
    ]
    assert status_of(conn, event_id) == "running"  # the heir goes on with the event
