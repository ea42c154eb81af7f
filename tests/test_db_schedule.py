"""`driftloop db schedule` / `unschedule` where pg_cron is missing (the embedded server has
none): a clear one-line error and exit status 2, nothing created."""

from __future__ import annotations

import subprocess

import psycopg

from tests.support.helpers import DRIFTLOOP


def test_schedule_without_pg_cron_says_so_and_exits_2(db_url: str, conn: psycopg.Connection) -> None:
    available = conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_cron'").fetchone()
    assert available == (0,), "this server has pg_cron: the missing-extension path is not what runs here"
    for command in ("schedule", "unschedule"):
        result = subprocess.run([DRIFTLOOP, "db", command], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "pg_cron is missing" in lines[0], result.stderr
        assert "Traceback" not in result.stderr
    assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'cron'").fetchone() == (0,)
