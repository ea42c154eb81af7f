"""Stop every PostgreSQL server whose data directory lies under a folder.

`make test` points TMPDIR at a fresh folder, so every embedded server the tests start (the
session's own, and those of CLI subprocesses with homes of their own) has its data directory
under it; afterwards, even when the tests failed or were interrupted, this stops them all:

    python -m tests.support.servers stop FOLDER
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def postmaster_pids(folder: Path) -> dict[Path, int]:
    found = {}
    for pid_file in folder.rglob("postmaster.pid"):
        try:
            found[pid_file.parent] = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            continue
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_all(folder: Path, timeout_s: float = 30.0) -> list[int]:
    """SIGINT (PostgreSQL's fast shutdown) to each postmaster, SIGKILL after the timeout."""
    pids = [pid for pid in postmaster_pids(folder).values() if alive(pid)]
    for pid in pids:
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    return pids


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "stop":
        print("usage: python -m tests.support.servers stop FOLDER", file=sys.stderr)
        return 2
    stopped = stop_all(Path(argv[1]))
    if stopped:
        print(f"stopped {len(stopped)} PostgreSQL server(s) the tests left running", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
