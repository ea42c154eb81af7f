"""An action that finishes while Postgres is down is recorded by its worker and never run again.

The soak's duplicated event: a worker's command finished during a Postgres restart; the
server's clock had run past the worker's lease while nobody could renew it, so the first
worker to reach the restarted server took the event over and ran the command a second
time, while the holder's result was refused as lease_lost. Now a lease renewed before the
server started holds for one more lease length after the start, and the holder renews it
on a connection of its own as soon as the server is back.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg

from driftloop.worker.store import Store
from tests.support.helpers import (
    count,
    file_lines,
    insert_events,
    kill_group,
    shell_action_config,
    start_worker,
    wait_until,
)
from tests.support.pgctl import start_server, stop_server

LEASE_S = 4


def test_an_action_finished_during_a_restart_is_recorded_once_and_not_run_again(db_url: str, tmp_path: Path) -> None:
    started, effects, go = tmp_path / "started.txt", tmp_path / "effects.txt", tmp_path / "go"
    # The command blocks until the test lets it finish: then, with the server down.
    script = tmp_path / "act.sh"
    script.write_text(
        f'echo "$DRIFTLOOP_EVENT_ID" >> {started}\n'
        f"while [ ! -e {go} ]; do sleep 0.05; done\n"
        f'echo "$DRIFTLOOP_EVENT_ID" >> {effects}\n'
    )
    config = shell_action_config(tmp_path, script, lease_s=LEASE_S)
    conn = psycopg.connect(db_url, autocommit=True)
    [event_id] = insert_events(conn, ["restart-me"])
    holder = start_worker(config, tmp_path / "holder.log")
    rival = None
    try:
        wait_until(lambda: file_lines(started), timeout=60, what="the action to start")
        server = stop_server(conn)
        time.sleep(LEASE_S + 1)  # on the server's clock the holder's lease has now run out
        go.touch()
        wait_until(lambda: file_lines(effects), timeout=10, what="the action to finish while the server is down")
        start_server(server)

        conn = psycopg.connect(db_url, autocommit=True)
        # The fastest possible rival: it claims the instant the server is back, before the
        # holder has had a chance to renew. The event is not up for grabs.
        assert conn.execute("SELECT id FROM drift.claim_events('rival', 10, %s)", (LEASE_S,)).fetchall() == []
        rival = start_worker(config, tmp_path / "rival.log")  # and a real one, competing from now on
        wait_until(
            lambda: count(conn, "SELECT count(*) FROM drift.drift_events WHERE id = %s AND status = 'resolved'",
                          (event_id,)),
            timeout=60,
            what="the holder to record its run and resolve the event",
        )  # fmt: skip
        time.sleep(LEASE_S)  # a rival that had taken the event would have run the action again by now
    finally:
        kill_group(holder)
        if rival is not None:
            kill_group(rival)

    assert file_lines(started) == [str(event_id)]
    assert file_lines(effects) == [str(event_id)]
    runs = conn.execute("SELECT attempt, outcome FROM drift.action_runs WHERE event_id = %s", (event_id,)).fetchall()
    assert runs == [(1, "succeeded")]
    [(holder_id, resolved_by)] = conn.execute(
        """SELECT r.worker, e.resolution ->> 'worker'
           FROM drift.action_runs r JOIN drift.drift_events e ON e.id = r.event_id"""
    ).fetchall()
    assert resolved_by == holder_id
    conn.close()


def test_recording_a_result_twice_is_not_a_lost_lease(conn: psycopg.Connection[Any], db_url: str) -> None:
    """A reply lost after the commit (the server went down) makes the worker send it again."""
    [event_id] = insert_events(conn, ["m1"])
    store = Store(db_url, "worker-a", lease_s=30, pool_size=2)
    try:
        [event] = store.claim(10)
        run_id = store.start_run(event, "log_it", "command")
        assert store.start_run(event, "log_it", "command") == run_id  # no second run left running
        store.finish_run(event_id, run_id, "succeeded", {"exit_code": 0}, None)
        store.finish_run(event_id, run_id, "succeeded", {"exit_code": 0}, None)  # the retry: no LeaseLost
        store.resolve(event_id, {"worker": "worker-a"})
        store.resolve(event_id, {"worker": "worker-a"})
    finally:
        store.close()
    assert conn.execute("SELECT outcome FROM drift.action_runs").fetchall() == [("succeeded",)]
    assert conn.execute("SELECT status FROM drift.drift_events").fetchall() == [("resolved",)]


def test_a_run_starts_on_a_fresh_lease(conn: psycopg.Connection[Any], db_url: str) -> None:
    """Starting an action renews the lease, so an action never begins on a lease about to run out."""
    [event_id] = insert_events(conn, ["m1"])
    store = Store(db_url, "worker-a", lease_s=30, pool_size=2)
    try:
        [event] = store.claim(10)
        conn.execute("UPDATE drift.drift_events SET lease_expires_at = now() + interval '1 second'")
        store.start_run(event, "log_it", "command")
        left = conn.execute(
            "SELECT extract(epoch FROM lease_expires_at - now()) FROM drift.drift_events WHERE id = %s", (event_id,)
        ).fetchone()[0]
        assert left > 20
    finally:
        store.close()
