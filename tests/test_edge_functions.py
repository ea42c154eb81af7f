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
