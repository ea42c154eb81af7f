"""A command action runs once per event even when its worker is SIGKILLed mid-action.

The command writes a marker line when it starts and when it ends. Worker A is SIGKILLed
while the command sleeps; worker B takes the event over when A's lease expires and runs
the command again. The first run must be dead at once (its supervisor ends its process
group), so only B's run ever ends: no two runs of the same command overlap.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import psycopg

from tests.support.helpers import count, insert_events, kill_group, shell_action_config, start_worker, wait_until

SLEEP_S = 4
LEASE_S = 2


def marker_lines(marker: Path) -> list[str]:
    return marker.read_text().split("\n")[:-1] if marker.exists() else []


def group_members(pgid: int) -> list[int]:
    """Pids of live processes in process group `pgid` (from /proc: stat field 5)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def test_a_sigkilled_workers_command_dies_with_it_and_runs_once(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    # `sleep` runs as a grandchild of the supervisor: the whole group must go, not one process.
    script = tmp_path / "mark.sh"
    script.write_text(
        f'echo "start $DRIFTLOOP_ATTEMPT $$ $(ps -o pgid= $$)" >> {marker}\n'
        f"sleep {SLEEP_S}\n"
        f'echo "end $DRIFTLOOP_ATTEMPT" >> {marker}\n'
    )
    config = shell_action_config(tmp_path, script, lease_s=LEASE_S, action="mark", timeout_s=60)
    [event_id] = insert_events(conn, ["kill-me"])
    first = start_worker(config, tmp_path / "a.log")
    second = None
    try:
        start = wait_until(lambda: marker_lines(marker), timeout=30, what="the first run to start")
        _, attempt, _pid, pgid = start[0].split()
        assert attempt == "1"
        assert group_members(int(pgid)), "the command's group is running"

        os.kill(first.pid, signal.SIGKILL)  # the worker only: not its group, as the OOM killer would
        first.wait(timeout=10)
        wait_until(lambda: not group_members(int(pgid)), timeout=2, what="the killed worker's command group to end")

        second = start_worker(config, tmp_path / "b.log")
        wait_until(
            lambda: count(
                conn, "SELECT count(*) FROM drift.drift_events WHERE id = %s AND status = 'resolved'", (event_id,)
            ),
            timeout=60,
            what="the second worker to resolve the event",
        )
        time.sleep(1)  # had the first run survived, its "end 1" would be written by now
    finally:
        kill_group(first)
        if second is not None:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
            kill_group(second)

    lines = marker_lines(marker)
    assert [line.split()[0] + " " + line.split()[1] for line in lines] == ["start 1", "start 2", "end 2"], lines
    runs = conn.execute(
        "SELECT attempt, outcome FROM drift.action_runs WHERE event_id = %s ORDER BY id", (event_id,)
    ).fetchall()
    assert runs == [(1, "abandoned"), (2, "succeeded")]
