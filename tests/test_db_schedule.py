"""`driftloop db schedule` / `unschedule`: where pg_cron is missing (the embedded server has
none) a clear one-line error and exit status 2, nothing created; against a real pg_cron, the
job that runs drift.evaluate() every minute."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

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


PG15 = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="module")
def pg_cron_url() -> Iterator[str]:
    """A real PostgreSQL 15 with pg_cron preloaded (Debian's postgresql-15-cron, `make pg-cron`).

    Debian bookworm has no pgvector package for it, so the drift schema is not installed here:
    this server checks the pg_cron side of `db schedule` (pg_cron does not parse the command).
    """
    if not (PG15 / "postgres").exists() or not Path("/usr/share/postgresql/15/extension/pg_cron.control").exists():
        pytest.skip("PostgreSQL 15 with pg_cron is not installed (make pg-cron)")
    root = Path(tempfile.mkdtemp(prefix="dl-pgcron-"))
    # PostgreSQL refuses to run as root: as root, run it as the postgres user Debian's package made.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    data = root / "data"
    run = functools.partial(subprocess.run, check=True, capture_output=True, timeout=120)
    run([*as_user, str(PG15 / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"])
    options = (
        "-c shared_preload_libraries=pg_cron -c cron.database_name=postgres"
        f" -c listen_addresses='' -c unix_socket_directories={root}"
    )
    run([*as_user, str(PG15 / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o", options, "start"])
    try:
        yield f"postgresql://postgres@/postgres?host={root}"
    finally:
        run([*as_user, str(PG15 / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def test_schedule_registers_evaluate_every_minute_in_a_real_pg_cron(pg_cron_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": pg_cron_url}

    def driftloop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DRIFTLOOP, "db", *args], capture_output=True, text=True, timeout=60, env=env, check=False
        )

    first = driftloop("schedule")  # pg_cron is preloaded but not created yet: schedule creates it
    assert first.returncode == 0, first.stderr
    again = driftloop("schedule")  # idempotent: the same named job, updated in place
    assert again.returncode == 0 and again.stdout == first.stdout
    with psycopg.connect(pg_cron_url) as conn:
        jobs = conn.execute("SELECT jobname, schedule, command, database FROM cron.job").fetchall()
    assert jobs == [("driftloop-evaluate", "* * * * *", "SELECT count(*) FROM drift.evaluate()", "postgres")]
    removed = driftloop("unschedule")
    assert removed.returncode == 0 and "removed driftloop-evaluate" in removed.stdout
    assert "was not scheduled" in driftloop("unschedule").stdout
    with psycopg.connect(pg_cron_url) as conn:
        assert conn.execute("SELECT count(*) FROM cron.job").fetchone() == (0,)
