"""The edge functions' own checks and tests, run by the real deno binary from PyPI.

`deno test` runs against a fresh migrated database of the embedded (or DATABASE_URL) server,
given to the functions as SUPABASE_DB_URL exactly as Supabase gives it to deployed functions.
The npm packages (postgres, jose) are fetched into Deno's cache on first use, pinned by
functions/deno.lock.
"""

from __future__ import annotations

import os
import re
import subprocess
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from driftloop import edge

PERMISSIONS = list(edge.DENO_PERMISSIONS)


def deno(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [edge.deno_binary(), *args],
        cwd=edge.functions_dir(),
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_deno_binary_comes_from_the_pypi_package() -> None:
    import deno as deno_package

    assert edge.deno_binary() == str(deno_package.find_deno_bin())
    assert deno("--version").stdout.startswith("deno 2.")


def test_deno_check_and_lint_pass() -> None:
    tests = sorted(p.name for p in (edge.functions_dir() / "tests").glob("*.ts"))
    checked = deno("check", "main.ts", *[f"tests/{t}" for t in tests])
    assert checked.returncode == 0, checked.stderr
    linted = deno("lint")
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_deno_test_every_function_against_postgres(db_url: str) -> None:
    result = deno("test", *PERMISSIONS, "tests/", env={"SUPABASE_DB_URL": db_url})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = re.search(r"ok \| (\d+) passed \| 0 failed", output)
    assert summary and int(summary[1]) >= 25, output[-2000:]
    for name in ("log_interaction", "log_embeddings", "feedback", "drift_status", "fuzz"):
        assert f"tests/{name}.test.ts" in output
    fuzz = re.search(r"FUZZ_CASES (\d+) (\{.*\})", output)
    assert fuzz and int(fuzz[1]) > 700, output[-2000:]
    print(f"edge functions: {summary[1]} deno tests passed; fuzz: {fuzz[1]} cases, statuses {fuzz[2]}")


def test_the_functions_work_as_a_login_user_granted_only_ingest_and_reader(db_url: str) -> None:
    """The deployment the README recommends: DRIFTLOOP_DB_URL is a login user with only
    driftloop_ingest and driftloop_reader, under row-level security. The same deno tests pass
    (their own assertions read through SUPABASE_DB_URL, the owner), and the rows are its own."""
    user, password = "driftloop_functions_test", "functions-test-password"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {name}) THEN"
                " CREATE ROLE {user} LOGIN PASSWORD {password} IN ROLE driftloop_ingest, driftloop_reader;"
                " END IF; END $$"
            ).format(name=sql.Literal(user), user=sql.Identifier(user), password=sql.Literal(password))
        )
    parts = urlsplit(db_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    limited = urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))
    files = [f"tests/{name}.test.ts" for name in ("log_interaction", "log_embeddings", "feedback", "drift_status")]
    result = deno("test", *PERMISSIONS, *files, env={"SUPABASE_DB_URL": db_url, "DRIFTLOOP_DB_URL": limited})
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    with psycopg.connect(db_url) as conn:
        owners = dict(conn.execute("SELECT inserted_by, count(*) FROM drift.interaction_log GROUP BY 1").fetchall())
    assert owners.get(user, 0) > 50 and "postgres" not in owners, owners
