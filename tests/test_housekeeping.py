"""`make test` leaves no server behind: the helper its recipe calls stops every postmaster."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.helpers import DRIFTLOOP
from tests.support.servers import alive, postmaster_pids

ROOT = Path(__file__).resolve().parents[1]


def test_servers_left_running_under_the_test_folder_are_stopped() -> None:
    # A short path: the server's unix socket lives in its data directory.
    folder = Path(tempfile.mkdtemp(prefix="dl-hk-", dir="/tmp"))
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environment["DRIFTLOOP_HOME"] = str(folder / "home")
    # `db start` leaves its server running on purpose, as a crashed test would.
    subprocess.run([DRIFTLOOP, "db", "start"], env=environment, check=True, capture_output=True, timeout=180)
    (pid,) = postmaster_pids(folder).values()
    assert alive(pid)
    done = subprocess.run([sys.executable, "-m", "tests.support.servers", "stop", str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and "stopped 1 PostgreSQL server" in done.stderr
    assert not alive(pid)


def test_make_test_runs_the_tests_in_a_folder_it_cleans_up() -> None:
    recipe = (ROOT / "Makefile").read_text().split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "TMPDIR=" in recipe and "tests.support.servers stop" in recipe and "trap" in recipe
